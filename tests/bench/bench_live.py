"""Benchmark of live view: latency from a frame's arrival in the daemon to its delivery on
a WebSocket client on loopback, and the daemon's CPU per viewer.

Run from the repository root (about a minute with the defaults)::

    .venv/bin/python -m tests.bench.bench_live [--viewers 1 16] [--seconds 20] [--warmup 4]

The GStreamer RTSP test server serves the cached 1920x1080 30 fps ~4 Mbit/s clip
(``fixtures.make_fixtures.BENCH_1080P``, as ``bench_record`` does) to one camera of a
daemon run in this process (``nvr.daemon.run``: the real streamer, writer, syncer, hub
and hypercorn on port 0). For each viewer count V a separate process
(``VIEWER_SCRIPT``, trio-websocket) opens V ``live.m4s`` sockets for ``--seconds`` and
notes ``time.monotonic()`` (system-wide, so comparable across processes) when each
message arrives, with the message's recording id and media time. The daemon notes when
its PyAV source read each frame (``Packet.received``) through a subscription of its own
to the frame hub (the "tap"), keyed the same way. Latency = arrival at the viewer minus
read by the source: it covers the reader thread's hand-over, the writer, the hub, the
fragment and the WebSocket. The tap's own delay (read -> hub) is printed apart.

CPU: user+system seconds of this process (the daemon and the tap; the viewers run
elsewhere) over each window; the per-viewer figure is (CPU with V viewers - CPU with
none) / V, in % of one core. The targets (issue 6): p99 under 50 ms with 16 viewers, CPU
per viewer under 0.5 % of a core. Nothing is asserted: figures depend on the machine and
on whatever else runs on it (the table prints the machine's other load).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from fixtures.make_fixtures import BENCH_1080P, cached_clip
from nvr import daemon
from nvr.config import BindConfig, Config
from tests.bench.bench_record import CLIP_NAME, machine_busy_seconds, make_nvr_db, serve

VIEWER_SCRIPT = r"""
import json, sys, time
import trio
from trio_websocket import open_websocket_url

url, origin, count, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
seen = []

async def viewer(i):
    async with open_websocket_url(url, extra_headers=[("Origin", origin)]) as ws:
        while True:
            message = await ws.get_message()
            now = time.monotonic()
            if isinstance(message, str):
                seen.append((i, "drop", 0, now))
                continue
            head = message[: message.index(b"\r\n\r\n")].decode()
            h = dict(line.split(": ", 1) for line in head.split("\r\n"))
            start = int(h["X-Media-Time-Range"].split("-")[0])
            seen.append((i, h["X-Recording-Id"], start, now))

async def main():
    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(viewer, i)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
    json.dump(seen, sys.stdout)

trio.run(main)
"""


@dataclass
class Case:
    viewers: int
    seconds: float
    cpu: float  # this process's CPU seconds in the window
    machine: float  # the whole machine's busy CPU seconds in the window
    latencies_ms: list[float]
    tap_ms: list[float]
    drops: int
    unmatched: int


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_case(d: daemon.Daemon, sid: int, url: str, viewers: int, seconds: float) -> Case:
    received: dict[tuple[str, int], float] = {}
    tap_ms: list[float] = []

    async def tap() -> None:
        with d.hub.subscribe(sid) as sub:
            while True:
                _, frames = await sub.get()
                now = time.monotonic()
                for f in frames:
                    rec = f.recording
                    received[(f"{rec.open_id}.{rec.recording_id}", f.media_start)] = f.received
                    tap_ms.append((now - f.received) * 1000)

    origin = url.replace("ws://", "http://").split("/api/")[0]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tap)
        await trio.sleep(1)
        tap_ms.clear()
        cpu0, mach0, t0 = cpu_now(), machine_busy_seconds(), time.monotonic()
        if viewers:
            done = await trio.run_process(
                [sys.executable, "-c", VIEWER_SCRIPT, url, origin, str(viewers), str(seconds)],
                capture_stdout=True,
            )
            seen = json.loads(done.stdout)
        else:
            await trio.sleep(seconds)
            seen = []
        cpu1, mach1, t1 = cpu_now(), machine_busy_seconds(), time.monotonic()
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    latencies, drops, unmatched = [], 0, 0
    for _i, rec, start, at in seen:
        if rec == "drop":
            drops += 1
        elif (rec, start) in received:
            latencies.append((at - received[(rec, start)]) * 1000)
        else:
            unmatched += 1
    return Case(viewers, t1 - t0, cpu1 - cpu0, mach1 - mach0, latencies, tap_ms, drops, unmatched)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def bench(url: str, args: argparse.Namespace) -> list[Case]:
    with tempfile.TemporaryDirectory(prefix="nvr-bench-live-") as tmp:
        db_dir, _ = make_nvr_db(Path(tmp), url, 1, 60)
        bind = BindConfig(address="127.0.0.1:0", allow_unauthenticated=("viewVideo",))
        config = Config(db_dir=db_dir, binds=(bind,), time_zone="UTC")
        cases = []
        async with trio.open_nursery() as nursery:
            d: daemon.Daemon = await nursery.start(
                lambda task_status: daemon.run(
                    config, handle_signals=False, task_status=task_status
                )
            )
            sid = next(iter(d.streamers))
            cam = d.db.cameras[d.db.streams[sid].camera_id]
            ws_url = (
                d.http_addresses[0].replace("http://", "ws://")
                + f"/api/cameras/{cam.uuid}/main/live.m4s"
            )
            await trio.sleep(args.warmup)
            for viewers in [0, *args.viewers]:
                print(f"-- {viewers} viewers ...", flush=True)
                cases.append(await run_case(d, sid, ws_url, viewers, args.seconds))
            d.shutdown.set()
        return cases


def print_cases(cases: list[Case]) -> None:
    base = cases[0]
    base_cpu = base.cpu / base.seconds
    print(
        f"{'viewers':>7} {'messages':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'drops':>5} {'tap p99':>7} {'daemon %':>8} {'per viewer %':>12} {'other %':>7}"
    )
    for c in cases:
        cpu = c.cpu / c.seconds * 100
        per_viewer = (c.cpu / c.seconds - base_cpu) * 100 / c.viewers if c.viewers else 0.0
        other = (c.machine - c.cpu) / c.seconds * 100
        lat = c.latencies_ms
        print(
            f"{c.viewers:>7} {len(lat):>8} {pct(lat, 50):>7.1f} {pct(lat, 99):>7.1f} "
            f"{max(lat, default=float('nan')):>7.1f} {c.drops:>5} {pct(c.tap_ms, 99):>7.1f} "
            f"{cpu:>8.2f} {per_viewer:>12.3f} {other:>7.1f}"
        )
        if c.unmatched:
            print(f"        ({c.unmatched} messages matched no frame the tap saw)")
    last = cases[-1]
    if last.latencies_ms:
        print(
            f"targets at {last.viewers} viewers: p99 {pct(last.latencies_ms, 99):.1f} ms "
            f"(< 50), mean {statistics.fmean(last.latencies_ms):.1f} ms"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=4)
    args = parser.parse_args(argv)
    clip = cached_clip(BENCH_1080P)
    for server in serve(clip):
        url = server.url(f"/file/{CLIP_NAME}")
        cases = trio.run(bench, url, args)
    print_cases(cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
