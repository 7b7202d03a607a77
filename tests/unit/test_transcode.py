"""``nvr.transcode``: H.265 (and H.264) frames in, H.264 frames out, one for one with the
same timing; key frames where the input's are; the size bound; a damaged frame skips to
the next key frame showing the last good picture; the worker thread's lower priority and
its CPU count."""

from __future__ import annotations

import io
import os
import struct
import threading
import time

import av
import numpy as np
import pytest

from fixtures.make_fixtures import read_frame_number
from nvr.base.errors import InvalidArgument
from nvr.codec import h264, h265
from nvr.db.recording import VideoSampleEntry
from nvr.mp4.fragment import build_fragment
from nvr.mp4.movie import build_init
from nvr.transcode import OutFrame, Settings, Transcoder, Worker, _threads_named, output_size
from tests.support.paths import FIXTURES
from tests.support.transcode import join_transcode_threads

Frame = tuple[bytes, bool, int, int]


def clip(name: str) -> tuple[VideoSampleEntry, list[Frame]]:
    """The clip's sample entry and (data, is_key, start, duration) per frame."""
    with av.open(str(FIXTURES / name)) as c:
        s = c.streams.video[0]
        ed = bytes(s.codec_context.extradata or b"")
        if s.codec_context.name == "hevc":
            sets, _ = h265.parse_hvcc_record(ed)
            entry = h265.sample_entry(sets[32], sets[33], sets[34])
        else:
            sps, pps, _ = h264.parse_avcc_record(ed)
            entry = h264.sample_entry(sps[0], pps[0])
        frames = [(bytes(p), p.is_keyframe, int(p.pts or 0), 3000)
                  for p in c.demux(s) if p.size]
    return entry, frames


def play(out: list[OutFrame], entry: VideoSampleEntry) -> list[tuple[int, int, int]]:
    """(pts, frame number, width) of each picture of the frames as one fragmented file."""
    data = build_init(0, entry).header + build_fragment(out, 1)
    got = []
    with av.open(io.BytesIO(data)) as c:
        for f in c.decode(video=0):
            luma = f.to_ndarray(format="gray")
            got.append((int(f.pts or 0), read_frame_number(luma), f.width))
    return got


def run(t: Transcoder, frames: list[Frame]) -> list[OutFrame]:
    out: list[OutFrame] = []
    for data, key, start, duration in frames:
        out += t.feed(data, key, start, duration)
    return out + t.flush()


def test_h265_becomes_h264_frame_for_frame_with_the_same_timing() -> None:
    entry, frames = clip("hevc-640x360.mp4")
    t = Transcoder(entry, Settings())
    out = run(t, frames)
    assert t.entry.codec_box_type == b"avcC" and t.entry.rfc6381_codec.startswith("avc1.")
    assert (t.entry.width, t.entry.height) == (640, 360)  # not larger than 720p: kept
    assert [(o.start, o.duration) for o in out] == [(f[2], f[3]) for f in frames]
    assert [o.is_key for o in out] == [f[1] for f in frames]  # key frames where the input's
    assert play(out, t.entry) == [(i * 3000, i, 640) for i in range(150)]
    assert (t.skipped, t.repeated) == (0, 0)


def test_larger_pictures_are_scaled_to_the_maximum_height() -> None:
    entry, frames = clip("h264-1920x1080.mp4")
    t = Transcoder(entry, Settings(max_height=720))
    out = run(t, frames[:31])
    assert (t.entry.width, t.entry.height) == (1280, 720)
    got = play(out, t.entry)
    assert [n for _, n, _ in got] == list(range(31)) and {w for *_, w in got} == {1280}


def test_output_size_keeps_the_display_aspect_and_even_sides() -> None:
    entry, _ = clip("hevc-640x360.mp4")
    assert output_size(entry, 720) == (640, 360)
    assert output_size(entry, 240) == (426, 240)
    assert output_size(entry, 145) == (258, 144)  # never above the bound


def test_a_damaged_frame_skips_to_the_next_key_frame_showing_the_last_good_picture() -> None:
    entry, frames = clip("hevc-640x360.mp4")
    broken = list(frames)
    _, key, start, duration = frames[40]
    # a NAL length that runs past the frame, then garbage
    broken[40] = (struct.pack(">I", 1 << 20) + bytes(range(256)) * 4, key, start, duration)
    t = Transcoder(entry, Settings())
    out = run(t, broken)
    assert [o.start for o in out] == [f[2] for f in frames]  # no hole in the timeline
    shown = [n for _, n, _ in play(out, t.entry)]
    assert shown == [*range(40), *[39] * 20, *range(60, 150)]
    assert (t.skipped, t.repeated) == (0, 20)


def test_damage_before_any_picture_leaves_those_frames_out() -> None:
    entry, frames = clip("hevc-640x360.mp4")
    broken = [(b"\x00\x00\x00\x02\xff\xff", *f[1:]) if i < 3 else f
              for i, f in enumerate(frames[:61])]
    t = Transcoder(entry, Settings())
    out = run(t, broken)
    assert [o.start for o in out] == [i * 3000 for i in range(30, 61)]
    assert out[0].is_key and t.skipped == 30


def test_frames_not_emitted_are_decoded_and_the_first_emitted_is_a_key_frame() -> None:
    entry, frames = clip("hevc-640x360.mp4")
    t = Transcoder(entry, Settings())
    out: list[OutFrame] = []
    for i, (data, key, start, duration) in enumerate(frames[:60]):
        out += t.feed(data, key, start, duration, emit=i >= 45)
    assert [o.start for o in out] == [i * 3000 for i in range(45, 60)]
    assert out[0].is_key and not any(o.is_key for o in out[1:])
    assert [n for _, n, _ in play(out, t.entry)] == list(range(45, 60))


def test_a_sample_entry_nvr_cannot_decode_is_refused() -> None:
    entry, _ = clip("hevc-640x360.mp4")
    bogus = VideoSampleEntry(**{**{f: getattr(entry, f) for f in entry.__dataclass_fields__},
                                "data": b"\x00\x00\x00\x08mp4v"})
    with pytest.raises(InvalidArgument, match="cannot transcode"):
        Transcoder(bogus, Settings())


def test_the_worker_thread_runs_at_a_lower_priority_and_the_caller_keeps_its_own() -> None:
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    w = Worker(10)
    try:
        assert w.call(os.getpriority, os.PRIO_PROCESS, 0) == min(19, mine + 10)
        assert os.getpriority(os.PRIO_PROCESS, 0) == mine
        assert w.call(np.add, 1, 2) == 3
    finally:
        w.close()


def test_the_worker_counts_the_cpu_of_its_thread_and_the_codec_threads_it_starts() -> None:
    entry, frames = clip("h264-1920x1080.mp4")
    reports: list[float] = []
    w = Worker(0, reports.append)
    try:
        t = w.call(w.transcoder, entry, Settings(max_height=720))
        named = w.call(_threads_named, w.name)
        assert threading.get_native_id() not in named
        assert len(named) >= 2  # the worker's own thread and libx264's
        own = w.call(lambda: run(t, frames[:60]) and time.thread_time())
    finally:
        w.close()
    join_transcode_threads()  # close's last report runs on the thread
    # every report is positive, and they add up to more than the worker thread's own
    # CPU time when the encoder's threads worked too (never less)
    assert reports and all(r > 0 for r in reports)
    assert sum(reports) >= own - 0.02  # /proc counts in clock ticks (10 ms)
