"""Benchmark of ``nvr check`` on a large synthetic install:
``python -m tests.bench.bench_check [--files 1000000] [--frames 1800] [--dir PATH]``.

Builds (once per ``--dir``; reused if it is already there) a database and one sample-file
directory holding ``--files`` recordings spread over 10 streams: each recording is 60 s
of 30 fps video (``--frames`` frames, a key frame a second) of ~1 MB, so a million files
stand for 1 TB. The files are sparse (``ftruncate`` to their size: nothing is written),
the rows are complete (recording, integrity, playback with a real ``video_index``) and
consistent, so ``check`` reports no problem.

Prints the time of ``check`` (without ``--hash``: hashing reads every byte and is bound by
the disk, not by nvr) and, as the peer measured in the same run, the time of the bare
I/O it cannot avoid: ``stat`` of every file plus one SQL pass reading every
``video_index``; the ratio is what nvr's own checking costs on top.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.database import Database
from nvr.db.frames_summary import summarize_index
from nvr.db.raw import SUMMARY_COLUMN_NAMES, summary_values
from nvr.db.recording import VideoIndexEncoder
from nvr.db.types import CameraConfig, StreamConfig
from nvr.offline.check import check
from nvr.storage.dir import SampleFileDir, file_name
from nvr.testing.env import TEST_SAMPLE_ENTRY
from tests.support.determinism import T0

STREAMS = 10
FPS = 30


def build_index(frames: int) -> tuple[bytes, int, int, int]:
    """(video_index, bytes, key frames, media duration) of one ~1 MB recording."""
    enc = VideoIndexEncoder()
    for i in range(frames):
        key = i % FPS == 0
        enc.add(UNITS_PER_SEC // FPS, (5000 if key else 400) + (i * 37) % 101, key)
    t = enc.totals
    return enc.data, t.bytes, t.key_frames, t.media_duration_90k


def build(root: Path, files: int, frames: int) -> None:
    db_dir, sample_dir = root / "db", root / "sample"
    Database.create(db_dir, T0)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        dir_uuid = uuid.uuid4()
        SampleFileDir.create(sample_dir, db.uuid, dir_uuid)
        dir_id = db.add_sample_file_dir(str(sample_dir), dir_uuid).id
        stream_ids = []
        for i in range(STREAMS):
            cam = db.add_camera(f"cam{i}", config=CameraConfig(), streams={
                "main": (dir_id, StreamConfig(url=f"rtsp://cam{i}/", retain_bytes=1 << 50))})
            stream_ids.append(cam.streams["main"])
        entry_id = db.insert_video_sample_entry(TEST_SAMPLE_ENTRY)
        open_id = db.open_id
    index, nbytes, keys, media = build_index(frames)
    summary = summary_values(summarize_index(index))
    per_stream = -(-files // STREAMS)
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = off")
    dfd = os.open(sample_dir, os.O_RDONLY | os.O_DIRECTORY)
    made = 0
    try:
        conn.execute("begin")
        for sid in stream_ids:
            n = min(per_stream, files - made)
            rows = []
            for rec in range(n):
                cid = sid << 32 | rec
                fd = os.open(file_name(cid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640,
                             dir_fd=dfd)
                os.ftruncate(fd, nbytes)
                os.close(fd)
                rows.append((cid, open_id, sid, rec, nbytes, T0 + rec * media, rec * media,
                             media, frames, keys, entry_id, *summary))
            conn.executemany(
                f"""insert into recording (composite_id, open_id, stream_id, run_offset, flags,
                     sample_file_bytes, start_time_90k, prev_media_duration_90k, prev_runs,
                     wall_duration_90k, media_duration_delta_90k, video_samples,
                     video_sync_samples, video_sample_entry_id, {", ".join(SUMMARY_COLUMN_NAMES)})
                   values (?, ?, ?, ?, 0, ?, ?, ?, 0, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)
            conn.executemany("insert into recording_integrity (composite_id) values (?)",
                             ((r[0],) for r in rows))
            conn.executemany(
                "insert into recording_playback (composite_id, video_index) values (?, ?)",
                ((r[0], index) for r in rows))
            conn.execute(
                """update stream set cum_recordings = ?, cum_media_duration_90k = ?,
                   cum_runs = ? where id = ?""", (n, n * media, 1 if n else 0, sid))
            made += n
            print(f"  built {made}/{files}", file=sys.stderr)
        conn.execute("commit")
    finally:
        os.close(dfd)
        conn.close()


def peer(root: Path) -> float:
    """The unavoidable I/O: stat every file, read every video_index once."""
    start = time.perf_counter()
    total = 0
    with os.scandir(root / "sample") as it:
        for e in it:
            total += e.stat().st_size
    conn = sqlite3.connect(f"file:{root / 'db' / 'db'}?mode=ro", uri=True)
    for (blob,) in conn.execute(
        "select p.video_index from recording r join recording_playback p using (composite_id)"
    ):
        total += len(blob)
    conn.close()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--frames", type=int, default=60 * FPS)
    ap.add_argument("--dir", type=Path, default=None,
                    help="where to build (and keep) the synthetic install")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="nvr-bench-check-"))
    if not (root / "db" / "db").exists():
        start = time.perf_counter()
        build(root, args.files, args.frames)
        print(f"built {args.files} files in {root} in {time.perf_counter() - start:.0f} s")
    peer_s = peer(root)  # also warms the page cache for both
    peer_s = min(peer_s, peer(root))
    start = time.perf_counter()
    report = check(root / "db", progress=sys.stderr if sys.stderr.isatty() else None)
    check_s = time.perf_counter() - start
    assert report.problems == [], report.problems[:10]
    db_mb = (root / "db" / "db").stat().st_size / 1e6
    print(f"check: {report.recordings} recordings, {report.files} files "
          f"({args.frames} frames each, database {db_mb:.0f} MB): {check_s:.1f} s "
          f"({report.files / check_s:,.0f} files/s)")
    print(f"peer (stat every file + read every index): {peer_s:.1f} s; "
          f"check / peer = {check_s / peer_s:.1f}")


if __name__ == "__main__":
    main()
