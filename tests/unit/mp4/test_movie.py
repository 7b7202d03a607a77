"""Virtual .mp4 / .m4s / init files built from recordings of the fixture clips.

A database is recorded once per module (ReplayOpener + streamer + syncer on a MockClock):
stream 1 holds two runs: the 640x360 clip looped twice (recordings of 20 s, 10 s, 10 s,
trailing zero), then the resolution-change clip (640x360 then 320x240: two sample entries,
trailing zero); stream 2 holds the HEVC clip. Files are written out and decoded with PyAV;
every decoded picture carries its frame number (``read_frame_number``), so the tests check
*which* frame each output frame is, not only how many there are.

Edit lists and FFmpeg: ``build_mp4`` writes the spec-exact edit list (checked field by
field). FFmpeg's mov demuxer applies an edit by presenting the first frame that starts at or
after the edit's media time at the edit's presentation start (a frame straddling the edit
start is dropped), then shifts the stream so that its first frame is at 0;
``ffmpeg_presentation`` models exactly that for single-entry files, so the pts assertions
are to the tick (across size changes FFmpeg's decoder differs; see the comment in the
generated-segments test). Decoding with FFmpeg's
``ignore_editlist`` checks every frame of the track at its index time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import hypothesis.strategies as st
import numpy as np
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings

from fixtures.make_fixtures import read_frame_number
from nvr.base import errors
from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.codec import h264, nal
from nvr.db.frames_summary import summarize_index
from nvr.db.recording import (
    FrameEntry,
    VideoIndexEncoder,
    decode_video_index,
    iter_video_index,
)
from nvr.db.types import FLAG_TRAILING_ZERO, ListedRecording
from nvr.ingest.source import OpenOptions
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.mp4 import virtual
from nvr.mp4.boxes import walk_boxes
from nvr.mp4.fragment import build_m4s, plan_m4s
from nvr.mp4.movie import build_init, build_mp4, plan_mp4
from nvr.mp4.selection import (
    SEGMENTS_PER_CALL,
    Segment,
    segment_from_db,
    select,
    stored_select,
    wall_to_media,
)
from nvr.mp4.virtual import DEFAULT_CHUNK, VirtualFile
from nvr.syncer import Syncer
from nvr.testing.env import TEST_SAMPLE_ENTRY, RecordingEnv, create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from tests.support.determinism import T0, run_inline
from tests.support.media import edit_list, fragment_header
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
CLIP = str(FIXTURES / "h264-640x360.mp4")  # 600 frames
RES_CHANGE = str(FIXTURES / "h264-res-change.ts")  # 180 frames, 320x240 from frame 90
HEVC = str(FIXTURES / "hevc-640x360.mp4")  # 150 frames
GONE = Session(open_error=errors.Unavailable("camera gone"))
OPTS = StreamerOptions(jitter=0.0, rotate_interval=10 * SEC)
FIXTURE_CHECK = HealthCheck.function_scoped_fixture  # the fixtures used are read-only


# --- recording the fixtures ------------------------------------------------------------------


def _streamer(env: RecordingEnv, stream_id: int, syncer: Syncer, opener: ReplayOpener,
              clocks: SimulatedClocks) -> Streamer:
    return Streamer(db=env.db, stream_id=stream_id, sdir=env.sdir, sink=syncer, opener=opener,
                    clocks=clocks, options=OPTS, open_options=OpenOptions(read_timeout=10 * SEC))


def record(root: Path, scripts: dict[str, list[Session]], seconds: int = 60) -> None:
    """Creates an environment under ``root`` and records ``scripts`` (URL -> sessions; the
    streams are ``rtsp://cam<i>/main``) for ``seconds`` of virtual time, then shuts down."""

    async def main() -> None:
        with inline_blocking():
            create_env(root, streams=len(scripts), flush_if_sec=0)
            clocks = SimulatedClocks(T0)
            env = open_env(root, now=clocks.realtime, monotonic=clocks.monotonic)
            opener = ReplayOpener(clocks, scripts)
            syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
            try:
                async with trio.open_nursery() as outer:
                    await outer.start(syncer.run)
                    with trio.move_on_after(seconds):
                        async with trio.open_nursery() as nursery:
                            for sid in env.stream_ids:
                                nursery.start_soon(
                                    _streamer(env, sid, syncer, opener, clocks).run
                                )
                    outer.cancel_scope.cancel()
            finally:
                env.close()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def standard_scripts() -> dict[str, list[Session]]:
    return {
        "rtsp://cam0/main": [
            Session(load_packets(CLIP), loops=2),
            Session(load_packets(RES_CHANGE), loops=1),
            GONE,
        ],
        "rtsp://cam1/main": [Session(load_packets(HEVC), loops=1), GONE],
    }


class FileReader:
    """The ``Reader`` the tests pass: ``pread`` from the sample files, counting calls."""

    def __init__(self, env: RecordingEnv) -> None:
        self.env = env
        self.calls: list[tuple[int, int, int]] = []

    async def __call__(self, composite_id: int, offset: int, length: int) -> bytes:
        self.calls.append((composite_id, offset, length))
        f = self.env.sdir.open_for_reading(composite_id)
        try:
            return f.pread(offset, length)
        finally:
            f.close()


@dataclass
class Library:
    env: RecordingEnv
    main: list[ListedRecording]  # stream 1
    hevc: list[ListedRecording]  # stream 2
    clip_frames: dict[int, int]  # composite id -> frame number of its first frame
    reader: FileReader

    def segment(self, rec: ListedRecording, start: int, end: int) -> Segment:
        return segment_from_db(self.env.db, rec, start, end)


def first_frame_numbers(
    recs: Sequence[ListedRecording], clip_lengths: Sequence[int]
) -> dict[int, int]:
    """The fixture frame number of each recording's first frame (runs restart the clip)."""
    out, run, position = {}, -1, 0
    for rec in recs:
        if rec.run_offset == 0:
            run, position = run + 1, 0
        out[rec.composite_id] = position % clip_lengths[run]
        position += rec.video_samples
    return out


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    root = tmp_path_factory.mktemp("mp4lib")
    record(root, standard_scripts())
    env = open_env(root, now=lambda: T0 + 100 * SEC)
    try:
        main = env.db.list_recordings_by_time(env.stream_ids[0], 0, 1 << 62)
        hevc = env.db.list_recordings_by_time(env.stream_ids[1], 0, 1 << 62)
        numbers = first_frame_numbers(main, [600, 180]) | first_frame_numbers(hevc, [150])
        yield Library(env, main, hevc, numbers, FileReader(env))
    finally:
        env.close()


def test_the_recorded_library_is_as_expected(library: Library) -> None:
    rows = [
        (r.run_offset, r.media_duration_90k, r.video_samples, r.video_sync_samples,
         library.env.db.video_sample_entries[r.video_sample_entry_id].width,
         bool(r.flags & FLAG_TRAILING_ZERO))
        for r in library.main
    ]
    assert rows == [
        (0, 1_800_000, 600, 20, 640, False),
        (1, 900_000, 300, 10, 640, False),
        (2, 897_000, 300, 10, 640, True),
        (0, 270_000, 90, 3, 640, False),
        (1, 267_000, 90, 3, 320, True),
    ]
    assert [(r.media_duration_90k, r.video_samples) for r in library.hevc] == [(447_000, 150)]


# --- a reference model, independent of the implementation ------------------------------------


@dataclass(frozen=True)
class TrackFrame:
    cts: int  # decode (= composition) time in the track
    duration: int
    number: int  # fixture frame number
    width: int


@dataclass(frozen=True)
class Expected:
    frames: list[TrackFrame]
    edits: list[tuple[int, int]]  # (media_time, duration), before dropping a trivial list
    byte_ranges: list[tuple[int, int, int]]  # (composite id, offset, length)
    lead: int  # start of the first segment's first frame, relative to its recording
    keys: list[int]  # key frames of each segment


def reference(lib: Library, segs: Sequence[tuple[ListedRecording, int, int]]) -> Expected:
    """What a file of ``segs`` must hold, computed frame by frame from ``iter_video_index``."""
    frames: list[TrackFrame] = []
    edits: list[tuple[int, int]] = []
    ranges, leads, keys = [], [], []
    for rec, rel_start, rel_end in segs:
        index = list(iter_video_index(lib.env.db.get_video_index(rec.composite_id)))
        total = sum(f.duration_90k for f in index)
        rel_end = min(rel_end, total)
        begin = max(i for i, f in enumerate(index) if f.is_key and f.start_90k <= rel_start)
        chosen = [
            (i, f) for i, f in enumerate(index)
            if i >= begin and (f.start_90k < rel_end or rel_end == total)
        ]
        track = sum(f.duration for f in frames)
        leads.append(index[begin].start_90k)
        width = lib.env.db.video_sample_entries[rec.video_sample_entry_id].width
        first = lib.clip_frames[rec.composite_id]
        frames += [TrackFrame(track + f.start_90k - index[begin].start_90k, f.duration_90k,
                              first + i, width) for i, f in chosen]
        media_time, keep = track + rel_start - index[begin].start_90k, rel_end - rel_start
        if keep > 0:
            if edits and sum(edits[-1]) == media_time:
                edits[-1] = (edits[-1][0], edits[-1][1] + keep)
            else:
                if not any(rel_start <= f.start_90k < rel_end for f in index):
                    # inside one frame: the edit starts where that frame does
                    covering = max(f.start_90k for f in index if f.start_90k <= rel_start)
                    media_time = track + covering - index[begin].start_90k
                edits.append((media_time, keep))
        last: FrameEntry = chosen[-1][1]
        ranges.append((rec.composite_id, index[begin].offset,
                       last.offset + last.bytes - index[begin].offset))
        keys.append(sum(f.is_key for _, f in chosen))
    return Expected(frames, edits, ranges, leads[0], keys)


def entry_data(lib: Library, rec: ListedRecording) -> bytes:
    return lib.env.db.video_sample_entries[rec.video_sample_entry_id].data


def in_band_size(lib: Library, rec: ListedRecording) -> int:
    """Bytes of ``rec``'s parameter sets written in-band (4-byte length-prefixed)."""
    entry = lib.env.db.video_sample_entries[rec.video_sample_entry_id]
    sps, pps, _ = h264.parse_avcc_record(entry.data[8:])
    return sum(4 + len(nal) for nal in [*sps, *pps])


def is_valid(lib: Library, segs: Sequence[tuple[ListedRecording, int, int]]) -> bool:
    """Ranges must be non-empty (or a whole zero-length recording), and only the last
    segment may end with a trailing zero."""
    for n, (rec, start, end) in enumerate(segs):
        total = rec.media_duration_90k
        end = min(end, total)
        if start > end or (start == end and end != total):
            return False
        if n < len(segs) - 1 and end == total and rec.flags & FLAG_TRAILING_ZERO:
            return False
    return True


def ffmpeg_presentation(expected: Expected) -> list[tuple[int, int, int]]:
    """(pts, frame number, width) of the frames FFmpeg outputs (see the module docstring)."""
    total = sum(f.duration for f in expected.frames)
    if expected.edits in ([], [(0, total)]):
        return [(f.cts, f.number, f.width) for f in expected.frames]
    out, presentation = [], 0
    for media_time, duration in expected.edits:
        kept = [f for f in expected.frames if media_time <= f.cts < media_time + duration]
        out += [(presentation + f.cts - kept[0].cts, f.number, f.width) for f in kept]
        presentation += duration
    # FFmpeg then shifts the stream so its first frame is at 0 (an edit too short to hold
    # a frame start leaves a gap before it otherwise)
    return [(pts - out[0][0], n, w) for pts, n, w in out] if out else []


# --- helpers -----------------------------------------------------------------------------------


def read_file(vf: VirtualFile, reader: FileReader, chunk: int = DEFAULT_CHUNK) -> bytes:
    return trio.run(vf.read_all, reader, chunk)


def decode(path: Path, ignore_editlist: bool = False) -> list[tuple[int, int, int]]:
    """(pts, frame number, width) of every decoded video frame."""
    options = {"ignore_editlist": "1"} if ignore_editlist else {}
    with av.open(str(path), options=options) as container:
        stream = container.streams.video[0]
        assert stream.time_base == Fraction(1, 90_000)
        return [
            (int(frame.pts), read_frame_number(frame.to_ndarray(format="gray")), frame.width)  # type: ignore[arg-type]
            for frame in container.decode(stream)
        ]


def box_payload(data: bytes, box_type: bytes) -> bytes:
    boxes = [b for b in walk_boxes(data) if b.box_type == box_type]
    assert len(boxes) == 1, f"{len(boxes)} {box_type!r} boxes"
    b = boxes[0]
    return data[b.offset + 8 : b.offset + b.size]


def u32s(payload: bytes, skip: int) -> list[int]:
    return list(np.frombuffer(payload[skip:], dtype=">u4").tolist())


# --- .mp4 for generated segment lists ---------------------------------------------------------


@st.composite
def segment_lists(draw: st.DrawFn, n_recordings: int) -> list[tuple[int, int, int]]:
    """(recording index, rel start, rel end) triples: frame-aligned or arbitrary ticks."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, n_recordings - 1))
        out.append((i, draw(st.integers(0, 1 << 20)), draw(st.integers(0, 1 << 20))))
    return out


def resolve(
    lib: Library, raw: Sequence[tuple[int, int, int]]
) -> list[tuple[ListedRecording, int, int]]:
    """Maps drawn numbers onto the recordings: positions inside, sometimes on a frame
    boundary, sometimes past the end (clamped), ordered start <= end."""
    out = []
    for i, a, b in raw:
        rec = lib.main[i]
        total = rec.media_duration_90k
        lo, hi = sorted((a % (total + 1), b % (total + 1) if b % 5 else total + 90_000))
        if a % 3 == 0:
            lo -= lo % 3000  # on a frame boundary
        out.append((rec, lo, hi))
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[FIXTURE_CHECK])
@given(raw=segment_lists(5))
def test_mp4_decodes_to_exactly_the_indexed_frames(
    library: Library, tmp_path: Path, raw: list[tuple[int, int, int]]
) -> None:
    segs = resolve(library, raw)
    segments = [library.segment(rec, a, b) for rec, a, b in segs]
    if not is_valid(library, segs):
        with pytest.raises(errors.InvalidArgument):
            build_mp4(segments, library.env.db.video_sample_entries)
        return
    vf = build_mp4(segments, library.env.db.video_sample_entries)
    expected = reference(library, segs)
    total = sum(f.duration for f in expected.frames)
    # the edit list, to the tick (omitted when it would say "everything")
    trivial = expected.edits in ([], [(0, total)])
    assert edit_list(vf.header) == ([] if trivial else expected.edits)
    # the edit list starts at the requested start, relative to the key frame before it
    assert vf.leading_media_duration_90k == segs[0][1] - expected.lead
    if not trivial and segs[0][2] > segs[0][1]:
        # (or, for a range inside one frame, at that frame's start)
        first_edit = expected.edits[0][0]
        assert first_edit == vf.leading_media_duration_90k or (
            first_edit < vf.leading_media_duration_90k
            and first_edit in {f.cts for f in expected.frames})
    # the slices are exactly the sample-file byte ranges of the chosen frames
    assert [(s.composite_id, s.sample_offset, s.length) for s in vf.slices] == expected.byte_ranges
    # plus, in a file of more than one set of parameter sets, each segment's in front of
    # each of its key frames
    in_band = len({entry_data(library, rec) for rec, _, _ in segs}) > 1
    assert vf.size == len(vf.header) + sum(r[2] for r in expected.byte_ranges) + in_band * sum(
        keys * in_band_size(library, rec) for (rec, _, _), keys in zip(segs, expected.keys,
                                                                        strict=True)
    )
    data = read_file(vf, library.reader)
    assert len(data) == vf.size
    path = tmp_path / "view.mp4"
    path.write_bytes(data)
    # every frame of the track decodes, at its index time, and is the right picture
    assert decode(path, ignore_editlist=True) == [
        (f.cts, f.number, f.width) for f in expected.frames
    ]
    # With one sample entry, FFmpeg's edit-list presentation is modelled exactly. Across
    # sample-entry changes FFmpeg's decoder reinitialises at edit boundaries in ways the
    # model does not capture (hypothesis found cases beyond a single skipped frame);
    # there the file is judged by the exact checks above
    # (every frame at its index time, the edit list equal to the reference), and browser
    # playback by the Chromium tests of the playback issue.
    if len({rec.video_sample_entry_id for rec, _, _ in segs}) == 1:
        assert decode(path) == ffmpeg_presentation(expected)


def samples(vf: VirtualFile, data: bytes) -> list[bytes]:
    """The video samples of a file, as its ``stsz``, ``stsc`` and ``stco`` locate them."""
    sizes = u32s(box_payload(vf.header, b"stsz"), 12)
    stsc = u32s(box_payload(vf.header, b"stsc"), 8)
    rows = [stsc[i : i + 3] for i in range(0, len(stsc), 3)]
    offsets = u32s(box_payload(vf.header, b"stco"), 8)
    out, k = [], 0
    for chunk, pos in enumerate(offsets, 1):
        per_chunk = next(n for first, n, _ in reversed(rows) if first <= chunk)
        for size in sizes[k : k + per_chunk]:
            out.append(data[pos : pos + size])
            pos += size
        k += per_chunk
    assert k == len(sizes)
    return out


def test_parameter_sets_precede_every_key_frame_where_they_change(library: Library) -> None:
    """A file of 640x360, 320x240, then 640x360 again: each segment's key frames (the
    first chunk's too) start with its entry's SPS and PPS (length-prefixed), counted in
    the key frame's stsz size; other frames are the sample file's bytes. A file of one
    entry has no copies."""
    a, b = library.main[3], library.main[4]
    assert entry_data(library, a) != entry_data(library, b)
    segs = [(a, 0, a.media_duration_90k), (b, 0, 180_000), (a, 100_000, 200_000)]
    vf = build_mp4([library.segment(*s) for s in segs], library.env.db.video_sample_entries)
    got = samples(vf, read_file(vf, library.reader))
    want = []
    for rec, start, end in segs:
        sps, pps, _ = h264.parse_avcc_record(entry_data(library, rec)[8:])
        prefix = nal.to_length_prefixed([*sps, *pps])
        frames = decode_video_index(library.env.db.get_video_index(rec.composite_id)).frames()
        begin = max(i for i, f in enumerate(frames) if f.is_key and f.start_90k <= start)
        file = library.env.sdir.open_for_reading(rec.composite_id)
        try:
            want += [(prefix if f.is_key else b"") + file.pread(f.offset, f.bytes)
                     for f in frames[begin:] if f.start_90k < end]
        finally:
            file.close()
    assert len(got) == len(want) == sum(s.frames for s in vf.segments) == 90 + 60 + 37
    assert got == want
    assert f"each of its 3 key frames after {in_band_size(library, a)} bytes of parameter " \
        "sets" in vf.text_dump()
    # one entry: the sample file's bytes, nothing in front
    single = build_mp4([library.segment(a, 0, a.media_duration_90k)],
                       library.env.db.video_sample_entries)
    index = decode_video_index(library.env.db.get_video_index(a.composite_id))
    assert u32s(box_payload(single.header, b"stsz"), 12) == index.sizes.tolist()
    assert single.size == len(single.header) + a.sample_file_bytes


def test_edit_list_starts_at_the_requested_time_inside_a_gop(
    library: Library, tmp_path: Path
) -> None:
    rec = library.main[0]
    vf = build_mp4([library.segment(rec, 46_500, 100_000)], library.env.db.video_sample_entries)
    # frames from the key frame at 0 are included; the edit skips 46 500 ticks of them
    assert edit_list(vf.header) == [(46_500, 53_500)]
    assert vf.segments[0].first_frame == 0 and vf.segments[0].frames == 34
    assert vf.leading_media_duration_90k == 46_500
    path = tmp_path / "a.mp4"
    path.write_bytes(read_file(vf, library.reader))
    decoded = decode(path)
    # FFmpeg shows frame 16 (the first starting after 46 500) first, at 0
    assert decoded[0] == (0, 16, 640) and decoded[-1] == (51_000, 33, 640)
    assert len(decoded) == 18


def test_consecutive_segments_abut_and_edits_merge(library: Library) -> None:
    a, b = library.main[0], library.main[1]
    vf = build_mp4([library.segment(a, 100_000, a.media_duration_90k),
                    library.segment(b, 0, 450_000)], library.env.db.video_sample_entries)
    # a's frames start at the key frame of 90 000; one edit skips 10 000 ticks, then plays
    # the rest of a and 5 s of b without a gap
    assert [s.track_start_90k for s in vf.segments] == [0, 1_710_000]
    assert edit_list(vf.header) == [(10_000, 1_700_000 + 450_000)]
    # whole recordings back to back need no edit list at all
    whole = build_mp4([library.segment(a, 0, a.media_duration_90k),
                       library.segment(b, 0, b.media_duration_90k)],
                      library.env.db.video_sample_entries)
    assert edit_list(whole.header) == []


def test_mvhd_tkhd_mdhd_durations(library: Library) -> None:
    rec = library.main[0]
    vf = build_mp4([library.segment(rec, 3_000, 600_000)], library.env.db.video_sample_entries)
    # frames 0..199 (600 000 ticks of media); the edit skips the first 3 000
    mvhd = box_payload(vf.header, b"mvhd")
    assert struct.unpack(">II", mvhd[12:20]) == (90_000, 597_000)
    mdhd = box_payload(vf.header, b"mdhd")
    assert struct.unpack(">II", mdhd[12:20]) == (90_000, 600_000)
    tkhd = box_payload(vf.header, b"tkhd")
    assert struct.unpack(">I", tkhd[20:24])[0] == 597_000
    assert struct.unpack(">II", tkhd[-8:]) == (640 << 16, 360 << 16)


def test_multiple_sample_entries_in_one_file(library: Library, tmp_path: Path) -> None:
    first, second = library.main[3], library.main[4]
    entries = library.env.db.video_sample_entries
    vf = build_mp4([library.segment(first, 45_000, 270_000), library.segment(second, 0, 267_000)],
                   entries)
    header = vf.header
    stsd = box_payload(header, b"stsd")
    assert struct.unpack(">I", stsd[4:8])[0] == 2
    widths = [struct.unpack(">HH", header[b.offset + 32 : b.offset + 36])
              for b in walk_boxes(header) if b.box_type == b"avc1"]
    assert widths == [(640, 360), (320, 240)]
    # stsc: chunk 1 has 90 samples of entry 1, chunk 2 has 90 of entry 2
    assert u32s(box_payload(header, b"stsc"), 4) == [2, 1, 90, 1, 2, 90, 2]
    stco = u32s(box_payload(header, b"stco"), 4)
    # each chunk's key frames follow their entry's parameter sets (3 in the first chunk)
    assert stco == [2, len(header), len(header) + vf.slices[0].length + 3 * in_band_size(
        library, first)]
    assert vf.codecs == (entries[first.video_sample_entry_id].rfc6381_codec,
                         entries[second.video_sample_entry_id].rfc6381_codec)
    path = tmp_path / "res.mp4"
    path.write_bytes(read_file(vf, library.reader))
    decoded = decode(path)
    # FFmpeg drops the straddling frame 15 and, the file having an edit list, the final
    # zero-duration frame 179 (it lies at the edit's end)
    assert [(n, w) for _, n, w in decoded] == [(n, 640) for n in range(15, 90)] + [
        (n, 320) for n in range(90, 179)
    ]


def test_appending_after_a_trailing_zero_is_refused(library: Library) -> None:
    ends_run, next_run = library.main[2], library.main[3]
    segs = [library.segment(ends_run, 0, ends_run.media_duration_90k),
            library.segment(next_run, 0, 90_000)]
    with pytest.raises(errors.InvalidArgument, match="trailing zero"):
        build_mp4(segs, library.env.db.video_sample_entries)
    # stopping short of the zero-duration frame is fine
    segs[0] = library.segment(ends_run, 0, ends_run.media_duration_90k - 1)
    assert build_mp4(segs, library.env.db.video_sample_entries).segments[0].frames == 299


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [(-1, 10, "bad range"), (20, 10, "bad range"), (10, 10, "bad range")],
)
def test_bad_ranges_are_refused(library: Library, start: int, end: int, message: str) -> None:
    seg = library.segment(library.main[0], start, end)
    with pytest.raises(errors.InvalidArgument, match=message):
        build_mp4([seg], library.env.db.video_sample_entries)


def test_no_segments_and_unknown_entries_are_refused(library: Library) -> None:
    with pytest.raises(errors.InvalidArgument):
        build_mp4([], library.env.db.video_sample_entries)
    with pytest.raises(errors.NotFound):
        build_mp4([library.segment(library.main[0], 0, 90_000)], {})


def test_wall_to_media_scales_and_clamps() -> None:
    rec = ListedRecording(1, 1, 0, 1_000_000, 999_000, 10, 1, 1, 100, 0, 0, 0, 0)
    offsets = (-5, 0, 1, 500_000, 999_999, 1_000_000, 2_000_000)
    assert [wall_to_media(rec, w) for w in offsets] == [
        0, 0, 0, 499_500, 998_999, 999_000, 999_000
    ]
    # a range's end rounds up: [0, 1) of wall time is [0, 1) of media time, not empty
    assert [wall_to_media(rec, w, round_up=True) for w in offsets] == [
        0, 0, 1, 499_500, 999_000, 999_000, 999_000
    ]


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_wall_range_selects_the_frames_it_covers_part_of(data: st.DataObject) -> None:
    """Issue 12: ``s=ID.0-1`` selected nothing while ``s=ID.1-2`` selected a frame. Any
    non-empty wall range, scaled to media time (start down, end up), selects exactly the
    frames whose media span it overlaps, from the key frame before the first; and an edit
    that would hold no frame's start begins at the start of the frame it covers."""
    (rec, index), = synthetic_recordings(1, frames=data.draw(st.integers(1, 90)))
    wall = rec.media_duration_90k + data.draw(st.integers(-2_000, 2_000))
    rec = dataclasses.replace(rec, wall_duration_90k=wall)
    a = data.draw(st.integers(0, wall - 1), label="start")
    b = data.draw(st.integers(a + 1, wall + 10), label="end")
    ix = decode_video_index(index)
    seg = Segment(rec, ix, wall_to_media(rec, a), wall_to_media(rec, b, round_up=True))
    sel = select(seg, ix)
    media = rec.media_duration_90k
    lo, hi = Fraction(a * media, wall), Fraction(min(b, wall) * media, wall)
    covered = [i for i, f in enumerate(ix.frames())
               if f.start_90k < hi and f.start_90k + f.duration_90k > lo]
    first_key = max(i for i in range(covered[0] + 1) if ix.is_key[i])
    assert (sel.begin, sel.end) == (first_key, covered[-1] + 1)
    starts_inside = [s for s in ix.starts.tolist() if sel.rel_start <= s < sel.rel_end]
    covering = max(s for s in ix.starts.tolist() if s <= sel.rel_start)
    assert sel.edit_start == (sel.rel_start if starts_inside else covering)


def test_a_range_inside_one_frame_plays_that_frame(library: Library, tmp_path: Path) -> None:
    """The last tick of a recording (or any range inside one frame) made an edit that held
    no frame's start: FFmpeg presented nothing. Its edit now starts where the frame does,
    as long as asked; FFmpeg presents the frame."""
    rec = library.main[1]
    m = rec.media_duration_90k
    for start, end, frame in [(m - 1, m, 299), (1500, 1501, 0), (46_000, 47_000, 15),
                              (45_000, 45_001, 15)]:
        vf = build_mp4([library.segment(rec, start, end)], library.env.db.video_sample_entries)
        lead = 30 * 3000 * (frame // 30)  # the GOP's key frame
        assert edit_list(vf.header) == [(frame * 3000 - lead, end - start)], (start, end)
        path = tmp_path / f"{start}.mp4"
        path.write_bytes(read_file(vf, library.reader))
        number = library.clip_frames[rec.composite_id] + frame
        assert decode(path) == [(0, number, 640)], (start, end)


# --- byte ranges ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_recordings(library: Library) -> tuple[VirtualFile, bytes]:
    vf = build_mp4([library.segment(library.main[0], 46_500, 1_000_000),
                    library.segment(library.main[1], 0, 400_000)],
                   library.env.db.video_sample_entries)
    return vf, read_file(vf, FileReader(library.env), chunk=7_777)


@pytest.fixture(scope="module")
def entry_changes(library: Library) -> tuple[VirtualFile, bytes]:
    """640x360, 320x240, 640x360: parameter sets in front of every key frame."""
    a, b = library.main[3], library.main[4]
    vf = build_mp4([library.segment(a, 150_000, a.media_duration_90k),
                    library.segment(b, 0, 100_000), library.segment(a, 0, 50_000)],
                   library.env.db.video_sample_entries)
    assert [s.key_frames for s in vf.segments] == [2, 2, 1]
    return vf, read_file(vf, FileReader(library.env), chunk=7_777)


@settings(max_examples=40, deadline=None, suppress_health_check=[FIXTURE_CHECK])
@given(cuts=st.lists(st.integers(0, 1 << 40), max_size=12), chunk=st.integers(1, 300_000))
@pytest.mark.parametrize("file", ["two_recordings", "entry_changes"])
def test_any_ranges_reassemble_to_the_whole_file(
    library: Library, request: pytest.FixtureRequest, file: str, cuts: list[int], chunk: int
) -> None:
    vf, whole = request.getfixturevalue(file)
    assert len(whole) == vf.size
    points = sorted({0, vf.size, *(c % (vf.size + 1) for c in cuts)})
    reader = FileReader(library.env)
    pieces = [
        trio.run(_collect, vf, a, b, reader, chunk) for a, b in itertools.pairwise(points)
    ]
    assert b"".join(pieces) == whole
    for a, b, piece in zip(points, points[1:], pieces, strict=False):
        assert piece == whole[a:b]
    assert all(length <= chunk for _, _, length in reader.calls)


async def _collect(vf: VirtualFile, start: int, end: int, reader: FileReader, chunk: int) -> bytes:
    chunks = [c async for c in vf.read(start, end, reader, chunk)]
    assert all(0 < len(c) <= chunk for c in chunks)
    return b"".join(chunks)


def test_reads_are_bounded_and_the_header_needs_no_sample_file(
    library: Library, two_recordings: tuple[VirtualFile, bytes]
) -> None:
    vf, whole = two_recordings
    reader = FileReader(library.env)
    assert trio.run(_collect, vf, 0, len(vf.header), reader, 1 << 20) == vf.header
    assert reader.calls == []
    assert trio.run(_collect, vf, 0, vf.size, reader, 200_000) == whole
    first, second = vf.slices
    assert (first.length, second.length) == (410_867, 161_459)
    # each slice read in chunks of at most 200 000 bytes
    assert reader.calls == [
        (first.composite_id, 0, 200_000),
        (first.composite_id, 200_000, 200_000),
        (first.composite_id, 400_000, 10_867),
        (second.composite_id, 0, 161_459),
    ]


def test_out_of_range_reads_and_short_files(library: Library,
                                            two_recordings: tuple[VirtualFile, bytes]) -> None:
    vf, _ = two_recordings
    with pytest.raises(errors.InvalidArgument):
        trio.run(_collect, vf, 0, vf.size + 1, FileReader(library.env), 100)

    async def short(cid: int, offset: int, length: int) -> bytes:
        return b"x" * (length - 1)

    with pytest.raises(errors.DataLoss, match="wanted 100 bytes"):
        trio.run(_collect, vf, vf.size - 100, vf.size, short, 100)  # type: ignore[arg-type]


# --- ETags --------------------------------------------------------------------------------------


def _build_some(env: RecordingEnv) -> list[VirtualFile]:
    db = env.db
    main = db.list_recordings_by_time(env.stream_ids[0], 0, 1 << 62)
    hevc = db.list_recordings_by_time(env.stream_ids[1], 0, 1 << 62)
    entries = db.video_sample_entries

    def seg(rec: ListedRecording, a: int, b: int) -> Segment:
        return segment_from_db(db, rec, a, b)

    return [
        build_mp4([seg(main[0], 0, 1_800_000)], entries),
        build_mp4([seg(main[0], 1, 1_800_000)], entries),
        build_mp4([seg(main[0], 0, 1_799_999)], entries),
        build_mp4([seg(main[3], 0, 270_000), seg(main[4], 0, 267_000)], entries),
        build_mp4([seg(main[3], 0, 270_000)], entries, subtitle_tz=dt.UTC),
        build_mp4([seg(main[3], 0, 270_000)], entries, subtitle_tz=ZoneInfo("Asia/Tokyo")),
        build_m4s([seg(main[0], 0, 1_800_000)], entries),
        build_m4s([seg(hevc[0], 0, 447_000)], entries),
        build_init(main[0].video_sample_entry_id, entries[main[0].video_sample_entry_id]),
        build_init(hevc[0].video_sample_entry_id, entries[hevc[0].video_sample_entry_id]),
    ]


def test_etags_survive_a_restart_and_differ_with_content(tmp_path: Path) -> None:
    record(tmp_path, standard_scripts())
    env = open_env(tmp_path, now=lambda: T0 + 100 * SEC)
    try:
        before = [(f.etag, f.size, f.header) for f in _build_some(env)]
    finally:
        env.close()
    env = open_env(tmp_path, now=lambda: T0 + 200 * SEC)
    try:
        after = [(f.etag, f.size, f.header) for f in _build_some(env)]
    finally:
        env.close()
    assert after == before
    etags = [etag for etag, _, _ in before]
    assert len(set(etags)) == len(etags)
    assert all(e.startswith('"') and e.endswith('"') and len(e) == 42 for e in etags)


def test_etag_depends_on_open_id_and_format_version(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = library.main[0]
    index = decode_video_index(library.env.db.get_video_index(rec.composite_id))
    entries = library.env.db.video_sample_entries
    base = build_mp4([Segment(rec, index, 0, 90_000)], entries)
    other_open = build_mp4([Segment(dataclasses.replace(rec, open_id=rec.open_id + 1), index,
                                    0, 90_000)], entries)
    assert other_open.header == base.header and other_open.etag != base.etag
    monkeypatch.setattr(virtual, "FORMAT_VERSION", virtual.FORMAT_VERSION + 1)
    bumped = build_mp4([Segment(rec, index, 0, 90_000)], entries)
    assert bumped.header == base.header and bumped.etag != base.etag


# --- .m4s and init segments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "ranges"),
    [
        ("main", [(0, 46_500, 1_000_000)]),
        ("main", [(1, 0, 900_000), (2, 0, 897_000)]),
        ("main", [(4, 100_000, 200_000)]),
        ("hevc", [(0, 0, 447_000)]),
    ],
)
def test_m4s_after_its_init_segment_decodes(
    library: Library, tmp_path: Path, stream: str, ranges: list[tuple[int, int, int]]
) -> None:
    recs = getattr(library, stream)
    entries = library.env.db.video_sample_entries
    segs = [(recs[i], a, b) for i, a, b in ranges]
    m4s = build_m4s([library.segment(*s) for s in segs], entries)
    entry_id = segs[0][0].video_sample_entry_id
    init = build_init(entry_id, entries[entry_id])
    assert [b.box_type for b in walk_boxes(init.header) if b.depth == 0] == [b"ftyp", b"moov"]
    assert init.slices == () and init.size == len(init.header)
    assert [b.box_type for b in walk_boxes(m4s.header) if b.depth == 0] == [b"moof", b"mdat"]
    expected = reference(library, segs)
    base = expected.frames[0].cts
    tfdt = box_payload(m4s.header, b"tfdt")
    first_start = m4s.segments[0].actual_start_90k
    assert struct.unpack(">Q", tfdt[4:12])[0] == first_start
    assert m4s.leading_media_duration_90k == segs[0][1] - first_start
    assert m4s.prev_media_duration_90k == segs[0][0].prev_media_duration_90k
    path = tmp_path / "seg.mp4"
    path.write_bytes(read_file(init, library.reader) + read_file(m4s, library.reader))
    decoded = decode(path)
    want = [(f.cts - base + first_start, f.number, f.width) for f in expected.frames]
    assert decoded == want
    if stream == "hevc":
        assert any(b.box_type == b"hvc1" for b in walk_boxes(init.header))


def test_m4s_sequence_numbers_count_up_with_the_recordings(library: Library) -> None:
    """Each .m4s holds one fragment, numbered by its first recording (id + 1): the .m4s
    of consecutive recordings, appended one after another, count up."""
    entries = library.env.db.video_sample_entries
    recs = library.main[:3]
    m4s = [build_m4s([library.segment(r, 0, r.media_duration_90k)], entries) for r in recs]
    numbers = [fragment_header(f.header)[0] for f in m4s]
    assert numbers == [r.composite_id % (1 << 32) + 1 for r in recs]
    assert numbers == sorted(set(numbers)) and numbers[0] >= 1
    # two parts of one recording share its number (what is known of a .m4s alone)
    part = build_m4s([library.segment(recs[1], 90_000, 180_000)], entries)
    assert fragment_header(part.header)[0] == numbers[1]


def test_m4s_refuses_two_sample_entries(library: Library) -> None:
    segs = [library.segment(library.main[3], 0, 270_000), library.segment(library.main[4], 0, 1)]
    with pytest.raises(errors.InvalidArgument, match="one sample entry"):
        build_m4s(segs, library.env.db.video_sample_entries)


def test_init_segment_orders_its_sample_tables_as_mp4_files_do(library: Library) -> None:
    """stsd, stts, stsc, stsz, then stco (ISO/IEC 14496-12's order, and the .mp4's)."""
    entry_id = library.main[0].video_sample_entry_id
    entries = library.env.db.video_sample_entries
    init = build_init(entry_id, entries[entry_id])
    mp4 = build_mp4([library.segment(library.main[0], 0, 90_000)], entries)

    def stbl_children(data: bytes) -> list[bytes]:
        stbl = next(b for b in walk_boxes(data) if b.box_type == b"stbl")
        return [b.box_type for b in walk_boxes(data) if b.depth == stbl.depth + 1
                and stbl.offset < b.offset < stbl.offset + stbl.size]

    assert stbl_children(init.header) == [b"stsd", b"stts", b"stsc", b"stsz", b"stco"]
    assert stbl_children(mp4.header) == [b"stsd", b"stts", b"stsc", b"stsz", b"stco", b"stss"]


def test_init_segment_fields(library: Library) -> None:
    entry_id = library.main[0].video_sample_entry_id
    entry = library.env.db.video_sample_entries[entry_id]
    init = build_init(entry_id, entry)
    assert init.header[4:8] == b"ftyp" and init.header[8:12] == b"iso5"
    trex = box_payload(init.header, b"trex")
    assert u32s(trex, 4) == [1, 1, 0, 0, 0]
    assert entry.data in init.header
    assert init.aspect == (16, 9)
    assert init.mime_type == f'video/mp4; codecs="{entry.rfc6381_codec}"'
    assert init.last_modified_90k is None


# --- subtitles ------------------------------------------------------------------------------------


def test_subtitle_track_carries_wall_clock_seconds(library: Library, tmp_path: Path) -> None:
    rec = library.main[1]  # starts at T0 + 20 s
    vf = build_mp4([library.segment(rec, 46_500, 300_000)], library.env.db.video_sample_entries,
                   subtitle_tz=ZoneInfo("America/New_York"))
    # the text track's sample entry is in the Content-Type (issue 12)
    assert vf.mime_type == 'video/mp4; codecs="avc1.64001e, tx3g"'
    path = tmp_path / "ts.mp4"
    path.write_bytes(read_file(vf, library.reader))
    with av.open(str(path)) as container:
        sub = container.streams.subtitles[0]
        samples = [(p.pts, p.duration, bytes(p)) for p in container.demux(sub) if p.size]
    start = rec.start_time_90k + 46_500
    first_second = (start // SEC + 1) * SEC
    zone = ZoneInfo("America/New_York")
    seconds = [start // SEC] + [first_second // SEC + k for k in range(3)]
    texts = [dt.datetime.fromtimestamp(s, zone).strftime("%Y-%m-%d %H:%M:%S %z") for s in seconds]
    assert texts[0] == "2023-11-14 17:14:20 -0500"
    lead = first_second - start
    assert samples == [
        (0, lead, b"\x00\x19" + texts[0].encode()),
        (lead, SEC, b"\x00\x19" + texts[1].encode()),
        (lead + SEC, SEC, b"\x00\x19" + texts[2].encode()),
        (lead + 2 * SEC, 253_500 - lead - 2 * SEC, b"\x00\x19" + texts[3].encode()),
    ]
    assert len(decode(path)) == 100 - 16


def test_subtitle_tail_after_in_band_parameter_sets(library: Library) -> None:
    """``tail`` and the ``.txt`` dump find the subtitle samples at the end of a file whose
    second segment starts with in-band parameter sets (bytes between the slices)."""
    first, second = library.main[3], library.main[4]
    vf = build_mp4([library.segment(first, 0, first.media_duration_90k),
                    library.segment(second, 0, 90_000)], library.env.db.video_sample_entries,
                   subtitle_tz=dt.UTC)
    data = read_file(vf, library.reader)
    assert vf.tail_size and vf.tail_size % 27 == 0  # 27-byte samples, one a second
    assert vf.tail == data[-vf.tail_size:]
    assert f"[{vf.size - vf.tail_size}, {vf.size}) subtitle samples" in vf.text_dump()


# --- growing recordings --------------------------------------------------------------------


async def test_a_growing_recording_is_served_as_of_build_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    with inline_blocking():
        create_env(tmp_path, streams=1, flush_if_sec=0)
        clocks = SimulatedClocks(T0)
        env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
        opener = ReplayOpener(clocks, {"rtsp://cam0/main": [Session(load_packets(CLIP), loops=1)]})
        syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
        reader = FileReader(env)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(syncer.run)
                nursery.start_soon(_streamer(env, env.stream_ids[0], syncer, opener, clocks).run)
                await trio.sleep(5.05)
                (rec,) = env.db.list_recordings_by_time(env.stream_ids[0], 0, 1 << 62)
                assert rec.growing and not rec.committed
                seg = segment_from_db(env.db, rec, 0, 1 << 40)
                vf = build_mp4([seg], env.db.video_sample_entries)
                frames = vf.segments[0].frames
                assert 140 <= frames <= 152
                first = await vf.read_all(reader)
                await trio.sleep(3)  # it keeps growing ...
                assert await vf.read_all(reader) == first  # ... the file stays as built
                nursery.cancel_scope.cancel()
        finally:
            env.close()
    path = tmp_path / "growing.mp4"
    path.write_bytes(first)
    decoded = decode(path)
    assert decoded == [(i * 3000, i, 640) for i in range(frames)]


# --- lazy layout and generation ------------------------------------------------------------------


def synthetic_recordings(n: int, frames: int = 90) -> list[tuple[ListedRecording, bytes]]:
    """``n`` consecutive recordings of one run, frames of 3000 ticks (one in seven 3003,
    so ``stts`` runs both merge across recordings and break inside them), a key frame
    every 30 frames, sizes that differ frame by frame."""
    out, start = [], T0
    for i in range(n):
        enc = VideoIndexEncoder()
        for j in range(frames):
            enc.add(3003 if (i + j) % 7 == 0 and i % 3 else 3000, 100 + (i * 31 + j) % 97,
                    j % 30 == 0)
        t = enc.totals
        rec = ListedRecording(1 << 32 | i, 5, start, t.media_duration_90k, t.media_duration_90k,
                              t.frames, t.key_frames, 1, t.bytes, i, 0, start - T0, 0)
        start += t.media_duration_90k
        out.append((rec, enc.data))
    return out


class CountingFetch:
    def __init__(self, recs: Sequence[tuple[ListedRecording, bytes]]) -> None:
        self.indexes = {rec.composite_id: data for rec, data in recs}
        self.calls: list[int] = []

    def __call__(self, cid: int) -> bytes:
        self.calls.append(cid)
        return self.indexes[cid]


async def synthetic_payload(cid: int, offset: int, length: int) -> bytes:
    return bytes((cid + offset + i) % 251 for i in range(length))


def test_lazy_layout_matches_the_built_file_and_generates_tables_by_range() -> None:
    """100 recordings laid out from indexes fetched on demand: the same bytes and ETag as
    from decoded indexes; each index is fetched once to lay out, none for the .txt dump,
    and a range inside stsz fetches only the recordings it covers."""
    recs = synthetic_recordings(100)
    fetch = CountingFetch(recs)
    entries = {1: TEST_SAMPLE_ENTRY}
    lazy = [Segment(rec, None, 4000 if i == 0 else 0, 1 << 40) for i, (rec, _) in enumerate(recs)]
    eager = [Segment(rec, decode_video_index(d), s.rel_start_90k, 1 << 40)
             for (rec, d), s in zip(recs, lazy, strict=True)]
    built = build_mp4(eager, entries, subtitle_tz=dt.UTC)
    planned = trio.run(lambda: plan_mp4(lazy, entries, fetch=fetch,
                                                subtitle_tz=dt.UTC, run=run_inline))
    assert sorted(fetch.calls) == sorted(fetch.indexes)  # each once
    assert (planned.size, planned.etag, planned.header_size) == (
        built.size, built.etag, built.header_size)
    fetch.calls.clear()
    assert "stsz" in planned.text_dump() and fetch.calls == []
    # 4 KiB from the middle of stsz: 90 frames of 4 bytes per recording -> 12 recordings
    stsz = next(b for b in planned._boxes if b.box_type == b"stsz")
    lo = stsz.offset + 20 + 40 * 360
    part = trio.run(_collect_lazy, planned, lo, lo + 4096, 1 << 20)
    assert part == built.header[lo : lo + 4096]
    assert 11 <= len(fetch.calls) <= 13
    # the whole file, in odd chunk sizes, equals the eagerly built one
    whole = trio.run(_collect_lazy, planned, 0, planned.size, 9_999)
    assert whole == trio.run(_collect_lazy, built, 0, built.size, 1 << 20)
    assert whole[: built.header_size] == built.header
    assert whole[-len(built.tail):] == built.tail
    assert max(len(set(fetch.calls[i : i + SEGMENTS_PER_CALL]))
               for i in range(len(fetch.calls))) <= SEGMENTS_PER_CALL


def test_whole_recordings_with_stored_summaries_are_laid_out_without_their_indexes() -> None:
    """Segments covering recordings that carry their summary fetch no index to lay out (a
    partial first segment and a recording without a summary do), and give the same file
    and ETag as the decoded indexes, .mp4 and .m4s alike."""
    recs = synthetic_recordings(10)
    fetch = CountingFetch(recs)
    entries = {1: TEST_SAMPLE_ENTRY}
    summarized = [dataclasses.replace(rec, index_summary=summarize_index(d)) if i != 5 else rec
                  for i, (rec, d) in enumerate(recs)]
    starts = [4000] + [0] * 9
    lazy = [Segment(rec, None, a, 1 << 40) for rec, a in zip(summarized, starts, strict=True)]
    eager = [Segment(rec, decode_video_index(d), a, 1 << 40)
             for (rec, d), a in zip(recs, starts, strict=True)]
    for plan, build in ((plan_mp4, build_mp4), (plan_m4s, build_m4s)):
        fetch.calls.clear()
        planned = trio.run(lambda: plan(lazy, entries, fetch=fetch, run=run_inline))  # noqa: B023
        assert fetch.calls == [recs[0][0].composite_id, recs[5][0].composite_id]
        built = build(eager, entries)
        assert (planned.etag, planned.size, planned.segments) == (
            built.etag, built.size, built.segments)
        assert (trio.run(_collect_lazy, planned, 0, planned.size, 1 << 20)
                == trio.run(_collect_lazy, built, 0, built.size, 1 << 20))


def test_stored_summaries_of_the_recorded_library_equal_the_selections(
    library: Library,
) -> None:
    """The streamer's recordings (trailing zeros, a resolution change, HEVC) as committed:
    each whole recording's selection from its row and stored summary is the one its
    decoded index gives."""
    db = library.env.db
    for recs in (library.main, library.hevc):
        listed = db.list_recordings_by_id(recs[0].composite_id >> 32, 0, 100)
        assert listed == recs
        for rec in listed:
            index = decode_video_index(db.get_video_index(rec.composite_id))
            seg = Segment(rec, None, 0, rec.media_duration_90k)
            stored = stored_select(seg)
            assert stored is not None and stored == select(seg, index)


async def _collect_lazy(vf: VirtualFile, start: int, end: int, chunk: int) -> bytes:
    chunks = [c async for c in vf.read(start, end, synthetic_payload, chunk, run_inline)]
    assert all(0 < len(c) <= chunk for c in chunks)
    return b"".join(chunks)


#: sha256 of the whole golden file below (header, payload from ``synthetic_payload``,
#: subtitle samples) and its ETag: a change of either must be deliberate. (The bytes are
#: those the builder made before tables were generated by range; the ETag is the one
#: derived from per-segment frame digests since then.)
GOLDEN_FILE_SHA256 = "9075ef5c48e2600d618f974d54354e22bd7386dad1c6f1e1a4efd0e93612e34a"
GOLDEN_FILE_ETAG = '"1176227750265ae8daf94f030d2e5b3e54c42c01"'
GOLDEN_FILE_SIZE = 38262


def test_golden_file_byte_for_byte() -> None:
    """Three recordings (0.5 s in from the first, the last cut at 2 s) with the timestamp
    subtitle track in Tokyo time: every byte of the file and its ETag are pinned, and the
    lazily laid-out file (indexes fetched on demand) is the same."""
    recs = synthetic_recordings(3)
    entries = {1: TEST_SAMPLE_ENTRY}
    ranges = [(SEC // 2, 1 << 40), (0, 1 << 40), (0, 2 * SEC)]
    tz = ZoneInfo("Asia/Tokyo")
    eager = [Segment(rec, decode_video_index(d), a, b)
             for (rec, d), (a, b) in zip(recs, ranges, strict=True)]
    vf = build_mp4(eager, entries, subtitle_tz=tz)
    data = trio.run(_collect_lazy, vf, 0, vf.size, 1 << 20)
    assert (hashlib.sha256(data).hexdigest(), vf.etag, vf.size) == (
        GOLDEN_FILE_SHA256, GOLDEN_FILE_ETAG, GOLDEN_FILE_SIZE)
    lazy = [Segment(rec, None, a, b) for (rec, _), (a, b) in zip(recs, ranges, strict=True)]
    planned = trio.run(lambda: plan_mp4(lazy, entries, fetch=CountingFetch(recs),
                                                subtitle_tz=tz, run=run_inline))
    assert planned.etag == vf.etag
    assert trio.run(_collect_lazy, planned, 0, planned.size, 777) == data


def test_consecutive_m4s_segments_abut_with_the_prev_media_duration_offset() -> None:
    """The tfdt decision (module docstring): with timestampOffset = X-Prev-Media-Duration,
    segments that split a recording, and the next recording's, abut exactly."""
    recs = synthetic_recordings(2)
    entries = {1: TEST_SAMPLE_ENTRY}
    (a, a_ix), (b, b_ix) = recs
    split = 30 * 3000  # the key frame at frame 30
    pieces = [build_m4s([Segment(a, decode_video_index(a_ix), 0, split)], entries),
              build_m4s([Segment(a, decode_video_index(a_ix), split, 1 << 40)], entries),
              build_m4s([Segment(b, decode_video_index(b_ix), 0, 1 << 40)], entries)]
    spans = []
    for m4s in pieces:
        tfdt = box_payload(m4s.header, b"tfdt")
        base = struct.unpack(">Q", tfdt[4:12])[0]
        trun = box_payload(m4s.header, b"trun")
        count = struct.unpack(">I", trun[4:8])[0]
        durations = np.frombuffer(trun[12:], dtype=">u4").reshape(count, 3)[:, 0]
        start = m4s.prev_media_duration_90k + base
        spans.append((start, start + int(durations.sum())))
    assert spans[0][0] == 0
    assert spans[0][1] == spans[1][0] and spans[1][1] == spans[2][0]
    assert pieces[1].leading_media_duration_90k == 0 and spans[1][0] == split
