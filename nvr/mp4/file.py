"""Virtual ``.mp4`` files: built from recordings' indexes, served by byte range.

A ``VirtualFile`` is an in-memory *header* (every box up to and including the ``mdat``
header) followed by *slices* of sample files (the ``mdat`` payload). Its size and strong
ETag are known as soon as it is built, without reading a sample file; ``read`` produces any
byte range ``[start, end)`` by copying the header from memory and reading sample files in
bounded chunks through a caller-supplied ``Reader``. Three kinds are built here:

- ``build_mp4``: a whole movie (``ftyp``, ``moov``, ``mdat``) for a list of ``Segment``s,
  one video track; frames from the key frame at or before each segment's start, and an
  edit list so playback starts exactly at the requested start; one ``stsd`` entry per
  distinct sample entry (chunk = segment, each chunk naming its entry); consecutive
  segments abut in the timeline. ``subtitle_tz=`` adds a text track with one wall-clock
  timestamp sample per second (Moonfire NVR's ``ts=true``).
- ``build_m4s``: a media segment (``moof`` + ``mdat``) for MediaSource, one ``trun`` per
  segment, all of one sample entry. ``tfdt`` is the first frame's media time relative to
  its recording's start, so with ``SourceBuffer.timestampOffset`` set to
  ``prev_media_duration_90k`` (``X-Prev-Media-Duration``) each frame lands at its media
  time in the stream; ``leading_media_duration_90k`` is the lead-in before the requested
  start (``X-Leading-Media-Duration``), which a media segment cannot edit out.
- ``build_init``: an initialization segment (``ftyp`` + ``moov`` with ``mvex``) for one
  sample entry.

Segment selection (all in 90k *media* time relative to the recording's start, see
``wall_to_media`` for the ``s=`` parameter's wall offsets): the first frame is the last key
frame starting at or before ``rel_start``; frames starting before ``rel_end`` are included,
and every frame when ``rel_end`` reaches the index's media duration. A recording indexed at
build time is served as of then, even if it keeps growing. A segment whose last included
frame has duration 0 (a run's "trailing zero") can only be the last one.

The ETag hashes the format version, the kind, the header bytes (which hold every frame's
duration, size and key flag, the sample entries and the edit list) and every slice's
recording id, open id and byte range. ``text_dump`` is the ``.txt`` debug twin.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nvr.base.errors import DataLoss, InvalidArgument, NotFound
from nvr.base.time90k import UNITS_PER_SEC, Duration, Time
from nvr.db.database import Database, ListedRecording
from nvr.db.recording import VideoIndexArrays, VideoSampleEntry, decode_video_index
from nvr.mp4.boxes import U32_MAX, BoxWriter, format_box_tree, mdat_header

#: Bump whenever the bytes produced for the same input change: it is part of every ETag.
FORMAT_VERSION = 1

TIMESCALE = UNITS_PER_SEC
"""Movie and media timescale of every box written here: 90 kHz, the units of the index."""

#: At most this many bytes are read from a sample file per reader call.
DEFAULT_CHUNK = 1 << 20

Reader = Callable[[int, int, int], Awaitable[bytes]]
"""``async reader(composite_id, offset, length) -> bytes``: exactly ``length`` bytes of the
recording's sample file from ``offset`` (the web layer's file access; tests count calls)."""

VIDEO_TRACK_ID = 1
SUBTITLE_TRACK_ID = 2

_MATRIX = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4  # ISO 639-2 "und", packed 5 bits per letter
_SUBTITLE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
_SUBTITLE_LENGTH = 25  # len("2026-01-02 03:04:05 +0000"): every sample is the same size
# trun sample_flags (ISO/IEC 14496-12 8.8.3.1): depends_on=2 (I), or depends_on=1 + non-sync
_FLAGS_KEY = 0x0200_0000
_FLAGS_NON_KEY = 0x0101_0000


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of one recording: its row, its decoded index (as of build time) and the wanted
    range ``[rel_start_90k, rel_end_90k)`` of media time relative to the recording's start.
    The frames' sample entry is the recording's ``video_sample_entry_id``."""

    recording: ListedRecording
    index: VideoIndexArrays
    rel_start_90k: Duration
    rel_end_90k: Duration

    @property
    def entry_id(self) -> int:
        return self.recording.video_sample_entry_id


def wall_to_media(recording: ListedRecording, wall_offset_90k: Duration) -> Duration:
    """Converts an offset in a recording's wall time (the ``s=`` parameter's unit) to its
    media time, scaling by media/wall duration (rounding down; the end maps to the end)."""
    wall, media = recording.wall_duration_90k, recording.media_duration_90k
    if wall_offset_90k <= 0:
        return 0
    if wall_offset_90k >= wall or wall <= 0:
        return media
    return wall_offset_90k * media // wall


def segment_from_db(
    db: Database, recording: ListedRecording, rel_start_90k: Duration, rel_end_90k: Duration
) -> Segment:
    """Reads and decodes ``recording``'s index now (growing recordings included)."""
    index = decode_video_index(db.get_video_index(recording.composite_id))
    return Segment(recording, index, rel_start_90k, rel_end_90k)


# --- the virtual file -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slice:
    """``length`` bytes at ``file_offset`` of the virtual file, copied from byte
    ``sample_offset`` of recording ``composite_id``'s sample file."""

    file_offset: int
    length: int
    composite_id: int
    open_id: int
    sample_offset: int


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What a segment became (for the ``.txt`` dump and response headers)."""

    composite_id: int
    open_id: int
    entry_id: int
    rel_start_90k: Duration
    rel_end_90k: Duration
    first_frame: int  # index in the recording of the first frame included
    frames: int
    key_frames: int
    actual_start_90k: Duration  # start of the first frame included, relative
    actual_end_90k: Duration  # end of the last frame included, relative
    track_start_90k: Duration  # decode time of its first frame in the track


@dataclass(frozen=True, slots=True)
class VirtualFile:
    """A built file: see the module docstring.

    Bytes: ``header``, then the ``slices`` of sample files, then ``tail`` (in-memory
    samples: the subtitle track's text). ``last_modified_90k`` is the latest end time of
    its recordings (``None`` for an init segment); ``codecs`` the RFC 6381 strings of its
    sample entries; ``aspect`` the first entry's display aspect ratio (``X-Aspect``).
    """

    kind: str
    header: bytes
    slices: tuple[Slice, ...]
    tail: bytes
    size: int
    etag: str
    last_modified_90k: Time | None
    codecs: tuple[str, ...]
    segments: tuple[SegmentInfo, ...] = ()
    prev_media_duration_90k: Duration = 0
    prev_runs: int = 0
    leading_media_duration_90k: Duration = 0
    aspect: tuple[int, int] = (0, 0)
    _slice_starts: list[int] = field(default_factory=list, repr=False, compare=False)

    @property
    def mime_type(self) -> str:
        """``Content-Type``, with the RFC 6381 ``codecs`` parameter."""
        return f'video/mp4; codecs="{", ".join(self.codecs)}"'

    async def read(
        self, start: int, end: int, reader: Reader, chunk_size: int = DEFAULT_CHUNK
    ) -> AsyncIterator[bytes]:
        """Yields the bytes ``[start, end)`` in chunks of at most ``chunk_size`` bytes;
        sample files are read through ``reader``, one call per chunk."""
        if not 0 <= start <= end <= self.size:
            raise InvalidArgument(f"range [{start}, {end}) is outside [0, {self.size})")
        if chunk_size < 1:
            raise InvalidArgument("chunk_size must be positive")
        tail_start = self.size - len(self.tail)
        for chunk in _memory_chunks(self.header, 0, start, end, chunk_size):
            yield chunk
        if start < tail_start and end > len(self.header):
            async for chunk in self._read_slices(max(start, len(self.header)),
                                                 min(end, tail_start), reader, chunk_size):
                yield chunk
        for chunk in _memory_chunks(self.tail, tail_start, start, end, chunk_size):
            yield chunk

    async def _read_slices(
        self, pos: int, end: int, reader: Reader, chunk_size: int
    ) -> AsyncIterator[bytes]:
        i = bisect.bisect_right(self._slice_starts, pos) - 1
        while pos < end:
            s = self.slices[i]
            stop = min(end, s.file_offset + s.length)
            while pos < stop:
                n = min(stop - pos, chunk_size)
                offset = s.sample_offset + pos - s.file_offset
                data = await reader(s.composite_id, offset, n)
                if len(data) != n:
                    raise DataLoss(
                        f"recording {s.composite_id:016x}: wanted {n} bytes at {offset} of "
                        f"its sample file, got {len(data)}"
                    )
                yield data
                pos += n
            i += 1

    async def read_all(self, reader: Reader, chunk_size: int = DEFAULT_CHUNK) -> bytes:
        """The whole file in memory (tests, small files)."""
        return b"".join([c async for c in self.read(0, self.size, reader, chunk_size)])

    def text_dump(self) -> str:
        """The ``.txt`` debug twin: summary, box tree, segments, slices."""
        lines = [
            f"{self.kind}: {self.size} bytes, etag {self.etag}, {self.mime_type}",
            f"last modified (90k): {self.last_modified_90k}",
            "",
            "boxes:",
            *format_box_tree(self.header),
            "",
            "segments:",
        ]
        lines += [
            f"  {s.composite_id:016x}@{s.open_id} entry {s.entry_id} wanted "
            f"[{s.rel_start_90k}, {s.rel_end_90k}) got [{s.actual_start_90k}, "
            f"{s.actual_end_90k}) frames {s.first_frame}+{s.frames} ({s.key_frames} key) "
            f"at track time {s.track_start_90k}"
            for s in self.segments
        ]
        lines += ["", "slices:", f"  [0, {len(self.header)}) header"]
        lines += [
            f"  [{s.file_offset}, {s.file_offset + s.length}) recording "
            f"{s.composite_id:016x}@{s.open_id} bytes [{s.sample_offset}, "
            f"{s.sample_offset + s.length})"
            for s in self.slices
        ]
        if self.tail:
            lines.append(f"  [{self.size - len(self.tail)}, {self.size}) subtitle samples")
        return "\n".join(lines) + "\n"


def _memory_chunks(
    data: bytes, base: int, start: int, end: int, chunk_size: int
) -> list[bytes]:
    """The part of ``data`` (at file offset ``base``) inside ``[start, end)``, chunked."""
    lo, hi = max(start - base, 0), min(end - base, len(data))
    return [data[i : min(hi, i + chunk_size)] for i in range(lo, hi, chunk_size)]


def _finish(
    kind: str,
    header: bytes,
    payload: Sequence[tuple[int, int, int, int]],
    tail: bytes = b"",
    **extra: object,
) -> VirtualFile:
    """Lays out the slices after the header and computes size and ETag. ``payload`` holds
    ``(composite_id, open_id, sample_offset, length)`` per slice."""
    slices, pos = [], len(header)
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"nvr-mp4 v{FORMAT_VERSION} {kind} {len(header)} {len(tail)}\n".encode())
    digest.update(header)
    for cid, open_id, offset, length in payload:
        slices.append(Slice(pos, length, cid, open_id, offset))
        digest.update(f"{cid} {open_id} {offset} {length}\n".encode())
        pos += length
    digest.update(tail)
    return VirtualFile(
        kind=kind,
        header=header,
        slices=tuple(slices),
        tail=tail,
        size=pos + len(tail),
        etag=f'"{digest.hexdigest()}"',
        _slice_starts=[s.file_offset for s in slices],
        **extra,  # type: ignore[arg-type]
    )


# --- frame selection ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Part:
    """A segment's selected frames [begin, end) and where they land."""

    seg: Segment
    begin: int
    end: int
    rel_start: Duration  # clamped request
    rel_end: Duration

    @property
    def index(self) -> VideoIndexArrays:
        return self.seg.index

    @property
    def actual_start(self) -> Duration:
        return int(self.index.starts[self.begin])

    @property
    def actual_end(self) -> Duration:
        last = self.end - 1
        return int(self.index.starts[last] + self.index.durations[last])

    @property
    def byte_start(self) -> int:
        return int(self.index.offsets[self.begin])

    @property
    def byte_length(self) -> int:
        last = self.end - 1
        return int(self.index.offsets[last] + self.index.sizes[last]) - self.byte_start

    @property
    def frames(self) -> int:
        return self.end - self.begin


def _select(seg: Segment) -> _Part:
    index, rec = seg.index, seg.recording
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
    return _Part(seg, begin, end, rel_start, rel_end)


def _select_all(segments: Sequence[Segment]) -> list[_Part]:
    if not segments:
        raise InvalidArgument("no segments")
    parts = [_select(s) for s in segments]
    for prev, nxt in itertools.pairwise(parts):
        if int(prev.index.durations[prev.end - 1]) == 0:
            raise InvalidArgument(
                f"unable to append recording {nxt.seg.recording.composite_id:016x} after "
                f"recording {prev.seg.recording.composite_id:016x} with trailing zero"
            )
    return parts


def _infos(parts: Sequence[_Part], track_starts: Sequence[int]) -> tuple[SegmentInfo, ...]:
    return tuple(
        SegmentInfo(
            composite_id=p.seg.recording.composite_id,
            open_id=p.seg.recording.open_id,
            entry_id=p.seg.entry_id,
            rel_start_90k=p.rel_start,
            rel_end_90k=p.rel_end,
            first_frame=p.begin,
            frames=p.frames,
            key_frames=int(np.count_nonzero(p.index.is_key[p.begin : p.end])),
            actual_start_90k=p.actual_start,
            actual_end_90k=p.actual_end,
            track_start_90k=t,
        )
        for p, t in zip(parts, track_starts, strict=True)
    )


def _entries_of(
    parts: Sequence[_Part], entries: Mapping[int, VideoSampleEntry]
) -> dict[int, tuple[int, VideoSampleEntry]]:
    """entry id -> (1-based sample description index, entry), in order of first use."""
    out: dict[int, tuple[int, VideoSampleEntry]] = {}
    for p in parts:
        eid = p.seg.entry_id
        if eid not in out:
            if eid not in entries:
                raise NotFound(f"no video sample entry {eid}")
            out[eid] = (len(out) + 1, entries[eid])
    return out


# --- boxes shared by the kinds ------------------------------------------------------------------


def _ftyp(w: BoxWriter, major: bytes, minor: int, compatible: Sequence[bytes]) -> None:
    with w.box(b"ftyp"):
        w.write(major)
        w.u32(minor)
        for brand in compatible:
            w.write(brand)


def _mvhd(w: BoxWriter, duration: int, next_track_id: int) -> None:
    wide = duration > U32_MAX
    with w.full_box(b"mvhd", int(wide)):
        w.uint(0, wide)  # creation_time
        w.uint(0, wide)  # modification_time
        w.u32(TIMESCALE)
        w.uint(duration, wide)
        w.u32(0x0001_0000)  # rate 1.0
        w.u16(0x0100)  # volume 1.0
        w.zeros(10)
        _matrix(w)
        w.zeros(24)  # pre_defined
        w.u32(next_track_id)


def _matrix(w: BoxWriter) -> None:
    for value in _MATRIX:
        w.u32(value)


def _tkhd(w: BoxWriter, track_id: int, duration: int, width: float, height: float) -> None:
    wide = duration > U32_MAX
    with w.full_box(b"tkhd", int(wide), 0x7):  # enabled, in movie, in preview
        w.uint(0, wide)
        w.uint(0, wide)
        w.u32(track_id)
        w.u32(0)
        w.uint(duration, wide)
        w.zeros(8)
        w.u16(0)  # layer
        w.u16(0)  # alternate_group
        w.u16(0)  # volume
        w.u16(0)
        _matrix(w)
        w.fixed16_16(width)
        w.fixed16_16(height)


def _mdhd(w: BoxWriter, duration: int) -> None:
    wide = duration > U32_MAX
    with w.full_box(b"mdhd", int(wide)):
        w.uint(0, wide)
        w.uint(0, wide)
        w.u32(TIMESCALE)
        w.uint(duration, wide)
        w.u16(_LANGUAGE_UND)
        w.u16(0)


def _hdlr(w: BoxWriter, handler: bytes, name: bytes) -> None:
    with w.full_box(b"hdlr"):
        w.u32(0)
        w.write(handler)
        w.zeros(12)
        w.write(name + b"\0")


def _dinf(w: BoxWriter) -> None:
    with w.box(b"dinf"), w.full_box(b"dref"):
        w.u32(1)
        with w.full_box(b"url ", 0, 1):  # self-contained
            pass


def _visual_sample_entry(w: BoxWriter, entry: VideoSampleEntry) -> None:
    box_type = b"avc1" if entry.codec_box_type == b"avcC" else b"hvc1"
    with w.box(box_type):
        w.zeros(6)
        w.u16(1)  # data_reference_index
        w.zeros(16)  # pre_defined, reserved, pre_defined[3]
        w.u16(entry.width)
        w.u16(entry.height)
        w.u32(0x0048_0000)  # 72 dpi
        w.u32(0x0048_0000)
        w.u32(0)
        w.u16(1)  # frame_count
        w.zeros(32)  # compressorname
        w.u16(0x0018)  # depth
        w.i16(-1)
        w.write(entry.data)
        with w.box(b"pasp"):
            w.u32(entry.pasp_h_spacing)
            w.u32(entry.pasp_v_spacing)


def _stsd(w: BoxWriter, entries: Sequence[VideoSampleEntry]) -> None:
    with w.full_box(b"stsd"):
        w.u32(len(entries))
        for entry in entries:
            _visual_sample_entry(w, entry)


def _display_size(entries: Sequence[VideoSampleEntry]) -> tuple[float, float]:
    """The largest displayed width and height (pixel aspect ratio applied to the width)."""
    width = max(e.width * e.pasp_h_spacing / e.pasp_v_spacing for e in entries)
    return width, float(max(e.height for e in entries))


def _aspect(entry: VideoSampleEntry) -> tuple[int, int]:
    """Display aspect ratio in lowest terms (``X-Aspect``)."""
    w, h = entry.width * entry.pasp_h_spacing, entry.height * entry.pasp_v_spacing
    g = math.gcd(w, h) or 1
    return w // g, h // g


def _empty_tables(w: BoxWriter) -> None:
    for box_type in (b"stts", b"stsc", b"stco"):
        with w.full_box(box_type):
            w.u32(0)
    with w.full_box(b"stsz"):
        w.u32(0)
        w.u32(0)


# --- sample tables (numpy) ------------------------------------------------------------------


def _concat(parts: Sequence[_Part], name: str) -> npt.NDArray[np.int64]:
    return np.concatenate([getattr(p.index, name)[p.begin : p.end] for p in parts])


def _stts(w: BoxWriter, durations: npt.NDArray[np.int64]) -> None:
    """Run-length encoded durations."""
    n = len(durations)
    run_starts = np.flatnonzero(np.diff(durations)) + 1
    run_starts = np.concatenate(([0], run_starts))
    table = np.empty((len(run_starts), 2), dtype=">u4")
    table[:, 0] = np.diff(run_starts, append=n)
    table[:, 1] = durations[run_starts]
    with w.full_box(b"stts"):
        w.u32(len(run_starts))
        w.write(table.tobytes())


def _stss(w: BoxWriter, is_key: npt.NDArray[np.bool_]) -> None:
    numbers = (np.flatnonzero(is_key) + 1).astype(">u4")
    with w.full_box(b"stss"):
        w.u32(len(numbers))
        w.write(numbers.tobytes())


def _stsz(w: BoxWriter, sizes: npt.NDArray[np.int64]) -> None:
    with w.full_box(b"stsz"):
        w.u32(0)  # sample_size: every sample has its own
        w.u32(len(sizes))
        w.write(sizes.astype(">u4").tobytes())


def _stsc(w: BoxWriter, frames: Sequence[int], description_indexes: Sequence[int]) -> None:
    """One chunk per segment; a table entry wherever (frames, description) changes."""
    rows: list[tuple[int, int, int]] = []
    for chunk, (n, sdi) in enumerate(zip(frames, description_indexes, strict=True), 1):
        if not rows or rows[-1][1:] != (n, sdi):
            rows.append((chunk, n, sdi))
    table = np.array(rows, dtype=">u4")
    with w.full_box(b"stsc"):
        w.u32(len(rows))
        w.write(table.tobytes())


def _chunk_offsets(w: BoxWriter, count: int, wide: bool) -> int:
    """Writes an ``stco``/``co64`` of zeros; returns where its values start (patched later)."""
    with w.full_box(b"co64" if wide else b"stco"):
        w.u32(count)
        pos = len(w)
        w.zeros(count * (8 if wide else 4))
    return pos


# --- .mp4 ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Edit:
    media_time: int
    duration: int


def _edits(parts: Sequence[_Part], track_starts: Sequence[int]) -> list[_Edit]:
    """One edit per run of abutting wanted ranges in track time."""
    edits: list[_Edit] = []
    for p, t in zip(parts, track_starts, strict=True):
        keep = p.rel_end - p.rel_start
        if keep <= 0:
            continue
        media_time = t + p.rel_start - p.actual_start
        if edits and edits[-1].media_time + edits[-1].duration == media_time:
            edits[-1] = _Edit(edits[-1].media_time, edits[-1].duration + keep)
        else:
            edits.append(_Edit(media_time, keep))
    return edits


def _edts(w: BoxWriter, edits: Sequence[_Edit]) -> None:
    wide = any(e.media_time > U32_MAX // 2 or e.duration > U32_MAX for e in edits)
    with w.box(b"edts"), w.full_box(b"elst", int(wide)):
        w.u32(len(edits))
        for e in edits:
            w.uint(e.duration, wide)
            w.uint(e.media_time, wide)  # signed in the spec; never negative here
            w.u16(1)  # media_rate_integer
            w.u16(0)


@dataclass(frozen=True, slots=True)
class _Subtitles:
    """One text sample per wall-clock second (the first and last may be partial)."""

    starts_90k: list[Time]  # absolute wall time of each sample
    durations: npt.NDArray[np.int64]
    payload: bytes


def _subtitles(parts: Sequence[_Part], tz: dt.tzinfo, movie_duration: int) -> _Subtitles:
    """Timestamps for the presentation, taking wall time from the first segment's
    requested start (presentation time 0) and advancing with the movie."""
    first = parts[0]
    rec = first.seg.recording
    start = rec.start_time_90k + _media_to_wall(rec, first.rel_start)
    end = start + movie_duration
    bounds = [start]
    second = (start // UNITS_PER_SEC + 1) * UNITS_PER_SEC
    while second < end:
        bounds.append(second)
        second += UNITS_PER_SEC
    bounds.append(end)
    times = np.array(bounds, dtype=np.int64)
    durations = times[1:] - times[:-1]
    text = bytearray()
    for t in bounds[:-1]:
        stamp = dt.datetime.fromtimestamp(t // UNITS_PER_SEC, tz).strftime(_SUBTITLE_FORMAT)
        encoded = stamp.encode()[:_SUBTITLE_LENGTH].ljust(_SUBTITLE_LENGTH)
        text += len(encoded).to_bytes(2, "big") + encoded
    return _Subtitles(bounds[:-1], durations, bytes(text))


def _media_to_wall(rec: ListedRecording, media_offset: Duration) -> Duration:
    media, wall = rec.media_duration_90k, rec.wall_duration_90k
    if media <= 0 or media_offset >= media:
        return wall if media_offset >= media else 0
    return media_offset * wall // media


def _subtitle_trak(w: BoxWriter, subs: _Subtitles, movie_duration: int) -> int:
    """Writes the text track; returns where its one chunk offset goes."""
    sample_size = 2 + _SUBTITLE_LENGTH
    with w.box(b"trak"):
        _tkhd(w, SUBTITLE_TRACK_ID, movie_duration, 0, 0)
        with w.box(b"mdia"):
            _mdhd(w, int(subs.durations.sum()))
            _hdlr(w, b"sbtl", b"")
            with w.box(b"minf"):
                with w.full_box(b"nmhd"):
                    pass
                _dinf(w)
                with w.box(b"stbl"):
                    _tx3g_stsd(w)
                    _stts(w, subs.durations)
                    _stsc(w, [len(subs.durations)], [1])
                    with w.full_box(b"stsz"):
                        w.u32(sample_size)
                        w.u32(len(subs.durations))
                    return _chunk_offsets(w, 1, wide=True)


def _tx3g_stsd(w: BoxWriter) -> None:
    with w.full_box(b"stsd"):
        w.u32(1)
        with w.box(b"tx3g"):
            w.zeros(6)
            w.u16(1)  # data_reference_index
            w.u32(0)  # displayFlags
            w.u8(0)  # horizontal justification: left
            w.u8(0)  # vertical justification: top
            w.u32(0)  # background rgba: transparent
            w.zeros(8)  # BoxRecord
            w.u16(0)  # StyleRecord: startChar
            w.u16(0)  # endChar
            w.u16(1)  # font-ID
            w.u8(0)  # face style
            w.u8(18)  # font size
            w.u32(0xFFFF_FFFF)  # text colour: opaque white
            with w.box(b"ftab"):
                w.u16(1)
                w.u16(1)
                name = b"Monospace"
                w.u8(len(name))
                w.write(name)


@dataclass(slots=True)
class _Mp4Moov:
    """A built ``ftyp`` + ``moov`` + where the chunk offsets go."""

    writer: BoxWriter
    video_offsets_at: int
    subtitle_offset_at: int | None
    wide: bool


def build_mp4(
    segments: Sequence[Segment],
    entries: Mapping[int, VideoSampleEntry],
    *,
    subtitle_tz: dt.tzinfo | None = None,
) -> VirtualFile:
    """A whole ``.mp4`` of ``segments`` (see the module docstring). ``entries`` maps sample
    entry ids to entries (``Database.video_sample_entries``)."""
    parts = _select_all(segments)
    used = _entries_of(parts, entries)
    frames = [p.frames for p in parts]
    lengths = [p.byte_length for p in parts]
    durations = _concat(parts, "durations")
    track_starts = np.concatenate(([0], np.cumsum([p.actual_end - p.actual_start for p in parts])))
    edits = _edits(parts, track_starts[:-1].tolist())
    media_duration = int(track_starts[-1])
    if len(edits) == 1 and edits[0] == _Edit(0, media_duration):
        edits = []
    movie_duration = sum(e.duration for e in edits) if edits else media_duration
    subs = _subtitles(parts, subtitle_tz, movie_duration) if subtitle_tz is not None else None
    payload_size = sum(lengths) + (len(subs.payload) if subs else 0)

    def build(wide: bool) -> _Mp4Moov:
        w = BoxWriter()
        _ftyp(w, b"isom", 0x200, _mp4_brands(used))
        with w.box(b"moov"):
            _mvhd(w, movie_duration, SUBTITLE_TRACK_ID + (1 if subs else 0))
            with w.box(b"trak"):
                _tkhd(w, VIDEO_TRACK_ID, movie_duration, *_display_size(_values(used)))
                if edits:
                    _edts(w, edits)
                with w.box(b"mdia"):
                    _mdhd(w, media_duration)
                    _hdlr(w, b"vide", b"")
                    with w.box(b"minf"):
                        with w.full_box(b"vmhd", 0, 1):
                            w.zeros(8)
                        _dinf(w)
                        with w.box(b"stbl"):
                            _stsd(w, _values(used))
                            _stts(w, durations)
                            _stsc(w, frames, [used[p.seg.entry_id][0] for p in parts])
                            _stsz(w, _concat(parts, "sizes"))
                            at = _chunk_offsets(w, len(parts), wide)
                            _stss(w, _concat(parts, "is_key"))  # type: ignore[arg-type]
            sub_at = _subtitle_trak(w, subs, movie_duration) if subs else None
        w.write(mdat_header(payload_size))
        return _Mp4Moov(w, at, sub_at, wide)

    moov = build(wide=False)
    payload_start = len(moov.writer)
    if payload_start + sum(lengths[:-1]) > U32_MAX:
        moov = build(wide=True)
        payload_start = len(moov.writer)
    chunk_starts = payload_start + np.concatenate(([0], np.cumsum(lengths[:-1], dtype=np.int64)))
    dtype = ">u8" if moov.wide else ">u4"
    buf = moov.writer.buf
    at = moov.video_offsets_at
    buf[at : at + len(parts) * (8 if moov.wide else 4)] = chunk_starts.astype(dtype).tobytes()
    if subs is not None and moov.subtitle_offset_at is not None:
        sub_offset = payload_start + sum(lengths)
        buf[moov.subtitle_offset_at : moov.subtitle_offset_at + 8] = sub_offset.to_bytes(8, "big")
    header = bytes(buf)
    payload = [
        (p.seg.recording.composite_id, p.seg.recording.open_id, p.byte_start, p.byte_length)
        for p in parts
    ]
    vf = _finish(
        "mp4",
        header,
        payload,
        tail=subs.payload if subs is not None else b"",
        last_modified_90k=max(p.seg.recording.end_time_90k for p in parts),
        codecs=tuple(e.rfc6381_codec for e in _values(used)),
        segments=_infos(parts, track_starts[:-1].tolist()),
        prev_media_duration_90k=parts[0].seg.recording.prev_media_duration_90k,
        prev_runs=parts[0].seg.recording.prev_runs,
        leading_media_duration_90k=parts[0].rel_start - parts[0].actual_start,
        aspect=_aspect(next(iter(used.values()))[1]),
    )
    return vf


def _values(used: Mapping[int, tuple[int, VideoSampleEntry]]) -> list[VideoSampleEntry]:
    return [entry for _, entry in used.values()]


def _mp4_brands(used: Mapping[int, tuple[int, VideoSampleEntry]]) -> list[bytes]:
    brands = [b"isom", b"iso2"]
    if any(e.codec_box_type == b"avcC" for e in _values(used)):
        brands.append(b"avc1")
    return [*brands, b"mp41"]


# --- .m4s ----------------------------------------------------------------------------------


def build_m4s(
    segments: Sequence[Segment], entries: Mapping[int, VideoSampleEntry]
) -> VirtualFile:
    """A media segment (``moof`` + ``mdat``) of ``segments``, which must share one sample
    entry (its init segment is ``build_init`` of that entry)."""
    parts = _select_all(segments)
    used = _entries_of(parts, entries)
    if len(used) != 1:
        raise InvalidArgument(
            f"a media segment needs one sample entry; these segments use {sorted(used)}"
        )
    lengths = [p.byte_length for p in parts]
    payload_size = sum(lengths)
    w = BoxWriter()
    offset_positions: list[int] = []
    with w.box(b"moof"):
        with w.full_box(b"mfhd"):
            w.u32(1)
        with w.box(b"traf"):
            with w.full_box(b"tfhd", 0, 0x02_0000):  # default-base-is-moof
                w.u32(VIDEO_TRACK_ID)
            with w.full_box(b"tfdt", 1):
                w.u64(parts[0].actual_start)
            for p in parts:
                offset_positions.append(_trun(w, p))
    w.write(mdat_header(payload_size))
    if len(w) + payload_size > U32_MAX:
        raise InvalidArgument(f"a media segment is limited to 4 GiB; this one needs {payload_size}")
    data_offset = len(w)
    for at, length in zip(offset_positions, lengths, strict=True):
        w.buf[at : at + 4] = data_offset.to_bytes(4, "big")
        data_offset += length
    track_starts = np.concatenate(([0], np.cumsum([p.actual_end - p.actual_start for p in parts])))
    entry = next(iter(used.values()))[1]
    return _finish(
        "m4s",
        w.getvalue(),
        [
            (p.seg.recording.composite_id, p.seg.recording.open_id, p.byte_start, p.byte_length)
            for p in parts
        ],
        last_modified_90k=max(p.seg.recording.end_time_90k for p in parts),
        codecs=(entry.rfc6381_codec,),
        segments=_infos(parts, (parts[0].actual_start + track_starts[:-1]).tolist()),
        prev_media_duration_90k=parts[0].seg.recording.prev_media_duration_90k,
        prev_runs=parts[0].seg.recording.prev_runs,
        leading_media_duration_90k=parts[0].rel_start - parts[0].actual_start,
        aspect=_aspect(entry),
    )


def _trun(w: BoxWriter, p: _Part) -> int:
    """A ``trun`` with per-sample duration, size and flags; returns where its data offset
    goes (patched once the ``moof`` size is known)."""
    index, b, e = p.index, p.begin, p.end
    table = np.empty((e - b, 3), dtype=">u4")
    table[:, 0] = index.durations[b:e]
    table[:, 1] = index.sizes[b:e]
    table[:, 2] = np.where(index.is_key[b:e], _FLAGS_KEY, _FLAGS_NON_KEY)
    with w.full_box(b"trun", 0, 0x000001 | 0x000100 | 0x000200 | 0x000400):
        w.u32(e - b)
        at = len(w)
        w.u32(0)  # data_offset
        w.write(table.tobytes())
    return at


# --- init segment -----------------------------------------------------------------------------


def build_init(entry_id: int, entry: VideoSampleEntry) -> VirtualFile:
    """An initialization segment for media segments of sample entry ``entry_id``."""
    w = BoxWriter()
    _ftyp(w, b"iso5", 0, [b"iso5", b"iso6", b"mp41"])
    with w.box(b"moov"):
        _mvhd(w, 0, VIDEO_TRACK_ID + 1)
        with w.box(b"trak"):
            _tkhd(w, VIDEO_TRACK_ID, 0, *_display_size([entry]))
            with w.box(b"mdia"):
                _mdhd(w, 0)
                _hdlr(w, b"vide", b"")
                with w.box(b"minf"):
                    with w.full_box(b"vmhd", 0, 1):
                        w.zeros(8)
                    _dinf(w)
                    with w.box(b"stbl"):
                        _stsd(w, [entry])
                        _empty_tables(w)
        with w.box(b"mvex"), w.full_box(b"trex"):
            w.u32(VIDEO_TRACK_ID)
            w.u32(1)  # default_sample_description_index
            w.u32(0)  # default_sample_duration
            w.u32(0)  # default_sample_size
            w.u32(0)  # default_sample_flags
    return _finish(
        "init",
        w.getvalue(),
        [],
        last_modified_90k=None,
        codecs=(entry.rfc6381_codec,),
        aspect=_aspect(entry),
    )
