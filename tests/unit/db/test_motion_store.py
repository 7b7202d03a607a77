"""Motion summaries stored with their recordings: pending until the commit, deleted with
the recording, per-hour totals kept in memory and rebuilt at open."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import trio.testing

from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.raw_motion import MotionRow
from nvr.db.types import PendingRecording
from nvr.motion.summary import cells_to_bitmap
from nvr.testing.env import create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import record_run

pytestmark = pytest.mark.usefixtures("inline_seam")


class _Collect:
    def __init__(self) -> None:
        self.recs: list[PendingRecording] = []

    async def submit(self, rec: PendingRecording) -> None:
        self.recs.append(rec)


def _row(seconds: int) -> MotionRow:
    entries = b"".join(s.to_bytes(2, "little") + bytes([17, 200]) for s in range(seconds))
    return MotionRow(bytes(2) + b"\x02" + bytes(29), entries, b"", seconds, 300, 0)


def _region(*cells: int) -> bytes:
    bits = np.zeros(256, np.bool_)
    bits[list(cells)] = True
    return cells_to_bitmap(bits)


def _stored(db_dir: Path) -> dict[int, int]:
    conn = sqlite3.connect(db_dir / "db")
    try:
        return dict(conn.execute("select composite_id, motion_seconds from recording_motion"))
    finally:
        conn.close()


async def test_summaries_follow_their_recordings(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=1)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic, tz=dt.UTC)
    (sid,) = env.stream_ids
    sink = _Collect()
    await record_run(env, sink, clocks, sid, frames=30 * 150)
    first, second, third = (r.composite_id for r in sink.recs)
    db = env.db
    assert db.put_motion_summary(first, _row(5)) == "pending"
    assert db.put_motion_summary(third, _row(0)) == "pending"
    assert db.put_motion_summary(third + 1, _row(9)) == "dropped"  # never recorded
    assert _stored(env.db_dir) == {}
    # the first two commit (the third is not synced): the first one's summary with it
    db.mark_synced(first)
    db.mark_synced(second)
    db.flush("test")
    assert _stored(env.db_dir) == {first: 5}
    assert db.pending_motion.keys() == {third}
    assert db.motion_days(sid) == {"2023-11-14": (5, {22: 5})}
    # a late summary of a committed recording is stored at once
    assert db.put_motion_summary(second, _row(7)) == "stored"
    assert db.motion_days(sid) == {"2023-11-14": (12, {22: 12})}
    hour = 3600 * UNITS_PER_SEC
    rows = db.motion_search_rows(sid, _region(17), T0 - hour, T0 + hour, T0)
    assert [r[0] for r in rows] == [first, second]
    assert db.motion_search_rows(sid, _region(17), T0 + hour, T0 + 2 * hour, T0) == []
    # the union is tested in SQL: a region missing cell 17 reads no row at all
    assert db.motion_search_rows(sid, _region(*range(17), *range(18, 256)), T0 - hour,
                                 T0 + hour, T0) == []
    # the window is of start times; "after" drops recordings ending before it
    second_start = rows[1][1]
    assert [r[0] for r in db.motion_search_rows(sid, _region(17), second_start, T0 + hour,
                                                T0)] == [second]
    assert [r[0] for r in db.motion_search_rows(sid, _region(17), T0 - hour, T0 + hour,
                                                second_start)] == [second]
    env.close()

    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic, tz=dt.UTC)
    assert env.db.motion_days(sid) == {"2023-11-14": (12, {22: 12})}
    # retention deletes summaries with their recordings
    assert env.db.plan_delete_all_recordings(sid) == 2
    env.db.flush("delete all")
    assert _stored(env.db_dir) == {}
    assert env.db.motion_days(sid) == {}
    env.close()
