"""Configuration changes applied to the running daemon (``nvr.supervisor``) on a mock
clock with replayed cameras: only the changed camera's tasks restart, its recording ends
with end reason "reconfigured" and the new settings record at once; the others keep one
run; an added camera records; a removed one leaves nothing behind; a directory comes and
goes with its syncer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr import daemon, reconfig
from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import Config
from nvr.supervisor import CAMERA_TASKS, CameraTasks, Supervisor
from nvr.testing.env import create_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from tests.support.daemon import by_stream, check_stream_recordings, committed_recordings, runs_of
from tests.support.determinism import T0
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
CLIP = str(FIXTURES / "h264-640x360.mp4")
URLS = ("rtsp://cam0/main", "rtsp://cam1/main", "rtsp://cam2/main", "rtsp://cam1/new",
        "rtsp://cam3/main")  # fmt: skip


pytestmark = pytest.mark.usefixtures("inline_seam")


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[tuple[daemon.Daemon, ReplayOpener]]:
    """The daemon recording cameras cam0, cam1 and cam2 (replayed forever; flush at once)."""
    create_env(tmp_path, streams=3, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    packets = load_packets(CLIP)
    opener = ReplayOpener(clocks, {u: [Session(packets, loops=None)] for u in URLS})
    config = Config(db_dir=tmp_path / "db", time_zone="UTC", binds=(), rotate_interval_sec=10)
    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(
            lambda task_status: daemon.run(config, clocks=clocks, opener=opener,
                                           handle_signals=False, task_status=task_status)
        )  # fmt: skip
        try:
            yield d, opener
        finally:
            d.shutdown.set()


def supervisor(d: daemon.Daemon) -> Supervisor:
    assert d.supervisor is not None
    return d.supervisor


async def test_only_the_changed_camera_restarts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    started: list[tuple[int, float]] = []

    async def probe(  # a per-camera task, e.g. motion analysis
        tasks: CameraTasks, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        started.append((tasks.camera_id, trio.current_time()))
        task_status.started()
        await trio.sleep_forever()

    CAMERA_TASKS.append(probe)
    try:
        async with running(tmp_path) as (d, opener):
            sup, db = supervisor(d), d.db
            cams = {c.short_name: c for c in db.cameras.values()}
            sid = {n: c.streams["main"] for n, c in cams.items()}
            t_start = trio.current_time()
            await trio.sleep(30)
            t_edit = trio.current_time()
            async with sup.lock:
                reconfig.update_camera(db, cams["cam1"], {"streams": {"main": {
                    "url": "rtsp://cam1/new", "retainBytes": 1 << 39}}})
                await sup.apply()
            await trio.sleep(30)
            async with sup.lock:
                cam3 = reconfig.add_camera(db, {"shortName": "cam3", "streams": {"main": {
                    "url": "rtsp://cam3/main", "sampleFileDirId": 1, "flushIfSec": 0}}})
                await sup.apply()
            async with sup.lock:  # a name or description change restarts nothing
                reconfig.update_camera(db, cams["cam0"], {"description": "front door"})
                await sup.apply()
            await trio.sleep(30)
            async with sup.lock:
                n = reconfig.check_removable(db, cams["cam2"], delete_recordings=True)
                await sup.settle(cams["cam2"].id)
                reconfig.delete_recordings_and_camera(db, cams["cam2"])
                await sup.apply()
            assert n > 0
            await trio.sleep(30)
            assert set(d.streamers) == {sid["cam0"], sid["cam1"], cam3.streams["main"]}
            # the edited stream's counters go on (metrics' counters never go back)
            assert d.streamers[sid["cam1"]].counters.sessions == 2
            assert d.streamers[sid["cam0"]].counters.sessions == 1
    finally:
        CAMERA_TASKS.remove(probe)

    # Connections: cam0 once; cam1's old URL until the edit, its new one at that moment.
    assert [t / SEC for t in opener.open_times("rtsp://cam0/main")] == [t_start]
    assert [t / SEC for t in opener.open_times("rtsp://cam1/new")] == [t_edit]
    assert [t / SEC for t in opener.open_times("rtsp://cam2/main")] == [t_start]
    # the probe started with each camera, again with the edited one, never for a rename
    assert sorted(started) == sorted([(cams["cam0"].id, t_start), (cams["cam1"].id, t_start),
                                      (cams["cam2"].id, t_start), (cams["cam1"].id, t_edit),
                                      (cam3.id, t_edit + 30)])  # fmt: skip

    recs = by_stream(committed_recordings(tmp_path / "db"))
    assert set(recs) == {sid["cam0"], sid["cam1"], cam3.streams["main"]}  # cam2: gone
    for stream_recs in recs.values():
        check_stream_recordings(stream_recs)
    # cam0: one run, ended by the shutdown only
    (run,) = runs_of(recs[sid["cam0"]])
    assert run[-1].end_reason == "shutdown"
    # cam1: the run of the old URL ended at the edit, "reconfigured"; the new one at once
    old, new = runs_of(recs[sid["cam1"]])
    assert old[-1].end_reason == "reconfigured" and old[-1].trailing_zero
    assert old[-1].end_time_90k <= T0 + round(t_edit * SEC) + SEC
    assert new[0].start_time_90k - (T0 + round(t_edit * SEC)) < SEC
    assert new[-1].end_reason == "shutdown"
    assert len(runs_of(recs[cam3.streams["main"]])) == 1
    # nothing of cam2 is left in the directory: every file belongs to a committed row
    files = {int(p.name, 16) for p in (tmp_path / "sample").iterdir() if p.name != "meta"}
    assert files == {r.composite_id for rs in recs.values() for r in rs}


async def test_a_directory_comes_and_goes_with_its_syncer(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path) as (d, _opener):
        sup, db = supervisor(d), d.db
        async with sup.lock:
            new = reconfig.check_new_dir(db, str(tmp_path / "second"))
            reconfig.create_dir(db.uuid, new)
            dir_id = reconfig.commit_dir(db, new)
            await sup.dir_added(dir_id)
        assert set(d.syncers) == {1, dir_id}
        async with sup.lock:  # a camera records into it at once
            cam = reconfig.add_camera(db, {"shortName": "cam4", "streams": {"main": {
                "url": "rtsp://cam3/main", "sampleFileDirId": dir_id, "flushIfSec": 0}}})
            await sup.apply()
        await trio.sleep(25)
        assert db.streams[cam.streams["main"]].committed.num_recordings >= 1
        with pytest.raises(errors.FailedPrecondition, match="used by cameras cam4"):
            reconfig.check_dir_removable(db, dir_id)
        with pytest.raises(errors.AlreadyExists):
            reconfig.check_new_dir(db, str(tmp_path / "second"))
        async with sup.lock:
            reconfig.check_removable(db, cam, delete_recordings=True)
            await sup.settle(cam.id)
            reconfig.delete_recordings_and_camera(db, cam)
            await sup.apply()
        await trio.sleep(1)  # the syncer unlinks the files
        for _ in range(3):
            try:
                reconfig.check_dir_removable(db, dir_id)
                break
            except errors.Unavailable:  # garbage not yet forgotten: after the next flush
                db.flush("test")
        async with sup.lock:
            await sup.stop_syncer(dir_id)
            db.remove_sample_file_dir(dir_id)
        assert set(d.syncers) == {1} and dir_id not in db.dirs
        await trio.sleep(5)
    assert [p.name for p in (tmp_path / "second").iterdir()] == ["meta"]
