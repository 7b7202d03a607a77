"""Benchmark of playback from the archive: ``python -m tests.bench.bench_archive_read
[--minutes 60] [--runs 3]``.

Builds ``bench_serve``'s database (one-minute recordings of the 1080p30 benchmark clip,
~4 Mbit/s; sample files hard links to one file) for ``--minutes`` minutes, and serves
``view.mp4`` of all of it from a server process (``create_app`` on hypercorn, port 0, the
database read-only), measured by ``bench_serve``'s plain-socket client, in the same run:

1. **local**: TTFB (cold, then the median of ``--runs``) and throughput of the whole file
   read from the sample files;
2. then a SeaweedFS (``tests/support/seaweed.py``) is started, every recording uploaded
   by the real ``Uploader`` and deleted locally by retention (the rows move to
   ``archive_only_recording``, the files are unlinked), and the same file is served again
   **from the archive** (ranged GETs through ``nvr.archive.reader`` with its read-ahead):
   same TTFB and throughput measures, and the ETag and byte count are checked equal.

Prints both and the ratios (targets: TTFB from the archive < 150 ms, throughput >= 0.5x
local). The client, the server process and SeaweedFS share the machine: note the load
average printed with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from fixtures.make_fixtures import BENCH_1080P, cached_clip
from nvr.archive.client import S3Store
from nvr.archive.uploader import Uploader, sample_opener
from nvr.base.clock import RealClocks
from nvr.db.archives import ArchiveConfig
from nvr.db.database import Database
from nvr.storage.dir import open_for_database
from tests.bench.bench_serve import get, make_db
from tests.support.seaweed import SeaweedServer


def serve_main(db_dir: str, reads: dict[str, int]) -> None:
    """``--serve``: serves the database read-only (with its archives) on 127.0.0.1:0."""
    import hypercorn.config
    import hypercorn.trio

    from nvr.archive.reader import open_archive_reads
    from nvr.config import BindConfig
    from nvr.web.app import create_app
    from nvr.web.context import WebContext

    clocks = RealClocks()
    db = Database.open(db_dir, read_only=True, tz=dt.UTC, now=clocks.realtime)
    dirs = {d: open_for_database(db, d, read_only=True) for d in db.dirs}
    ctx = WebContext(db=db, dirs=dirs, clocks=clocks, archive_reads=open_archive_reads(db, **reads),
                     bind=BindConfig(address="127.0.0.1:0",
                                     allow_unauthenticated=("viewVideo",)))
    hc = hypercorn.config.Config()
    hc.bind = ["127.0.0.1:0"]
    hc.accesslog = None

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(hypercorn.trio.serve, create_app(ctx), hc)
            print(bound[0], flush=True)

    trio.run(main)


@contextmanager
def server(db_dir: Path, extra: list[str]) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_archive_read", "--serve",
                             str(db_dir), *extra], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline().strip().rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(10)


def measure(db_dir: Path, path: str, runs: int, extra: list[str]) -> dict[str, float | str]:
    with server(db_dir, extra) as port:
        cold = get(port, path, limit=1)[0]
        ttfbs = [get(port, path, limit=1)[0] for _ in range(runs)]
        totals, etag, size = [], "", 0
        for _ in range(runs):
            _ttfb, total, n, head = get(port, path)
            totals.append(n / total)
            size = n
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("etag:"):
                    etag = line.split(":", 1)[1].strip()
    return {"cold_ms": cold * 1e3, "ttfb_ms": statistics.median(ttfbs) * 1e3,
            "mb_s": statistics.median(totals) / 1e6, "etag": etag, "bytes": size,
            "load": os.getloadavg()[0]}


async def archive_and_delete(db_dir: Path, server_: SeaweedServer, bucket: str) -> float:
    """Uploads every recording, then deletes them locally; returns the upload seconds."""
    db = Database.open(db_dir, tz=dt.UTC, now=RealClocks().realtime)
    dirs = {d: open_for_database(db, d, read_only=False) for d in db.dirs}
    try:
        cfg = server_.config(bucket)
        a = db.add_archive("bench", ArchiveConfig(cfg.endpoint, bucket, prefix="nvr",
                                                  access_key=cfg.access_key,
                                                  secret_key=cfg.secret_key))
        up = Uploader(db, a.id, S3Store(cfg), sample_opener(db, dirs), RealClocks())
        t0 = time.perf_counter()
        while await up.run_once():
            pass
        upload = time.perf_counter() - t0
        for sid in db.streams:
            db.plan_delete_all_recordings(sid)
        db.flush("bench: local copies deleted")
        for dir_id, d in dirs.items():
            for cid in list(db.dirs[dir_id].garbage_needs_unlink):
                d.unlink(cid)
        return upload
    finally:
        for d in dirs.values():
            d.close()
        db.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--window-mib", type=int, default=None, help="GET size (reader.WINDOW)")
    p.add_argument("--ahead", type=int, default=None, help="windows ahead (reader.AHEAD)")
    p.add_argument("--workers", type=int, default=None, help="GET threads (reader.WORKERS)")
    p.add_argument("--also-ahead", type=int, action="append",
                   help="measure the archive again with this many windows ahead")
    p.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    reads = {k: v for k, v in (("window", args.window_mib and args.window_mib << 20),
                               ("ahead", args.ahead), ("workers", args.workers))
             if v is not None}
    if args.serve:
        serve_main(args.serve, reads)
        return
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in (
        ("window_mib", args.window_mib), ("ahead", args.ahead), ("workers", args.workers))
        if v is not None]
    with tempfile.TemporaryDirectory(prefix="bench-archive-read-") as tmp:
        root = Path(tmp)
        db_dir, cam = make_db(root, cached_clip(BENCH_1080P), args.minutes)
        path = f"/api/cameras/{cam}/main/view.mp4?s=0-{args.minutes - 1}"
        local = measure(db_dir, path, args.runs, extra)
        print(f"local: {local}", flush=True)
        srv = SeaweedServer(root / "weed")
        srv.start()
        try:
            bucket = srv.bucket()
            upload = trio.run(archive_and_delete, db_dir, srv, bucket)
            print(f"uploaded in {upload:.1f} s", flush=True)
            remote = measure(db_dir, path, args.runs, extra)
            print(f"archive: {remote}", flush=True)
            for ahead in args.also_ahead or ():
                more = measure(db_dir, path, args.runs, [*extra, f"--ahead={ahead}"])
                print(f"archive, ahead={ahead}: {more}", flush=True)
        finally:
            srv.stop()
    assert remote["etag"] == local["etag"] and remote["bytes"] == local["bytes"]
    print(f"\n{args.minutes}-minute view.mp4, {int(local['bytes']) / 1e9:.2f} GB")
    print("| source | TTFB cold ms | TTFB median ms | MB/s | load |")
    print("|---|---|---|---|---|")
    for name, m in (("local files", local), ("archive (SeaweedFS)", remote)):
        print(f"| {name} | {float(m['cold_ms']):.1f} | {float(m['ttfb_ms']):.1f} | "
              f"{float(m['mb_s']):.0f} | {float(m['load']):.1f} |")
    print(f"archive/local throughput: {float(remote['mb_s']) / float(local['mb_s']):.2f}x "
          f"(target >= 0.5); archive TTFB {float(remote['ttfb_ms']):.0f} ms (target < 150)")


if __name__ == "__main__":
    main()
