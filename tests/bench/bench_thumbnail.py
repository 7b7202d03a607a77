"""Benchmark of ``thumb.jpg``: ``python -m tests.bench.bench_thumbnail``.

One run builds, in a temporary directory, a database of one-minute recordings of the 1080p30
benchmark clip (``fixtures/make_fixtures.py``'s ``BENCH_1080P``: ~4 Mbit/s, GOP 30, with
noise; ``tests/bench/bench_serve.py``'s ``make_db``), serves it from a server process
(``create_app`` on hypercorn, as ``bench_serve`` does) and asks over one kept-alive HTTP
connection, in the same run:

1. **first requests**: ``thumb.jpg?time90k=T&width=320`` at ``--count`` random times (a
   seeded draw; every time a different frame, so none is cached): the frame at T, decoded
   from its key frame (0 to 29 frames after it, 14.5 on average);
   Then a pointer moving forward: ``--count`` requests 3 frames apart in one recording
   (each decoded by the decoder the one before left part-way);
2. the same with ``keyFrame=true`` (one frame decoded), at other random times;
3. first requests at full size (1920x1080: the JPEG encode of a 1080p picture adds);
4. **cached**: each URL of (1) again (median), and with ``If-None-Match`` (``304``);
5. peers, on the same times: **PyAV alone** (the same work without HTTP, the server or
   the index: open the recording's ``view.mp4`` from a file, seek to the key frame at or
   before T, decode to T, scale to 320 wide, encode with the same mjpeg encoder; on two
   frame threads, as nvr, and on one, to show what the threads give), and the
   **ffmpeg command line** (``ffmpeg -ss T -i view.mp4 -frames:v 1 -vf scale=320:-2
   out.jpg``, a process per picture, as scripts and some NVRs do).

Prints per case the median, 90th percentile and maximum in milliseconds, the server's CPU
time per request (all its threads; a figure a loaded machine inflates far less than wall
time), and the ratios. The machine may be shared with other work: the load average is
printed; run it twice.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av

from fixtures.make_fixtures import BENCH_1080P, cached_clip
from nvr.base.time90k import UNITS_PER_SEC
from nvr.thumbnail import FRAME_THREADS
from tests.bench.bench_serve import T0, make_db, server

FRAME = 3000
WIDTH = 320


class Client:
    """One kept-alive HTTP/1.1 connection."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str, headers: dict[str, str] | None = None
            ) -> tuple[float, int, dict[str, str], bytes]:
        t0 = time.perf_counter()
        self._conn.request("GET", path, headers=headers or {})
        resp = self._conn.getresponse()
        body = resp.read()
        return time.perf_counter() - t0, resp.status, dict(resp.getheaders()), body


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stats(seconds: Sequence[float]) -> tuple[float, float, float]:
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[int(0.9 * (len(ms) - 1))], ms[-1]


def line(name: str, seconds: Sequence[float], cpu: float | None = None) -> float:
    med, p90, top = stats(seconds)
    per = "" if cpu is None else f"   CPU {cpu * 1000 / len(seconds):6.2f} ms each"
    print(f"  {name:<46} median {med:7.2f} ms   p90 {p90:7.2f}   max {top:7.2f}{per}")
    return med


def pyav_thumbnail(path: str, media_90k: int, width: int, threads: int = 2) -> bytes:
    """The picture at ``media_90k`` of a file, the way a script would with PyAV alone
    (decoding on ``threads`` frame threads)."""
    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "FRAME"
        stream.thread_count = threads
        tb = stream.time_base
        assert tb is not None
        target = int(Fraction(media_90k, UNITS_PER_SEC) / tb)
        c.seek(target, stream=stream, backward=True)
        chosen = None
        for frame in c.decode(stream):
            if frame.pts is not None and frame.pts > target:
                break
            chosen = frame
        assert chosen is not None
        height = round(width * chosen.height / chosen.width)
        scaled = chosen.reformat(width=width, height=height, format="yuvj420p",
                                 interpolation="AREA")
        enc = av.CodecContext.create("mjpeg", "w")
        assert isinstance(enc, av.VideoCodecContext)
        enc.width, enc.height, enc.pix_fmt = width, height, "yuvj420p"
        enc.time_base = Fraction(1, 1)
        enc.qmin = enc.qmax = 5
        return b"".join(bytes(p) for p in [*enc.encode(scaled), *enc.encode(None)])


def ffmpeg_thumbnail(path: str, media_90k: int, out: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-threads", "2", "-ss", f"{media_90k / UNITS_PER_SEC:.6f}",
         "-i", path, "-frames:v", "1", "-vf", f"scale={WIDTH}:-2", "-q:v", "5", str(out)],
        check=True)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(args: argparse.Namespace) -> None:
    clip = cached_clip(BENCH_1080P)
    rng = random.Random(14)
    with tempfile.TemporaryDirectory(prefix="nvr-bench-thumb-", dir=args.tmp) as d:
        root = Path(d)
        db_dir, cam = make_db(root, clip, args.recordings)
        with av.open(str(clip)) as c:
            media = sum(1 for p in c.demux(video=0) if p.size) * FRAME
        frames = media // FRAME
        base = f"/api/cameras/{cam}/main"
        # distinct frames: recording i, frame n, at mid-frame
        picks = rng.sample(range(args.recordings * frames), 3 * args.count)
        times = [T0 + (k // frames) * media + (k % frames) * FRAME + FRAME // 2 for k in picks]
        exact_t, key_t, full_t = (times[i * args.count:(i + 1) * args.count] for i in range(3))
        # key-frame requests at distinct groups of pictures
        gops = rng.sample(range(args.recordings * frames // 30), args.count)
        key_t = [T0 + (g * 30 // frames) * media + (g * 30 % frames) * FRAME + 7 * FRAME
                 for g in gops]
        with server(db_dir) as (pid, port):
            client = Client(port)
            # warm up: the server's imports, the first decoder, the connection
            for t in (T0 + FRAME // 2, T0 + 2 * FRAME):
                client.get(f"{base}/thumb.jpg?time90k={t}&width=64")
            view = root / "view.mp4"
            _, status, _, body = client.get(f"{base}/view.mp4?s=0")
            assert status == 200
            view.write_bytes(body)

            cpu: dict[str, float] = {}

            def first(ts: list[int], extra: str) -> tuple[list[float], dict[str, str]]:
                """Seconds per request, and each URL's ETag; the server's CPU time in
                ``cpu[extra]``."""
                out, etags = [], {}
                cpu0 = cpu_seconds(pid)
                for t in ts:
                    url = f"{base}/thumb.jpg?time90k={t}{extra}"
                    sec, status, headers, jpeg = client.get(url)
                    assert status == 200 and jpeg[:2] == b"\xff\xd8", (status, jpeg[:200])
                    out.append(sec)
                    etags[url] = {k.lower(): v for k, v in headers.items()}["etag"]
                cpu[extra] = cpu_seconds(pid) - cpu0
                return out, etags

            load = os.getloadavg()
            print(f"thumb.jpg of a 1080p30 recording (GOP 30, ~4 Mbit/s); "
                  f"{args.count} requests per case; load average {load[0]:.2f} {load[1]:.2f}")
            exact, etags = first(exact_t, f"&width={WIDTH}")
            # a pointer moving forward: every 3rd frame from a random one, same recording
            rec0 = rng.randrange(args.recordings)
            f0 = rng.randrange(frames - 3 * args.count)
            hover_t = [T0 + rec0 * media + (f0 + 3 * i) * FRAME + FRAME // 2
                       for i in range(args.count)]
            hover, _ = first(hover_t, f"&width={WIDTH}&hover")
            key, _ = first(key_t, f"&width={WIDTH}&keyFrame=true")
            full, _ = first(full_t, "")
            cpu0 = cpu_seconds(pid)
            cached = [client.get(u)[0] for u in etags]
            cpu["cached"] = cpu_seconds(pid) - cpu0
            not_modified = []
            for u, tag in etags.items():
                sec, status, _, _ = client.get(u, {"If-None-Match": tag})
                assert status == 304
                not_modified.append(sec)
        # peers on the same times (offsets within one recording: view.mp4 of recording 0
        # holds the same frames as every other)
        offsets = [(t - T0) % media for t in exact_t]
        cpu0 = time.process_time()
        pyav = [timed(lambda o=o: pyav_thumbnail(str(view), o, WIDTH)) for o in offsets]
        cpu["pyav"] = time.process_time() - cpu0
        cpu0 = time.process_time()
        pyav1 = [timed(lambda o=o: pyav_thumbnail(str(view), o, WIDTH, 1)) for o in offsets]
        cpu["pyav1"] = time.process_time() - cpu0
        out = root / "out.jpg"
        ff = [timed(lambda o=o: ffmpeg_thumbnail(str(view), o, out))
              for o in offsets[: args.ffmpeg_count]]

        print("nvr, over HTTP (one kept-alive connection):")
        m_exact = line(f"first request, the frame at T, {WIDTH} wide", exact,
                       cpu[f"&width={WIDTH}"])
        line(f"moving forward 3 frames a request, {WIDTH} wide", hover,
             cpu[f"&width={WIDTH}&hover"])
        m_key = line(f"first request, keyFrame=true, {WIDTH} wide", key,
                     cpu[f"&width={WIDTH}&keyFrame=true"])
        m_full = line("first request, the frame at T, 1920x1080", full, cpu[""])
        m_cached = line(f"cached, {WIDTH} wide", cached, cpu["cached"])
        line("If-None-Match -> 304", not_modified)
        print("peers, the same times:")
        m_pyav = line(f"PyAV alone on view.mp4 (seek, decode, {WIDTH} wide)", pyav, cpu["pyav"])
        m_pyav1 = line("PyAV alone, one decoding thread", pyav1, cpu["pyav1"])
        m_ff = line(f"ffmpeg -ss T -i view.mp4 ... ({len(ff)} runs)", ff)
        print("ratios (medians):")
        print(f"  nvr first / PyAV alone           {m_exact / m_pyav:6.2f}")
        print(f"  nvr first / ffmpeg command       {m_exact / m_ff:6.2f}")
        print(f"  PyAV 2 frame threads / 1 thread  {m_pyav / m_pyav1:6.2f}   (nvr decodes on "
              f"{FRAME_THREADS})")
        print(f"  nvr keyFrame / nvr exact         {m_key / m_exact:6.2f}")
        print(f"  nvr 1080p JPEG / {WIDTH} wide       {m_full / m_exact:6.2f}")
        print(f"  nvr cached / nvr first           {m_cached / m_exact:6.3f}")
        print(f"targets: first < 50 ms: {'met' if m_exact < 50 else 'NOT met'} "
              f"({m_exact:.1f}); cached < 5 ms: {'met' if m_cached < 5 else 'NOT met'} "
              f"({m_cached:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=40, help="requests per case")
    parser.add_argument("--ffmpeg-count", type=int, default=15, help="ffmpeg runs")
    parser.add_argument("--recordings", type=int, default=3, help="one-minute recordings")
    parser.add_argument("--tmp", default=None, help="where the temporary directory goes")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
