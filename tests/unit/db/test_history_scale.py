"""Costs that must not grow with history (issue 19): each operation the daemon repeats,
and opening the database, does the same SQLite work on 10 days of recordings as on one.

The work is counted, not timed: SQLite's progress handler is called every ``STEP``
virtual-machine instructions, and a scan of the recordings costs instructions per row
visited, so a scan that comes back (a full load at open, a time range computed by
aggregating every row, a listing that does not seek) multiplies the count by ten. Both
histories are made by ``tests.bench.make_history`` (the benchmark's generator) with two
streams of back-to-back one-minute recordings and no sample files.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import sqlite3
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nvr.base.time90k import UNITS_PER_SEC
from nvr.db import connection, raw_motion
from nvr.db.database import Database
from nvr.db.raw_motion import MotionRow
from tests.bench.make_history import MINUTE, build, make_variant
from tests.support.determinism import T0

STEP = 100
DAY = 86_400 * UNITS_PER_SEC
END = T0 // MINUTE * MINUTE


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += STEP
        return 0

    def measure(self, fn: Callable[[], object]) -> int:
        before = self.n
        fn()
        return self.n - before


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = {}
    for days in (1, 10):
        root = tmp_path_factory.mktemp(f"d{days}")
        build(root, streams=2, days=days, fps=1, files="none", oldest=0, end=END)
        out[days] = root / "db"
    return out


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    """Every database opened from now on counts its SQLite work in the counter."""
    counter = Counter()
    real = connection.connect

    def connect(*args: Any, **kwargs: Any) -> tuple[sqlite3.Connection, int]:
        conn, fd = real(*args, **kwargs)
        conn.set_progress_handler(counter, STEP)
        return conn, fd

    monkeypatch.setattr(connection, "connect", connect)
    yield counter


def work(histories: dict[int, Path], counter: Counter, tmp_path: Path,
         op: Callable[[Database], object]) -> dict[int, int]:
    """The SQLite work of ``op`` on a copy of each history, opened in UTC (its zone)."""
    out = {}
    for days, db_dir in histories.items():
        copy = tmp_path / f"d{days}"
        copy.mkdir(parents=True)
        src = sqlite3.connect(db_dir / "db")
        dst = sqlite3.connect(copy / "db")
        src.backup(dst)
        src.close()
        dst.close()
        with Database.open(copy, tz=dt.UTC, now=lambda: END) as db:
            out[days] = counter.measure(functools.partial(op, db))
    return out


def assert_flat(counts: dict[int, int]) -> None:
    """Ten times the history may cost a little more (deeper B-trees), never ten times."""
    assert counts[10] <= counts[1] * 1.3 + 10 * STEP, counts


def test_open_reads_summaries_not_recordings(
    histories: dict[int, Path], counted: Counter
) -> None:
    counts = {}
    for days, db_dir in histories.items():
        counts[days] = counted.measure(
            lambda d=db_dir: Database.open(d, read_only=True, tz=dt.UTC, now=lambda: END).close())
    assert_flat(counts)


def test_open_in_another_zone_scans_once(histories: dict[int, Path], counted: Counter) -> None:
    """The fallback is a scan (so the test above would see one): days split in another
    zone are built from the recordings."""
    counts = {}
    ny = dt.timezone(dt.timedelta(hours=-5))
    for days, db_dir in histories.items():
        counts[days] = counted.measure(
            lambda d=db_dir: Database.open(d, read_only=True, tz=ny, now=lambda: END).close())
    assert counts[10] > counts[1] * 5, counts


def test_listings(histories: dict[int, Path], counted: Counter, tmp_path: Path) -> None:
    def day_and_hour(db: Database) -> None:
        for sid in db.streams:
            db.list_recordings_by_time(sid, END - DAY // 2, END)
            db.list_recordings_by_id(sid, 100, 160)
            db.stream_summary(sid)

    assert_flat(work(histories, counted, tmp_path, day_and_hour))


def test_commit_and_retention(histories: dict[int, Path], counted: Counter,
                              tmp_path: Path) -> None:
    v = make_variant(32_000, 1, 60, 0)

    def commit(db: Database) -> None:
        entry = next(iter(db.video_sample_entries))
        for sid, s in db.streams.items():
            assert s.committed.range_end is not None
            rec = db.add_recording(sid, run_offset=0, start_time_90k=s.committed.range_end,
                                   video_sample_entry_id=entry)
            rec.video_index, rec.sample_file_bytes = v.index, v.nbytes
            rec.video_samples, rec.video_sync_samples = v.frames, v.keys
            rec.media_duration_90k = rec.wall_duration_90k = v.media
            db.mark_done(rec)
            db.mark_synced(rec.composite_id)
        db.flush("commit")

    def retention(db: Database) -> None:
        for sid in db.streams:
            db.add_planned_deletions(sid, [next(db.iter_unplanned_oldest(sid))])
        db.flush("retention")

    assert_flat(work(histories, counted, tmp_path, commit))
    assert_flat(work(histories, counted, tmp_path / "r", retention))


def test_totals_stay_true(histories: dict[int, Path], tmp_path: Path) -> None:
    """After commits and deletions the stored per-day totals are what a scan of the
    recordings gives (an open in another zone, then back, rebuilds from scratch)."""
    counter = Counter()
    v = make_variant(32_000, 1, 60, 0)

    def churn(db: Database) -> None:
        entry = next(iter(db.video_sample_entries))
        for _ in range(3):
            for sid, s in db.streams.items():
                assert s.committed.range_end is not None
                rec = db.add_recording(sid, run_offset=0,
                                       start_time_90k=s.committed.range_end + 7 * MINUTE,
                                       video_sample_entry_id=entry)
                rec.video_index, rec.sample_file_bytes = v.index, v.nbytes
                rec.video_samples, rec.video_sync_samples = v.frames, v.keys
                rec.media_duration_90k = rec.wall_duration_90k = v.media
                db.mark_done(rec)
                db.mark_synced(rec.composite_id)
                db.add_planned_deletions(
                    sid, list(itertools.islice(db.iter_unplanned_oldest(sid), 400)))
            db.flush("churn")

    work({1: histories[1]}, counter, tmp_path / "r", churn)
    db_dir = tmp_path / "r" / "d1"
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: END) as db:
        stored = {sid: s.committed for sid, s in db.streams.items()}
    conn = sqlite3.connect(db_dir / "db")
    conn.execute("delete from recording_day_zone")
    conn.commit()
    conn.close()
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: END) as db:
        scanned = {sid: s.committed for sid, s in db.streams.items()}
    assert stored == scanned
    assert [s.num_recordings for s in stored.values()] == [1440 + 3 - 3 * 400] * 2


def test_open_reads_event_totals_not_summaries(
    histories: dict[int, Path], counted: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The histories have motion summaries and signal changes every ten minutes: an open
    reads their stored totals, and the scan that builds them (forced here by hiding the
    stored zone) would make the same open grow with the history."""
    def open_once(d: Path) -> None:
        Database.open(d, read_only=True, tz=dt.UTC, now=lambda: END).close()

    stored = {days: counted.measure(functools.partial(open_once, d))
              for days, d in histories.items()}
    assert_flat(stored)
    monkeypatch.setattr(raw_motion, "event_total_zone", lambda conn: None)
    scanned = {days: counted.measure(functools.partial(open_once, d))
               for days, d in histories.items()}
    assert scanned[10] - scanned[1] > 5 * (stored[10] - stored[1]) + 10_000, (stored, scanned)


def test_open_in_another_zone_builds_event_totals_once(
    histories: dict[int, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another zone: the totals are built from the summaries and changes (logged), stored
    in that zone, and the next open there reads them back."""
    work({1: histories[1]}, Counter(), tmp_path, lambda db: None)
    db_dir = tmp_path / "d1"
    ny = zoneinfo.ZoneInfo("America/New_York")
    with (caplog.at_level(logging.INFO, logger="nvr.db.database"),
          Database.open(db_dir, tz=ny, now=lambda: END) as db):
        built = ({sid: db.motion_days(sid) for sid in db.streams},
                 {sid: db.signal_days(sid, END) for sid in db.signals})
    assert [r.getMessage() for r in caplog.records] == [
        "built the motion and signal totals from 144 motion summaries and 288 signal changes "
        "(time zone America/New_York)"]
    caplog.clear()
    with (caplog.at_level(logging.INFO, logger="nvr.db.database"),
          Database.open(db_dir, read_only=True, tz=ny, now=lambda: END) as db):
        assert ({sid: db.motion_days(sid) for sid in db.streams},
                {sid: db.signal_days(sid, END) for sid in db.signals}) == built
        assert db.event_total_problems() == []
    assert caplog.records == []


def test_event_totals_stay_true(histories: dict[int, Path], tmp_path: Path) -> None:
    """After motion summaries stored (pending and committed, replaced), signal updates,
    retention deletions, a redaction-like cut and signal pruning, the stored per-hour and
    per-day totals are what a recomputation gives (``nvr check``'s), and what an open
    that builds them from scratch holds."""
    v = make_variant(32_000, 1, 60, 0)
    row = MotionRow(cells=bytes([1]) + bytes(31), entries=bytes([5, 0, 0, 9]),
                    global_seconds=b"", motion_seconds=7, frames=300, skipped=0)

    def churn(db: Database) -> None:
        entry = next(iter(db.video_sample_entries))
        sig = next(iter(db.signals))
        for k in range(3):
            for sid, s in db.streams.items():
                assert s.committed.range_end is not None
                rec = db.add_recording(sid, run_offset=0,
                                       start_time_90k=s.committed.range_end + 7 * MINUTE,
                                       video_sample_entry_id=entry)
                rec.video_index, rec.sample_file_bytes = v.index, v.nbytes
                rec.video_samples, rec.video_sync_samples = v.frames, v.keys
                rec.media_duration_90k = rec.wall_duration_90k = v.media
                db.mark_done(rec)
                db.mark_synced(rec.composite_id)
                assert db.put_motion_summary(rec.composite_id, row) == "pending"
                db.add_planned_deletions(
                    sid, list(itertools.islice(db.iter_unplanned_oldest(sid), 400)))
            db.flush("churn")
            cid = next(iter(db.streams)) << 32 | 1439 - k * 10
            assert db.put_motion_summary(cid, row) == "stored"  # replaces one
            db.update_signals([sig], [2], END - DAY // 2 - k * MINUTE, END - DAY // 3)
        db.prune_signal_changes()
        sid = next(iter(db.streams))
        old = db.list_recordings_by_time(sid, END - 2 * MINUTE, END)[0]
        db.replace_recording(old, [])

    work({1: histories[1]}, Counter(), tmp_path, churn)
    db_dir = tmp_path / "d1"
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: END) as db:
        assert db.event_total_problems() == []
        stored = ({sid: db.motion_days(sid) for sid in db.streams},
                  {sid: db.signal_days(sid, END) for sid in db.signals})
    conn = sqlite3.connect(db_dir / "db")
    conn.execute("delete from event_total_zone")
    conn.commit()
    conn.close()
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: END) as db:
        assert ({sid: db.motion_days(sid) for sid in db.streams},
                {sid: db.signal_days(sid, END) for sid in db.signals}) == stored


def test_check_reports_totals_that_differ(histories: dict[int, Path], tmp_path: Path) -> None:
    work({1: histories[1]}, Counter(), tmp_path, lambda db: None)
    db_dir = tmp_path / "d1"
    conn = sqlite3.connect(db_dir / "db")
    conn.execute("update motion_hour set seconds = seconds + 1 where hour = 3")
    conn.execute("delete from signal_day where day = (select min(day) from signal_day)")
    conn.commit()
    conn.close()
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: END) as db:
        problems = db.event_total_problems()
    assert len(problems) == 2, problems
    assert problems[0].startswith("motion totals of stream 1: 1 row(s) differ from a "
                                  "recomputation, the first on "), problems
    assert "hour 3 (stored 19, recomputed 18)" in problems[0]
    assert problems[1].startswith("day totals of signal 1: 2 row(s) differ"), problems
