"""The virtual file: a laid-out ``.mp4``/``.m4s``/init segment, its ETag, and reading it by range.

A ``VirtualFile`` is a *layout*: a list of pieces covering the file, each small in-memory
bytes (box headers, ``stsd``, ``stsc``, ``stco``, ...), a ``Generated`` piece made only when
a byte range asks for it (a ``nvr.mp4.tables.Table``, the ``nvr.mp4.subtitles.Subtitles``),
a ``Slice`` of a sample file (the ``mdat`` payload), or an ``InBandSlice``: a segment's
sample bytes with its sample entry's parameter sets in front of each key frame (files that
change parameter sets; ``nvr.mp4.movie`` says why), whose key frames' offsets come from the
segment's index when a byte range asks. Its size and strong ETag are known as soon as it
is laid out (``finish``), without reading a sample file or an index, or generating a
table; ``read`` produces any byte range ``[start, end)`` in bounded chunks: sample files
through a caller-supplied ``Reader`` (one call per chunk), generated pieces and key frame
offsets through a ``Runner`` (the ``run_blocking`` seam). So serving any range of a
24-hour file holds a few MB, and the event loop is never busy with a whole table.
``header``/``tail`` give the whole header/subtitle samples at once, for tests and small
files; ``text_dump`` is the ``.txt`` debug twin (it generates nothing). ``plan_layout``
is how the builders lay out without blocking the event loop: indexes decoded in
worker-thread batches, the layout itself in a worker thread too unless the file has few
segments (``INLINE_LAYOUT_SEGMENTS``).

The ETag hashes the format version, the kind, every in-memory piece (which hold the sample
entries, edit list, durations, chunk offsets), each generated piece's ``signature`` (a
table's kind and length; for subtitles the time zone's name and UTC offset changes over the
span), every slice's recording id, open id and byte range (and an ``InBandSlice``'s
parameter sets and key frame count), and each segment's selected frame range and a digest
of its selected frames' durations, sizes and key flags (all a table's bytes, and the key
frames' offsets, derive from).

Which boxes a file holds is the builders' (``nvr.mp4.movie``, ``nvr.mp4.fragment``).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from nvr.base.blocking import run_blocking
from nvr.base.errors import DataLoss, InvalidArgument
from nvr.base.time90k import Duration, Time
from nvr.db.recording import VideoIndexArrays, VideoSampleEntry
from nvr.mp4.boxes import BoxInfo, BoxWriter, Virtual, format_boxes
from nvr.mp4.selection import (
    IndexFetch,
    Runner,
    Segment,
    Selection,
    decoded,
    index_of,
    select_async,
)

#: Bump whenever the bytes produced for the same input change (unless the change also
#: changes what the ETag hashes, e.g. adds an in-memory piece): it is part of every ETag.
FORMAT_VERSION = 1

#: At most this many bytes are read from a sample file or generated per chunk.
DEFAULT_CHUNK = 1 << 20

#: Files of at most this many segments are laid out on the calling (trio) thread: their
#: layout (~8 us a segment) costs no more than the hop to a worker thread and back, which
#: also waits for the scheduler on a busy machine. Larger ones go through ``run``.
INLINE_LAYOUT_SEGMENTS = 64

#: In-memory pieces are gathered into chunks of about this size before being yielded.
_GATHER = 64 << 10

Reader = Callable[[int, int, int], Awaitable[bytes]]
"""``async reader(composite_id, offset, length) -> bytes``: exactly ``length`` bytes of the
recording's sample file from ``offset`` (the web layer's file access; tests count calls)."""


class Generated(Protocol):
    """A piece whose bytes are made when a byte range asks for them."""

    @property
    def length(self) -> int: ...

    async def read(self, lo: int, hi: int, run: Runner) -> bytes:
        """Bytes ``[lo, hi')`` of the piece for some ``lo < hi' <= hi``, made through ``run``."""
        ...

    def read_sync(self, lo: int, hi: int) -> bytes:
        """As ``read``, on this thread."""
        ...

    def signature(self) -> bytes:
        """What the ETag hashes for the piece: everything its bytes derive from that the
        selections do not already say."""
        ...


@dataclass(frozen=True, slots=True)
class Slice:
    """``length`` bytes at ``file_offset`` of the virtual file, copied from byte
    ``sample_offset`` of recording ``composite_id``'s sample file."""

    file_offset: int
    length: int
    composite_id: int
    open_id: int
    sample_offset: int


async def _read_exactly(reader: Reader, composite_id: int, offset: int, length: int) -> bytes:
    data = await reader(composite_id, offset, length)
    if len(data) != length:
        raise DataLoss(
            f"recording {composite_id:016x}: wanted {length} bytes at {offset} of "
            f"its sample file, got {len(data)}"
        )
    return data


def _key_offsets(index: VideoIndexArrays | bytes, begin: int, end: int) -> npt.NDArray[np.int64]:
    """Byte offsets of the key frames among frames ``[begin, end)``, relative to frame
    ``begin``'s (which is a key frame: the first is 0)."""
    ix = decoded(index)
    offsets: npt.NDArray[np.int64] = ix.offsets[begin:end][ix.is_key[begin:end]]
    offsets -= offsets[0]
    return offsets


@dataclass(frozen=True, slots=True)
class InBandSlice:
    """The sample bytes of ``slice`` (a segment's selected frames, ``slice.file_offset``
    being where this piece starts), with ``prefix`` (its sample entry's parameter sets,
    length-prefixed) in front of each of its ``keys`` key frames: ``length`` bytes of the
    file. Where the key frames are in the sample bytes comes from the segment's index
    (``sel``, fetched through ``fetch`` if it holds none), when a range is read."""

    slice: Slice
    prefix: bytes
    keys: int
    sel: Selection
    fetch: IndexFetch | None

    @property
    def length(self) -> int:
        return self.slice.length + self.keys * len(self.prefix)

    def signature(self) -> bytes:
        s = self.slice
        return (f"in-band {s.composite_id} {s.open_id} {s.sample_offset} {s.length} "
                f"{self.keys}\n").encode() + self.prefix

    async def key_offsets(self, run: Runner) -> npt.NDArray[np.int64]:
        """Offsets of the key frames in the sample bytes (the first is 0)."""
        index = index_of(self.sel.seg, self.fetch)
        offsets = await run(_key_offsets, index, self.sel.begin, self.sel.end)
        if len(offsets) != self.keys:
            raise DataLoss(f"recording {self.slice.composite_id:016x}: its index changed")
        return offsets

    async def read(self, lo: int, hi: int, reader: Reader,
                   key_offsets: npt.NDArray[np.int64]) -> bytes:
        """Bytes ``[lo, hi)`` of the piece: the sample bytes they hold read in one call."""
        p = len(self.prefix)
        # where each copy of the prefix starts in the piece; the samples of key frame j
        # (to the next key frame) follow copy j
        starts = key_offsets + p * np.arange(len(key_offsets))
        ends = [*starts[1:].tolist(), self.length]

        def sample_pos(x: int) -> int:
            """The sample byte at or after piece byte ``x``."""
            j = int(np.searchsorted(starts, x, "right")) - 1
            return int(key_offsets[j]) if x < starts[j] + p else x - p * (j + 1)

        first, last = sample_pos(lo), sample_pos(hi) if hi < self.length else self.slice.length
        samples = b""
        if last > first:
            s = self.slice
            samples = await _read_exactly(reader, s.composite_id, s.sample_offset + first,
                                          last - first)
        out = bytearray()
        x = lo
        while x < hi:
            j = int(np.searchsorted(starts, x, "right")) - 1
            start = int(starts[j])
            if x < start + p:
                take = min(hi, start + p) - x
                out += self.prefix[x - start : x - start + take]
            else:
                take = min(hi, ends[j]) - x
                at = x - p * (j + 1) - first
                out += samples[at : at + take]
            x += take
        return bytes(out)


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


Piece = bytes | Slice | InBandSlice | Generated


def piece_length(p: Piece) -> int:
    """Bytes of the file that ``p`` covers."""
    return len(p) if isinstance(p, bytes) else p.length


@dataclass(frozen=True, slots=True)
class VirtualFile:
    """A laid-out file: see the module docstring.

    Bytes: the header (``header_size`` bytes: boxes, generated tables), then the
    ``slices`` of sample files (each segment's; in an ``InBandSlice`` its key frames follow
    parameter sets, so it starts at ``file_offset`` and covers more than ``length``), then
    ``tail_size`` bytes of subtitle samples (``tail``), if any.
    ``last_modified_90k`` is the latest end time of its recordings (``None`` for an init
    segment); ``codecs`` the RFC 6381 strings of its tracks' sample entries (video, then
    the subtitle track's, if any); ``aspect`` the first entry's display aspect ratio
    (``X-Aspect``); ``prev_media_duration_90k`` and ``prev_runs`` the first segment's
    recording's (the media duration and runs of all the stream's recordings before it:
    ``X-Prev-Media-Duration``, ``X-Runs``); ``leading_media_duration_90k`` the frames
    before its requested start (``X-Leading-Media-Duration``).
    """

    kind: str
    size: int
    header_size: int
    etag: str
    slices: tuple[Slice, ...]
    last_modified_90k: Time | None
    codecs: tuple[str, ...]
    segments: tuple[SegmentInfo, ...]
    prev_media_duration_90k: Duration
    prev_runs: int
    leading_media_duration_90k: Duration
    aspect: tuple[int, int]
    tail_size: int
    _pieces: tuple[Piece, ...] = field(default=(), repr=False, compare=False)
    _starts: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _boxes: tuple[BoxInfo, ...] = field(default=(), repr=False, compare=False)

    @property
    def mime_type(self) -> str:
        """``Content-Type``, with the RFC 6381 ``codecs`` parameter."""
        return f'video/mp4; codecs="{", ".join(self.codecs)}"'

    @property
    def header(self) -> bytes:
        """The whole header, generated now on this thread (tests, small files)."""
        return self._sync_range(0, self.header_size)

    @property
    def tail(self) -> bytes:
        """The subtitle samples, generated now on this thread (tests, small files)."""
        return self._sync_range(self.size - self.tail_size, self.size)

    def _sync_range(self, start: int, end: int) -> bytes:
        out = bytearray()
        for p, p0 in self._overlapping(start, end):
            if p0 + piece_length(p) <= start:
                continue
            if isinstance(p, Slice | InBandSlice):
                raise InvalidArgument("sample file bytes need a reader")
            lo, hi = max(start, p0) - p0, min(end, p0 + piece_length(p)) - p0
            while lo < hi:
                data = p[lo:hi] if isinstance(p, bytes) else p.read_sync(lo, hi)
                out += data
                lo += len(data)
        return bytes(out)

    def _overlapping(self, start: int, end: int) -> list[tuple[Piece, int]]:
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        out = []
        while i < len(self._pieces) and self._starts[i] < end:
            out.append((self._pieces[i], self._starts[i]))
            i += 1
        return out

    async def read(
        self,
        start: int,
        end: int,
        reader: Reader,
        chunk_size: int = DEFAULT_CHUNK,
        run: Runner = run_blocking,
    ) -> AsyncIterator[bytes]:
        """Yields the bytes ``[start, end)`` in chunks of at most ``chunk_size`` bytes;
        sample files are read through ``reader``, one call per chunk; tables, subtitle
        samples and key frame offsets are made through ``run`` (see the module docstring)."""
        if not 0 <= start <= end <= self.size:
            raise InvalidArgument(f"range [{start}, {end}) is outside [0, {self.size})")
        if chunk_size < 1:
            raise InvalidArgument("chunk_size must be positive")
        gathered = bytearray()
        gather = min(chunk_size, _GATHER)
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        pos = start
        while pos < end:
            p, p0 = self._pieces[i], self._starts[i]
            stop = min(end, p0 + piece_length(p))
            key_offsets = await p.key_offsets(run) if isinstance(p, InBandSlice) else None
            while pos < stop:
                want = min(stop - pos, chunk_size - len(gathered))
                if isinstance(p, Slice | InBandSlice):
                    if gathered:
                        yield bytes(gathered)
                        gathered.clear()
                    n = min(stop - pos, chunk_size)
                    if key_offsets is None:
                        assert isinstance(p, Slice)
                        yield await _read_exactly(reader, p.composite_id,
                                                  p.sample_offset + pos - p0, n)
                    else:
                        assert isinstance(p, InBandSlice)
                        yield await p.read(pos - p0, pos - p0 + n, reader, key_offsets)
                    pos += n
                    continue
                if isinstance(p, bytes):
                    data = p[pos - p0 : pos - p0 + want]
                else:
                    data = await p.read(pos - p0, pos - p0 + want, run)
                gathered += data
                pos += len(data)
                if len(gathered) >= gather:
                    yield bytes(gathered)
                    gathered.clear()
            i += 1
        if gathered:
            yield bytes(gathered)

    async def read_all(self, reader: Reader, chunk_size: int = DEFAULT_CHUNK,
                       run: Runner = run_blocking) -> bytes:
        """The whole file in memory (tests, small files)."""
        return b"".join([c async for c in self.read(0, self.size, reader, chunk_size, run)])

    def text_dump(self) -> str:
        """The ``.txt`` debug twin: summary, box tree, segments, slices."""
        lines = [
            f"{self.kind}: {self.size} bytes, etag {self.etag}, {self.mime_type}",
            f"last modified (90k): {self.last_modified_90k}",
            "",
            "boxes:",
            *format_boxes(sorted(self._boxes, key=lambda b: b.offset)),
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
        lines += ["", "slices:", f"  [0, {self.header_size}) header"]
        for p, p0 in zip(self._pieces, self._starts, strict=True):
            s = p.slice if isinstance(p, InBandSlice) else p
            if not isinstance(s, Slice):
                continue
            lines.append(
                f"  [{p0}, {p0 + piece_length(p)}) recording {s.composite_id:016x}@{s.open_id} "
                f"bytes [{s.sample_offset}, {s.sample_offset + s.length})"
            )
            if isinstance(p, InBandSlice):
                lines[-1] += (f", each of its {p.keys} key frames after {len(p.prefix)} "
                              "bytes of parameter sets")
        if self.tail_size:
            lines.append(f"  [{self.size - self.tail_size}, {self.size}) subtitle samples")
        return "\n".join(lines) + "\n"


def finish(
    kind: str,
    w: BoxWriter,
    entries: Sequence[VideoSampleEntry],
    sels: Sequence[Selection] = (),
    track_starts: Sequence[int] = (),
    *,
    tail: Generated | None = None,
    in_band: Sequence[bytes] = (),
    fetch: IndexFetch | None = None,
    tail_codec: str | None = None,
) -> VirtualFile:
    """The file of kind ``kind``: the writer's pieces, then each selection's sample bytes
    (with its ``in_band`` entry, if any, in front of each of its key frames: an
    ``InBandSlice``, whose segment's index ``fetch`` gets if it holds none), then ``tail``
    (the subtitle samples, whose sample entry is ``tail_codec``); its size and ETag.
    ``entries`` are the sample entries its video ``stsd`` lists (its codecs; the first
    gives its aspect ratio); ``track_starts`` the track time of each selection's first
    frame."""
    header: list[Piece] = [p.item if isinstance(p, Virtual) else p  # type: ignore[misc]
                            for p in w.pieces()]
    header_size = len(w)
    pieces: list[Piece] = list(header)
    slices = []
    pos = header_size
    for k, s in enumerate(sels):
        rec = s.recording
        sample = Slice(pos, s.byte_length, rec.composite_id, rec.open_id, s.byte_start)
        slices.append(sample)
        piece: Piece = sample
        if in_band and in_band[k]:
            piece = InBandSlice(sample, in_band[k], s.keys, s, fetch)
        pieces.append(piece)
        pos += piece_length(piece)
    tail_size = tail.length if tail is not None else 0
    if tail is not None:
        pieces.append(tail)
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"nvr-mp4 v{FORMAT_VERSION} {kind} {header_size} {tail_size}\n".encode())
    for p in pieces:
        if isinstance(p, bytes):
            digest.update(p)
        elif isinstance(p, Slice):
            digest.update(f"{p.composite_id} {p.open_id} {p.sample_offset} {p.length}\n".encode())
        else:
            digest.update(p.signature())
    for s in sels:
        digest.update(f"{s.recording.composite_id} {s.begin} {s.end} ".encode() + s.digest)
    starts = tuple(itertools.accumulate((piece_length(p) for p in pieces[:-1]), initial=0))
    first = sels[0] if sels else None
    return VirtualFile(
        kind=kind,
        size=pos + tail_size,
        header_size=header_size,
        etag=f'"{digest.hexdigest()}"',
        slices=tuple(slices),
        last_modified_90k=max((s.recording.end_time_90k for s in sels), default=None),
        codecs=tuple(e.rfc6381_codec for e in entries) + ((tail_codec,) if tail_codec else ()),
        segments=_segment_infos(sels, track_starts),
        prev_media_duration_90k=first.recording.prev_media_duration_90k if first else 0,
        prev_runs=first.recording.prev_runs if first else 0,
        leading_media_duration_90k=first.rel_start - first.actual_start if first else 0,
        aspect=_display_aspect(entries[0]),
        tail_size=tail_size,
        _pieces=tuple(pieces),
        _starts=starts if pieces else (),
        _boxes=tuple(w.boxes),
    )


def _segment_infos(
    sels: Sequence[Selection], track_starts: Sequence[int]
) -> tuple[SegmentInfo, ...]:
    return tuple(
        SegmentInfo(
            composite_id=s.recording.composite_id,
            open_id=s.recording.open_id,
            entry_id=s.seg.entry_id,
            rel_start_90k=s.rel_start,
            rel_end_90k=s.rel_end,
            first_frame=s.begin,
            frames=s.frames,
            key_frames=s.keys,
            actual_start_90k=s.actual_start,
            actual_end_90k=s.actual_end,
            track_start_90k=t,
        )
        for s, t in zip(sels, track_starts, strict=True)
    )


def _display_aspect(entry: VideoSampleEntry) -> tuple[int, int]:
    """Display aspect ratio in lowest terms (``X-Aspect``)."""
    w, h = entry.width * entry.pasp_h_spacing, entry.height * entry.pasp_v_spacing
    g = math.gcd(w, h) or 1
    return w // g, h // g


async def plan_layout(
    segments: Sequence[Segment],
    fetch: IndexFetch,
    run: Runner,
    layout: Callable[..., VirtualFile],
    *args: object,
) -> VirtualFile:
    """``layout(selections, *args)`` of ``segments``, with the indexes the selection needs
    decoded through ``run``, and the layout computed through it too unless the file is
    small (``INLINE_LAYOUT_SEGMENTS``)."""
    sels = await select_async(segments, fetch, run)
    if len(sels) <= INLINE_LAYOUT_SEGMENTS:
        return layout(sels, *args)
    return await run(layout, sels, *args)
