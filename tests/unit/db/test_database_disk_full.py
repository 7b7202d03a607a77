"""The database on a full disk (issue 12, point 8), with SQLite's own error
(``nvr.testing.faults.database_full``): the error that failed a transaction is the one
reported, never the "cannot rollback - no transaction is active" that a second rollback
raised after SQLite had rolled back by itself; the syncer says so while it retries, and
nothing is lost once there is space again."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.offline.check import check
from nvr.syncer import Syncer, SyncerStatus
from nvr.testing.env import TEST_SAMPLE_ENTRY, create_env, open_env
from nvr.testing.faults import database_full
from tests.support.determinism import T0
from tests.support.recording import record_run

SEC = UNITS_PER_SEC
FULL = "database or disk is full"


pytestmark = pytest.mark.usefixtures("inline_seam")


def test_a_full_database_raises_its_own_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    create_env(tmp_path)
    env = open_env(tmp_path, now=lambda: T0)
    try:
        with database_full(env.db), pytest.raises(errors.ResourceExhausted) as info:
            for _ in range(1000):  # each one needs a page of its own, soon a new one
                env.db.insert_video_sample_entry(replace(TEST_SAMPLE_ENTRY, data=os.urandom(4000)))
        assert str(info.value) == f"inserting a video sample entry: {FULL}"
        assert "cannot rollback" not in caplog.text
        env.db.insert_video_sample_entry(replace(TEST_SAMPLE_ENTRY, data=os.urandom(4000)))
    finally:
        env.close()


async def test_the_syncer_says_the_database_is_full_and_loses_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    sid = env.stream_ids[0]
    while_full: list[tuple[SyncerStatus, int]] = []  # the syncer's status, committed

    async def fill_the_disk_for_a_while() -> None:
        await clocks.sleep(150 * SEC)
        with database_full(env.db):
            await clocks.sleep(600 * SEC)
            while_full.append((syncer.status.value, env.db.streams[sid].cum_recordings))

    caplog.set_level(logging.WARNING)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        nursery.start_soon(fill_the_disk_for_a_while)
        # 30 fps: each recording's index (5 kB) needs pages of its own
        await record_run(env, syncer, clocks, sid, frames=20 * 60 * 30)
        await clocks.sleep(120 * SEC)
        nursery.cancel_scope.cancel()
    [(status, committed_while_full)] = while_full
    assert status.failing_step == "commit"
    assert status.failing_since is not None
    assert status.last_error == f"flush (flush deadline): {FULL}"
    assert committed_while_full == 2  # those that ended before the disk filled
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failures and all(m.endswith(f"will retry: flush (flush deadline): {FULL}")
                            or f"{FULL} (" in m for m in failures), failures
    assert "cannot rollback" not in caplog.text
    # space again: every recording is committed, in order
    assert syncer.status.value.ok
    assert env.db.streams[sid].cum_recordings == 20 and not env.db.streams[sid].pending
    env.close()
    assert check(tmp_path / "db").problems == []
