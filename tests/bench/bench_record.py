"""Benchmark of recording N 1080p30 RTSP streams: ``nvr run`` against ffmpeg and a floor.

Run from the repository root (it takes about 3.5 minutes per N with the defaults)::

    .venv/bin/python -m tests.bench.bench_record [--n 8 32 64] [--seconds 60] [--warmup 5]
    .venv/bin/python -m tests.bench.bench_record --n 64 --seconds 30 --profile 20

For each N the GStreamer RTSP test server (``tests/support/rtsp_server.py``) serves the
cached 60 s 1920x1080 30 fps GOP 30 ~4 Mbit/s clip (``fixtures.make_fixtures.BENCH_1080P``,
made on first use, ~35 s) as one *shared* medium, looped, without re-encoding. Then three
recorders read N streams of that URL, one after the other, never concurrently:

1. ``nvr``: ``python -m nvr run`` with a fresh database of N cameras (no HTTP binds);
2. ``ffmpeg``: N ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60
   out%03d.mp4`` processes (how Frigate records). Debian's ``ffmpeg`` package is installed
   with apt-get if there is no ``ffmpeg`` on the PATH (the script says so when it does);
3. ``floor``: one Python process (``FLOOR_SCRIPT`` below) with one thread per stream that
   reads it with PyAV (``rtsp_transport=tcp``, ``probesize=32``, ``analyzeduration=0``)
   and appends every packet's bytes to a file: the least any PyAV-based recorder can cost.

Each recorder runs ``--warmup`` seconds, then is measured for ``--seconds`` of wall time
(the window), runs ``COOLDOWN`` seconds more (so frames of the window are not cut by the
shutdown) and gets SIGTERM. What is measured, from ``/proc`` (no psutil):

- CPU: user+system seconds of the recorder's processes within the window (all threads,
  ``/proc/PID/stat``), of the RTSP server, and of the whole machine (``/proc/stat``;
  "other" is what neither the recorder nor the server used, e.g. other work on the box);
  ``sys%`` is the recorder's share spent in the kernel and ``csw/fr`` its threads'
  context switches per expected frame (``/proc/PID/task/*/status``): wake-ups, not bytes,
  are most of what reading cameras costs, so this column explains most differences;
- memory: RSS (``VmRSS``) summed over the recorder's processes at the end of the window,
  the peak of that sum sampled every 0.5 s (for nvr its ``VmHWM``), and PSS
  (``smaps_rollup``, which shares libraries fairly between the ffmpeg processes);
- frames lost per stream: the server sends 30 frames/s to each client, so ``30 * window``
  frames should arrive within the window. For nvr the frames of the committed
  recordings are placed on the wall clock (recording start + index offsets) and counted
  in the window; the floor counts arrivals itself. "gaps" are frames missing inside the
  timestamp sequence (a pts step of k frame durations loses k-1 frames), counted over
  the recorder's whole life; for ffmpeg only gaps are known (its output files are
  demuxed after it exits). Window counts are exact to about one frame at each edge;
- nvr only: recordings per stream, runs per stream (ideally 1: the session never
  dropped) and whether each stream's recordings are contiguous (each recording of a run
  starts exactly where the previous ended), the tail (wall time between the last
  committed frame and SIGTERM), and ``nvr check``.

Tables print, per N, CPU % of one core per stream, CPU seconds per stream-minute, memory,
frames lost and the ratios nvr/ffmpeg and nvr/floor; then memory per added stream (the
difference between consecutive N) and the issue's targets at the largest N. Nothing is
asserted: the figures depend on the machine and on anything else running on it.

The table's ``server%`` is the RTSP server's CPU and ``other%`` the rest of the machine's
(both in % of one core, 2 cores = 200%): a large ``other%`` means something else ran at
the same time and the figures are noisy; compare recorders within one run only. Other
load does not just add noise, it lowers every recorder's cost per frame (its readers fall
behind and find several frames per wake-up): on this 2-core machine one busy core made
the same nvr cost 0.39 % instead of 0.76 % per stream. Measure on a quiet machine.
``--rotate S`` sets nvr's ``rotate_interval_sec`` (default 60, the daemon's default; a
smaller value makes more recordings per stream, so contiguity is checked harder).

``--profile S`` adds a last run of nvr at the largest N, sampled by py-spy (``pip install
py-spy`` into the venv) for S seconds in ``--gil`` mode (only the thread holding the GIL:
where Python time goes; without it py-spy counts threads blocked inside FFmpeg as busy),
and prints the functions and lines with the most samples and the user/system CPU of the
trio thread against the worker threads (``/proc/PID/task``), which is the more reliable split.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av

from fixtures.make_fixtures import BENCH_1080P, cached_clip
from nvr.base.clock import RealClocks
from nvr.db.database import Database
from nvr.db.recording import decode_video_index
from nvr.db.types import CameraConfig, StreamConfig
from nvr.storage.dir import SampleFileDir
from tests.support.paths import REPO
from tests.support.rtsp import RtspServer, ServerOptions

FPS = 30
FRAME_90K = 90_000 // FPS
CLIP_NAME = "bench1080p"
COOLDOWN = 2.0
STOP_TIMEOUT = 60.0
SAMPLE_EVERY = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20
PROFILE_RATE = 100

#: The floor: argv = url, n, out_dir, window start, window end (epoch seconds). Prints one
#: JSON object on SIGTERM: per stream, packets arriving in the window and frames missing
#: from the pts sequence.
FLOOR_SCRIPT = r"""
import json, os, signal, sys, threading, time
import av

url, n, out_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0, t1 = float(sys.argv[4]), float(sys.argv[5])
FPS = 30
in_window = [0] * n
gaps = [0] * n
errors = []
files = []
options = {"rtsp_transport": "tcp", "probesize": "32", "analyzeduration": "0"}

def read(i):
    try:
        container = av.open(url, options=options)
        stream = container.streams.video[0]
        frame = round(1 / (FPS * stream.time_base))
        prev = None
        with open(os.path.join(out_dir, f"{i}.h264"), "ab") as f:
            files.append(f)
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                f.write(packet)
                now = time.time()
                if t0 <= now < t1:
                    in_window[i] += 1
                if packet.pts is not None:
                    if prev is not None and packet.pts - prev > frame * 3 // 2:
                        gaps[i] += round((packet.pts - prev) / frame) - 1
                    prev = packet.pts
    except Exception as e:
        errors.append(f"stream {i}: {type(e).__name__}: {e}")

stop_signals = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # inherited by the readers
for i in range(n):
    threading.Thread(target=read, args=(i,), daemon=True).start()
signal.sigwait(stop_signals)
for f in list(files):
    try:
        f.flush()
    except Exception:
        pass
print(json.dumps({"in_window": in_window, "gaps": gaps, "errors": errors}), flush=True)
os._exit(0)
"""


# ----------------------------------------------------------------------------- /proc


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (all its threads, live and exited)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads, live and exited)."""
    return sum(cpu_split(pid))


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of a process's live threads."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if "ctxt_switches:" in line)
    return total


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def thread_cpu(pid: int) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds of each live thread of a process, by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK)
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------------------------- results


@dataclass
class Phase:
    """One recorder's figures for one N."""

    name: str
    n: int
    window: float = 0.0
    cpu: float = 0.0  # CPU seconds of the recorder in the window
    system: float = 0.0  # of which in the kernel
    switches: int = 0  # context switches of the recorder's threads in the window
    server_cpu: float = 0.0
    machine_cpu: float = 0.0
    rss_end: int = 0  # bytes, summed over the recorder's processes
    rss_peak: int = 0
    pss_end: int = 0
    in_window: list[int] | None = None  # frames per stream arriving in the window
    gaps: list[int] | None = None  # frames per stream missing from the pts sequence
    recordings: list[int] | None = None
    runs: list[int] | None = None
    contiguous: list[bool] | None = None
    tail_s: list[float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return round(FPS * self.window)

    def pct_per_stream(self) -> float:
        return 100 * self.cpu / self.window / self.n

    def cpu_per_stream_minute(self) -> float:
        return self.cpu / (self.n * self.window / 60)

    def lost_in_window(self) -> list[int] | None:
        if self.in_window is None:
            return None
        return [max(0, self.expected - k) for k in self.in_window]


@dataclass
class Procs:
    """The processes of one recorder under measurement."""

    pids: list[int]

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids if alive(p))

    def system(self) -> float:
        return sum(cpu_split(p)[1] for p in self.pids if alive(p))

    def switches(self) -> int:
        return sum(context_switches(p) for p in self.pids if alive(p))

    def rss(self) -> int:
        return sum(status_kib(p, "VmRSS") for p in self.pids if alive(p)) * 1024

    def hwm(self) -> int:
        return sum(status_kib(p, "VmHWM") for p in self.pids if alive(p)) * 1024

    def pss(self) -> int:
        return sum(pss_kib(p) for p in self.pids if alive(p)) * 1024


def measure(phase: Phase, procs: Procs, server: RtspServer, t0: float, t1: float) -> None:
    """Waits for the window [t0, t1) (epoch seconds) and fills ``phase``'s CPU and memory."""
    sleep_until(t0)
    cpu0, srv0, mach0, start = procs.cpu(), cpu_seconds(server.pid), machine_busy_seconds(), now()
    sys0, switches0 = procs.system(), procs.switches()
    peak = procs.rss()
    while now() < t1:
        time.sleep(min(SAMPLE_EVERY, max(0.0, t1 - now())))
        peak = max(peak, procs.rss())
        dead = [p for p in procs.pids if not alive(p)]
        if dead:
            phase.notes.append(f"{len(dead)} process(es) exited during the window")
            break
    cpu1, srv1, mach1, end = procs.cpu(), cpu_seconds(server.pid), machine_busy_seconds(), now()
    phase.window = end - start
    phase.cpu = cpu1 - cpu0
    phase.system = procs.system() - sys0
    phase.switches = procs.switches() - switches0
    phase.server_cpu = srv1 - srv0
    phase.machine_cpu = mach1 - mach0
    phase.rss_end = procs.rss()
    phase.rss_peak = max(peak, phase.rss_end, procs.hwm() if len(procs.pids) == 1 else 0)
    phase.pss_end = procs.pss()


def now() -> float:
    return time.time()


def sleep_until(t: float) -> None:
    while (left := t - now()) > 0:
        time.sleep(left)


def stop(processes: Sequence[subprocess.Popen[bytes]], phase: Phase) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = now() + STOP_TIMEOUT
    for p in processes:
        try:
            p.wait(max(0.1, deadline - now()))
        except subprocess.TimeoutExpired:
            phase.notes.append(f"pid {p.pid} ignored SIGTERM for {STOP_TIMEOUT:.0f} s: killed")
            p.kill()
            p.wait()
    statuses = collections.Counter(p.returncode for p in processes)
    if set(statuses) - {0, 255}:  # ffmpeg exits 255 when interrupted by a signal
        phase.notes.append(f"exit statuses: {dict(statuses)}")


# ----------------------------------------------------------------------------- nvr


def make_nvr_db(root: Path, url: str, n: int, rotate: int) -> tuple[Path, Path]:
    """A database of N cameras recording ``url`` into one directory, and a config file."""
    db_dir, sample_dir = root / "db", root / "sample"
    clocks = RealClocks()
    Database.create(db_dir, clocks.realtime())
    with Database.open(db_dir, tz=dt.UTC, now=clocks.realtime) as db:
        dir_uuid = uuid.uuid4()
        SampleFileDir.create(sample_dir, db.uuid, dir_uuid)
        row = db.add_sample_file_dir(str(sample_dir), dir_uuid)
        for i in range(n):
            cfg = StreamConfig(url=url, retain_bytes=1 << 40, flush_if_sec=60)
            db.add_camera(f"cam{i}", config=CameraConfig(), streams={"main": (row.id, cfg)})
    config = root / "nvr.toml"
    config.write_text(
        f'time_zone = "UTC"\nbinds = []\nlog_level = "info"\nrotate_interval_sec = {rotate}\n'
    )
    return db_dir, config


def start_nvr(
    root: Path, url: str, n: int, rotate: int
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    db_dir, config = make_nvr_db(root, url, n, rotate)
    log_path = root / "nvr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nvr", "--db-dir", str(db_dir), "run", "--config", str(config)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = now() + 30
    while b"recording " not in log_path.read_bytes():
        if process.poll() is not None or now() > deadline:
            process.kill()
            raise SystemExit(f"nvr did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    return process, db_dir, log_path


def analyze_nvr(phase: Phase, db_dir: Path, t0: float, t1: float, stopped: float) -> None:
    """Frames in the window, gaps, recordings, runs and contiguity from the database."""
    w0, w1, stop_90k = round(t0 * 90_000), round(t1 * 90_000), round(stopped * 90_000)
    phase.in_window, phase.gaps, phase.recordings, phase.runs = [], [], [], []
    phase.contiguous, phase.tail_s = [], []
    clocks = RealClocks()
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=clocks.realtime) as db:
        for sid in sorted(db.streams):
            recs = sorted(
                db.list_recordings_by_time(sid, 0, stop_90k + 3600 * 90_000),
                key=lambda r: (r.start_time_90k, r.composite_id),
            )
            if not recs:
                phase.in_window.append(0)
                phase.gaps.append(0)
                phase.recordings.append(0)
                phase.runs.append(0)
                phase.contiguous.append(False)
                phase.tail_s.append(float("nan"))
                continue
            count = gaps = 0
            contiguous = True
            for prev, rec in zip([None, *recs], recs, strict=False):
                index = decode_video_index(db.get_video_index(rec.composite_id))
                scale = rec.wall_duration_90k / rec.media_duration_90k
                wall = rec.start_time_90k + index.starts * scale
                count += int(((wall >= w0) & (wall < w1)).sum())
                steps = index.durations[index.durations > FRAME_90K * 3 // 2]
                gaps += int(((steps + FRAME_90K // 2) // FRAME_90K - 1).sum())
                if prev is not None and rec.run_offset > 0:
                    contiguous &= rec.start_time_90k == prev.end_time_90k
            phase.in_window.append(count)
            phase.gaps.append(gaps)
            phase.recordings.append(len(recs))
            phase.runs.append(sum(r.run_offset == 0 for r in recs))
            phase.contiguous.append(contiguous)
            phase.tail_s.append((stop_90k - recs[-1].end_time_90k) / 90_000)


def log_summary(log_path: Path) -> list[str]:
    """Warnings/errors and session ends in the daemon's log, condensed."""
    kinds: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        level = line.split(" ", 1)[0]
        if level in ("WARNING", "ERROR", "CRITICAL") or ": stream " in line or "Traceback" in line:
            key = level if level in ("WARNING", "ERROR", "CRITICAL") else "other"
            kinds[key] += 1
            examples.setdefault(key, line[:200])
        elif line.startswith("INFO nvr.ingest.streamer"):
            kinds["session ended"] += 1
            examples.setdefault("session ended", line[:200])
    return [f"log: {k} x{c}, e.g. {examples[k]}" for k, c in kinds.items()]


def nvr_check(db_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nvr", "--db-dir", str(db_dir), "check"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
    problems = result.stdout.strip().splitlines()[:3]
    return f"nvr check: exit {result.returncode}: {last}" + "".join(f"\n    {p}" for p in problems)


def run_nvr(server: RtspServer, url: str, n: int, args: argparse.Namespace) -> Phase:
    phase = Phase("nvr", n)
    with tempfile.TemporaryDirectory(prefix="bench-nvr-") as tmp:
        process, db_dir, log_path = start_nvr(Path(tmp), url, n, args.rotate)
        t0 = now() + args.warmup
        t1 = t0 + args.seconds
        try:
            measure(phase, Procs([process.pid]), server, t0, t1)
            sleep_until(t1 + COOLDOWN)
        finally:
            stopped = now()
            stop([process], phase)
        phase.notes.append(f"stopped {now() - stopped:.1f} s after SIGTERM")
        analyze_nvr(phase, db_dir, t0, t1, stopped)
        phase.notes.extend(log_summary(log_path))
        phase.notes.append(nvr_check(db_dir))
    return phase


# ----------------------------------------------------------------------------- ffmpeg


def ensure_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path:
        return path
    print("ffmpeg not found: installing Debian's ffmpeg package (apt-get install ffmpeg)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "ffmpeg"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    path = shutil.which("ffmpeg")
    if not path:
        raise SystemExit("apt-get installed ffmpeg but it is not on the PATH")
    return path


def ffmpeg_gaps(directory: Path) -> int:
    """Frames missing from the pts sequence of one ffmpeg's segments (in name order)."""
    gaps = 0
    prev: int | None = None
    for path in sorted(directory.glob("out*.mp4")):
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                frame = round(1 / (FPS * stream.time_base))
                for packet in container.demux(stream):
                    if packet.pts is None or packet.size == 0:
                        continue
                    if prev is not None and packet.pts - prev > frame * 3 // 2:
                        gaps += round((packet.pts - prev) / frame) - 1
                    prev = packet.pts
        except av.error.FFmpegError:
            continue  # an empty last segment
    return gaps


def run_ffmpeg(server: RtspServer, url: str, n: int, args: argparse.Namespace) -> Phase:
    phase = Phase("ffmpeg", n)
    ffmpeg = ensure_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="bench-ffmpeg-") as tmp:
        dirs = [Path(tmp) / str(i) for i in range(n)]
        processes = []
        for d in dirs:
            d.mkdir()
            cmd = [
                ffmpeg,
                "-nostdin",
                "-loglevel",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
                url,
                "-c",
                "copy",
                "-f",
                "segment",
                "-segment_time",
                "60",
                str(d / "out%03d.mp4"),
            ]
            with open(d / "ffmpeg.log", "wb") as log:
                processes.append(
                    subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                )
        t0 = now() + args.warmup
        t1 = t0 + args.seconds
        try:
            measure(phase, Procs([p.pid for p in processes]), server, t0, t1)
            sleep_until(t1 + COOLDOWN)
        finally:
            stop(processes, phase)
        phase.gaps = [ffmpeg_gaps(d) for d in dirs]
        errors = [line for d in dirs for line in (d / "ffmpeg.log").read_text().splitlines()]
        if errors:
            phase.notes.append(f"ffmpeg stderr: {len(errors)} lines, e.g. {errors[0][:160]}")
    return phase


# ----------------------------------------------------------------------------- floor


def run_floor(server: RtspServer, url: str, n: int, args: argparse.Namespace) -> Phase:
    phase = Phase("floor", n)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        t0 = now() + args.warmup
        t1 = t0 + args.seconds
        cmd = [sys.executable, "-c", FLOOR_SCRIPT, url, str(n), tmp, repr(t0), repr(t1)]
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            measure(phase, Procs([process.pid]), server, t0, t1)
            sleep_until(t1 + COOLDOWN)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=STOP_TIMEOUT)
        try:
            result = json.loads(out.decode().strip().splitlines()[-1])
        except (IndexError, ValueError):
            phase.notes.append(f"floor printed no result; stderr: {err.decode()[-500:]}")
            return phase
        phase.in_window, phase.gaps = result["in_window"], result["gaps"]
        phase.notes.extend(result["errors"][:3])
    return phase


# ----------------------------------------------------------------------------- profile


def profile_nvr(url: str, n: int, seconds: int, warmup: float, rotate: int) -> None:
    """Runs nvr on N streams and samples it with py-spy; prints the hottest functions."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        print(f"--profile needs py-spy: {sys.executable} -m pip install py-spy")
        return
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        process, _, _ = start_nvr(Path(tmp), url, n, rotate)
        out = Path(tmp) / "profile.txt"
        try:
            time.sleep(warmup)
            cpu0, threads0 = cpu_seconds(process.pid), thread_cpu(process.pid)
            result = subprocess.run(
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(process.pid),
                    "--duration",
                    str(seconds),
                    "--rate",
                    str(PROFILE_RATE),
                    "--format",
                    "raw",
                    "--threads",
                    "--nonblocking",
                    "--gil",
                    "--output",
                    str(out),
                ],
                capture_output=True,
                text=True,
            )
            cpu = cpu_seconds(process.pid) - cpu0
            threads1 = thread_cpu(process.pid)
        finally:
            stop([process], Phase("profile", n))
        if result.returncode != 0 or not out.exists():
            print(f"py-spy failed: {result.stderr[-1000:]}")
            return
        print_profile(out.read_text(), n, seconds, cpu)
        print("-- CPU by thread (/proc/PID/task; the trio thread is the main thread) --")
        split: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        for tid, (user, system) in threads1.items():
            u0, s0 = threads0.get(tid, (0.0, 0.0))
            group = split["trio thread" if tid == process.pid else "worker threads"]
            group[0] += user - u0
            group[1] += system - s0
        for group_name, (user, system) in split.items():
            print(f"  {group_name:15} user {user:6.2f} s  sys {system:6.2f} s")


def print_profile(raw: str, n: int, seconds: int, cpu: float) -> None:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    total = sum(c for _, c in stacks)
    if not total:
        print("py-spy recorded no samples")
        return
    by_thread: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    lines: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        names = [f for f in frames[1:] if f]  # frames[0] names the thread
        by_thread["trio thread" if _is_trio_thread(names) else "worker threads"] += count
        if names:
            self_[_short(names[-1])] += count
            lines[_short(names[-1], keep_line=True)] += count
        for name in {_short(f) for f in names}:
            inclusive[name] += count
    print(
        f"\n== py-spy --gil: nvr on {n} streams, {seconds} s at {PROFILE_RATE} Hz, "
        f"{total} samples holding the GIL (~{total / PROFILE_RATE:.1f} s); "
        f"the daemon used {cpu:.1f} CPU s meanwhile =="
    )
    for name, count in by_thread.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    tops = (
        ("functions by self", self_, 20),
        ("lines by self", lines, 15),
        ("functions by inclusive", inclusive, 30),
    )
    for title, counter, k in tops:
        print(f"-- top {title} samples --")
        for name, count in counter.most_common(k):
            print(f"  {100 * count / total:5.1f}%  {name}")


def _is_trio_thread(frames: list[str]) -> bool:
    return any("trio/_core/_run.py" in f or "nvr/cli/run.py" in f for f in frames)


def _short(frame: str, *, keep_line: bool = False) -> str:
    """``func (path/to/file.py:123)`` as ``func (to/file.py)`` (lines merged per function)
    or, with ``keep_line``, ``func (to/file.py:123)``."""
    name, _, where = frame.partition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    if not path:
        return name
    short = "/".join(path.split("/")[-2:])
    return f"{name} ({short}:{line})" if keep_line else f"{name} ({short})"


# ----------------------------------------------------------------------------- report


def mib(nbytes: float) -> str:
    return f"{nbytes / MIB:7.1f}"


def lost_text(phase: Phase) -> str:
    parts = []
    lost = phase.lost_in_window()
    if lost is not None:
        parts.append(f"window {sum(lost)} (max {max(lost, default=0)}/stream)")
    if phase.gaps is not None:
        parts.append(f"gaps {sum(phase.gaps)}")
    return ", ".join(parts) or "-"


def print_table(phases: Sequence[Phase]) -> None:
    n = phases[0].n
    window = phases[0].window
    print(
        f"\n== N = {n} streams of 1080p30 ~4 Mbit/s; window ~{window:.1f} s; "
        f"expected {FPS} fps = {round(FPS * window)} frames/stream =="
    )
    header = (
        f"{'recorder':8} {'CPU s':>7} {'%core/str':>9} {'CPUs/str-min':>12} "
        f"{'sys%':>5} {'csw/fr':>6} "
        f"{'RSS MiB':>7} {'peak':>7} {'PSS':>7} {'server%':>7} {'other%':>6}  frames lost"
    )
    print(header)
    for p in phases:
        other = p.machine_cpu - p.cpu - p.server_cpu
        print(
            f"{p.name:8} {p.cpu:7.2f} {p.pct_per_stream():9.3f} "
            f"{p.cpu_per_stream_minute():12.3f} "
            f"{100 * p.system / max(p.cpu, 1e-9):5.1f} "
            f"{p.switches / max(p.n * p.window * FPS, 1):6.2f} "
            f"{mib(p.rss_end)} {mib(p.rss_peak)} {mib(p.pss_end)} "
            f"{100 * p.server_cpu / p.window:7.1f} {100 * other / p.window:6.1f}  {lost_text(p)}"
        )
    by_name = {p.name: p for p in phases}
    nvr = by_name.get("nvr")
    if nvr is not None:
        for peer in ("ffmpeg", "floor"):
            if peer in by_name and by_name[peer].cpu > 0:
                other = by_name[peer]
                print(
                    f"nvr/{peer}: CPU {nvr.pct_per_stream() / other.pct_per_stream():.2f}x, "
                    f"RSS {nvr.rss_end / max(other.rss_end, 1):.2f}x, "
                    f"PSS {nvr.pss_end / max(other.pss_end, 1):.2f}x"
                )
        if nvr.recordings is not None and nvr.runs is not None and nvr.contiguous is not None:
            print(
                f"nvr recordings/stream: {_spread(nvr.recordings)}; runs/stream: "
                f"{_spread(nvr.runs)}; contiguous streams: {sum(nvr.contiguous)}/{n}; "
                f"single-run streams: {sum(r == 1 for r in nvr.runs)}/{n}"
            )
        if nvr.tail_s:
            print(f"nvr tail (SIGTERM - end of last committed frame): {_spread(nvr.tail_s, 2)} s")
    for p in phases:
        for note in p.notes:
            print(f"  [{p.name}] {note}")


def _spread(values: Sequence[float], digits: int = 0) -> str:
    lo, hi = min(values), max(values)
    mean = sum(values) / len(values)
    if lo == hi:
        return f"{lo:.{digits}f}"
    return f"min {lo:.{digits}f} mean {mean:.{digits + 1}f} max {hi:.{digits}f}"


def print_summary(results: dict[int, list[Phase]]) -> None:
    ns = sorted(results)
    print("\n== memory per added stream (difference between consecutive N) ==")
    names = [p.name for p in results[ns[0]]]
    for name in names:
        parts = []
        for a, b in itertools.pairwise(ns):
            pa = next(p for p in results[a] if p.name == name)
            pb = next(p for p in results[b] if p.name == name)
            parts.append(
                f"N {a}->{b}: RSS {(pb.rss_end - pa.rss_end) / (b - a) / MIB:.2f} MiB, "
                f"PSS {(pb.pss_end - pa.pss_end) / (b - a) / MIB:.2f} MiB"
            )
        single = next(p for p in results[ns[0]] if p.name == name)
        parts.append(f"RSS/stream at N={ns[0]}: {single.rss_end / ns[0] / MIB:.2f} MiB")
        print(f"{name:8} " + "; ".join(parts))
    top = ns[-1]
    by_name = {p.name: p for p in results[top]}
    nvr = by_name.get("nvr")
    if nvr is None:
        return
    print(f"\n== the issue's targets at N = {top} (printed, not asserted) ==")
    lines = []
    if "ffmpeg" in by_name:
        ff = by_name["ffmpeg"]
        lines.append(
            (
                nvr.pct_per_stream() <= ff.pct_per_stream(),
                f"CPU/stream <= ffmpeg's: {nvr.pct_per_stream():.3f}% vs "
                f"{ff.pct_per_stream():.3f}%",
            )
        )
    if "floor" in by_name:
        fl = by_name["floor"]
        ratio = nvr.pct_per_stream() / fl.pct_per_stream()
        lines.append((ratio <= 1.3, f"CPU/stream <= 1.3x floor: {ratio:.2f}x"))
    if len(ns) > 1:
        prev = next(p for p in results[ns[-2]] if p.name == "nvr")
        added = (nvr.rss_end - prev.rss_end) / (top - ns[-2]) / MIB
        lines.append((added < 8, f"RSS per added stream < 8 MiB: {added:.2f} MiB"))
    lost = nvr.lost_in_window() or []
    lines.append(
        (
            sum(lost) == 0 and sum(nvr.gaps or []) == 0,
            f"zero frames lost: window {sum(lost)}, gaps {sum(nvr.gaps or [])}",
        )
    )
    if nvr.contiguous is not None and nvr.runs is not None:
        ok = all(nvr.contiguous) and all(r == 1 for r in nvr.runs)
        lines.append(
            (
                ok,
                f"every stream contiguous, one run: {sum(nvr.contiguous)}/{top} "
                f"contiguous, {sum(r == 1 for r in nvr.runs)}/{top} single-run",
            )
        )
    for ok, text in lines:
        print(f"  {'met   ' if ok else 'MISSED'} {text}")


# ----------------------------------------------------------------------------- main


@dataclass(frozen=True)
class Recorder:
    name: str
    run: Callable[[RtspServer, str, int, argparse.Namespace], Phase]


RECORDERS = (Recorder("nvr", run_nvr), Recorder("ffmpeg", run_ffmpeg), Recorder("floor", run_floor))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[8, 32, 64], help="stream counts")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window")
    parser.add_argument(
        "--rotate",
        type=int,
        default=60,
        metavar="S",
        help="nvr's rotate_interval_sec (default 60, the daemon's; less tests contiguity harder)",
    )
    parser.add_argument(
        "--only", nargs="+", choices=[r.name for r in RECORDERS], help="run only these recorders"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="S",
        help="then sample nvr at the largest N with py-spy for S seconds",
    )
    return parser.parse_args(argv)


def serve(clip: Path) -> Iterator[RtspServer]:
    """The RTSP test server serving only ``clip`` as ``/file/CLIP_NAME``."""
    with RtspServer(ServerOptions(files={CLIP_NAME: clip}, fixtures=False)) as server:
        yield server


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    recorders = [r for r in RECORDERS if args.only is None or r.name in args.only]
    if any(r.name == "ffmpeg" for r in recorders):
        ensure_ffmpeg()
    clip = cached_clip(BENCH_1080P)
    print(
        f"clip {clip} ({clip.stat().st_size / MIB:.1f} MiB); {os.cpu_count()} cores; "
        f"window {args.seconds:g} s after {args.warmup:g} s warm-up; "
        f"CPU/RSS from /proc; PyAV {av.__version__}; ffmpeg {shutil.which('ffmpeg')}"
    )
    results: dict[int, list[Phase]] = {}
    for n in sorted(args.n):
        phases = []
        for recorder in recorders:
            for server in serve(clip):
                url = server.url(f"/file/{CLIP_NAME}")
                print(f"-- N={n}: {recorder.name} ...", flush=True)
                phases.append(recorder.run(server, url, n, args))
        results[n] = phases
        print_table(phases)
        sys.stdout.flush()
    print_summary(results)
    if args.profile:
        for server in serve(clip):
            url = server.url(f"/file/{CLIP_NAME}")
            profile_nvr(url, max(args.n), args.profile, args.warmup, args.rotate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
