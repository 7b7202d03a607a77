"""The whole-recording index summary: what the writer computes and the commit stores equals
what ``nvr.mp4.selection`` computes from the decoded index, field for field (trailing
zeros and single-frame recordings included); ``check_summary`` names what differs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import trio.testing

from nvr.base import errors
from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.frames_summary import FramesSummary, check_summary, summarize, summarize_index
from nvr.db.recording import VideoIndexEncoder, decode_video_index
from nvr.db.types import FLAG_TRAILING_ZERO, ListedRecording
from nvr.mp4.selection import Segment, select, stored_select
from nvr.storage.writer import RecordingWriter, Run
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import SynthFrame, synth_frame

SEC = UNITS_PER_SEC

#: (pts step of each frame after the first, clean end) of each recording written below
RECORDINGS: list[tuple[list[int], bool]] = [
    ([], False),  # one frame, trailing zero: media duration 0
    ([], True),  # one frame of 3000
    ([3000] * 59, True),  # two GOPs, one run of durations
    ([3000] * 30 + [3003] * 7 + [2997] * 12, False),  # three runs, then a trailing zero
    ([3000, 3003] * 20, True),  # every frame a run
]


async def write(env: RecordingEnv, sink: Syncer, steps: Sequence[int], clean: bool,
                clocks: SimulatedClocks) -> None:
    """One recording (a run of its own) of frames ``steps`` ticks apart."""
    w = RecordingWriter(db=env.db, sdir=env.sdir, sink=sink, stream_id=env.stream_ids[0],
                        run=Run(), video_sample_entry_id=env.entry_id)
    pts = 0
    for i, step in enumerate([0, *steps]):
        pts += step
        await w.write([SynthFrame(synth_frame(i).data, pts, i % 30 == 0)], clocks.realtime())
        await clocks.sleep(step or 1)
    await w.close(pts + 3000 if clean else None)
    assert w.rec is not None and w.rec.index_summary is not None  # the writer's


@pytest.fixture
async def committed(tmp_path: Path, autojump_clock: trio.testing.MockClock
                    ) -> list[tuple[ListedRecording, bytes]]:
    """``RECORDINGS`` written by the writer and committed by the syncer, then listed by id
    from the reopened database, each with its ``video_index``."""
    create_env(tmp_path, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    with inline_blocking():
        env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
        try:
            syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
            for steps, clean in RECORDINGS:
                await write(env, syncer, steps, clean, clocks)
                await syncer.run_once()
            assert env.db.streams[env.stream_ids[0]].cum_recordings == len(RECORDINGS)
        finally:
            env.close()
        env = open_env(tmp_path, now=clocks.realtime)
    try:
        listed = env.db.list_recordings_by_id(env.stream_ids[0], 0, 100)
        return [(r, env.db.get_video_index(r.composite_id)) for r in listed]
    finally:
        env.close()


async def test_the_commit_path_stores_what_select_computes(
    committed: list[tuple[ListedRecording, bytes]],
) -> None:
    recs = [r for r, _ in committed]
    assert [(r.video_samples, bool(r.flags & FLAG_TRAILING_ZERO)) for r in recs] == [
        (1, True), (1, False), (60, False), (50, True), (41, False)]
    assert recs[0].media_duration_90k == 0
    for rec, data in committed:
        index = decode_video_index(data)
        assert rec.index_summary == summarize(index)
        for end in (rec.media_duration_90k, rec.media_duration_90k + 1, 1 << 40):
            seg = Segment(rec, index, 0, end)
            stored = stored_select(seg)
            assert stored is not None and stored == select(seg, index)
    assert [r.index_summary.runs for r in recs if r.index_summary] == [1, 1, 1, 4, 41]


async def test_partial_segments_are_not_taken_from_the_summary(
    committed: list[tuple[ListedRecording, bytes]],
) -> None:
    rec = committed[2][0]
    assert stored_select(Segment(rec, None, 1, 1 << 40)) is None
    assert stored_select(Segment(rec, None, 0, rec.media_duration_90k - 1)) is None


def test_a_flush_summarizes_recordings_the_writer_did_not(tmp_path: Path) -> None:
    """Recordings made by hand (tests, benchmarks) get the same summary at commit."""
    create_env(tmp_path)
    env = open_env(tmp_path, now=lambda: T0)
    try:
        enc = VideoIndexEncoder()
        for j in range(100):
            enc.add(3000 + (j % 3 == 0), 500 + j, j % 25 == 0)
        rec = env.db.add_recording(env.stream_ids[0], run_offset=0, start_time_90k=T0,
                                   video_sample_entry_id=env.entry_id)
        rec.video_index, rec.sample_file_bytes = enc.data, enc.total_bytes
        rec.video_samples, rec.video_sync_samples = enc.frames, enc.key_frames
        rec.media_duration_90k = rec.wall_duration_90k = enc.media_duration
        env.db.mark_done(rec)
        env.db.mark_synced(rec.composite_id)
        env.db.flush("test")
        (listed,) = env.db.list_recordings_by_id(env.stream_ids[0], 0, 1)
        assert listed.index_summary == summarize_index(enc.data)
        # listings by time (the covering index) do not read the summary columns
        (by_time,) = env.db.list_recordings_by_time(env.stream_ids[0], 0, 1 << 62)
        assert by_time.index_summary is None and by_time == listed
    finally:
        env.close()


def test_summarize_refuses_an_empty_range() -> None:
    enc = VideoIndexEncoder()
    enc.add(3000, 10, True)
    index = decode_video_index(enc.data)
    with pytest.raises(ValueError):
        summarize(index, 1, 1)
    with pytest.raises(ValueError):
        summarize_index(b"")


def test_check_summary_names_each_difference() -> None:
    good = FramesSummary(3, 3000, 10, 0, bytes(range(16)))
    check_summary(good, good)
    with pytest.raises(errors.DataLoss, match=r"^no stored index summary$"):
        check_summary(None, good)
    bad = FramesSummary(4, 3000, 10, 0, bytes(16))
    with pytest.raises(errors.DataLoss) as e:
        check_summary(bad, good)
    assert str(e.value) == (
        "stored index summary does not match its video_index: runs 4 (index says 3), "
        f"digest {'00' * 16} (index says {bytes(range(16)).hex()})")
