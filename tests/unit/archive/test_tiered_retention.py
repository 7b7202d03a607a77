"""Local retention with an archive (issue 18, point 3) on ``MockClock``: with
``require_archived`` budget retention stops at the oldest recording not archived (the
archive down: the stream goes over its budget, nothing unarchived is deleted) and goes on
once uploads catch up; without it deletions go on as before and what was never archived is
counted."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.archive.uploader import Uploader
from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.archives import ArchiveConfig
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.memstore import MemoryStore
from tests.support.recording import record_seconds

SEC = UNITS_PER_SEC


pytestmark = pytest.mark.usefixtures("inline_seam")




def _env(tmp_path: Path, clocks: SimulatedClocks, *, require: bool) -> RecordingEnv:
    # a budget of about two 60 s recordings of 1 fps video (~33 kB each)
    create_env(tmp_path, streams=1, flush_if_sec=0, retain_bytes=70_000)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    env.db.add_archive("a", ArchiveConfig("http://127.0.0.1:9", "bkt", access_key="k",
                                          secret_key="s", require_archived=require))
    return env


async def test_require_archived_holds_deletions_until_uploaded(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = _env(tmp_path, clocks, require=True)
    sid = env.stream_ids[0]
    aid = env.db.archive_by_name("a").id
    store = MemoryStore()
    store.faults = [errors.Unavailable("archive down")] * 1000
    up = Uploader(env.db, aid, store, env.sdir.open_for_reading, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(up.run)  # the archive is down throughout the recording
        await record_seconds(env, clocks, 6 * 60 + 10)
        nursery.cancel_scope.cancel()
    recs = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    assert len(recs) == 7  # nothing deleted: none is archived
    assert env.db.streams[sid].committed.sample_file_bytes > 3 * 70_000
    assert env.db.never_archived == {}
    assert not up.status.value.ok and "archive down" in (up.status.value.last_error or "")
    store.faults.clear()
    up2 = Uploader(env.db, aid, store, env.sdir.open_for_reading, clocks)
    while await up2.run_once():
        pass
    assert env.db.plan_retention(sid)
    env.db.flush("test")
    listed = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    # the deleted ones stay listed, from the archive
    assert [r.composite_id for r in listed] == [r.composite_id for r in recs]
    left = [r for r in listed if not r.archive_only]
    assert 0 < len(left) < len(recs)
    assert [r.composite_id for r in left] == [r.composite_id for r in recs[-len(left):]]
    assert env.db.streams[sid].committed.sample_file_bytes <= 70_000
    assert env.db.never_archived == {}
    env.close()


async def test_without_require_archived_deletions_go_on_and_are_counted(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    clocks = SimulatedClocks(T0)
    env = _env(tmp_path, clocks, require=False)
    sid = env.stream_ids[0]
    aid = env.db.archive_by_name("a").id
    await record_seconds(env, clocks, 6 * 60 + 10)
    left = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    assert env.db.streams[sid].committed.sample_file_bytes <= 70_000
    deleted = env.db.streams[sid].cum_recordings - len(left)
    assert deleted >= 4
    assert env.db.never_archived == {aid: deleted}
    assert "deleted locally before they were archived" in caplog.text
    env.close()


async def test_require_archived_with_the_archive_down_the_free_space_floor_decides(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Over its budget and below the directory's floor: the floor deletes the oldest
    recordings even though they were never archived, and counts them."""
    clocks = SimulatedClocks(T0)
    env = _env(tmp_path, clocks, require=True)
    sid = env.stream_ids[0]
    aid = env.db.archive_by_name("a").id
    await record_seconds(env, clocks, 6 * 60 + 10)
    assert len(env.db.list_recordings_by_time(sid, 0, 1 << 62)) == 7
    used = env.db.streams[sid].committed.sample_file_bytes
    free = {"bytes": 0}
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks, min_free=used // 2,
                    free_bytes=lambda: free["bytes"])
    await syncer.run_once()
    left = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    assert 0 < len(left) < 7
    assert env.db.never_archived == {aid: 7 - len(left)}
    env.close()
