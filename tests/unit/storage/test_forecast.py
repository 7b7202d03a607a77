"""The storage forecast against a recorded site with a known bitrate: synthetic frames
of known sizes through the real writer and syncer on a mock clock; the figures it gives
are then checked against what retention and the free-space floor actually do later."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.storage import forecast
from nvr.storage.forecast import floor_eta
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import record_run, synth_frame
from tests.unit.storage.test_retention import FakeDisk

SEC = UNITS_PER_SEC
MIN = 60 * SEC
#: bytes a second of the synthetic stream (one frame a second, a key frame every other)
RATE = sum(len(synth_frame(i, gop=2).data) for i in range(202)) / 202


pytestmark = pytest.mark.usefixtures("inline_seam")


def test_floor_eta() -> None:
    assert floor_eta(100, 0, [(1.0, math.inf)]) == 100
    assert floor_eta(100, 50, [(1.0, 10)]) is None  # stops growing after 10 bytes
    # both grow for 10 s (30 bytes), then the second alone for 10 s more
    assert floor_eta(100, 50, [(1.0, 10), (2.0, 100)]) == 20
    assert floor_eta(10, 20, []) == 0
    assert floor_eta(100, 0, [(0.0, 5), (3.0, 0)]) is None


async def test_budget_days_match_what_retention_keeps(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Two hours at a known rate with a budget of 30 minutes' bytes: the forecast says
    the budget holds 30 minutes, and retention indeed keeps 30 minutes."""
    budget = round(30 * 60 * RATE)
    create_env(tmp_path, streams=1, retain_bytes=budget, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    sid = env.stream_ids[0]
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=120 * 60, gop=2, frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    f = forecast.stream_forecast(env.db, sid, clocks.realtime())
    assert f.bytes_per_sec == pytest.approx(RATE, rel=0.002)
    # the average is over what is still there: the last 30 minutes
    assert 29 * MIN <= f.sampled_90k <= 31 * MIN
    assert f.budget_days == pytest.approx(30 / 1440, rel=0.002)
    # what retention kept: 30 minutes within one recording (it deletes whole minutes)
    held_min = f.held_days * 1440 if f.held_days is not None else 0
    assert 29 <= held_min <= 31, held_min
    assert f.budget_days * 1440 == pytest.approx(held_min, abs=1.1)
    print(f"forecast: {f.bytes_per_sec:.1f} B/s (frames say {RATE:.1f}); budget holds "
          f"{f.budget_days * 1440:.2f} min; retention kept {held_min:.2f} min")
    env.close()


async def test_floor_eta_matches_when_the_floor_starts_deleting(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Two streams on a disk with a floor: A's budget fills after 20 minutes, B's never.
    The forecast made at 10 minutes says when the floor will start deleting (B's video,
    which only the floor deletes); it does, within a recording of that."""
    minute = 60 * RATE
    create_env(tmp_path, streams=2, retain_bytes=1 << 40, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    a, b = env.stream_ids
    env.db.streams[a].config.retain_bytes = round(20 * minute)
    disk = FakeDisk(env, capacity=round(200 * minute))
    floor = round(100 * minute)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks, min_free=floor, free_bytes=disk.free)
    predicted: list[float] = []
    first_floor_deletion: list[int] = []

    def watch() -> None:
        if not first_floor_deletion and env.db.streams[b].committed.range_start not in (
                None, T0):
            first_floor_deletion.append(clocks.realtime())

    env.db.flush_listeners.append(watch)

    async def predict() -> None:
        await clocks.sleep(10 * MIN)
        f = forecast.dir_forecast(env.db, env.dir_id, clocks.realtime(),
                                  free_bytes=disk.free(), min_free=floor)
        assert f.bytes_per_sec == pytest.approx(2 * RATE, rel=0.005)
        assert f.floor_in_sec is not None
        predicted.append(clocks.realtime() + f.floor_in_sec * SEC)

    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        async with trio.open_nursery() as streams:
            streams.start_soon(predict)
            for sid in (a, b):
                streams.start_soon(lambda s=sid: record_run(
                    env, syncer, clocks, s, frames=110 * 60, gop=2, frame_ticks=SEC))
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    (when,) = predicted
    (actual,) = first_floor_deletion
    # by hand: at 10 min, 180 min of one stream's bytes free; 80 to go before the floor:
    # 20 in the next 10 minutes (both grow), then 60 more of B alone: at 80 minutes
    # (disk blocks of 4 KiB add ~3%, so it comes a little earlier)
    assert (when - T0) / MIN == pytest.approx(80, abs=3)
    assert abs(actual - when) <= 2 * MIN, ((actual - T0) / MIN, (when - T0) / MIN)
    print(f"forecast: bitrate {RATE:.1f} B/s; floor predicted at {(when - T0) / MIN:.2f} min, "
          f"first floor deletion at {(actual - T0) / MIN:.2f} min")
    env.close()


async def test_camera_edit_prints_the_forecast_for_the_budget_just_set(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from nvr.cli import main

    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, env.stream_ids[0], frames=60 * 60, gop=2,
                         frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    env.close()
    now = clocks.realtime()

    class Fixed:
        def realtime(self) -> int:
            return now

    monkeypatch.setattr("nvr.offline.admin.RealClocks", Fixed)
    week = round(RATE * 86_400 * 7)
    assert main(["--db-dir", str(tmp_path / "db"), "config", "camera", "edit", "cam0",
                 "--retain-bytes", str(week)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "updated camera cam0"
    assert out[1].startswith("  main: keep ") and out[1].endswith(
        ": about 7.0 days at the last day's average of 0.01 Mbit/s; holds 0.0 days now")
    # a day later nothing was recorded in the last day: no forecast
    now += 2 * 86_400 * SEC
    assert main(["--db-dir", str(tmp_path / "db"), "config", "camera", "edit", "cam0",
                 "--retain-bytes", "1000000"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("so no forecast yet")


async def test_an_empty_day_sum_is_not_kept_once_the_stream_commits(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """``/api/`` polled before the first commit summed nothing; a sum kept for the cache's
    minute made the status page say "no recording in the last day" while recording (seen
    in the Chromium status-page test). A non-empty sum is kept for its minute."""
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    sid = env.stream_ids[0]
    sums = forecast.DaySums()
    assert sums.get(env.db, sid, clocks.realtime()) == (0, 0)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=40, gop=2, frame_ticks=SEC,
                         rotate_every=10 * SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    now = clocks.realtime()
    assert now - T0 < 60 * SEC  # within the minute the empty sum would have been kept
    first = sums.get(env.db, sid, now)
    assert first[0] > 0 and first[1] > 0
    # kept: more recordings within the minute do not make it sum again
    env.db.streams[sid].cum_recordings += 1
    assert sums.get(env.db, sid, now + SEC) == first
    env.close()
