"""Benchmark of transcoding for browsers (issue 20): a 1920x1080 30 fps H.265 stream to
1280x720 H.264.

Run from the repository root (a few minutes; the clip is encoded once and cached)::

    .venv/bin/python -m tests.bench.bench_transcode [--runs 3] [--seconds 15]

1. **CPU per stream**: the cached 20 s clip (``HEVC_1080P``: synthetic, noisy, ~4 Mbit/s,
   GOP 30) transcoded start to end by nvr (``TRANSCODE_SCRIPT``: ``nvr.transcode`` on its
   ``Worker`` thread, fragments built as the server builds them) and by
   ``ffmpeg -c:v libx264 -preset veryfast`` with the same scaling (``scale=-2:720``,
   bilinear), each in its own process, alternately ``--runs`` times; user+system CPU
   seconds of each from ``RUSAGE_CHILDREN``, median. Target: nvr at most 1.1x ffmpeg.
2. **Time to the first frame** of a transcoded ``view.mp4``: a daemon in this process
   records the clip from the GStreamer RTSP test camera; from the request until the init
   segment and the first whole ``moof`` + ``mdat`` have arrived (the first picture a
   player can show), over loopback, for a start on a key frame and for a start 29 frames
   after one (the worst case: 29 frames decoded before the first is encoded). Target:
   under 1 s.
3. **Live latency through the transcoder**: one ``live.m4s?transcode=h264`` viewer in a
   separate process (``bench_live``'s viewer and tap): arrival at the viewer minus the
   moment the daemon's source read the frame. Target: p99 under 300 ms. The frames the
   camera sent and those recorded in that window are compared (recording must lose none).

Nothing is asserted: figures depend on the machine and on whatever else runs on it (the
load average is printed beside them).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

from fixtures.make_fixtures import ClipSpec, Segment, cached_clip
from nvr import daemon
from nvr.config import BindConfig, Config
from tests.bench.bench_live import pct, run_case
from tests.bench.bench_record import CLIP_NAME, make_nvr_db, serve

HEVC_1080P = ClipSpec(
    (Segment(1920, 1080, 20.0),), codec="hevc", bitrate=4_000_000, noise=True, threads=2,
    preset="superfast",
)

#: argv: clip path. Transcodes every frame as the server does; prints frames, bytes.
TRANSCODE_SCRIPT = r"""
import sys
import av
from nvr.codec import h265
from nvr.mp4.fragment import build_fragment
from nvr.transcode import Settings, Transcoder, Worker

def run(path):
    with av.open(path) as c:
        s = c.streams.video[0]
        sets, _ = h265.parse_hvcc_record(bytes(s.codec_context.extradata))
        entry = h265.sample_entry(sets[32], sets[33], sets[34])
        t = Transcoder(entry, Settings())
        frames, size, batch, seq = 0, 0, [], 0
        for p in c.demux(s):
            if not p.size:
                continue
            batch += t.feed(bytes(p), p.is_keyframe, int(p.pts), 3000)
            if len(batch) >= 15:
                seq += 1
                size += len(build_fragment(batch, seq))
                frames += len(batch)
                batch = []
        batch += t.flush()
        frames += len(batch)
        size += len(build_fragment(batch, seq + 1)) if batch else 0
        return frames, size, t.size

w = Worker(0)
frames, size, (width, height) = w.call(run, sys.argv[1])
w.close()
print(frames, size, width, height)
"""


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv: list[str]) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, stdout) of a child process."""
    cpu0, t0 = children_cpu(), time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return children_cpu() - cpu0, time.monotonic() - t0, done.stdout


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_per_stream(clip: Path, runs: int) -> None:
    nvr_cmd = [sys.executable, "-c", TRANSCODE_SCRIPT, str(clip)]
    ffmpeg_cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(clip),
                  "-an", "-vf", "scale=-2:720:flags=bilinear", "-c:v", "libx264",
                  "-preset", "veryfast", "-f", "mp4", "-movflags", "frag_keyframe+empty_moov",
                  "-y", "/dev/null"]
    nvr_runs, ff_runs = [], []
    for i in range(runs):
        print(f"-- CPU run {i + 1}/{runs} (load {load()}) ...", flush=True)
        cpu, wall, out = timed(nvr_cmd)
        nvr_runs.append((cpu, wall))
        cpu, wall, _ = timed(ffmpeg_cmd)
        ff_runs.append((cpu, wall))
    frames, size, width, height = (int(x) for x in out.split())
    seconds = frames / 30
    n_cpu = statistics.median(c for c, _ in nvr_runs)
    f_cpu = statistics.median(c for c, _ in ff_runs)
    print(f"\n1. CPU per stream: {frames} frames ({seconds:.0f} s) 1920x1080 H.265 -> "
          f"{width}x{height} H.264 ({size * 8 / seconds / 1e6:.2f} Mbit/s from nvr)")
    print(f"{'':>8} {'CPU s':>7} {'% of a core at 30 fps':>22} {'wall s':>7}")
    for name, cpu, rs in (("nvr", n_cpu, nvr_runs), ("ffmpeg", f_cpu, ff_runs)):
        wall = statistics.median(w for _, w in rs)
        print(f"{name:>8} {cpu:>7.2f} {cpu / seconds * 100:>22.1f} {wall:>7.2f}")
    print(f"nvr / ffmpeg CPU: {n_cpu / f_cpu:.2f}x (target <= 1.1x); runs: "
          f"nvr {[round(c, 2) for c, _ in nvr_runs]}, ffmpeg {[round(c, 2) for c, _ in ff_runs]}"
          f"; load {load()}")


def first_frame(url: str) -> float:
    """Seconds from the request until the init segment and the first whole fragment.
    Waits first for a free transcode slot (the transcode of the trial before holds one
    until the server's next send finds the connection closed)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.head(url, timeout=30)
        if r.status_code != 503:
            break
        time.sleep(0.5)
    time.sleep(0.5)  # the HEAD's own slot comes back when its response is dropped
    t0 = time.monotonic()
    buf = bytearray()
    with httpx.Client(timeout=30) as c, c.stream("GET", url) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code} {r.read()!r}")
        for chunk in r.iter_raw():
            buf += chunk
            if _first_fragment_complete(bytes(buf)):
                return time.monotonic() - t0
    raise RuntimeError("the response ended before a whole fragment")


def _first_fragment_complete(data: bytes) -> bool:
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if pos + size > len(data):
            return False
        if data[pos + 4 : pos + 8] == b"mdat":
            return True
        pos += size
    return False


async def daemon_figures(url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="nvr-bench-transcode-") as tmp:
        db_dir, _ = make_nvr_db(Path(tmp), url, 1, 4)
        bind = BindConfig(address="127.0.0.1:0", allow_unauthenticated=("viewVideo",))
        config = Config(db_dir=db_dir, binds=(bind,), time_zone="UTC", rotate_interval_sec=4,
                        transcode_nice=args.nice)
        async with trio.open_nursery() as nursery:
            d: daemon.Daemon = await nursery.start(
                lambda task_status: daemon.run(config, handle_signals=False,
                                               task_status=task_status))
            sid = next(iter(d.streamers))
            cam = d.db.cameras[d.db.streams[sid].camera_id]
            base = d.http_addresses[0]
            print("-- recording 10 s ...", flush=True)
            await trio.sleep(10)
            rid = d.db.streams[sid].cum_recordings - 1
            if rid < 0:
                rid = 0
            view = f"{base}/api/cameras/{cam.uuid}/main/view.mp4?transcode=h264&s={rid}"
            ttff: dict[str, list[float]] = {"key frame": [], "29 frames after one": []}
            for _ in range(args.runs):
                for name, rel in (("key frame", f".{30 * 3000}-"),
                                  ("29 frames after one", f".{59 * 3000}-")):
                    ttff[name].append(await trio.to_thread.run_sync(first_frame, view + rel))
            print(f"\n2. time to the first frame of a transcoded view.mp4 (1080p H.265 -> "
                  f"720p H.264, loopback, transcode_nice {args.nice}; load {load()}):")
            for name, values in ttff.items():
                print(f"   start on a {name:<20} median {statistics.median(values) * 1000:6.0f} ms,"
                      f" max {max(values) * 1000:6.0f} ms (target < 1000 ms)")
            streamer = d.streamers[sid]
            frames0, dropped0 = streamer.counters.frames, streamer.counters.frames_dropped
            t0 = time.monotonic()
            live = (base.replace("http://", "ws://")
                    + f"/api/cameras/{cam.uuid}/main/live.m4s?transcode=h264")
            print(f"-- live viewer for {args.seconds:g} s ...", flush=True)
            case = await run_case(d, sid, live, 1, args.seconds)
            window = time.monotonic() - t0
            frames = streamer.counters.frames - frames0
            dropped = streamer.counters.frames_dropped - dropped0
            lat = case.latencies_ms
            print(f"\n3. live latency through the transcoder (load {load()}): {len(lat)} "
                  f"messages, p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms, max "
                  f"{max(lat, default=float('nan')):.0f} ms (target p99 < 300 ms); "
                  f"{case.drops} drop messages; daemon CPU {case.cpu / case.seconds * 100:.0f}"
                  f" % of a core")
            print(f"   recording meanwhile: {frames} frames in {window:.1f} s "
                  f"({frames / window:.1f}/s of the camera's 30), {dropped} dropped")
            d.shutdown.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--nice", type=int, default=10,
                        help="the daemon's transcode_nice (default 10, as nvr's)")
    args = parser.parse_args(argv)
    clip = cached_clip(HEVC_1080P)
    print(f"clip {clip} ({clip.stat().st_size / (1 << 20):.1f} MiB); {os.cpu_count()} cores; "
          f"load {load()}")
    if not args.skip_cpu:
        cpu_per_stream(clip, args.runs)
    for server in serve(clip):
        trio.run(daemon_figures, server.url(f"/file/{CLIP_NAME}"), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
