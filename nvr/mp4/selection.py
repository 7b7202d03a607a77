"""Which frames a file holds: segments of recordings and the frames selected from each.

A ``Segment`` is part of one recording: its row, its index (decoded, raw, or fetched when
needed through an ``IndexFetch``) and the wanted range of media time. ``select`` picks its
frames (all in 90k *media* time relative to the recording's start; see ``wall_to_media``
for the ``s=`` parameter's wall offsets): the first frame is the last key frame starting at
or before ``rel_start``; frames starting before ``rel_end`` are included, and every frame
when ``rel_end`` reaches the index's media duration. Its ``edit_start`` is where playback
of the segment starts: ``rel_start``, unless no frame starts in ``[rel_start, rel_end)``
(a range inside one frame, such as the last tick of a recording): then the start of that
frame, since players present only frames that start inside an edit (FFmpeg showed
nothing). A recording indexed at build time is served as of then, even if it keeps
growing (an uncommitted recording's index is kept as of then; a committed one's never
changes). A segment whose last included frame has duration 0
(a run's "trailing zero") can only be the last one (``check_selections``).

A ``Selection`` summarizes the selected frames (counts, the first and last run of equal
durations, byte range, a digest; ``nvr.db.frames_summary``): enough to lay out every box and
the ETag without the index. A segment that covers its whole recording takes it from the
recording's row and its stored summary (``ListedRecording.index_summary``: committed
recordings, and finished ones awaiting their commit) without reading the index
(``stored_select``); only the others (a partial first or last segment, a growing recording)
decode theirs: ``select_async`` does that in worker-thread batches of ``SEGMENTS_PER_CALL``
and keeps no decoded index, ``select_all`` synchronously (tests, benchmarks, small files).
Nothing here writes a box.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from nvr.base.errors import InvalidArgument, NotFound
from nvr.base.time90k import Duration
from nvr.db.database import Database
from nvr.db.frames_summary import FramesSummary, summarize
from nvr.db.recording import VideoIndexArrays, decode_video_index
from nvr.db.types import ListedRecording

_T = TypeVar("_T")

#: At most this many recordings' indexes are fetched and decoded per worker-thread call.
SEGMENTS_PER_CALL = 32

IndexFetch = Callable[[int], bytes]
"""``fetch(composite_id) -> video_index`` of a committed recording (``Database.get_video_index``;
called on the trio thread, for the few recordings a chunk needs)."""


class Runner(Protocol):
    """``run_blocking``'s shape: runs ``fn(*args)`` off the trio thread (or inline)."""

    def __call__(self, fn: Callable[..., _T], *args: Any) -> Awaitable[_T]: ...


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of one recording: its row, its index and the wanted range
    ``[rel_start_90k, rel_end_90k)`` of media time relative to the recording's start.

    ``index`` is the decoded index (tests, benchmarks), the raw ``video_index`` as of now (an
    uncommitted recording, which may still grow), or ``None``: a committed recording's index,
    fetched through the ``IndexFetch`` whenever needed (to generate tables, and to lay out a
    segment that is not its whole recording or whose recording carries no summary). The
    frames' sample entry is the recording's ``video_sample_entry_id``."""

    recording: ListedRecording
    index: VideoIndexArrays | bytes | None
    rel_start_90k: Duration
    rel_end_90k: Duration

    @property
    def entry_id(self) -> int:
        return self.recording.video_sample_entry_id


def wall_to_media(recording: ListedRecording, wall_offset_90k: Duration, *,
                  round_up: bool = False) -> Duration:
    """Converts an offset in a recording's wall time (the ``s=`` parameter's unit) to its
    media time, scaling by media/wall duration (the end maps to the end). A range's start
    rounds down and its end up (``round_up``), so a non-empty wall range maps to a
    non-empty media range: exactly the frames it covers part of are selected."""
    wall, media = recording.wall_duration_90k, recording.media_duration_90k
    if wall_offset_90k <= 0:
        return 0
    if wall_offset_90k >= wall or wall <= 0:
        return media
    if round_up:
        return -(-wall_offset_90k * media // wall)
    return wall_offset_90k * media // wall


def media_to_wall(rec: ListedRecording, media_offset: Duration) -> Duration:
    """The inverse of ``wall_to_media`` (rounding down; the end maps to the end)."""
    media, wall = rec.media_duration_90k, rec.wall_duration_90k
    if media <= 0 or media_offset >= media:
        return wall if media_offset >= media else 0
    return media_offset * wall // media


def segment_from_db(
    db: Database, recording: ListedRecording, rel_start_90k: Duration, rel_end_90k: Duration
) -> Segment:
    """Reads and decodes ``recording``'s index now (growing recordings included)."""
    index = decode_video_index(db.get_video_index(recording.composite_id))
    return Segment(recording, index, rel_start_90k, rel_end_90k)


def lazy_segment(
    db: Database, recording: ListedRecording, rel_start_90k: Duration, rel_end_90k: Duration
) -> Segment:
    """A segment that holds no index if its recording is committed (it is fetched when
    needed), else the raw index as of now; nothing is decoded."""
    index = None if recording.committed else db.get_video_index(recording.composite_id)
    return Segment(recording, index, rel_start_90k, rel_end_90k)


# --- frame selection ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """A segment's selected frames ``[begin, end)`` of its recording, summarized: enough
    to lay out every table without the index (the last five fields are a
    ``FramesSummary``'s)."""

    seg: Segment
    rel_start: Duration  # the request, clamped to the index
    rel_end: Duration
    edit_start: Duration  # where its edit starts (see the module docstring)
    begin: int
    end: int
    keys: int
    actual_start: Duration
    actual_end: Duration
    byte_start: int
    byte_length: int
    runs: int  # runs of equal durations
    first_dur: int
    first_run_len: int
    last_dur: int
    digest: bytes  # of the selected frames' durations, sizes and key flags

    @property
    def frames(self) -> int:
        return self.end - self.begin

    @property
    def recording(self) -> ListedRecording:
        return self.seg.recording


def decoded(index: VideoIndexArrays | bytes) -> VideoIndexArrays:
    """``index`` decoded, if it is not yet."""
    return index if isinstance(index, VideoIndexArrays) else decode_video_index(index)


def index_of(seg: Segment, fetch: IndexFetch | None) -> VideoIndexArrays | bytes:
    """The segment's index as held, or fetched (trio thread)."""
    if seg.index is not None:
        return seg.index
    if fetch is None:
        raise InvalidArgument(
            f"recording {seg.recording.composite_id:016x}: no index and nowhere to fetch it"
        )
    return fetch(seg.recording.composite_id)


def select(seg: Segment, index: VideoIndexArrays) -> Selection:
    """The frames of ``seg`` (see the module docstring), from its decoded ``index``."""
    rec = seg.recording
    total = index.totals.media_duration_90k
    rel_start, rel_end = seg.rel_start_90k, min(seg.rel_end_90k, total)
    if index.totals.frames == 0:
        raise NotFound(f"recording {rec.composite_id:016x} has no frames yet")
    if not 0 <= rel_start <= rel_end or (rel_start == rel_end and rel_end != total):
        raise InvalidArgument(
            f"recording {rec.composite_id:016x}: bad range [{seg.rel_start_90k}, "
            f"{seg.rel_end_90k}) of media duration {total}"
        )
    starts = index.starts
    last_at_start = int(np.searchsorted(starts, rel_start, side="right")) - 1
    keys = np.flatnonzero(index.is_key[: last_at_start + 1])
    begin = int(keys[-1])  # frame 0 is always a key frame (the decoder checks it)
    end = len(starts) if rel_end >= total else int(np.searchsorted(starts, rel_end, "left"))
    last = end - 1
    covering = int(starts[last_at_start])  # the frame that covers rel_start starts here
    following = int(starts[last_at_start + 1]) if last_at_start < last else rel_end
    edit_start = covering if covering < rel_start and following >= rel_end else rel_start
    return _selection(
        seg, rel_start, rel_end, edit_start, begin, end,
        keys=int(np.count_nonzero(index.is_key[begin:end])),
        actual_start=int(starts[begin]),
        actual_end=int(starts[last] + index.durations[last]),
        byte_start=int(index.offsets[begin]),
        byte_length=int(index.offsets[last] + index.sizes[last] - index.offsets[begin]),
        summary=summarize(index, begin, end),
    )


def _selection(seg: Segment, rel_start: Duration, rel_end: Duration, edit_start: Duration,
               begin: int, end: int, *, keys: int, actual_start: Duration,
               actual_end: Duration, byte_start: int, byte_length: int,
               summary: FramesSummary) -> Selection:
    return Selection(seg, rel_start, rel_end, edit_start, begin, end, keys, actual_start,
                     actual_end, byte_start, byte_length, summary.runs, summary.first_dur,
                     summary.first_run_len, summary.last_dur, summary.digest)


def stored_select(seg: Segment) -> Selection | None:
    """``select`` of a segment that covers its whole recording, from the recording's
    row and stored summary; None for any other segment (its index is needed)."""
    rec = seg.recording
    media = rec.media_duration_90k
    if rec.index_summary is None or seg.rel_start_90k != 0 or seg.rel_end_90k < media:
        return None
    return _selection(seg, 0, media, 0, 0, rec.video_samples, keys=rec.video_sync_samples,
                      actual_start=0, actual_end=media, byte_start=0,
                      byte_length=rec.sample_file_bytes, summary=rec.index_summary)


def _select_batch(segments: Sequence[Segment],
                  sources: Sequence[VideoIndexArrays | bytes]) -> list[Selection]:
    return [select(seg, decoded(src)) for seg, src in zip(segments, sources, strict=True)]


def select_all(segments: Sequence[Segment], fetch: IndexFetch | None) -> list[Selection]:
    """Every segment's selection, on this thread."""
    return [stored_select(s) or select(s, decoded(index_of(s, fetch))) for s in segments]


async def select_async(segments: Sequence[Segment], fetch: IndexFetch | None,
                       run: Runner) -> list[Selection]:
    """``select_all`` with the indexes it needs fetched and decoded in worker-thread
    batches."""
    out = [stored_select(s) for s in segments]
    todo = [i for i, sel in enumerate(out) if sel is None]
    for j in range(0, len(todo), SEGMENTS_PER_CALL):
        batch = todo[j : j + SEGMENTS_PER_CALL]
        segs = [segments[i] for i in batch]
        sels = await run(_select_batch, segs, [index_of(s, fetch) for s in segs])
        for i, sel in zip(batch, sels, strict=True):
            out[i] = sel
    return [sel for sel in out if sel is not None]


def check_selections(sels: Sequence[Selection]) -> None:
    """Refuses an empty file, and a segment after one that ends with a trailing zero."""
    if not sels:
        raise InvalidArgument("no segments")
    for prev, nxt in itertools.pairwise(sels):
        if prev.last_dur == 0:
            raise InvalidArgument(
                f"unable to append recording {nxt.recording.composite_id:016x} after "
                f"recording {prev.recording.composite_id:016x} with trailing zero"
            )

