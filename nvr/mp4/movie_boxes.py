"""The boxes of a movie's header, shared by every kind of file ``nvr.mp4`` builds.

``ftyp``; in ``moov``: ``mvhd``, a track's skeleton down to its sample table (``trak``:
``tkhd``, ``edts``, ``mdia``, ``mdhd``, ``hdlr``, the media header, ``dinf``), the video
sample descriptions (``stsd`` with one ``avc1``/``hvc1`` entry per sample entry and its
``pasp``), the small sample tables held in memory (``stts`` runs, ``stsc``, chunk offsets
to patch) and the boxes around a generated ``Table`` (``table_box``); and what they are
computed from (the edit list of a list of selections, the sample entries they use, the
display size). Every box is written with ``TIMESCALE`` (90 kHz).

Which boxes a file holds and in what order is the builders' (``nvr.mp4.movie``,
``nvr.mp4.fragment``, the text track of ``nvr.mp4.subtitles``); this module writes boxes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nvr.base.errors import NotFound
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.recording import VideoSampleEntry
from nvr.mp4.boxes import U32_MAX, BoxWriter
from nvr.mp4.selection import Selection
from nvr.mp4.tables import Table

TIMESCALE = UNITS_PER_SEC
"""Movie and media timescale of every box written here: 90 kHz, the units of the index."""

VIDEO_TRACK_ID = 1
SUBTITLE_TRACK_ID = 2

_MATRIX = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = 0x55C4  # ISO 639-2 "und", packed 5 bits per letter


# --- movie and track headers -------------------------------------------------------------------


def ftyp(w: BoxWriter, major: bytes, minor: int, compatible: Sequence[bytes]) -> None:
    with w.box(b"ftyp"):
        w.write(major)
        w.u32(minor)
        for brand in compatible:
            w.write(brand)


def mvhd(w: BoxWriter, duration: int, next_track_id: int) -> None:
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


def tkhd(w: BoxWriter, track_id: int, duration: int, width: float, height: float) -> None:
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


def mdhd(w: BoxWriter, duration: int) -> None:
    wide = duration > U32_MAX
    with w.full_box(b"mdhd", int(wide)):
        w.uint(0, wide)
        w.uint(0, wide)
        w.u32(TIMESCALE)
        w.uint(duration, wide)
        w.u16(_LANGUAGE_UND)
        w.u16(0)


def hdlr(w: BoxWriter, handler: bytes, name: bytes) -> None:
    with w.full_box(b"hdlr"):
        w.u32(0)
        w.write(handler)
        w.zeros(12)
        w.write(name + b"\0")


def dinf(w: BoxWriter) -> None:
    with w.box(b"dinf"), w.full_box(b"dref"):
        w.u32(1)
        with w.full_box(b"url ", 0, 1):  # self-contained
            pass


@contextlib.contextmanager
def trak(
    w: BoxWriter,
    track_id: int,
    movie_duration: int,
    media_duration: int,
    *,
    handler: bytes,
    size: tuple[float, float] = (0.0, 0.0),
    edits: Sequence[Edit] = (),
) -> Iterator[None]:
    """A track (``trak``) down to its open ``stbl``, which the caller fills in (sample
    description, tables): ``tkhd`` (``size``: display width and height), ``edts`` if
    ``edits``, and ``mdia`` with ``mdhd``, ``hdlr`` (``handler``: ``b"vide"`` or
    ``b"sbtl"``), its media header (``vmhd`` for video, else ``nmhd``) and ``dinf``."""
    with w.box(b"trak"):
        tkhd(w, track_id, movie_duration, *size)
        if edits:
            edts(w, edits)
        with w.box(b"mdia"):
            mdhd(w, media_duration)
            hdlr(w, handler, b"")
            with w.box(b"minf"):
                if handler == b"vide":
                    with w.full_box(b"vmhd", 0, 1):
                        w.zeros(8)
                else:
                    with w.full_box(b"nmhd"):
                        pass
                dinf(w)
                with w.box(b"stbl"):
                    yield


# --- the edit list ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Edit:
    media_time: int
    duration: int


def edit_list(sels: Sequence[Selection], track_starts: Sequence[int]) -> list[Edit]:
    """One edit per run of abutting wanted ranges in track time, as long as they are; one
    that does not continue the one before starts at its selection's ``edit_start``."""
    edits: list[Edit] = []
    for s, t in zip(sels, track_starts, strict=True):
        keep = s.rel_end - s.rel_start
        if keep <= 0:
            continue
        media_time = t + s.rel_start - s.actual_start
        if edits and edits[-1].media_time + edits[-1].duration == media_time:
            edits[-1] = Edit(edits[-1].media_time, edits[-1].duration + keep)
        else:
            edits.append(Edit(t + s.edit_start - s.actual_start, keep))
    return edits


def edts(w: BoxWriter, edits: Sequence[Edit]) -> None:
    wide = any(e.media_time > U32_MAX // 2 or e.duration > U32_MAX for e in edits)
    with w.box(b"edts"), w.full_box(b"elst", int(wide)):
        w.u32(len(edits))
        for e in edits:
            w.uint(e.duration, wide)
            w.uint(e.media_time, wide)  # signed in the spec; never negative here
            w.u16(1)  # media_rate_integer
            w.u16(0)


# --- video sample descriptions -----------------------------------------------------------------


def entries_of(
    sels: Sequence[Selection], entries: Mapping[int, VideoSampleEntry]
) -> dict[int, tuple[int, VideoSampleEntry]]:
    """entry id -> (1-based sample description index, entry), in order of first use."""
    out: dict[int, tuple[int, VideoSampleEntry]] = {}
    for s in sels:
        eid = s.seg.entry_id
        if eid not in out:
            if eid not in entries:
                raise NotFound(f"no video sample entry {eid}")
            out[eid] = (len(out) + 1, entries[eid])
    return out


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
        w.write_boxes(entry.data)
        with w.box(b"pasp"):
            w.u32(entry.pasp_h_spacing)
            w.u32(entry.pasp_v_spacing)


def stsd(w: BoxWriter, entries: Sequence[VideoSampleEntry]) -> None:
    with w.full_box(b"stsd"):
        w.u32(len(entries))
        for entry in entries:
            _visual_sample_entry(w, entry)


def display_size(entries: Sequence[VideoSampleEntry]) -> tuple[float, float]:
    """The largest displayed width and height (pixel aspect ratio applied to the width)."""
    width = max(e.width * e.pasp_h_spacing / e.pasp_v_spacing for e in entries)
    return width, float(max(e.height for e in entries))


# --- sample tables ------------------------------------------------------------------------------


def empty_tables(w: BoxWriter) -> None:
    """The sample tables of a track without samples (an init segment's), in the order a
    ``.mp4``'s are: ``stts``, ``stsc``, ``stsz``, ``stco``."""
    for box_type in (b"stts", b"stsc"):
        with w.full_box(box_type):
            w.u32(0)
    with w.full_box(b"stsz"):
        w.u32(0)  # sample_size
        w.u32(0)
    with w.full_box(b"stco"):
        w.u32(0)


def stts_runs(w: BoxWriter, runs: Sequence[tuple[int, int]]) -> None:
    """An ``stts`` from (count, duration) runs held in memory."""
    with w.full_box(b"stts"):
        w.u32(len(runs))
        w.write(np.array(runs, dtype=">u4").reshape(-1, 2).tobytes())


def stsc(w: BoxWriter, frames: Sequence[int], description_indexes: Sequence[int]) -> None:
    """One chunk per segment; a table entry wherever (frames, description) changes."""
    rows: list[tuple[int, int, int]] = []
    for chunk, (n, sdi) in enumerate(zip(frames, description_indexes, strict=True), 1):
        if not rows or rows[-1][1:] != (n, sdi):
            rows.append((chunk, n, sdi))
    table = np.array(rows, dtype=">u4")
    with w.full_box(b"stsc"):
        w.u32(len(rows))
        w.write(table.tobytes())


def chunk_offsets(w: BoxWriter, count: int, wide: bool) -> int:
    """Writes an ``stco``/``co64`` of zeros; returns where its values start (patched later)."""
    with w.full_box(b"co64" if wide else b"stco"):
        w.u32(count)
        pos = len(w)
        w.zeros(count * (8 if wide else 4))
    return pos


def table_box(w: BoxWriter, box_type: bytes, table: Table, count: int,
              fields: Sequence[int] = ()) -> None:
    """A full box of ``fields`` (u32s), then the entry count, then a generated table."""
    with w.full_box(box_type):
        for value in fields:
            w.u32(value)
        w.u32(count)
        w.virtual(table, table.length)
