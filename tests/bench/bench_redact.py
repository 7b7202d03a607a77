"""Benchmark of redaction's byte removal: ``python -m tests.bench.bench_redact``.

Builds ``bench_serve``'s database (one-minute recordings of the 1080p30 benchmark clip,
~30 MB each, sample files hard-linked to one file) with ``--minutes`` recordings, adds
one tombstone of ``--cut`` seconds in the middle of each recording, and times the syncer
pass that cuts them all (``Syncer.run_once``: plan, write and fsync two pieces per
recording, fsync the directory, commit, unlink the old file). As the peer, measured in
the same run on the same bytes: a plain copy of each piece's byte range into a new file
with the same fsyncs (what any rewrite must at least do).

Prints the rewrite time per recorded minute, its throughput, the ratio against the
plain copy, and the load average (the machine may be shared). The page cache serves
every read after the first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import trio

from fixtures.make_fixtures import BENCH_1080P, cached_clip
from nvr.base.clock import RealClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.database import Database
from nvr.storage.dir import open_for_database
from nvr.syncer import Syncer
from tests.bench.bench_serve import make_db


def plain_copy(src: Path, dst_dir: Path, ranges: list[tuple[int, int]]) -> int:
    """Copies each byte range of ``src`` into its own new file, fsyncs each and the
    directory once; returns the bytes copied."""
    n = 0
    dfd = os.open(dst_dir, os.O_RDONLY | os.O_DIRECTORY)
    with src.open("rb") as f:
        for i, (off, length) in enumerate(ranges):
            fd = os.open(dst_dir / f"copy{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                f.seek(off)
                left = length
                while left:
                    chunk = f.read(min(left, 4 << 20))
                    os.write(fd, chunk)
                    left -= len(chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            n += length
    os.fsync(dfd)
    os.close(dfd)
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=int, default=10)
    p.add_argument("--cut", type=float, default=10.0, help="seconds redacted per minute")
    args = p.parse_args()
    clip = cached_clip(BENCH_1080P)
    with tempfile.TemporaryDirectory(prefix="bench-redact-", dir="/work/tmp"
                                     if Path("/work/tmp").is_dir() else None) as tmp:
        root = Path(tmp)
        db_dir, _ = make_db(root, clip, args.minutes)
        clocks = RealClocks()
        db = Database.open(db_dir, tz=dt.UTC, now=clocks.realtime)
        dir_id = next(iter(db.dirs))
        sdir = open_for_database(db, dir_id, read_only=False)
        sid = next(iter(db.streams))
        recs = db.list_recordings_by_time(sid, 0, 1 << 62)
        cut = int(args.cut * UNITS_PER_SEC)
        for r in recs:
            mid = r.start_time_90k + r.wall_duration_90k // 2
            db.add_redaction(sid, mid - cut // 2, mid + cut // 2, "bench", user_id=None,
                             username=None)
        total = sum(r.sample_file_bytes for r in recs)
        syncer = Syncer(db, dir_id, sdir, clocks)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        trio.run(syncer.run_once)
        t_cut = time.perf_counter() - t0
        pieces = db.list_recordings_by_time(sid, 0, 1 << 62)
        kept = sum(r.sample_file_bytes for r in pieces)
        assert len(pieces) == 2 * len(recs) and not db.redaction_work(dir_id)
        # the peer: the same byte ranges copied plainly from the (page-cached) master
        ranges = []
        for piece in pieces:
            ranges.append((0, piece.sample_file_bytes))  # same lengths; offsets immaterial
        copy_dir = root / "copy"
        copy_dir.mkdir()
        t0 = time.perf_counter()
        copied = plain_copy(root / "master.bin", copy_dir, ranges)
        t_copy = time.perf_counter() - t0
        load1 = os.getloadavg()[0]
        sdir.close()
        db.close()
    minutes = len(recs)
    print(f"{minutes} one-minute 1080p30 recordings ({total / 1e6:.0f} MB), "
          f"{args.cut:.0f} s redacted in the middle of each")
    print(f"cut: {t_cut:.2f} s = {t_cut / minutes * 1000:.0f} ms per recorded minute; "
          f"{kept / 1e6:.0f} MB rewritten into {len(pieces)} pieces, "
          f"{kept / t_cut / 1e6:.0f} MB/s")
    print(f"plain copy of the same bytes: {t_copy:.2f} s, {copied / t_copy / 1e6:.0f} MB/s; "
          f"cut / copy = {t_cut / t_copy:.2f}")
    print(f"load average {load0:.1f} before, {load1:.1f} after (2 cores, shared)")


if __name__ == "__main__":
    main()
