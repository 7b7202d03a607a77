"""Benchmark of motion search and motion totals: ``python -m tests.bench.bench_motion_search``.

Builds, in a temporary directory, one camera with 30 days of one-minute recordings
(43,200 rows) whose motion summaries are made by the real writer (``SummaryBuilder``:
a person-sized blob wandering through the picture in about 15% of the seconds, in bursts)
and stored with ``raw_motion.insert_motion`` (the statement ``put_motion_summary`` and the flush
use), plus 31 more cameras with one analysed recording per hour for the same 30 days (the
per-hour totals ``/api/`` shows are the same shape however many recordings make them).

Prints, through the real HTTP routes (Quart's test client, in-process):

- a region search over the whole month (``GET /api/cameras/<uuid>/motion``, limit 1000: a
  quarter of the picture, the whole picture, and a quarter with a ``minFraction`` no
  second reaches, which reads back through the whole month), against a peer measured in
  the same run: the SQLite query alone that fetches every summary of the month (what a
  search reading them all pays before any arithmetic);
- ``GET /api/?days=true`` for 32 cameras with motion day/hour totals, against the same
  request with motion totals switched off (the listing without them).

Targets (issue 14): search < 100 ms, ``/api/`` < 50 ms. Also the summary bytes per
recorded hour.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import trio

from nvr.base.clock import RealClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from nvr.db import raw_motion
from nvr.db.database import Database
from nvr.db.types import CameraConfig, StreamConfig
from nvr.motion.detector import CELLS, GRID, Analysis
from nvr.motion.summary import SummaryBuilder, cells_to_bitmap
from nvr.motion.task import to_row
from nvr.web import motion_api
from nvr.web.app import create_app
from nvr.web.context import WebContext

SEC = UNITS_PER_SEC
MINUTE = 60 * SEC
DAYS = 30
T0 = 1_764_547_200 * SEC  # 2025-12-01T00:00:00Z
CAMERAS = 32


def _blob_analysis(rng: np.random.Generator, row: int, col: int) -> Analysis:
    frac = np.zeros(CELLS, np.float32)
    for dr in (0, 1):
        for dc in (0, 1):
            r, c = min(row + dr, GRID - 1), min(col + dc, GRID - 1)
            frac[r * GRID + c] = rng.uniform(0.1, 0.9)
    return Analysis(frac, frac >= 0.06, False)


def minute_summary(rng: np.random.Generator, state: list[int]) -> raw_motion.MotionRow:
    """One minute: bursts of motion of a wandering 2x2-cell blob, ~15% of the seconds."""
    b = SummaryBuilder()
    row, col, burst = state
    for s in range(60):
        if burst == 0 and rng.random() < 0.03:
            burst = int(rng.integers(2, 10))
        if burst:
            burst -= 1
            row = int(np.clip(row + rng.integers(-1, 2), 0, GRID - 1))
            col = int(np.clip(col + rng.integers(-1, 2), 0, GRID - 1))
            b.add(s * SEC, _blob_analysis(rng, row, col))
    state[:] = [row, col, burst]
    b.frames = 300
    return to_row(b.finish())


def build(root: Path) -> tuple[Path, list[str], int]:
    db_dir = root / "db"
    Database.create(db_dir, T0)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        d = db.add_sample_file_dir(str(root / "sample"), uuid.uuid4())
        entry = db.insert_video_sample_entry(
            __import__("nvr.testing.env", fromlist=["TEST_SAMPLE_ENTRY"]).TEST_SAMPLE_ENTRY)
        cams = [
            db.add_camera(f"cam{i}", config=CameraConfig(motion="main"),
                          streams={"main": (d.id, StreamConfig(url=f"rtsp://c{i}/"))})
            for i in range(CAMERAS)
        ]
        open_id = db.open_id
        sids = [c.streams["main"] for c in cams]
    rng = np.random.default_rng(1)
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    conn.execute("begin")
    summary_bytes = 0
    for k, sid in enumerate(sids):
        step = MINUTE if k == 0 else 60 * MINUTE
        n = DAYS * 24 * 3600 * SEC // step
        state = [8, 8, 0]
        for i in range(n):
            cid = sid << 32 | i
            conn.execute(
                """insert into recording (composite_id, open_id, stream_id, run_offset, flags,
                     sample_file_bytes, start_time_90k, prev_media_duration_90k, prev_runs,
                     wall_duration_90k, media_duration_delta_90k, video_samples,
                     video_sync_samples, video_sample_entry_id)
                   values (?, ?, ?, ?, 0, 1000000, ?, ?, 0, ?, 0, 1800, 60, ?)""",
                (cid, open_id, sid, i, T0 + i * step, i * MINUTE, MINUTE, entry))
            m = minute_summary(rng, state)
            if k == 0:
                summary_bytes += len(m.cells) + len(m.entries) + len(m.global_seconds) + 24
            raw_motion.insert_motion(conn, cid, m)
        conn.execute("update stream set cum_recordings = ?, cum_media_duration_90k = ? "
                     "where id = ?", (n, n * MINUTE, sid))
    conn.execute("commit")
    conn.close()
    return db_dir, [str(c.uuid) for c in cams], summary_bytes


CPU: dict[str, float] = {}


async def timed(fn: Callable[[], Awaitable[object]], runs: int = 15, name: str = "") -> float:
    """Median wall ms of ``runs`` calls; the median CPU ms of this process (worker
    threads included) goes to ``CPU[name]``: on a loaded machine the wall time mostly
    measures the other load."""
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        await fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU[name] = statistics.median(cpu) * 1000
    return statistics.median(times) * 1000


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        db_dir, uuids, summary_bytes = build(root)
        print(f"built 30 days x {CAMERAS} cameras in {time.perf_counter() - t:.1f} s; "
              f"load average {os.getloadavg()[0]:.1f}")
        hours = DAYS * 24
        print(f"summary bytes per recorded hour (camera 0, ~15% of seconds moving): "
              f"{summary_bytes / hours:.0f}")
        db = Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0)
        ctx = WebContext(db=db, dirs={}, clocks=RealClocks(),
                         bind=BindConfig(allow_unauthenticated=frozenset({"viewVideo"})))
        client = create_app(ctx).test_client()
        start, end = T0, T0 + DAYS * 24 * 3600 * SEC
        quarter = np.zeros(CELLS, bool)
        for r in range(8):
            quarter[r * GRID: r * GRID + 8] = True

        async def search(cells: str | None, min_fraction: str = "0") -> None:
            q: dict[str, object] = {"startTime90k": start, "endTime90k": end, "limit": 1000,
                                    "minFraction": min_fraction}
            if cells:
                q["cells"] = cells
            resp = await client.get(f"/api/cameras/{uuids[0]}/motion", query_string=q)
            assert resp.status_code == 200, await resp.get_data(as_text=True)
            await resp.get_json()

        sid0 = db.cameras[min(db.cameras)].streams["main"]
        everything = bytes([255]) * 32

        async def floor() -> None:  # every summary of the month, as a full read gets them
            db.motion_search_rows(sid0, everything, start - 5 * 60 * SEC, end, start)

        rows = len(db.motion_search_rows(sid0, everything, start - 5 * 60 * SEC, end, start))
        qhex = cells_to_bitmap(quarter).hex()
        q_ms = await timed(lambda: search(qhex), name="quarter")
        a_ms = await timed(lambda: search(None), name="all")
        w_ms = await timed(lambda: search(qhex, "0.08"), name="worst")
        f_ms = await timed(floor, name="floor")
        print(f"search over 30 days ({rows} analysed recordings with motion), limit 1000:")
        print(f"  quarter region: {q_ms:.1f} ms   whole picture: {a_ms:.1f} ms   "
              f"(target < 100 ms)")
        print(f"  quarter region, minFraction 0.08 (no span: reads the whole month): "
              f"{w_ms:.1f} ms")
        print(f"  peer, the SQLite fetch of every summary of the month: {f_ms:.1f} ms; ratio "
              f"{q_ms / f_ms:.2f}x / {a_ms / f_ms:.2f}x / {w_ms / f_ms:.2f}x")
        print(f"  CPU time (ms): quarter {CPU['quarter']:.1f}, whole {CPU['all']:.1f}, "
              f"whole month {CPU['worst']:.1f}, fetch of every summary {CPU['floor']:.1f}")

        async def api() -> None:
            resp = await client.get("/api/", query_string={"days": "true"})
            assert resp.status_code == 200
            await resp.get_json()

        api_ms = await timed(api, name="api")
        real = motion_api.motion_json
        motion_api.motion_json = lambda cam: None  # type: ignore[assignment]
        import nvr.web.api as api_mod
        api_mod.motion_json = lambda cam: None  # type: ignore[assignment]
        plain_ms = await timed(api, name="plain")
        api_mod.motion_json = real
        print(f"/api/?days=true, {CAMERAS} cameras x 30 days with motion totals: "
              f"{api_ms:.1f} ms (target < 50 ms); peer without motion totals: {plain_ms:.1f} ms; "
              f"ratio {api_ms / plain_ms:.2f}x (CPU {CPU['api']:.1f} / {CPU['plain']:.1f} ms)")
        db.close()


if __name__ == "__main__":
    trio.run(main)
