"""The analysis task on a mock clock, through the real pipeline: ReplayOpener -> streamer
(recordings) -> frame hub -> MotionAnalyzer (PyAV decode, detector, summaries, events)
-> database. Exact cells and media times."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import trio
import trio.testing

from fixtures.make_fixtures import SQUARE_START_FRAME, motion_clip
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.raw_motion import MotionRow
from nvr.ingest.hub import FrameHub
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.motion.detector import GRID
from nvr.motion.events import MOVING, STILL
from nvr.motion.summary import ENTRY, bitmap_to_cells
from nvr.motion.task import MotionAnalyzer, MotionOptions, start_motion
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from tests.support.determinism import T0
from tests.unit.motion.test_detector import crossed_cells

SEC = UNITS_PER_SEC
URL = "rtsp://cam0/main"
FRAME = 3000
DEFAULTS = MotionOptions()


pytestmark = pytest.mark.usefixtures("inline_seam")


@dataclass
class Result:
    env: RecordingEnv
    analyzer: MotionAnalyzer
    writes: list[tuple[int, int, int]]
    stores: list[tuple[int, str]]

    def rows(self) -> dict[int, tuple[int, MotionRow]]:
        """composite id -> (start time, stored summary)."""
        conn = sqlite3.connect(self.env.db_dir / "db")
        try:
            return {
                cid: (start, MotionRow(bytes(c), bytes(e), bytes(g), ms, fr, sk))
                for cid, start, c, e, g, ms, fr, sk in conn.execute(
                    """select m.composite_id, r.start_time_90k, cells, entries, global_seconds,
                              motion_seconds, frames, skipped
                       from recording_motion m join recording r using (composite_id)""")
            }
        finally:
            conn.close()


@pytest.fixture
async def run_scene(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> AsyncIterator:
    made: list[RecordingEnv] = []

    async def run(scene: str, seconds: float, options: MotionOptions = DEFAULTS) -> Result:
        create_env(tmp_path, streams=1, flush_if_sec=0)
        clocks = SimulatedClocks(T0)
        env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
        made.append(env)
        packets = load_packets(str(motion_clip(scene)))
        opener = ReplayOpener(clocks, {URL: [Session(packets, loops=None)]})
        syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
        hub = FrameHub()
        (sid,) = env.stream_ids
        streamer = Streamer(
            db=env.db, stream_id=sid, sdir=env.sdir, sink=syncer, opener=opener,
            clocks=clocks, hub=hub,
            options=StreamerOptions(rotate_interval=4 * SEC, jitter=0.0),
        )
        writes: list[tuple[int, int, int]] = []
        stores: list[tuple[int, str]] = []

        def store(cid: int, row: MotionRow) -> None:
            stores.append((cid, env.db.put_motion_summary(cid, row)))

        async with trio.open_nursery() as core:
            await core.start(syncer.run)
            async with trio.open_nursery() as ingest:
                analyzer = await start_motion(
                    ingest, stream_id=sid, hub=hub, store=store,
                    signal=lambda *w: writes.append(w), options=options,
                )
                await ingest.start(streamer.run)
                await clocks.sleep(round(seconds * SEC))
                ingest.cancel_scope.cancel()
            core.cancel_scope.cancel()
        return Result(env, analyzer, writes, stores)

    yield run
    for env in made:
        env.close()


def moved_times(result: Result) -> dict[int, set[int]]:
    """Wall second (from T0) -> cells that moved in it, from the stored summaries."""
    out: dict[int, set[int]] = {}
    for start, row in result.rows().values():
        for e in np.frombuffer(row.entries, dtype=ENTRY):
            t = start + int(e["second"]) * SEC
            out.setdefault((t - T0) // SEC, set()).add(int(e["cell"]))
    return out


async def test_static_scene_no_motion_no_signal(run_scene) -> None:  # type: ignore[no-untyped-def]
    r = await run_scene("static", 13.5)  # not at a batch's end (every 1/3 s): see below
    assert r.writes == []
    rows = r.rows()
    assert len(rows) == 3  # rotations at T0 + 8 s and T0 + 12 s
    assert all(row.motion_seconds == 0 and row.entries == b"" for _, row in rows.values())
    assert sum(row.frames for _, row in rows.values()) == r.analyzer.counters.pictures
    # 5 pictures a second: frames 0, 6, ... 396 of the batches up to 13.33 s
    assert r.analyzer.counters.pictures == 67
    assert r.analyzer.counters.skipped == 0
    # stored with the commit, or at once if the commit came first (trio picks the order)
    assert {s for _, s in r.stores} <= {"pending", "stored"} and len(r.stores) == 3


async def test_square_exact_cells_and_times(run_scene) -> None:  # type: ignore[no-untyped-def]
    # 5.5 s: the camera's batches (10 frames) end at 5.33 s and 5.67 s, so which pictures
    # were analysed at cancellation does not depend on the order trio runs tasks in
    r = await run_scene("square", 5.5)
    (first, on, hold), last = r.writes[0], r.writes[-1]
    assert first == MOVING
    # on at the first analysed picture after it moves; cancelled while the place where it
    # stopped still fades, the event ends at the last analysed picture (5.2 s): exactly
    # 90 frames later
    assert last == (STILL, on + (156 - 66) * FRAME, hold)
    # wall times as the recording's start was known when analysed (the writer refines
    # the start while the recording grows, by a few frames at most)
    start = min(start for start, _ in r.rows().values())  # wall time of the clip's frame 0
    assert abs(on - (start + (SQUARE_START_FRAME + 6) * FRAME)) < 10 * FRAME
    moved = moved_times(r)
    assert sorted(moved) == [2, 3, 4, 5]
    assert set().union(*moved.values()) == crossed_cells(0, 149)
    for second, cells in moved.items():
        assert cells <= crossed_cells(max(0, 30 * second - 60), 30 * second + 29)
    for _, row in r.rows().values():
        assert set(np.flatnonzero(bitmap_to_cells(row.cells))) == {
            int(e["cell"]) for e in np.frombuffer(row.entries, dtype=ENTRY)}


async def test_masked_cells_never_report(run_scene) -> None:  # type: ignore[no-untyped-def]
    mask = frozenset(row * GRID + col for row in (8, 9) for col in range(0, 16))
    r = await run_scene("square", 7, MotionOptions(mask=mask))
    assert r.writes == []
    assert moved_times(r) == {}


async def test_global_change_flagged_not_motion(run_scene) -> None:  # type: ignore[no-untyped-def]
    r = await run_scene("global", 5)
    assert r.writes == []
    (row,) = [row for _, row in r.rows().values()]
    assert np.frombuffer(row.global_seconds, "<u2").tolist() == [2]
    assert row.motion_seconds == 0


async def test_falling_behind_skips_and_counts_never_delays_recording(
    run_scene, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    # a worker that needs 1 s (virtual) per batch of 10 frames (1/3 s of video), and a
    # queue of 15 frames: the hub drops what is queued and resumes at the next key frame
    async def slow(fn, *args, **_kw):  # type: ignore[no-untyped-def]
        await trio.sleep(1)
        return fn(*args)

    monkeypatch.setattr("nvr.motion.task.run_blocking", slow)
    r = await run_scene("square", 7, MotionOptions(queue_frames=15))
    c = r.analyzer.counters
    assert c.skipped > 0 and c.frames > 0
    assert c.frames + c.skipped <= 7 * 30
    rows = r.rows()
    assert 0 < sum(row.skipped for _, row in rows.values()) <= c.skipped
    # recording is untouched: every frame of the 7 s is in the recordings
    recs = r.env.db.list_recordings_by_time(r.env.stream_ids[0], 0, 1 << 62)
    assert sum(rec.video_samples for rec in recs) >= 7 * 30
