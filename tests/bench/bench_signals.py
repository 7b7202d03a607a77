"""Benchmark of signals at scale:
``python -m tests.bench.bench_signals [--signals 32] [--days 30] [--every 60]``.

Builds a database with ``--signals`` cameras, each with its motion signal changing state
every ``--every`` seconds for ``--days`` days (rows written directly, alternating still
and moving: the worst case of a detector that flaps at its minimum duration), then
measures, each against a peer measured in the same run:

- ``Database.open`` (which counts every change into per-day totals) against the bare
  SQL scan of every change it cannot avoid;
- ``GET /api/?days=true`` (signals with their per-day state totals) against the same
  request without ``days``;
- ``GET /api/signals`` for one day (a page of changes) against its raw SQL query.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import trio

from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from nvr.db.database import Database
from nvr.web.app import create_app
from nvr.web.context import WebContext

SEC = UNITS_PER_SEC
DAY = 86_400 * SEC
T0 = 1_700_000_000 * SEC
TZ = ZoneInfo("Europe/Berlin")


def build(root: Path, signals: int, days: int, every: int) -> int:
    Database.create(root, T0)
    with Database.open(root, tz=TZ, now=lambda: T0) as db:
        for i in range(signals):
            db.motion_signal(db.add_camera(f"cam{i}").id)
    n = days * DAY // (every * SEC)
    conn = sqlite3.connect(root / "db")
    with conn:
        for sid in range(1, signals + 1):
            conn.executemany("insert into signal_change values (?, ?, ?)",
                             ((sid, T0 + k * every * SEC, 1 + k % 2) for k in range(n)))
    conn.close()
    return n * signals


def best(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--signals", type=int, default=32)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--every", type=int, default=60, help="seconds between changes")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nvr-bench-signals-"))
    try:
        changes = build(root, args.signals, args.days, args.every)
        print(f"{args.signals} signals, {changes} changes over {args.days} days")

        def open_close() -> None:
            Database.open(root, tz=TZ, now=lambda: T0, read_only=True).close()

        def scan() -> None:
            conn = sqlite3.connect(f"file:{root / 'db'}?mode=ro", uri=True)
            for _ in conn.execute("select signal_id, time_90k, state from signal_change "
                                  "order by signal_id, time_90k"):
                pass
            conn.close()

        a, b = best(open_close, 3), best(scan, 3)
        print(f"open: {a * 1000:.0f} ms; bare scan of the changes: {b * 1000:.0f} ms; "
              f"ratio {a / b:.2f}")

        async def requests() -> None:
            db = Database.open(root, tz=TZ, now=lambda: T0, read_only=True)
            ctx = WebContext(db=db, dirs={}, clocks=SimulatedClocks(T0 + args.days * DAY),
                             bind=BindConfig(allow_unauthenticated=("viewVideo",)))
            c = create_app(ctx).test_client()

            async def timed(path: str, query: dict[str, str], runs: int = 20) -> float:
                out = []
                for _ in range(runs):
                    t = time.perf_counter()
                    r = await c.get(path, query_string=query)
                    await r.get_data()
                    out.append(time.perf_counter() - t)
                    assert r.status_code == 200
                return min(out)

            days = await timed("/api/", {"days": "true"})
            plain = await timed("/api/", {})
            print(f"/api/?days=true: {days * 1000:.1f} ms; without days: {plain * 1000:.1f} ms; "
                  f"ratio {days / plain:.2f}")
            q = {"startTime90k": str(T0 + DAY), "endTime90k": str(T0 + 2 * DAY)}
            listing = await timed("/api/signals", q)

            def raw_page() -> None:
                with db._read("bench") as conn:
                    conn.execute("select time_90k, signal_id, state from signal_change "
                                 "where time_90k >= ? and time_90k < ? "
                                 "order by time_90k, signal_id limit 10001",
                                 (T0 + DAY, T0 + 2 * DAY)).fetchall()

            peer = best(raw_page, 20)
            print(f"/api/signals for a day ({args.signals * DAY // (args.every * SEC)} changes, "
                  f"at most 10000 a page): {listing * 1000:.1f} ms; its SQL alone: "
                  f"{peer * 1000:.1f} ms; ratio {listing / peer:.2f}")
            db.close()

        trio.run(requests)
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
