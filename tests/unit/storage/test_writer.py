"""RecordingWriter on a mock clock: index one frame behind, trailing zero, wall-time
correction, the 5-minute limit, and write failures that keep what was written."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio.testing

from nvr.base import errors
from nvr.base.blocking import inline_blocking
from nvr.base.time90k import UNITS_PER_MIN
from nvr.db.recording import iter_video_index
from nvr.db.types import FLAG_TRAILING_ZERO, PendingRecording, PendingState
from nvr.storage.writer import (
    MAX_MEDIA_DURATION,
    RecordingTooLong,
    RecordingWriter,
    Run,
    corrected_wall_duration,
)
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import SynthFrame, synth_frame


class ListSink:
    def __init__(self) -> None:
        self.recs: list[PendingRecording] = []

    async def submit(self, rec: PendingRecording) -> None:
        self.recs.append(rec)


@pytest.fixture
def env(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> Iterator[RecordingEnv]:
    create_env(tmp_path)
    with inline_blocking():
        e = open_env(tmp_path, now=lambda: T0)
        yield e
        e.close()


def writer(env: RecordingEnv, sink: ListSink, run: Run) -> RecordingWriter:
    return RecordingWriter(db=env.db, sdir=env.sdir, sink=sink, stream_id=env.stream_ids[0],
                           run=run, video_sample_entry_id=env.entry_id)


def file_bytes(env: RecordingEnv, cid: int) -> bytes:
    return (env.sample_dir / f"{cid:016x}").read_bytes()


async def test_index_is_one_frame_behind_and_clean_close(env: RecordingEnv) -> None:
    sink = ListSink()
    w = writer(env, sink, Run())
    frames = [synth_frame(i) for i in range(3)]
    with inline_blocking():
        await w.write(frames, T0)
        rec = w.rec
        assert rec is not None and rec.state is PendingState.GROWING
        assert (rec.video_samples, rec.media_duration_90k) == (2, 6000)
        assert rec.sample_file_bytes == len(frames[0].data) + len(frames[1].data)
        await w.close(next_pts=9000)
    assert sink.recs == [rec]
    assert rec.state is PendingState.DONE and rec.flags == 0
    assert (rec.video_samples, rec.video_sync_samples, rec.media_duration_90k) == (3, 1, 9000)
    data = file_bytes(env, rec.composite_id)
    assert data == b"".join(f.data for f in frames)
    assert rec.sample_file_sha256 == hashlib.sha256(data).digest()
    assert [(e.duration_90k, e.bytes, e.is_key) for e in iter_video_index(rec.video_index)] == [
        (3000, len(frames[0].data), True),
        (3000, len(frames[1].data), False),
        (3000, len(frames[2].data), False),
    ]


async def test_unclean_close_gives_trailing_zero(env: RecordingEnv) -> None:
    sink = ListSink()
    w = writer(env, sink, Run())
    with inline_blocking():
        await w.write([synth_frame(i) for i in range(4)], T0)
        await w.close(next_pts=None, end_reason="camera hung up")
    rec = sink.recs[0]
    assert rec.flags & FLAG_TRAILING_ZERO
    assert rec.end_reason == "camera hung up"
    assert [e.duration_90k for e in iter_video_index(rec.video_index)] == [3000, 3000, 3000, 0]
    assert rec.media_duration_90k == 9000


async def test_first_frame_must_be_key(env: RecordingEnv) -> None:
    w = writer(env, ListSink(), Run())
    with inline_blocking(), pytest.raises(errors.InvalidArgument):
        await w.write([synth_frame(1)], T0)
    assert env.db.streams[env.stream_ids[0]].pending == []


def test_wall_correction_is_limited_to_500_ppm() -> None:
    minute = UNITS_PER_MIN
    assert corrected_wall_duration(minute, minute + 10) == minute + 10
    assert corrected_wall_duration(minute, minute + 5000) == minute + 2700  # 500 ppm of 1 min
    assert corrected_wall_duration(minute, minute - 5000) == minute - 2700
    assert corrected_wall_duration(0, 5) == 0


async def test_run_timing_corrects_a_fast_camera_clock(env: RecordingEnv) -> None:
    """The camera's clock runs 1000 ppm fast. The first recording defines the run's start
    (its least-delayed frame, here the last, as the camera gains on the local clock) and
    needs no correction; the next one is 5400 ticks behind the local clock and is
    corrected by the most allowed, 500 ppm; recordings of the run abut exactly."""
    sink = ListSink()
    run = Run()
    frame_ticks = 3000
    local_per_frame = 2997  # local time advances 0.1 % slower than the camera's
    recs = []
    for r in range(2):
        w = writer(env, sink, run)
        base = r * 1800
        with inline_blocking():
            for i in range(1800):
                n = base + i
                f = SynthFrame(synth_frame(n).data, n * frame_ticks, n % 30 == 0)
                await w.write([f], T0 + n * local_per_frame)
            await w.close(next_pts=(base + 1800) * frame_ticks)
        recs.append(sink.recs[-1])
    media = 1800 * frame_ticks
    assert recs[0].start_time_90k == T0 - 1799 * 3
    assert [r.media_duration_90k for r in recs] == [media, media]
    assert [r.wall_duration_90k for r in recs] == [media, media - 2700]
    assert [r.local_time_delta_90k for r in recs] == [0, 5400]
    assert [r.wall_time_delta_90k for r in recs] == [0, 5400 - 2700]
    assert recs[1].start_time_90k == recs[0].start_time_90k + recs[0].wall_duration_90k
    assert run.next_start == recs[1].start_time_90k + recs[1].wall_duration_90k
    assert recs[1].run_offset == 1 and recs[0].run_offset == 0


async def test_start_is_earliest_arrival_minus_offset(env: RecordingEnv) -> None:
    """Network delay varies; the first recording of a run starts at the least-delayed
    frame's arrival minus its media offset."""
    sink = ListSink()
    w = writer(env, sink, Run())
    delays = [900, 300, 2000, 450]
    with inline_blocking():
        for i, d in enumerate(delays):
            await w.write([synth_frame(i)], T0 + i * 3000 + d)
        await w.close(next_pts=12000)
    assert sink.recs[0].start_time_90k == T0 + 300


async def test_recording_reaching_five_minutes_is_refused_before_the_frame(
    env: RecordingEnv,
) -> None:
    sink = ListSink()
    run = Run()
    w = writer(env, sink, run)
    ticks = 90_000  # one frame a second, only the first is a key frame
    with inline_blocking():
        await w.write([SynthFrame(b"k" * 100, 0, True)], T0)
        n = 1
        with pytest.raises(RecordingTooLong) as info:
            while True:
                await w.write([SynthFrame(b"p" * 10, n * ticks, False)], T0 + n * ticks)
                n += 1
        assert info.value.next_pts == n * ticks
        assert n * ticks > MAX_MEDIA_DURATION >= (n - 1) * ticks
        await w.close(info.value.next_pts, "no key frame")
    rec = sink.recs[0]
    assert rec.video_samples == n
    assert rec.wall_duration_90k < 5 * UNITS_PER_MIN


async def test_failed_write_keeps_frames_already_written(env: RecordingEnv) -> None:
    sink = ListSink()
    w = writer(env, sink, Run())
    frames = [synth_frame(i) for i in range(6)]
    with inline_blocking():
        await w.write(frames[:3], T0)
        env.sdir.fail("write_all", errno.ENOSPC, times=1, partial=True)
        with pytest.raises(errors.ResourceExhausted):
            await w.write(frames[3:], T0 + 9000)
        with pytest.raises(errors.Internal):
            await w.write(frames[3:], T0 + 9000)  # a failed writer only closes
        await w.close(next_pts=frames[3].pts, end_reason="disk full")
    rec = sink.recs[0]
    data = file_bytes(env, rec.composite_id)
    assert data == b"".join(f.data for f in frames[:3])
    assert rec.video_samples == 3 and rec.sample_file_bytes == len(data)
    assert rec.sample_file_sha256 == hashlib.sha256(data).digest()


async def test_failed_create_leaves_no_pending_recording(env: RecordingEnv) -> None:
    w = writer(env, ListSink(), Run())
    env.sdir.fail("create_file", errno.EIO, times=1)
    with inline_blocking(), pytest.raises(errors.Internal):
        await w.write([synth_frame(0)], T0)
    stream = env.db.streams[env.stream_ids[0]]
    assert stream.pending == [] and stream.next_recording_id == 0
