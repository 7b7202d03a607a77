"""Benchmark of serving ``view.mp4`` over loopback: ``python -m tests.bench.bench_serve``.

One run builds, in a temporary directory, a database of 1 440 one-minute recordings of the
1080p30 benchmark clip (``fixtures/make_fixtures.py``'s ``BENCH_1080P``, ~4 Mbit/s, GOP 30):
every row names the same frames, and every sample file is a hard link to one file made from
the clip's packets, so a day of rows costs 30 MB of disk. A server process (``create_app``
on hypercorn, port 0, the database opened read-only; its own process so its RSS can be
sampled) serves it, and a plain-socket HTTP/1.1 client measures, in the same run:

1. time to first byte (TTFB: request sent -> first response byte; our headers go out only
   once the file is laid out) of ``view.mp4`` for the first hour (60 recordings), cold
   (first request) and warm (median of 5);
2. the same for 24 hours (1 440 recordings), and for a range in the middle of its 31 MB
   header (generated on demand);
3. throughput of the whole 1-hour file (~1.8 GB), and the server's RSS (``VmRSS``) sampled
   every 50 ms while it serves ~2 GB (66 recordings);
4. peers: the same 1-hour bytes as a static file from **nginx** (started here on a free
   port with its own configuration; ``sendfile on``), and ``ffmpeg -f concat -c copy``
   of 60 one-minute ``.mp4`` files into a fragmented mp4 on a pipe (how Frigate makes
   clips): its TTFB and total time.

Everything is read from the page cache after the first pass (24 GB machine). Ratios are
printed at the end. ``--quick`` skips the 2 GB RSS run. The machine may be shared: run it
more than once.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import av

from fixtures.make_fixtures import BENCH_1080P, cached_clip
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.database import Database
from nvr.db.recording import VideoIndexEncoder, VideoSampleEntry, decode_video_index
from nvr.db.types import CameraConfig, StreamConfig
from nvr.storage.dir import SampleFileDir, file_name, open_for_database
from tests.support.determinism import T0

HOUR, DAY = 60, 1440


# --- the database ---------------------------------------------------------------------------


def clip_recording(clip: Path, out: Path) -> tuple[bytes, VideoSampleEntry, int]:
    """Writes the clip's packets as one sample file; returns its index, sample entry and
    media duration."""
    enc = VideoIndexEncoder()
    with av.open(str(clip)) as c, out.open("wb") as f:
        stream = c.streams.video[0]
        record = bytes(stream.codec_context.extradata or b"")
        packets = [p for p in c.demux(stream) if p.size]
        for p, nxt in zip(packets, [*packets[1:], None], strict=True):
            assert p.pts is not None and p.time_base is not None
            scale = p.time_base * UNITS_PER_SEC
            duration = int((nxt.pts - p.pts) * scale) if nxt is not None and nxt.pts else 3000
            f.write(bytes(p))
            enc.add(duration, p.size, bool(p.is_keyframe))
        width, height = stream.codec_context.width, stream.codec_context.height
    codec = "avc1." + record[1:4].hex()
    avcc = (8 + len(record)).to_bytes(4, "big") + b"avcC" + record
    return enc.data, VideoSampleEntry(width, height, codec, avcc), enc.media_duration


def make_db(root: Path, clip: Path, n: int) -> tuple[Path, str]:
    """The database of ``n`` recordings; returns its directory and the camera's uuid."""
    db_dir, sample_dir = root / "db", root / "sample"
    master = root / "master.bin"
    index, entry, media = clip_recording(clip, master)
    Database.create(db_dir, T0)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        dir_uuid = uuid.uuid4()
        SampleFileDir.create(sample_dir, db.uuid, dir_uuid)
        row = db.add_sample_file_dir(str(sample_dir), dir_uuid)
        cfg = StreamConfig(url="rtsp://bench/main", retain_bytes=1 << 50)
        cam = db.add_camera("bench", config=CameraConfig(), streams={"main": (row.id, cfg)})
        stream_id = next(iter(db.streams))
        entry_id = db.insert_video_sample_entry(entry)
    t = decode_video_index(index).totals
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        sdir = open_for_database(db, row.id, read_only=False)
        for i in range(n):
            rec = db.add_recording(stream_id, run_offset=i, start_time_90k=T0 + i * media,
                                   video_sample_entry_id=entry_id)
            rec.video_index = index
            rec.sample_file_bytes = t.bytes
            rec.video_samples, rec.video_sync_samples = t.frames, t.key_frames
            rec.media_duration_90k = rec.wall_duration_90k = media
            os.link(master, sample_dir / file_name(rec.composite_id))
            db.mark_done(rec)
            db.mark_synced(rec.composite_id)
            if i % 100 == 99 or i == n - 1:
                db.flush("bench")
        sdir.close()
    return db_dir, str(cam.uuid)


# --- the server process -----------------------------------------------------------------------


def serve_main(db_dir: str) -> None:
    """``--serve``: serves the database read-only on 127.0.0.1:0; prints the address."""
    import hypercorn.config
    import hypercorn.trio
    import trio

    from nvr.base.clock import RealClocks
    from nvr.config import BindConfig
    from nvr.web.app import create_app
    from nvr.web.context import WebContext

    clocks = RealClocks()
    db = Database.open(db_dir, read_only=True, tz=dt.UTC, now=clocks.realtime)
    dirs = {d: open_for_database(db, d, read_only=True) for d in db.dirs}
    ctx = WebContext(db=db, dirs=dirs, clocks=clocks,
                     bind=BindConfig(address="127.0.0.1:0", allow_unauthenticated=("viewVideo",)))
    hc = hypercorn.config.Config()
    hc.bind = ["127.0.0.1:0"]
    hc.accesslog = None

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(hypercorn.trio.serve, create_app(ctx), hc)
            print(bound[0], flush=True)

    trio.run(main)


@contextlib.contextmanager
def server(db_dir: Path) -> Iterator[tuple[int, int]]:
    """(pid, port) of a server process."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_serve", "--serve",
                             str(db_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # http://127.0.0.1:PORT
        yield proc.pid, int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx(root: Path, static: Path) -> Iterator[int]:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(exe).exists():
        subprocess.run(["apt-get", "install", "-y", "nginx-light"], check=True)
    port = free_port()
    conf = root / "nginx.conf"
    tmp = root / "nginx-tmp"
    tmp.mkdir(exist_ok=True)
    conf.write_text(f"""
daemon off; master_process off; worker_processes 1;
pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  types {{ video/mp4 mp4; }}
  server {{ listen 127.0.0.1:{port}; root {static}; }}
}}
""")
    proc = subprocess.Popen([exe, "-c", str(conf), "-e", str(tmp / "error.log")])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# --- the client -------------------------------------------------------------------------------


def get(port: int, path: str, *, limit: int | None = None,
        headers: dict[str, str] | None = None) -> tuple[float, float, int, bytes]:
    """GET over a fresh connection: (TTFB, total seconds, body bytes read, the first
    bytes of the response). ``limit`` stops after that many bytes and closes."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with socket.create_connection(("127.0.0.1", port)) as s:
        t0 = time.perf_counter()
        s.sendall(request.encode())
        n = s.recv_into(view)
        ttfb = time.perf_counter() - t0
        head = bytes(buf[:n])
        while not head.count(b"\r\n\r\n"):
            m = s.recv_into(view)
            head += bytes(buf[:m])
            n += m
        header_len = head.index(b"\r\n\r\n") + 4
        total = n - header_len
        if not head.startswith(b"HTTP/1.1 2"):
            raise RuntimeError(head[:300].decode(errors="replace"))
        length = content_length(head[:header_len])
        want = length if limit is None else min(limit, length)
        while total < want:
            m = s.recv_into(view)
            if not m:
                break
            total += m
        return ttfb, time.perf_counter() - t0, total, head[:header_len]


def content_length(head: bytes) -> int:
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value)
    raise RuntimeError("no Content-Length")


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.samples = pid, list[int]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.samples.append(int(line.split()[1]))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def ffmpeg_concat(clip: Path, root: Path) -> tuple[float, float, int]:
    """(TTFB, total, bytes) of ffmpeg concatenating 60 one-minute mp4s into fMP4 on a pipe."""
    listing = root / "concat.txt"
    listing.write_text("".join(f"file '{clip}'\n" for _ in range(HOUR)))
    cmd = ["/usr/bin/ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "concat", "-safe",
           "0", "-i", str(listing), "-c", "copy", "-movflags",
           "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.read1(1 << 20)
    ttfb = time.perf_counter() - t0
    total = len(first)
    while chunk := proc.stdout.read1(1 << 20):
        total += len(chunk)
    proc.wait()
    return ttfb, time.perf_counter() - t0, total


# --- the run ---------------------------------------------------------------------------------


def mb_s(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def run(args: argparse.Namespace) -> None:
    clip = cached_clip(BENCH_1080P)
    with tempfile.TemporaryDirectory(prefix="bench-serve-", dir=args.tmp) as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        db_dir, cam = make_db(root, clip, DAY)
        print(f"database: {DAY} recordings of {clip.name} in {time.perf_counter() - t:.1f} s")
        view = f"/api/cameras/{cam}/main/view.mp4"
        hour, day = f"{view}?s=0-{HOUR - 1}", f"{view}?s=0-{DAY - 1}"
        static = root / "static"
        static.mkdir()
        with server(db_dir) as (pid, port):
            print(f"server pid {pid} port {port}, RSS at start {rss_kib(pid) / 1024:.0f} MiB")
            cold = get(port, hour, limit=1)
            warm = sorted(get(port, hour, limit=1)[0] for _ in range(5))
            day_cold = get(port, day, limit=1)
            day_warm = sorted(get(port, day, limit=1)[0] for _ in range(3))
            day_mid = get(port, day, limit=1, headers={"Range": "bytes=15000000-15999999"})
            with RssSampler(pid) as header_rss:  # the 24 h header (~31 MB), generated
                day_head = get(port, day, headers={"Range": "bytes=0-33554431"})
            # the whole hour, written once for nginx (and to warm the page cache)
            with (static / "hour.mp4").open("wb") as f, socket.create_connection(
                    ("127.0.0.1", port)) as s:
                s.sendall(f"GET {hour} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Connection: close\r\n\r\n".encode())
                data = s.recv(1 << 16)
                head, body = data.split(b"\r\n\r\n", 1)
                f.write(body)
                left = content_length(head) - len(body)
                while left > 0:
                    chunk = s.recv(min(left, 1 << 20))
                    f.write(chunk)
                    left -= len(chunk)
            size = (static / "hour.mp4").stat().st_size
            throughput = []
            with RssSampler(pid) as hour_rss:
                for _ in range(args.repeat):
                    _ttfb, total, n, _ = get(port, hour)
                    assert n == size, (n, size)
                    throughput.append(mb_s(n, total))
            two_gb = None
            if not args.quick:
                with RssSampler(pid) as rss:
                    _, total2, n2, _ = get(port, f"{view}?s=0-65")
                two_gb = (n2, total2, rss.samples)
        with nginx(root, static) as nport:
            get(nport, "/hour.mp4")  # warm
            ng_ttfb = sorted(get(nport, "/hour.mp4", limit=1)[0] for _ in range(5))
            ng = []
            for _ in range(args.repeat):
                _, total, n, _ = get(nport, "/hour.mp4")
                assert n == size
                ng.append(mb_s(n, total))
        ff = ffmpeg_concat(clip, root)

    print(f"\n1 hour: {HOUR} recordings, {size / 1e9:.2f} GB")
    print(f"  nvr TTFB cold {cold[0] * 1e3:7.1f} ms, warm median {warm[2] * 1e3:7.1f} ms")
    print(f"  ffmpeg concat TTFB {ff[0] * 1e3:7.1f} ms (whole hour {ff[1]:.1f} s, "
          f"{ff[2] / 1e9:.2f} GB)")
    print(f"  nginx static TTFB median {ng_ttfb[2] * 1e3:7.2f} ms")
    print(f"  nvr throughput   {' '.join(f'{x:7.0f}' for x in throughput)} MB/s")
    print(f"  nginx throughput {' '.join(f'{x:7.0f}' for x in ng)} MB/s")
    print(f"  server RSS while serving it: {min(hour_rss.samples) / 1024:.0f}-"
          f"{max(hour_rss.samples) / 1024:.0f} MiB")
    print(f"\n24 hours: {DAY} recordings")
    print(f"  nvr TTFB cold {day_cold[0] * 1e3:7.1f} ms, warm median {day_warm[1] * 1e3:7.1f} ms")
    print(f"  range in the middle of the header: TTFB {day_mid[0] * 1e3:7.1f} ms")
    print(f"  first 32 MiB (the whole ~31 MB header, generated by range): "
          f"{day_head[1] * 1e3:.0f} ms, {mb_s(day_head[2], day_head[1]):.0f} MB/s, server RSS "
          f"{min(header_rss.samples, default=0) / 1024:.0f}-"
          f"{max(header_rss.samples, default=0) / 1024:.0f} MiB")
    if two_gb is not None:
        n2, total2, samples = two_gb
        third = max(len(samples) // 3, 1)
        print(f"\n{n2 / 1e9:.2f} GB response ({mb_s(n2, total2):.0f} MB/s): server RSS "
              f"min {min(samples) / 1024:.0f} MiB, max {max(samples) / 1024:.0f} MiB, "
              f"first third max {max(samples[:third]) / 1024:.0f} MiB, last third max "
              f"{max(samples[-third:]) / 1024:.0f} MiB ({len(samples)} samples)")
    best_nvr, best_ng = statistics.median(throughput), statistics.median(ng)
    print("\nratios:")
    print(f"  ffmpeg concat TTFB / nvr 1 h TTFB (cold) {ff[0] / cold[0]:6.1f}x   (target >= 10)")
    print(f"  ffmpeg concat TTFB / nvr 1 h TTFB (warm) {ff[0] / warm[2]:6.1f}x")
    print(f"  nvr throughput / nginx                   {best_nvr / best_ng:6.2f}    "
          f"(target >= 0.5)")
    print(f"  targets: 1 h TTFB < 50 ms: {'met' if cold[0] < 0.05 else 'MISSED'} (cold); "
          f"24 h TTFB < 1 s: {'met' if day_cold[0] < 1 else 'MISSED'} (cold)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", metavar="DB_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="skip the 2 GB RSS run")
    parser.add_argument("--repeat", type=int, default=2, help="throughput runs per server")
    parser.add_argument("--tmp", default=None, help="where the temporary directory goes")
    args = parser.parse_args()
    if args.serve:
        serve_main(args.serve)
    else:
        run(args)


if __name__ == "__main__":
    main()
