"""Media segments (``moof`` + ``mdat``): of recordings (``.m4s``) and of live frames.

- ``build_m4s``/``plan_m4s``: a media segment of ``Segment``s of recordings, one ``trun``
  per segment (its samples a generated ``nvr.mp4.tables.Table``), all of one sample entry,
  laid out as a ``VirtualFile`` (``build_m4s`` on the calling thread, ``plan_m4s`` without
  blocking the event loop, as ``nvr.mp4.movie``'s ``build_mp4``/``plan_mp4``).
- ``build_fragment``: live view (``nvr.web.live``) needs the same kind of segment for the
  frames a camera has just sent, before any index exists: one ``trun`` of frames held in
  memory, returned as bytes, with a ``tfdt`` of 0 (see ``build_fragment``).

Both pair with the init segment ``nvr.mp4.movie.build_init`` makes for their sample entry.

**The ``tfdt``** of a ``.m4s`` is the first frame's media time relative to its recording's
start, not 0 (Moonfire NVR writes 0). With ``SourceBuffer.timestampOffset`` set to
``X-Prev-Media-Duration / 90000`` (the media duration of all the stream's recordings before
the first requested one, as Moonfire's API defines the header and its use), every frame
then lands at its own media time in the stream, whichever frame a segment starts with:
consecutive segments of one recording (``s=7.0-180000`` then ``s=7.180000-360000``) and of
consecutive recordings abut exactly, and ``appendWindowStart = (X-Prev-Media-Duration +
rel_start) / 90000`` trims the ``X-Leading-Media-Duration`` lead-in before the requested
start, which a media segment cannot edit out. With a ``tfdt`` of 0 every segment of a
recording would land at the recording's start and a client could not place a segment that
starts mid-recording from the documented headers alone. A client that appends one segment
with no offset must seek to ``buffered.start(0)`` (the first frame's time) to play it.
(Live fragments are placed otherwise: ``build_fragment``.)

**The ``mfhd`` sequence number** of a ``.m4s`` (its one fragment) is its first recording's
id plus one: ISO/IEC 14496-12 wants a track's fragments in increasing order of sequence
number, and a client appending the ``.m4s`` of one recording after another (one recording
per ``.m4s``, as Moonfire's API recommends) gets them so. (A counter of requests would make
a file's bytes depend on what was asked before it, which its ETag and ranges cannot.)
Live fragments count the messages of their connection (``nvr.web.live``).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from nvr.base.blocking import run_blocking
from nvr.base.errors import InvalidArgument
from nvr.db.recording import VideoSampleEntry
from nvr.mp4.boxes import (
    SAMPLE_FLAGS_KEY,
    SAMPLE_FLAGS_NON_KEY,
    U32_MAX,
    BoxWriter,
    mdat_header,
)
from nvr.mp4.movie_boxes import VIDEO_TRACK_ID, entries_of
from nvr.mp4.selection import IndexFetch, Runner, Segment, Selection, check_selections, select_all
from nvr.mp4.tables import Table, TrackTables
from nvr.mp4.virtual import VirtualFile, finish, plan_layout

_TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400  # offset, duration, size, flags


@contextlib.contextmanager
def _moof(w: BoxWriter, sequence: int, base_media_time: int) -> Iterator[None]:
    """A ``moof`` (``mfhd`` with ``sequence``) and the video track's ``traf`` (``tfhd``,
    ``tfdt`` of ``base_media_time``), open for the caller's ``trun``s."""
    with w.box(b"moof"):
        with w.full_box(b"mfhd"):
            w.u32(sequence)
        with w.box(b"traf"):
            with w.full_box(b"tfhd", 0, 0x02_0000):  # default-base-is-moof
                w.u32(VIDEO_TRACK_ID)
            with w.full_box(b"tfdt", 1):
                w.u64(base_media_time)
            yield


@contextlib.contextmanager
def _trun(w: BoxWriter, samples: int) -> Iterator[int]:
    """A ``trun`` of ``samples`` samples, each with its duration, size and flags, which
    the caller writes; yields where the data offset goes (to patch once the ``moof``'s
    size is known)."""
    with w.full_box(b"trun", 0, _TRUN_FLAGS):
        w.u32(samples)
        offset_at = len(w)
        w.u32(0)
        yield offset_at


# --- media segments of recordings ----------------------------------------------------------


def build_m4s(
    segments: Sequence[Segment],
    entries: Mapping[int, VideoSampleEntry],
    *,
    fetch: IndexFetch | None = None,
) -> VirtualFile:
    """A media segment (``moof`` + ``mdat``) of ``segments``, which must share one sample
    entry (its init segment is ``build_init`` of that entry), laid out on this thread."""
    return _layout_m4s(select_all(segments, fetch), entries, fetch)


async def plan_m4s(
    segments: Sequence[Segment],
    entries: Mapping[int, VideoSampleEntry],
    *,
    fetch: IndexFetch,
    run: Runner = run_blocking,
) -> VirtualFile:
    """``build_m4s`` with the indexes it needs decoded, and a large layout computed,
    through ``run`` (``plan_layout``)."""
    return await plan_layout(segments, fetch, run, _layout_m4s, entries, fetch)


def _layout_m4s(
    sels: Sequence[Selection], entries: Mapping[int, VideoSampleEntry], fetch: IndexFetch | None
) -> VirtualFile:
    check_selections(sels)
    used = entries_of(sels, entries)
    if len(used) != 1:
        raise InvalidArgument(
            f"a media segment needs one sample entry; these segments use {sorted(used)}"
        )
    tables = TrackTables.of(sels, fetch)
    lengths = [s.byte_length for s in sels]
    payload_size = sum(lengths)
    w = BoxWriter()
    offset_positions: list[int] = []
    # the sequence number and the tfdt: see the module docstring
    with _moof(w, sels[0].recording.recording_id + 1, sels[0].actual_start):
        for k, s in enumerate(sels):
            with _trun(w, s.frames) as offset_at:
                offset_positions.append(offset_at)
                table = Table.of(tables, "trun", k, k + 1)
                w.virtual(table, table.length)
    w.mdat_header(payload_size)
    if len(w) + payload_size > U32_MAX:
        raise InvalidArgument(f"a media segment is limited to 4 GiB; this one needs {payload_size}")
    data_offset = len(w)
    for at, length in zip(offset_positions, lengths, strict=True):
        w.patch(at, data_offset.to_bytes(4, "big"))
        data_offset += length
    track_starts = itertools.accumulate((s.actual_end - s.actual_start for s in sels[:-1]),
                                        initial=sels[0].actual_start)
    entry = next(iter(used.values()))[1]
    return finish("m4s", w, [entry], sels, list(track_starts))


# --- live fragments ----------------------------------------------------------------------------


class FragmentFrame(Protocol):
    @property
    def data(self) -> bytes | bytearray: ...
    @property
    def is_key(self) -> bool: ...
    @property
    def duration(self) -> int: ...


def build_fragment(frames: Sequence[FragmentFrame], sequence: int,
                   base_media_time: int = 0) -> bytes:
    """The media segment of ``frames`` (in decode order); ``sequence`` is the ``mfhd``
    sequence number, ``base_media_time`` its ``tfdt`` (0 for live; see below; a
    transcoded file's fragments give their place in the file, ``nvr.web.transcoding``).

    Its ``tfdt`` is 0, as in every ``live.m4s`` message of Moonfire NVR's server: clients
    written for its API append each message at the end of what they have buffered
    (``timestampOffset`` = the buffered end), so any other decode time would leave gaps
    they never play across. Where the frames belong in the stream is in the message's
    headers (``nvr.web.live``)."""
    w = BoxWriter()
    with _moof(w, sequence, base_media_time), _trun(w, len(frames)) as offset_at:
        for f in frames:
            w.u32(f.duration)
            w.u32(len(f.data))
            w.u32(SAMPLE_FLAGS_KEY if f.is_key else SAMPLE_FLAGS_NON_KEY)
    payload = sum(len(f.data) for f in frames)
    w.write(mdat_header(payload))
    w.buf[offset_at : offset_at + 4] = len(w).to_bytes(4, "big")
    return b"".join([w.getvalue(), *(f.data for f in frames)])
