"""Retention beyond ``retain_bytes``: by age (``retain_days``) and the per-directory
free-space floor (``storage.retention`` driven by the syncer), on a mock clock with a
simulated filesystem size."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import Config, parse_config
from nvr.db.stream_summary import fs_bytes
from nvr.db.types import PlannedDeletion
from nvr.offline import admin
from nvr.offline.check import check
from nvr.storage.retention import pick_oldest
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import record_run
from tests.unit.cli.test_cli_config import nvr, setup_camera

SEC = UNITS_PER_SEC
DAY = 86_400 * SEC


pytestmark = pytest.mark.usefixtures("inline_seam")


def _del(stream: int, rec: int, start: int, nbytes: int) -> PlannedDeletion:
    return PlannedDeletion(stream << 32 | rec, start, 10, nbytes)


def test_pick_oldest_merges_streams_by_start_time() -> None:
    a = [_del(1, 0, 100, 5000), _del(1, 1, 300, 5000), _del(1, 2, 500, 5000)]
    b = [_del(2, 0, 200, 100), _del(2, 1, 400, 100)]
    # 4096 bytes of disk per small file, 8192 per 5000-byte one
    assert pick_oldest([a, b], 0) == []
    assert pick_oldest([a, b], 1) == [a[0]]
    assert pick_oldest([a, b], 8193) == [a[0], b[0]]
    assert pick_oldest([a, b], 8192 + 4096 + 1) == [a[0], b[0], a[1]]
    assert pick_oldest([iter(a), iter(b)], 10**9) == [a[0], b[0], a[1], b[1], a[2]]


def _all_ids(env: RecordingEnv) -> list[int]:
    return [
        r.composite_id
        for sid in env.stream_ids
        for r in env.db.list_recordings_by_time(sid, 0, 1 << 62)
    ]


async def test_retain_days_deletes_what_is_older(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    sid = env.stream_ids[0]
    env.db.streams[sid].config.retain_days = 1
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=5 * 60, frame_ticks=SEC)
        await clocks.sleep(DAY - 3 * 60 * SEC)
        # this run's first recording is planned when the day has not quite passed for
        # any old recording; the second recording comes after the old ones aged out
        await record_run(env, syncer, clocks, sid, frames=5 * 60, frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    remaining = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    assert env.db.streams[sid].cum_recordings == 10
    cutoff = clocks.realtime() - DAY
    # Everything that ended more than a day before the last retention pass is gone...
    assert all(r.end_time_90k >= cutoff - 60 * SEC for r in remaining)
    # ...and the second run (younger than a day) is untouched.
    assert [r.recording_id for r in remaining][-5:] == [5, 6, 7, 8, 9]
    assert len(remaining) < 10
    env.close()
    assert check(tmp_path / "db").problems == []


class FakeDisk:
    """A filesystem of ``capacity`` bytes holding only the directory's sample files."""

    def __init__(self, env: RecordingEnv, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.other = 0  # bytes used by something else
        self.min_seen: int | None = None

    def used(self) -> int:
        ids, _ = self.env.sdir.list_files()
        return sum(fs_bytes(self.env.sdir.file_size(cid) or 0) for cid in ids)

    def free(self) -> int:
        free = self.capacity - self.other - self.used()
        self.min_seen = free if self.min_seen is None else min(self.min_seen, free)
        return free


async def test_free_space_floor_deletes_the_oldest_of_all_streams(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # Two streams whose retain_bytes alone would never delete anything.
    create_env(tmp_path, streams=2, retain_bytes=1 << 40, flush_if_sec=30)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    one_minute = 60 * 2100  # about 60 one-second frames of synth_frame at gop 2 (see below)
    disk = FakeDisk(env, capacity=40 * one_minute)
    floor = 10 * one_minute
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks, min_free=floor, free_bytes=disk.free)

    async def stream(k: int, sid: int) -> None:
        await clocks.sleep(k * 7 * SEC)
        await record_run(env, syncer, clocks, sid, frames=30 * 60, gop=2, frame_ticks=SEC)

    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        async with trio.open_nursery() as streams:
            for k, sid in enumerate(env.stream_ids):
                streams.start_soon(stream, k, sid)
        await clocks.sleep(60 * SEC)
        nursery.cancel_scope.cancel()
    # 60 recordings of ~1 minute (~63 KB each, 2 streams x 30 min) into 40 minutes of
    # disk with a 10-minute floor: the oldest went, of both streams, oldest first.
    remaining = _all_ids(env)
    for sid in env.stream_ids:
        ids = [cid & 0xFFFFFFFF for cid in remaining if cid >> 32 == sid]
        assert env.db.streams[sid].cum_recordings == 30
        assert ids == list(range(30 - len(ids), 30)), ids
        assert len(ids) < 30
    starts = sorted(r.start_time_90k for sid in env.stream_ids
                    for r in env.db.list_recordings_by_time(sid, 0, 1 << 62))
    assert disk.used() <= disk.capacity - floor + 2 * one_minute
    assert disk.free() >= floor - 2 * one_minute
    # ...and not much more than needed was deleted (nothing counted twice)
    assert disk.free() <= floor + 3 * one_minute, (disk.free(), floor)
    # the free space never fell further below the floor than one recording per stream
    assert disk.min_seen is not None and disk.min_seen >= floor - 3 * one_minute
    # what was deleted is older than everything kept
    assert len(starts) == len(remaining)
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_free_space_floor_with_a_disk_full_of_other_data(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Something else fills the disk: the floor deletes every recording it may, then says
    (at most once a minute) that it cannot reach the floor; nothing pending is lost."""
    create_env(tmp_path, streams=1, retain_bytes=1 << 40, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    disk = FakeDisk(env, capacity=10 << 20)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks, min_free=1 << 20, free_bytes=disk.free)
    sid = env.stream_ids[0]
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=5 * 60, gop=2, frame_ticks=SEC)
        assert len(_all_ids(env)) == 5
        disk.other = 10 << 20
        await clocks.sleep(10 * 60 * SEC)
        nursery.cancel_scope.cancel()
    assert _all_ids(env) == []
    warnings = [r for r in caplog.records if "below the floor" in r.getMessage()
                and r.levelname == "WARNING"]
    # 10 minutes of checks every 5 s: one line a minute at most
    assert 1 <= len(warnings) <= 11
    env.close()
    assert check(tmp_path / "db").problems == []


def test_min_free_config() -> None:
    assert Config().min_free_for("/a") == 0
    cfg = parse_config({"min_free": "1GiB", "min_free_by_dir": {"/a": 5, "/b": "2G"}})
    assert (cfg.min_free_for("/a"), cfg.min_free_for("/b"), cfg.min_free_for("/c")) == (
        5, 2_000_000_000, 1 << 30)
    for bad in ({"min_free": -1}, {"min_free": "lots"}, {"min_free_by_dir": {"rel": 1}},
                {"min_free": True}):
        with pytest.raises(Exception, match="min_free"):
            parse_config(bad)


def test_cli_retain_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    setup_camera(tmp_path, monkeypatch)
    assert nvr(tmp_path, "config", "camera", "edit", "front", "--retain-days", "30") == 0
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        cam = db.camera_by_name("front")
        assert [db.streams[s].config.retain_days for s in cam.streams.values()] == [30, 30]
    capsys.readouterr()
    assert nvr(tmp_path, "config", "camera", "list") == 0
    assert "/ 30 days" in capsys.readouterr().out
    assert nvr(tmp_path, "config", "camera", "edit", "front", "--retain-days", "0") == 0
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        cam = db.camera_by_name("front")
        assert [db.streams[s].config.retain_days for s in cam.streams.values()] == [None, None]
    with pytest.raises(SystemExit) as exit_:
        nvr(tmp_path, "config", "camera", "edit", "front", "--retain-days", "-3")
    assert exit_.value.code == 2
    assert "--retain-days" in capsys.readouterr().err
