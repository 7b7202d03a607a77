"""What an ``.mp4`` layout needs to know about a range of a recording's frames, summarized.

Laying out a file (``nvr.mp4``) needs, per segment, more than the ``recording`` row
holds but far less than the index: how the selected frames' durations run-length encode
(an ``stts``: the number of runs of equal durations, the first duration and its run's
length, the last duration) and a digest of every selected frame's duration, size and key
flag, which goes into the file's ETag. ``summarize`` computes that for frames
``[begin, end)`` of a decoded index; it is the only code that does: ``nvr.mp4.selection``
calls it for the frames a request selects, and the recording's writer calls it (through
``summarize_index``, in a worker thread) for the whole recording once its index is final,
so the summary of every committed recording is stored in its row (schema version 2) and
a request for whole recordings never reads an index.

The digest is blake2b with a 16-byte digest over the durations (little-endian int64 each),
then the sizes (the same), then the key flags (one byte each, 0 or 1). It must never
change: stored summaries and ETags depend on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from nvr.base.errors import DataLoss
from nvr.db.recording import VideoIndexArrays, decode_video_index

DIGEST_SIZE = 16


@dataclass(frozen=True, slots=True)
class FramesSummary:
    """Frames ``[begin, end)`` of an index, summarized (at least one frame)."""

    runs: int  # runs of equal consecutive durations (the entries of their stts)
    first_dur: int  # duration of the first frame (90k)
    first_run_len: int  # frames in the first run of equal durations
    last_dur: int  # duration of the last frame (0: a trailing zero)
    digest: bytes  # see the module docstring


def summarize(index: VideoIndexArrays, begin: int = 0, end: int | None = None) -> FramesSummary:
    """The summary of frames ``[begin, end)`` (default: all) of ``index``."""
    end = len(index.durations) if end is None else end
    if not 0 <= begin < end <= len(index.durations):
        raise ValueError(f"frames [{begin}, {end}) of an index of {len(index.durations)}")
    durations = index.durations[begin:end]
    changes = np.flatnonzero(durations[1:] != durations[:-1])
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    digest.update(durations.astype("<i8", copy=False).tobytes())
    digest.update(index.sizes[begin:end].astype("<i8", copy=False).tobytes())
    digest.update(index.is_key[begin:end].tobytes())
    return FramesSummary(
        runs=len(changes) + 1,
        first_dur=int(durations[0]),
        first_run_len=int(changes[0]) + 1 if len(changes) else len(durations),
        last_dur=int(durations[-1]),
        digest=digest.digest(),
    )


def summarize_index(video_index: bytes) -> FramesSummary:
    """The summary of a whole recording from its ``video_index`` (``DataLoss`` if it does
    not decode; ``ValueError`` if it holds no frame)."""
    return summarize(decode_video_index(video_index))


def check_summary(stored: FramesSummary | None, actual: FramesSummary) -> None:
    """Raises ``DataLoss`` naming every field of a stored summary that differs from the
    one computed from the index (or saying it is missing)."""
    if stored is None:
        raise DataLoss("no stored index summary")
    differences = [
        f"{f.name} {_show(getattr(stored, f.name))} (index says {_show(getattr(actual, f.name))})"
        for f in dataclasses.fields(FramesSummary)
        if getattr(stored, f.name) != getattr(actual, f.name)
    ]
    if differences:
        raise DataLoss("stored index summary does not match its video_index: "
                       + ", ".join(differences))


def _show(value: int | bytes) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)
