"""Benchmark of ``GET /api/export`` over loopback: ``python -m tests.bench.bench_export``.

Builds ``bench_serve``'s database (one-minute recordings of the 1080p30 benchmark clip,
~30 MB each, sample files hard-linked to one file) with ``--minutes`` recordings, serves
it read-only in a server process (``bench_serve --serve``), and in the same run:

1. exports two ranges of half the recordings each (about 1 GB in all with the default
   34 minutes of video) as one zip, read to the end over a plain socket,
   written to a file, while sampling the server's RSS every 50 ms;
2. as the peer, ``view.mp4`` of the same recordings in one file (the same layout code and
   sample reads, without the zip framing and hashing);
3. ``nvr verify-export`` of the saved zip (time).

Prints throughput of both, their ratio, and the server's RSS range while exporting. The
page cache serves every read after the first pass; the machine may be shared.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from fixtures.make_fixtures import BENCH_1080P, cached_clip
from nvr.offline.verify_export import verify_export
from tests.bench.bench_serve import T0, RssSampler, get, make_db, mb_s, rss_kib, server


def get_chunked(port: int, path: str, out: Path) -> tuple[float, int]:
    """HTTP/1.1 GET of a chunked body, de-chunked into ``out``: (seconds, body bytes)."""
    with socket.create_connection(("127.0.0.1", port)) as s, out.open("wb") as f:
        t0 = time.perf_counter()
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                  .encode())
        r = s.makefile("rb", buffering=1 << 20)
        status = r.readline()
        if b" 200 " not in status:
            raise RuntimeError(status.decode(errors="replace"))
        while r.readline() not in (b"\r\n", b""):
            pass
        n = 0
        while True:
            size = int(r.readline().split(b";")[0], 16)
            if size == 0:
                break
            left = size
            while left:
                chunk = r.read(min(left, 1 << 20))
                f.write(chunk)
                left -= len(chunk)
            r.readline()
            n += size
        return time.perf_counter() - t0, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=int, default=34)
    p.add_argument("--tmp", default=None)
    args = p.parse_args()
    clip = cached_clip(BENCH_1080P)
    with tempfile.TemporaryDirectory(prefix="bench-export-", dir=args.tmp) as tmp:
        root = Path(tmp)
        db_dir, cam = make_db(root, clip, args.minutes)
        # recordings are back to back from T0; their media duration (from the first row)
        import datetime as dt

        from nvr.db.database import Database
        with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as db:
            recs = db.list_recordings_by_time(next(iter(db.streams)), 0, 1 << 62)
        end = recs[-1].end_time_90k
        mid = recs[len(recs) // 2].start_time_90k
        export = (f"/api/export?camera={cam}&range={T0}-{mid}&range={mid}-{end}")
        view = f"/api/cameras/{cam}/main/view.mp4?s=0-{len(recs) - 1}"
        zip_path = root / "export.zip"
        with server(db_dir) as (pid, port):
            start_rss = rss_kib(pid)
            get(port, view)  # warm the page cache
            with RssSampler(pid) as rss:
                t_export, n_export = get_chunked(port, export, zip_path)
            _, t_view, n_view, _ = get(port, view)
        t = time.perf_counter()
        report = verify_export(zip_path)
        t_verify = time.perf_counter() - t
        assert report.ok, report.problems
    print(f"{len(recs)} recordings; server RSS at start {start_rss / 1024:.0f} MiB")
    print(f"export: {n_export / 1e9:.2f} GB in {t_export:.2f} s = "
          f"{mb_s(n_export, t_export):.0f} MB/s; server RSS while exporting "
          f"{min(rss.samples) / 1024:.0f}-{max(rss.samples) / 1024:.0f} MiB "
          f"({len(rss.samples)} samples)")
    print(f"peer view.mp4 of the same recordings: {n_view / 1e9:.2f} GB in {t_view:.2f} s = "
          f"{mb_s(n_view, t_view):.0f} MB/s")
    print(f"verify-export: {t_verify:.2f} s ({mb_s(n_export, t_verify):.0f} MB/s), "
          f"{report.files} files ok")
    print(f"ratio export / view.mp4 throughput: "
          f"{mb_s(n_export, t_export) / mb_s(n_view, t_view):.2f}")


if __name__ == "__main__":
    main()
