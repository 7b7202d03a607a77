"""How nvr's costs grow with its history:
``python -m tests.bench.bench_scale [--root /work/scale-data] [--days 1,30,365]``.

For each history (``ROOT/dN``, made by ``tests.bench.make_history`` with 32 streams if it
is not there yet: ``--files all`` for a day, ``window`` beyond), measures:

- ``nvr run`` (a subprocess, under a ``NOTIFY_SOCKET`` of our own) from start to
  ``READY=1``, and its RSS then (and its peak, ``VmHWM``);
- over HTTP on that daemon (keep-alive, the median of ``--repeat`` after one warm-up):
  ``GET /api/?days=true``; one main stream's ``.../recordings`` for the middle day and the
  week around it, without ``split90k`` (whole runs) and with ``split90k`` of an hour; the
  time to the first byte of ``view.mp4`` of the middle hour;
- with the daemon stopped, in this process (``Database`` as the syncer drives it): the
  commit of one flush window (a new one-minute recording of each of 8 streams, one
  ``flush``), and one retention pass (plan the oldest minute of every stream, one
  ``flush``); each a median of ``--repeat`` (they add and delete a minute each time);
- ``nvr check`` (no ``--hash``) per recording, where every file exists (``--files all``);
- the database's size per stream-year.

Beside each wall time that a loaded machine stretches, the CPU time it took (the
daemon's from ``/proc``, this process's from ``time.process_time``), which the load
barely moves.

Prints one table with a column per history and the growth 365 d / 30 d (the peer: the
same figure on a smaller history, measured in the same run). Figures are wall times on
a shared machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.database import Database
from nvr.offline.check import check
from nvr.storage.dir import file_name
from tests.bench.make_history import make_variant
from tests.support.paths import REPO

HOUR = 3600 * UNITS_PER_SEC
DAY = 24 * HOUR
COMMIT_STREAMS = 8


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def history(root: Path, days: int) -> Path:
    out = root / f"d{days}"
    if not (out / "history.txt").exists():
        print(f"making {out} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "tests.bench.make_history", "--streams", "32",
                        "--days", str(days), "--files", "all" if days <= 1 else "window",
                        "--out", str(out)], check=True, cwd=REPO)
    return out


def info_of(out: Path) -> dict[str, object]:
    info: dict[str, object] = {}
    for line in (out / "history.txt").read_text().splitlines():
        k, v = line.split(" = ", 1)
        info[k] = ast.literal_eval(v)
    return info


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


# --- the daemon ----------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """CPU time (user + system) the process has used: unlike wall time, barely moved by
    what else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def daemon_figures(out: Path, repeat: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="nvr-bench-scale-"))
    (tmp / "nvr.toml").write_text(
        'time_zone = "UTC"\nlog_level = "info"\n[[binds]]\naddress = "127.0.0.1:0"\n'
        'allow_unauthenticated = ["viewVideo", "readCameraConfigs"]\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / "notify"))
    notify.settimeout(600)
    env = {k: v for k, v in os.environ.items() if k not in ("NVR_DB_DIR", "JOURNAL_STREAM")}
    env["NOTIFY_SOCKET"] = str(tmp / "notify")
    log_path = tmp / "run.log"
    figures: dict[str, float] = {}
    with notify, open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "nvr", "--db-dir", str(out / "db"), "run", "--config",
             str(tmp / "nvr.toml")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        try:
            while not notify.recv(4096).startswith(b"READY=1"):
                pass
            figures["startup_s"] = time.perf_counter() - started
            figures["startup_cpu_s"] = cpu_s(proc.pid)
            figures["rss_mib"] = proc_status(proc.pid, "VmRSS") / 2**20
            figures["peak_rss_mib"] = proc_status(proc.pid, "VmHWM") / 2**20
            m = None
            while m is None:
                m = re.search(r"serving HTTP on http://127\.0\.0\.1:(\d+)", log_path.read_text())
                time.sleep(0.05)
            figures |= http_figures(int(m[1]), out, repeat, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return figures


def http_figures(port: int, out: Path, repeat: int, pid: int) -> dict[str, float]:
    info = info_of(out)
    start, end = int(info["start_90k"]), int(info["end_90k"])  # type: ignore[call-overload]
    mid = start + (end - start) // 2 // HOUR * HOUR
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def get(path: str) -> bytes:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:200])
        return body

    top = json.loads(get("/api/?days=true"))
    cam = top["cameras"][0]
    base = f"/api/cameras/{cam['uuid']}/main"
    day0 = max(start, mid - DAY // 2)
    week0 = max(start, mid - 7 * DAY // 2)
    recs = f"{base}/recordings?startTime90k={{}}&endTime90k={{}}"
    hour = json.loads(get(recs.format(mid, mid + HOUR) + "&split90k=" + str(2 * HOUR)))
    ids = [(r["startId"], r.get("endId", r["startId"])) for r in hour["recordings"]]
    s = f"{ids[0][0]}-{ids[-1][1]}"

    def ttfb() -> None:
        conn.request("GET", f"{base}/view.mp4?s={s}")
        r = conn.getresponse()
        assert r.status == 200, r.status
        r.read(1)
        conn.close()  # the rest is not wanted: a new connection next time

    def cpu_ms(fn: Callable[[], object]) -> float:
        """The daemon's CPU time per call of ``fn`` (an average over ``repeat``)."""
        fn()
        before = cpu_s(pid)
        for _ in range(repeat):
            fn()
        return (cpu_s(pid) - before) / repeat * 1000

    f = {
        "api_days_cpu_ms": cpu_ms(lambda: get("/api/?days=true")),
        "rec_week_cpu_ms": cpu_ms(lambda: get(recs.format(week0, week0 + 7 * DAY))),
        "api_days_ms": median_ms(lambda: get("/api/?days=true"), repeat),
        "api_days_kib": len(get("/api/?days=true")) / 1024,
        "rec_day_ms": median_ms(lambda: get(recs.format(day0, day0 + DAY)), repeat),
        "rec_day_split_ms": median_ms(
            lambda: get(recs.format(day0, day0 + DAY) + f"&split90k={HOUR}"), repeat),
        "rec_week_ms": median_ms(lambda: get(recs.format(week0, week0 + 7 * DAY)), repeat),
        "rec_week_split_ms": median_ms(
            lambda: get(recs.format(week0, week0 + 7 * DAY) + f"&split90k={HOUR}"), repeat),
        "view_ttfb_ms": median_ms(ttfb, repeat),
    }
    conn.close()
    return f


# --- in process: commit, retention, check ---------------------------------------------------


def db_figures(out: Path, repeat: int, with_check: bool) -> dict[str, float]:
    info = info_of(out)
    end = int(info["end_90k"])  # type: ignore[call-overload]
    v = make_variant(250_000, 1, 60, 0)
    figures: dict[str, float] = {}
    if with_check and info["files"] == info["recordings"]:  # check finds no problem then
        t = time.perf_counter()
        report = check(out / "db")
        elapsed = time.perf_counter() - t
        figures["check_s"] = elapsed
        figures["check_us_per_rec"] = elapsed / report.recordings * 1e6
    t, c = time.perf_counter(), time.process_time()
    db = Database.open(out / "db", tz=dt.UTC, now=lambda: end)
    figures["db_open_s"] = time.perf_counter() - t
    figures["db_open_cpu_s"] = time.process_time() - c
    try:
        entry_id = next(iter(db.video_sample_entries))
        sids = sorted(db.streams)

        def commit_window() -> tuple[float, float]:
            for sid in sids[:COMMIT_STREAMS]:
                s = db.streams[sid]
                last = s.committed.range_end or end
                rec = db.add_recording(sid, run_offset=1, start_time_90k=last,
                                       video_sample_entry_id=entry_id)
                rec.video_index = v.index
                rec.sample_file_bytes = v.nbytes
                rec.video_samples, rec.video_sync_samples = v.frames, v.keys
                rec.media_duration_90k = rec.wall_duration_90k = v.media
                fd = os.open(out / "sample" / file_name(rec.composite_id),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
                os.ftruncate(fd, v.nbytes)
                os.close(fd)
                db.mark_done(rec)
                db.mark_synced(rec.composite_id)
            t, c = time.perf_counter(), time.process_time()
            db.flush("bench commit")
            return time.perf_counter() - t, time.process_time() - c

        def retention_pass() -> tuple[float, float]:
            t, c = time.perf_counter(), time.process_time()
            for sid in sids:
                db.add_planned_deletions(sid, [next(db.iter_unplanned_oldest(sid))])
            db.flush("bench retention")
            return time.perf_counter() - t, time.process_time() - c

        def timed(name: str, fn: Callable[[], tuple[float, float]]) -> None:
            runs = [fn() for _ in range(repeat + 1)][1:]
            figures[f"{name}_ms"] = statistics.median(r[0] for r in runs) * 1000
            figures[f"{name}_cpu_ms"] = statistics.median(r[1] for r in runs) * 1000

        timed("commit", commit_window)
        timed("retention", retention_pass)
    finally:
        db.close()
    days = float(info["days"])  # type: ignore[arg-type]
    stream_years = int(info["streams"]) * days / 365  # type: ignore[call-overload]
    figures["db_mib_per_stream_year"] = (out / "db" / "db").stat().st_size / 2**20 / stream_years
    return figures


ROWS = [
    ("startup_s", "nvr run start-up to READY=1 (s)"),
    ("startup_cpu_s", "  its CPU time (s)"),
    ("rss_mib", "RSS at READY=1 (MiB)"),
    ("peak_rss_mib", "peak RSS by READY=1 (MiB)"),
    ("api_days_ms", "GET /api/?days=true (ms)"),
    ("api_days_cpu_ms", "  the daemon's CPU per request (ms)"),
    ("api_days_kib", "  its size (KiB)"),
    ("rec_day_ms", "recordings, one day (ms)"),
    ("rec_day_split_ms", "recordings, one day, split90k=1h (ms)"),
    ("rec_week_ms", "recordings, one week (ms)"),
    ("rec_week_cpu_ms", "  the daemon's CPU per request (ms)"),
    ("rec_week_split_ms", "recordings, one week, split90k=1h (ms)"),
    ("view_ttfb_ms", "view.mp4 of an hour, TTFB (ms)"),
    ("db_open_s", "Database.open in process (s)"),
    ("db_open_cpu_s", "  its CPU time (s)"),
    ("commit_ms", "commit of one flush window, 8 streams (ms)"),
    ("commit_cpu_ms", "  its CPU time (ms)"),
    ("retention_ms", "retention pass, oldest minute x 32 (ms)"),
    ("retention_cpu_ms", "  its CPU time (ms)"),
    ("check_s", "nvr check, whole (s)"),
    ("check_us_per_rec", "nvr check per recording (us)"),
    ("db_mib_per_stream_year", "database MiB per stream-year (1 fps index)"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path("/work/scale-data"))
    ap.add_argument("--days", default="1,30,365")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                    help="time nvr check where every file exists (minutes on a loaded machine)")
    args = ap.parse_args()
    days = [int(d) for d in args.days.split(",")]
    results: dict[int, dict[str, float]] = {}
    for d in days:
        out = history(args.root, d)
        print(f"history {d} d: load {load()}", file=sys.stderr)
        results[d] = daemon_figures(out, args.repeat) | db_figures(out, args.repeat, args.check)
        print(f"  {json.dumps({k: round(v, 3) for k, v in results[d].items()})}",
              file=sys.stderr)
    header = f"{'figure':<48}" + "".join(f"{str(d) + ' d':>11}" for d in days)
    print(f"load average {load()}; 32 streams, one-minute recordings")
    pairs = [(a, b) for a, b in ((365, 30), (365, 1)) if a in results and b in results]
    print(header + "".join(f"{f'{a}/{b}':>9}" for a, b in pairs))
    for key, label in ROWS:
        if not any(key in r for r in results.values()):
            continue
        cells = "".join(f"{results[d][key]:>11.3g}" if key in results[d] else f"{'-':>11}"
                        for d in days)
        ratios = "".join(
            f"{results[a][key] / results[b][key]:>9.2f}"
            if key in results[a] and results[b].get(key) else f"{'-':>9}"
            for a, b in pairs)
        print(f"{label:<48}{cells}{ratios}")
    v30 = make_variant(250_000, 30, 60, 0)
    print(f"a 30 fps index adds {len(v30.index) * 525_600 / 2**20 - 0:.0f} MiB per "
          "stream-year to the 1 fps figure's index "
          f"({len(make_variant(250_000, 1, 60, 0).index)} vs {len(v30.index)} bytes a minute)")


if __name__ == "__main__":
    main()
