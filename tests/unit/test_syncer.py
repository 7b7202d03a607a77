"""The syncer on a mock clock: flush timing, retention, retries, final flush."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.recording import record_run

T0 = 1_700_000_000 * UNITS_PER_SEC


@pytest.fixture(autouse=True)
def _inline() -> object:
    with inline_blocking():
        yield


def _open(tmp_path: Path, clocks: SimulatedClocks) -> RecordingEnv:
    return open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)


async def test_one_stream_records_and_commits(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, env.stream_ids[0], frames=30 * 150)
        await clocks.sleep(UNITS_PER_SEC)
        nursery.cancel_scope.cancel()
    s = env.db.streams[env.stream_ids[0]]
    assert s.cum_recordings == 3
    assert not s.pending
    recs = env.db.list_recordings_by_time(s.id, 0, 1 << 62)
    assert [r.media_duration_90k for r in recs] == [60 * UNITS_PER_SEC, 60 * UNITS_PER_SEC, 30 * UNITS_PER_SEC]
    assert recs[0].start_time_90k == T0
    assert [r.start_time_90k for r in recs[1:]] == [recs[0].end_time_90k, recs[1].end_time_90k]
    env.close()
