"""Benchmark of motion analysis CPU: ``python -m tests.bench.bench_motion_cpu``.

    .venv/bin/python -m tests.bench.bench_motion_cpu [--n 16] [--seconds 30] [--warmup 8]

The GStreamer RTSP test server (``tests/support/rtsp_server.py``) serves a cached 60 s
640x360 30 fps GOP 30 H.264 clip (``fixtures.make_fixtures``: the moving gradient with
frame numbers, so every frame changes, ~500 kbit/s) pre-encoded and looped, as a camera's
sub stream, the way ``bench_record`` serves its 1080p clip. Three phases, one after the
other, each reading N streams of it:

1. ``off``: ``nvr run`` recording N cameras whose only stream is that sub stream, motion off;
2. ``on``: the same with ``--motion main`` on every camera (that recorded stream is
   analysed at the default 5 pictures/s: every frame decoded);
3. ``floor``: a plain PyAV loop, one thread per stream, that reads each stream and
   decodes every packet (single-threaded decoders, as nvr's), nothing else: the least any
   PyAV-based motion detector on these streams can cost.

CPU is user+system of the process over the window (``/proc``, via ``bench_record``'s
``measure``). Printed per camera in % of one core: on, off, on - off (what motion costs),
floor, and (on - off) / floor. Targets (issue 14): on - off <= 1.5 % of a core per camera
and <= 1.2x the floor. Other load on the machine makes the figures noisy (its load
average is printed); compare phases within one run only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fixtures.make_fixtures import ClipSpec, Segment, cached_clip
from nvr.db.database import Database
from tests.bench.bench_record import (
    COOLDOWN,
    STOP_TIMEOUT,
    Phase,
    Procs,
    make_nvr_db,
    measure,
    now,
    sleep_until,
    stop,
)
from tests.support.paths import REPO
from tests.support.rtsp import RtspServer, ServerOptions

CLIP = ClipSpec((Segment(640, 360, 60.0),), bitrate=500_000)
CLIP_NAME = "sub360p"

#: argv: url, n. Decodes every packet of n streams, one thread each, until SIGTERM; prints
#: the frames decoded per stream as JSON.
FLOOR_SCRIPT = r"""
import json, os, signal, sys, threading
import av

url, n = sys.argv[1], int(sys.argv[2])
decoded = [0] * n
errors = []
options = {"rtsp_transport": "tcp", "probesize": "32", "analyzeduration": "0"}

def read(i):
    try:
        container = av.open(url, options=options)
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            decoded[i] += len(stream.codec_context.decode(packet))
    except Exception as e:
        errors.append(f"stream {i}: {type(e).__name__}: {e}")

stop_signals = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
for i in range(n):
    threading.Thread(target=read, args=(i,), daemon=True).start()
signal.sigwait(stop_signals)
print(json.dumps({"decoded": decoded, "errors": errors}), flush=True)
os._exit(0)
"""


def start(root: Path, url: str, n: int, *, motion: bool) -> tuple[subprocess.Popen[bytes], Path]:
    """``nvr run`` on a fresh database of N cameras recording ``url`` (as bench_record)."""
    db_dir, config = make_nvr_db(root, url, n, 60)
    if motion:
        with Database.open(db_dir, tz=dt.UTC, now=lambda: 0) as db:
            for cam in list(db.cameras.values()):
                db.update_camera(cam.id, config=dataclasses.replace(cam.config, motion="main"))
    log_path = root / "nvr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nvr", "--db-dir", str(db_dir), "run", "--config", str(config)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = now() + 30
    while b"recording " not in log_path.read_bytes():
        if process.poll() is not None or now() > deadline:
            process.kill()
            raise SystemExit(f"nvr did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    return process, log_path


def run_nvr(url: str, n: int, args: argparse.Namespace, *, motion: bool) -> Phase:
    phase = Phase("on" if motion else "off", n)
    with tempfile.TemporaryDirectory(prefix="bench-motion-") as tmp:
        process, log_path = start(Path(tmp), url, n, motion=motion)
        t0 = now() + args.warmup
        t1 = t0 + args.seconds
        try:
            measure(phase, Procs([process.pid]), _Server(int(os.environ["_BENCH_SERVER_PID"])),
                    t0, t1)
            sleep_until(t1 + COOLDOWN)
        finally:
            stop([process], phase)
        log = log_path.read_text()
        phase.notes.extend(line for line in log.splitlines() if "motion" in line.lower())
    return phase


class _Server:
    def __init__(self, pid: int) -> None:
        self.pid = pid


def run_floor(url: str, n: int, args: argparse.Namespace) -> tuple[Phase, list[int]]:
    phase = Phase("floor", n)
    t0 = now() + args.warmup
    t1 = t0 + args.seconds
    process = subprocess.Popen([sys.executable, "-c", FLOOR_SCRIPT, url, str(n)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        measure(phase, Procs([process.pid]), _Server(int(os.environ["_BENCH_SERVER_PID"])), t0, t1)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=STOP_TIMEOUT)
    try:
        result = json.loads(out.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        phase.notes.append(f"floor printed no result; stderr: {err.decode()[-500:]}")
        return phase, []
    phase.notes.extend(result["errors"][:3])
    return phase, result["decoded"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=8.0)
    args = p.parse_args(argv)
    clip = cached_clip(CLIP)
    results: dict[str, Phase] = {}
    with RtspServer(ServerOptions(files={CLIP_NAME: clip}, fixtures=False)) as server:
        os.environ["_BENCH_SERVER_PID"] = str(server.pid)
        url = server.url(f"/file/{CLIP_NAME}")
        for name in ("off", "on", "floor"):
            print(f"-- {name} (N={args.n}) ...", flush=True)
            if name == "floor":
                results[name], decoded = run_floor(url, args.n, args)
                results[name].notes.append(
                    f"decoded {sum(decoded) / max(1, len(decoded)):.0f} frames per stream")
            else:
                results[name] = run_nvr(url, args.n, args, motion=name == "on")
            print(f"   load average {os.getloadavg()[0]:.1f}; server "
                  f"{100 * results[name].server_cpu / results[name].window:.0f}% of a core; "
                  f"machine {100 * results[name].machine_cpu / results[name].window:.0f}%",
                  flush=True)
    on, off, floor = (results[k].pct_per_stream() for k in ("on", "off", "floor"))
    cost = on - off
    print(f"\nper camera, % of one core ({args.n} cameras, 640x360 30 fps, window "
          f"{results['on'].window:.0f} s):")
    print(f"{'motion on':>10} {'off':>7} {'on - off':>9} {'floor':>7} {'(on-off)/floor':>15}")
    print(f"{on:10.2f} {off:7.2f} {cost:9.2f} {floor:7.2f} {cost / floor:15.2f}")
    print("targets: on - off <= 1.5 % per camera; (on - off) / floor <= 1.2")
    for name, ph in results.items():
        for note in ph.notes[:6]:
            print(f"  {name}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
