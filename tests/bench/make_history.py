"""A recorder's history at scale, made in minutes:
``python -m tests.bench.make_history --streams 32 --days 365 --out /work/scale-data/d365``.

Makes a database directory (``OUT/db``) and one sample-file directory (``OUT/sample``)
as ``nvr init`` and ``nvr config`` would (``Database.create``, ``SampleFileDir.create``
with its meta file, cameras added through the catalog: the open interlock passes), then
fills ``--days`` of back-to-back one-minute recordings per stream ending at the real
clock's "now" (so a daemon started on it sees the history it would have recorded), 16
cameras a main and a sub stream each (an odd ``--streams`` adds a main-only camera).

**Rows.** Written in bulk through the real schema (``executemany`` of whole streams in
one transaction per stream, ``journal_mode=off``/``synchronous=off`` while filling, WAL
again at the end): ``recording`` (with its covering index), ``recording_integrity``
(SHA-256 of the file) and ``recording_playback``; ``stream``'s counters; the per-day
totals (``recording_day``, computed by ``nvr.db.stream_summary.day_deltas`` as a commit
does, days in UTC as the bench's daemon runs). Each recording's
``video_index`` comes from the real codec (``VideoIndexEncoder``) and its summary columns
from ``summarize_index``, so ``.mp4`` layouts and ``nvr check`` accept them. To keep a year
on this disk, an index holds ``--fps`` frames a second (default 1, a key frame every 10
s: ~130 bytes a minute; a 30 fps camera's is ~40 times larger, which the bench's database
size per stream-year accounts for separately). Eight index variants (different frame
sizes) are cycled. A run (one camera session) lasts a day, so ``run_offset`` and
``prev_runs`` vary as a real camera's do; ``prev_media_duration_90k`` is cumulative.

**Sample files** are sparse: ``ftruncate`` to the row's ``sample_file_bytes`` (a main
stream ~2 Mbit/s, a sub stream ~256 kbit/s), nothing written, so they read back as zeros;
the SHA-256 stored is that of those zeros (one per size variant), so ``nvr check --hash``
agrees. A year of 32 streams is 17 million files, more than this filesystem has inodes,
so ``--files`` chooses which exist: ``all``; ``window`` (default: the hour in the middle
of the history that the bench serves, and each stream's oldest ``--oldest`` recordings,
which a retention pass deletes); ``none``. Rows without a file are what ``nvr check``
would report as missing; the daemon never opens them unless served.

**Events** (unless ``--no-events``): every ``EVENT_EVERY``-th recording of each camera's
first stream has a small motion summary, and the camera's motion signal is moving over
that minute (two changes); the first open builds their per-hour and per-day totals.

Prints what it made and how long it took. Re-running on an existing ``--out`` refuses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from nvr.base.clock import RealClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db import raw
from nvr.db.database import Database
from nvr.db.frames_summary import summarize_index
from nvr.db.raw import SUMMARY_COLUMN_NAMES, summary_values
from nvr.db.raw_motion import MotionRow, cells_ints
from nvr.db.recording import VideoIndexEncoder
from nvr.db.signals import MOTION_MOVING, MOTION_STILL
from nvr.db.stream_summary import day_deltas, day_rows, zone_key
from nvr.db.types import CameraConfig, StreamConfig
from nvr.storage.dir import SampleFileDir, file_name
from nvr.testing.env import TEST_SAMPLE_ENTRY

MINUTE = 60 * UNITS_PER_SEC
DAY = 86_400 * UNITS_PER_SEC
#: bytes per second of each stream type (main ~2 Mbit/s, sub ~256 kbit/s)
RATES = {"main": 250_000, "sub": 32_000}
VARIANTS = 8
RETAIN_BYTES = 1 << 50  # never reached: retention runs only when the bench asks


@dataclass(frozen=True)
class Variant:
    """One recording's index and what follows from it (shared by many rows)."""

    index: bytes
    nbytes: int
    frames: int
    keys: int
    media: int
    summary: tuple[int, int, int, int, bytes]
    sha256: bytes


def make_variant(rate: int, fps: int, seconds: int, seed: int) -> Variant:
    enc = VideoIndexEncoder()
    per_frame = rate // fps
    n = seconds * fps
    for i in range(n):
        key = i % (10 * fps) == 0
        size = per_frame * 4 if key else per_frame * 2 // 3
        enc.add(UNITS_PER_SEC // fps, size + (i * 37 + seed * 101) % 997, key)
    t = enc.totals
    h = hashlib.sha256()
    zeros = bytes(1 << 20)
    left = t.bytes
    while left:
        chunk = min(left, len(zeros))
        h.update(zeros[:chunk])
        left -= chunk
    return Variant(enc.data, t.bytes, n, t.key_frames, t.media_duration_90k,
                   summary_values(summarize_index(enc.data)), h.digest())


def stream_layout(streams: int) -> list[tuple[str, list[str]]]:
    """(camera name, stream types) for ``streams`` streams: main+sub pairs, then a main."""
    cams = [(f"cam{i:02d}", ["main", "sub"]) for i in range(streams // 2)]
    if streams % 2:
        cams.append((f"cam{len(cams):02d}", ["main"]))
    return cams


#: with events: every this many recordings of a camera's first stream have a motion
#: summary (3 seconds moving in 2 cells), and its motion signal is on over that minute
EVENT_EVERY = 10
EVENT_MOTION = MotionRow(
    cells=bytes([0x03]) + bytes(31), entries=bytes([10, 0, 0, 40, 11, 0, 1, 60, 12, 0, 0, 30]),
    global_seconds=b"", motion_seconds=3, frames=300, skipped=0)


def build(out: Path, *, streams: int, days: float, fps: int, files: str, oldest: int,
          end: int, events: bool = True) -> dict[str, object]:
    db_dir, sample_dir = out / "db", out / "sample"
    Database.create(db_dir, end)
    tz = dt.UTC
    with Database.open(db_dir, tz=tz, now=lambda: end) as db:
        dir_uuid = uuid.uuid4()
        SampleFileDir.create(sample_dir, db.uuid, dir_uuid)
        dir_id = db.add_sample_file_dir(str(sample_dir), dir_uuid).id
        stream_ids: list[tuple[int, str]] = []
        signals: dict[int, int] = {}  # a camera's first stream -> its motion signal
        for name, types in stream_layout(streams):
            cam = db.add_camera(name, config=CameraConfig(), streams={
                t: (dir_id, StreamConfig(url=f"rtsp://127.0.0.1:9/{name}/{t}", mode="record",
                                         retain_bytes=RETAIN_BYTES)) for t in types})
            stream_ids += [(cam.streams[t], t) for t in types]
            if events:
                signals[cam.streams[types[0]]] = db.motion_signal(cam.id).id
        entry_id = db.insert_video_sample_entry(TEST_SAMPLE_ENTRY)
        open_id = db.open_id
    variants = {t: [make_variant(r, fps, 60, k) for k in range(VARIANTS)]
                for t, r in RATES.items()}
    per_stream = int(days * 24 * 60)
    start = end - per_stream * MINUTE
    middle = per_stream // 2
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    conn.execute("pragma journal_mode = off")
    conn.execute("pragma synchronous = off")
    conn.execute("pragma cache_size = -262144")  # 256 MiB
    dfd = os.open(sample_dir, os.O_RDONLY | os.O_DIRECTORY)
    insert = f"""insert into recording (composite_id, open_id, stream_id, run_offset, flags,
        sample_file_bytes, start_time_90k, prev_media_duration_90k, prev_runs,
        wall_duration_90k, media_duration_delta_90k, video_samples, video_sync_samples,
        video_sample_entry_id, end_reason, {", ".join(SUMMARY_COLUMN_NAMES)})
        values (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
    made_files = 0
    day_totals: list[tuple[int, str, int, int, int, int, int]] = []
    t0 = time.perf_counter()
    try:
        for n, (sid, type_) in enumerate(stream_ids):
            vs = variants[type_]
            conn.execute("begin")
            rec_rows = []
            integ = []
            play = []
            cum_media = 0
            runs = 0
            run_start = 0
            for rec in range(per_stream):
                v = vs[rec % VARIANTS]
                cid = sid << 32 | rec
                t = start + rec * MINUTE
                if rec == 0 or t - (start + run_start * MINUTE) >= DAY:
                    run_start = rec
                    runs += 1
                last_of_run = rec == per_stream - 1 or (
                    start + (rec + 1) * MINUTE - (start + run_start * MINUTE) >= DAY)
                rec_rows.append((cid, open_id, sid, rec - run_start, v.nbytes, t, cum_media,
                                 runs - 1, v.media, v.frames, v.keys, entry_id,
                                 "camera reconnected" if last_of_run else None, *v.summary))
                integ.append((cid, v.sha256))
                play.append((cid, v.index))
                cum_media += v.media
                if files == "all" or (files == "window" and (
                        rec < oldest or middle - 30 <= rec < middle + 30)):
                    fd = os.open(file_name(cid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640,
                                 dir_fd=dfd)
                    os.ftruncate(fd, v.nbytes)
                    os.close(fd)
                    made_files += 1
            conn.executemany(insert, rec_rows)
            if sid in signals:
                moved = rec_rows[::EVENT_EVERY]
                conn.executemany(
                    """insert into recording_motion (composite_id, cells, entries,
                       global_seconds, motion_seconds, frames, skipped, cells_0, cells_1,
                       cells_2, cells_3) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [(r[0], m.cells, m.entries, m.global_seconds, m.motion_seconds, m.frames,
                      m.skipped, *cells_ints(m.cells)) for r in moved for m in (EVENT_MOTION,)])
                conn.executemany(
                    "insert into signal_change (signal_id, time_90k, state) values (?, ?, ?)",
                    [(signals[sid], r[5] + d, st) for r in moved
                     for d, st in ((0, MOTION_MOVING), (MINUTE, MOTION_STILL))])
            conn.executemany("""insert into recording_integrity
                (composite_id, sample_file_sha256) values (?, ?)""", integ)
            conn.executemany(
                "insert into recording_playback (composite_id, video_index) values (?, ?)",
                play)
            conn.execute("""update stream set cum_recordings = ?, cum_media_duration_90k = ?,
                cum_runs = ? where id = ?""", (per_stream, cum_media, runs, sid))
            day_totals += [(sid, *row) for row in day_rows(day_deltas(
                ((r[5], r[8], r[4]) for r in rec_rows), tz))]
            conn.execute("commit")
            print(f"  stream {n + 1}/{len(stream_ids)}: {per_stream} recordings "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        conn.execute("begin")
        raw.replace_recording_days(conn, zone_key(tz), day_totals)
        conn.execute("delete from event_total_zone")  # the first open builds them
        conn.execute("commit")
        conn.execute("pragma journal_mode = wal")
    finally:
        os.close(dfd)
        conn.close()
    # The first open after filling builds whatever the database derives from its rows.
    t1 = time.perf_counter()
    with Database.open(db_dir, tz=tz, now=lambda: end):
        pass
    return {
        "streams": len(stream_ids), "days": days, "recordings": per_stream * len(stream_ids),
        "files": made_files, "start_90k": start, "end_90k": end,
        "fill_sec": round(t1 - t0, 1), "first_open_sec": round(time.perf_counter() - t1, 1),
        "db_bytes": (db_dir / "db").stat().st_size,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--fps", type=int, default=1, help="frames a second in each index")
    ap.add_argument("--files", choices=("all", "window", "none"), default="window")
    ap.add_argument("--oldest", type=int, default=5,
                    help="with --files window: each stream's oldest recordings with files")
    ap.add_argument("--events", action=argparse.BooleanOptionalAction, default=True,
                    help=f"motion summaries and signal changes every {EVENT_EVERY} minutes")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} exists and is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    end = RealClocks().realtime() // MINUTE * MINUTE
    info = build(args.out, streams=args.streams, days=args.days, fps=args.fps,
                 files=args.files, oldest=args.oldest, end=end, events=args.events)
    (args.out / "history.txt").write_text(
        "".join(f"{k} = {v!r}\n" for k, v in info.items()))
    print(" ".join(f"{k}={v}" for k, v in info.items()))


if __name__ == "__main__":
    main()
