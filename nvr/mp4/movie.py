"""Whole movies (``.mp4``) and initialization segments.

- ``build_mp4``/``plan_mp4``: a whole movie (``ftyp``, ``moov``, ``mdat``) for a list of
  ``Segment``s, one video track; frames from the key frame at or before each segment's
  start, and an edit list so playback starts exactly at the requested start (for a range
  inside one frame, where that frame starts: ``nvr.mp4.selection``); one ``stsd``
  entry per distinct sample entry (chunk = segment, each chunk naming its entry) and, in a
  file whose entries' parameter sets differ, each entry's parameter sets repeated in-band in
  front of every key frame (counted in its ``stsz`` size; Chromium needs them, see
  ``_in_band_parameter_sets``); consecutive segments abut in the timeline. ``subtitle_tz=``
  adds a text track with one wall-clock timestamp sample per second (Moonfire NVR's
  ``ts=true``, ``nvr.mp4.subtitles``).
  ``build_mp4`` lays out on the calling thread (tests, benchmarks, small files);
  ``plan_mp4`` without blocking the event loop (``nvr.mp4.virtual.plan_layout``).
- ``build_init``: an initialization segment (``ftyp`` + ``moov`` with ``mvex``) for one
  sample entry, for the media segments of ``nvr.mp4.fragment``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from nvr.base.blocking import run_blocking
from nvr.codec import decoder_config, nal
from nvr.db.recording import VideoSampleEntry
from nvr.mp4.boxes import U32_MAX, BoxWriter
from nvr.mp4.movie_boxes import (
    SUBTITLE_TRACK_ID,
    VIDEO_TRACK_ID,
    Edit,
    chunk_offsets,
    display_size,
    edit_list,
    empty_tables,
    entries_of,
    ftyp,
    mvhd,
    stsc,
    stsd,
    table_box,
    trak,
)
from nvr.mp4.selection import IndexFetch, Runner, Segment, Selection, check_selections, select_all
from nvr.mp4.subtitles import SUBTITLE_CODEC, Subtitles, subtitle_trak
from nvr.mp4.tables import Table, TrackTables
from nvr.mp4.virtual import VirtualFile, finish, plan_layout

# --- .mp4 ----------------------------------------------------------------------------------


def build_mp4(
    segments: Sequence[Segment],
    entries: Mapping[int, VideoSampleEntry],
    *,
    subtitle_tz: dt.tzinfo | None = None,
    fetch: IndexFetch | None = None,
) -> VirtualFile:
    """A whole ``.mp4`` of ``segments`` (see the module docstring), laid out on this
    thread. ``entries`` maps sample entry ids to entries (``Database.video_sample_entries``);
    ``fetch`` gives the indexes of segments that hold none."""
    return _layout_mp4(select_all(segments, fetch), entries, subtitle_tz, fetch)


async def plan_mp4(
    segments: Sequence[Segment],
    entries: Mapping[int, VideoSampleEntry],
    *,
    fetch: IndexFetch,
    subtitle_tz: dt.tzinfo | None = None,
    run: Runner = run_blocking,
) -> VirtualFile:
    """``build_mp4`` with the indexes it needs decoded through ``run``, and the layout
    computed through it too unless it is small (``plan_layout``)."""
    return await plan_layout(segments, fetch, run, _layout_mp4, entries, subtitle_tz, fetch)


def _layout_mp4(
    sels: Sequence[Selection],
    entries: Mapping[int, VideoSampleEntry],
    subtitle_tz: dt.tzinfo | None,
    fetch: IndexFetch | None,
) -> VirtualFile:
    check_selections(sels)
    used = entries_of(sels, entries)
    in_band = _in_band_parameter_sets(sels, used)
    tables = TrackTables.of(sels, fetch, [len(p) for p in in_band])
    n = len(sels)
    frames = [s.frames for s in sels]
    lengths = [s.byte_length + s.keys * len(p) for s, p in zip(sels, in_band, strict=True)]
    track_starts = list(itertools.accumulate((s.actual_end - s.actual_start for s in sels),
                                             initial=0))
    edits = edit_list(sels, track_starts[:-1])
    media_duration = track_starts[-1]
    if len(edits) == 1 and edits[0] == Edit(0, media_duration):
        edits = []
    movie_duration = sum(e.duration for e in edits) if edits else media_duration
    subs = Subtitles.of(sels[0], subtitle_tz, movie_duration) if subtitle_tz else None
    payload_size = sum(lengths) + (subs.length if subs else 0)
    stts = Table.of(tables, "stts", 0, n)
    stsz = Table.of(tables, "stsz", 0, n)
    stss = Table.of(tables, "stss", 0, n)

    def build(wide: bool) -> tuple[BoxWriter, int, int | None]:
        w = BoxWriter()
        ftyp(w, b"isom", 0x200, _mp4_brands(used))
        with w.box(b"moov"):
            mvhd(w, movie_duration, SUBTITLE_TRACK_ID + (1 if subs else 0))
            with trak(w, VIDEO_TRACK_ID, movie_duration, media_duration, handler=b"vide",
                      size=display_size(_values(used)), edits=edits):
                stsd(w, _values(used))
                table_box(w, b"stts", stts, stts.length // 8)
                stsc(w, frames, [used[s.seg.entry_id][0] for s in sels])
                table_box(w, b"stsz", stsz, stsz.length // 4, [0])
                at = chunk_offsets(w, n, wide)
                table_box(w, b"stss", stss, stss.length // 4)
            sub_at = subtitle_trak(w, subs, movie_duration) if subs else None
        w.mdat_header(payload_size)
        return w, at, sub_at

    wide = False
    w, at, sub_at = build(wide)
    payload_start = len(w)
    if payload_start + sum(lengths[:-1]) > U32_MAX:
        wide = True
        w, at, sub_at = build(wide)
        payload_start = len(w)
    chunk_starts = payload_start + np.concatenate(([0], np.cumsum(lengths[:-1], dtype=np.int64)))
    w.patch(at, chunk_starts.astype(">u8" if wide else ">u4").tobytes())
    if sub_at is not None:
        w.patch(sub_at, (payload_start + sum(lengths)).to_bytes(8, "big"))
    return finish("mp4", w, _values(used), sels, track_starts[:-1], tail=subs,
                  in_band=in_band, fetch=fetch, tail_codec=SUBTITLE_CODEC if subs else None)


def _in_band_parameter_sets(
    sels: Sequence[Selection], used: Mapping[int, tuple[int, VideoSampleEntry]]
) -> list[bytes]:
    """Per segment, the bytes to put in front of each of its key frames: in a file whose
    sample entries' parameter sets differ (a new resolution; not a new pixel aspect ratio
    alone), the segment's entry's parameter sets, length-prefixed; else nothing (a file of
    one set of parameter sets keeps the bytes it always had).

    The ``stsd`` already has one entry per sample entry and ``stsc`` names each chunk's, which
    is enough for FFmpeg and most players, but Chromium's ``<video>`` decodes with the
    parameter sets it last had: the first entry's, or the last in-band copy it decoded. So
    after a change, and after a seek from a GOP of one entry to a GOP of another, a key
    frame without its own copy fails to decode. With the parameter sets in front of every
    key frame (as cameras send them), every seek and every change plays
    (test_browser_playback)."""
    if len({entry.data for _, entry in used.values()}) < 2:
        return [b""] * len(sels)
    return [_parameter_sets(used[s.seg.entry_id][1]) for s in sels]


def _parameter_sets(entry: VideoSampleEntry) -> bytes:
    """The parameter sets of ``entry``'s ``avcC``/``hvcC`` box, 4-byte length-prefixed (how
    nvr stores frames)."""
    nals, _ = decoder_config.parameter_sets(entry.codec_box_type, entry.data[8:])
    return nal.to_length_prefixed(nals)


def _values(used: Mapping[int, tuple[int, VideoSampleEntry]]) -> list[VideoSampleEntry]:
    return [entry for _, entry in used.values()]


def _mp4_brands(used: Mapping[int, tuple[int, VideoSampleEntry]]) -> list[bytes]:
    brands = [b"isom", b"iso2"]
    if any(e.codec_box_type == b"avcC" for e in _values(used)):
        brands.append(b"avc1")
    return [*brands, b"mp41"]


# --- init segment -----------------------------------------------------------------------------


def build_init(entry_id: int, entry: VideoSampleEntry, *, duration: int = 0) -> VirtualFile:
    """An initialization segment for media segments of sample entry ``entry_id``.
    ``duration`` (90 kHz), when known, is the whole fragmented file's: written in the
    ``mvhd``, ``tkhd``, ``mdhd`` and a ``mehd`` so a player shows it before the last
    fragment arrives (a transcoded ``view.mp4``: ``nvr.web.transcoding``)."""
    w = BoxWriter()
    ftyp(w, b"iso5", 0, [b"iso5", b"iso6", b"mp41"])
    with w.box(b"moov"):
        mvhd(w, duration, VIDEO_TRACK_ID + 1)
        with trak(w, VIDEO_TRACK_ID, duration, duration, handler=b"vide",
                  size=display_size([entry])):
            stsd(w, [entry])
            empty_tables(w)
        with w.box(b"mvex"):
            if duration:
                wide = duration > U32_MAX
                with w.full_box(b"mehd", int(wide)):
                    w.uint(duration, wide)
            with w.full_box(b"trex"):
                w.u32(VIDEO_TRACK_ID)
                w.u32(1)  # default_sample_description_index
                w.u32(0)  # default_sample_duration
                w.u32(0)  # default_sample_size
                w.u32(0)  # default_sample_flags
    return finish("init", w, [entry])
