"""Protected ranges against retention on a mock clock: byte and day retention and the
free-space floor never delete protected recordings; protected video over a stream's
budget stops byte retention and says so; an expiry releases recordings at its exact
time; a protection arriving between planning and flush still wins."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.protection import Intervals
from nvr.offline.check import check
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import record_run
from tests.unit.storage.test_retention import FakeDisk

SEC = UNITS_PER_SEC
MIN = 60 * SEC
DAY = 86_400 * SEC


pytestmark = pytest.mark.usefixtures("inline_seam")


def ids(env: RecordingEnv, sid: int) -> list[int]:
    return [r.recording_id for r in env.db.list_recordings_by_time(sid, 0, 1 << 62)]


def cam_of(env: RecordingEnv, sid: int) -> int:
    return env.db.streams[sid].camera_id


def test_intervals_merge_and_overlap() -> None:
    iv = Intervals([(50, 60), (10, 20), (15, 30), (30, 40)])
    assert iv.spans == [(10, 40), (50, 60)]
    assert [iv.overlaps(a, b) for a, b in [(0, 10), (0, 11), (39, 45), (40, 50), (45, 55),
                                           (60, 70), (35, 35), (40, 40)]] == [
        False, True, True, False, True, False, True, False]
    assert not Intervals([])


def _env(tmp_path: Path, **kw: int) -> tuple[RecordingEnv, SimulatedClocks]:
    create_env(tmp_path, streams=1, flush_if_sec=0, **kw)
    clocks = SimulatedClocks(T0)
    return open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic), clocks


async def _one_minute_bytes(tmp_path: Path) -> int:
    env, clocks = _env(tmp_path / "probe")
    sid = env.stream_ids[0]
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    nbytes = env.db.streams[sid].committed.sample_file_bytes
    env.close()
    return nbytes


async def test_protected_recordings_survive_byte_retention(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    minute = await _one_minute_bytes(tmp_path)
    env, clocks = _env(tmp_path, retain_bytes=minute * 9 // 2)
    sid = env.stream_ids[0]
    # recordings 1 and 2 ([T0 + 1 min, T0 + 3 min)) are protected before they exist
    env.db.protect(cam_of(env, sid), T0 + MIN + 10 * SEC, T0 + 2 * MIN + 10 * SEC, "incident",
                   expires=None, by="test")
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=10 * 60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    # 10 one-minute recordings, a budget of 4.5: the protected two stay, and the newest
    # unprotected ones fill the rest of the budget
    assert ids(env, sid) == [1, 2, 8, 9]
    st = env.db.retention_status(sid)
    assert st.protected_bytes == pytest.approx(2 * minute, rel=0.01)
    assert not st.over_budget
    committed = env.db.streams[sid].committed.sample_file_bytes
    assert st.protected_bytes + st.unprotected_bytes == committed
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_protected_video_over_budget_stops_byte_retention_and_says_so(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    minute = await _one_minute_bytes(tmp_path)
    env, clocks = _env(tmp_path, retain_bytes=2 * minute)
    sid = env.stream_ids[0]
    env.db.protect(cam_of(env, sid), T0, T0 + 3 * MIN - SEC, "incident", expires=None, by="t")
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    caplog.set_level(logging.WARNING)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=8 * 60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    # protected video (3 minutes) alone is over the 2-minute budget: nothing deleted
    assert ids(env, sid) == list(range(8))
    st = env.db.streams[sid].retention
    assert st is not None and st.over_budget
    assert st.protected_bytes == pytest.approx(3 * minute, rel=0.01)
    assert st.unprotected_bytes == pytest.approx(5 * minute, rel=0.01)
    lines = [r for r in caplog.records if "exceed its retain_bytes" in r.getMessage()]
    # from the first recording past 2 minutes of protected video (recording 2's sync at
    # 3 min) to the end (8 min): one line a minute at most
    assert 1 <= len(lines) <= 6
    env.close()


async def test_protected_recordings_survive_day_retention(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    env, clocks = _env(tmp_path)
    sid = env.stream_ids[0]
    env.db.streams[sid].config.retain_days = 1
    env.db.protect(cam_of(env, sid), T0 + 30 * SEC, T0 + 40 * SEC, "x", expires=None, by="t")
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=3 * 60, frame_ticks=SEC)
        await clocks.sleep(DAY)
        await record_run(env, syncer, clocks, sid, frames=2 * 60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    assert ids(env, sid) == [0, 3, 4]  # recording 0 is protected; 1 and 2 aged out
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_the_floor_deletes_only_unprotected_video_oldest_first(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    minute = await _one_minute_bytes(tmp_path)
    env, clocks = _env(tmp_path)
    sid = env.stream_ids[0]
    disk = FakeDisk(env, capacity=12 * minute)
    floor = 4 * minute
    # recordings 0, 1 and 4 protected
    env.db.protect(cam_of(env, sid), T0, T0 + 2 * MIN - SEC, "a", expires=None, by="t")
    env.db.protect(cam_of(env, sid), T0 + 4 * MIN + SEC, T0 + 4 * MIN + 2 * SEC, "b",
                   expires=None, by="t")
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks, min_free=floor, free_bytes=disk.free)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=12 * 60, frame_ticks=SEC)
        await clocks.sleep(10 * SEC)
        nursery.cancel_scope.cancel()
    kept = ids(env, sid)
    assert kept[:3] == [0, 1, 4]
    # the unprotected ones went oldest first: what is left of them is a suffix
    assert kept[3:] == list(range(12 - len(kept[3:]), 12))
    assert 2 in range(12) and 2 not in kept and 3 not in kept
    assert disk.free() >= floor - 2 * minute
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_expiry_releases_recordings_at_the_exact_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    minute = await _one_minute_bytes(tmp_path)
    env, clocks = _env(tmp_path, retain_bytes=minute * 5 // 2)
    sid = env.stream_ids[0]
    expiry = T0 + 10 * MIN + 7  # not on any second: the syncer must wake exactly then
    env.db.protect(cam_of(env, sid), T0, T0 + 2 * MIN - SEC, "hold", expires=expiry, by="t")
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    flushes: list[tuple[int, list[int]]] = []
    env.db.flush_listeners.append(lambda: flushes.append((clocks.realtime(), ids(env, sid))))
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=5 * 60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        assert ids(env, sid) == [0, 1, 4]  # 2 protected, and the newest within the budget
        await clocks.sleep_until(clocks.monotonic() + expiry - 1 - clocks.realtime())
        assert clocks.realtime() == expiry - 1
        assert ids(env, sid) == [0, 1, 4]
        n = len(flushes)
        await clocks.sleep(1)
        await trio.testing.wait_all_tasks_blocked()
        assert clocks.realtime() == expiry
        nursery.cancel_scope.cancel()
    # a flush at the expiry: the oldest released recording went (over budget); the next
    # is the shutdown's, which forgets the unlinked garbage
    assert flushes[n] == (expiry, [1, 4]), flushes[n:]
    assert env.db.list_protected(cam_of(env, sid)) == []
    assert [r.id for r in env.db.list_protected(cam_of(env, sid), all_rows=True)] == [1]
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_protecting_takes_recordings_out_of_planned_deletions(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    minute = await _one_minute_bytes(tmp_path)
    env, clocks = _env(tmp_path, retain_bytes=10 * minute)
    sid = env.stream_ids[0]
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=4 * 60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        # plan all four for deletion, as retention would, then protect two before the flush
        env.db.streams[sid].config.retain_bytes = 0
        assert len(env.db.plan_retention(sid)) == 4
        env.db.protect(cam_of(env, sid), T0 + MIN + SEC, T0 + 2 * MIN + SEC, "just in time",
                       expires=None, by="t")
        assert [d.composite_id & 0xFFFFFFFF for d in env.db.streams[sid].planned_deletions] == [
            0, 3]
        env.db.flush("test")
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    assert ids(env, sid) == [1, 2]
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_removal_releases_at_once_and_is_kept_with_who(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    minute = await _one_minute_bytes(tmp_path)
    env, clocks = _env(tmp_path, retain_bytes=minute * 3 // 2)
    sid = env.stream_ids[0]
    cam = cam_of(env, sid)
    pr = env.db.protect(cam, T0, T0 + 3 * MIN, "why", expires=None, by="user 'a'")
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    caplog.set_level(logging.INFO)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=3 * 60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        assert ids(env, sid) == [0, 1, 2]
        removed = env.db.unprotect(cam, pr.id, by="user 'b'")
        await trio.testing.wait_all_tasks_blocked()
        assert ids(env, sid) == [2]
        with pytest.raises(errors.NotFound):
            env.db.unprotect(cam, pr.id, by="user 'b'")
        nursery.cancel_scope.cancel()
    assert removed.removed_by == "user 'b'" and removed.removed_time_90k is not None
    (row,) = env.db.list_protected(cam, all_rows=True)
    assert (row.created_by, row.removed_by, row.reason) == ("user 'a'", "user 'b'", "why")
    assert any("user 'b' removed protected range" in r.getMessage() for r in caplog.records)
    with pytest.raises(errors.FailedPrecondition):
        env.db.protect(cam, T0, T0 + 1, "x", expires=None, by="t")
        env.db.plan_delete_all_recordings(sid)
    env.close()


def test_protect_refuses_bad_values(tmp_path: Path) -> None:
    create_env(tmp_path)
    env = open_env(tmp_path, now=lambda: T0)
    cam = cam_of(env, env.stream_ids[0])
    for start, end, reason, expires in [(5, 5, "x", None), (-1, 5, "x", None),
                                        (0, 5, " ", None), (0, 5, "x" * 1001, None),
                                        (0, 5, "a\nb", None), (0, 5, "x", T0)]:
        with pytest.raises(errors.InvalidArgument):
            env.db.protect(cam, start, end, reason, expires=expires, by="t")
    with pytest.raises(errors.NotFound):
        env.db.protect(999, 0, 5, "x", expires=None, by="t")
    env.close()


async def test_removing_a_camera_keeps_protected_video_unless_told(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    from nvr.cli import main

    env, clocks = _env(tmp_path)
    sid = env.stream_ids[0]
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=2 * 60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    env.db.protect(cam_of(env, sid), T0, T0 + MIN, "keep", expires=None, by="t")
    env.close()
    args = ["--db-dir", str(tmp_path / "db"), "config", "camera", "remove", "cam0",
            "--delete-recordings"]
    assert main(args) != 0
    assert "1 protected ranges; pass --unprotect" in capsys.readouterr().err
    assert main([*args, "--unprotect"]) == 0
    assert capsys.readouterr().out == "removed camera cam0 and 2 recordings\n"
    assert check(tmp_path / "db").problems == []
