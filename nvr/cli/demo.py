"""``nvr demo``: a throw-away recorder that works on a fresh machine.

It makes a data directory (a new temporary one unless ``--dir`` is given), encodes a
short synthetic clip, creates a database, a sample-file directory and two cameras whose
"URL" is that clip, and runs the real daemon on them: the same streamer, writer and
syncer as for RTSP cameras, the clip played in real time and looped. It prints what it
does, then a line of progress every few seconds, until Ctrl-C.

The clip is encoded here with PyAV (libx264), since a demo must not need the repository's
``fixtures/``: a moving gradient with a bouncing square, so frames differ.
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
from pathlib import Path

import trio

from nvr import daemon
from nvr.base.clock import RealClocks
from nvr.base.units import format_size
from nvr.cli.common import Subparsers, nvr_command
from nvr.cli.run import setup_logging
from nvr.config import BindConfig, Config
from nvr.db.database import Database
from nvr.offline import admin

CLIP_SECONDS = 20
FPS = 30
WIDTH, HEIGHT = 640, 360
PROGRESS_EVERY = 10  # seconds


def encode_demo_clip(path: Path) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.options = {
            "preset": "ultrafast",
            "bframes": "0",
            "g": str(FPS),
            "keyint_min": str(FPS),
            "sc_threshold": "0",
        }
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
        for i in range(CLIP_SECONDS * FPS):
            img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            img[..., 0] = (x + 4 * i) % 256
            img[..., 1] = (y + 2 * i) % 256
            img[..., 2] = 128
            bx = abs((i * 7) % (2 * (WIDTH - 60)) - (WIDTH - 60))
            by = abs((i * 5) % (2 * (HEIGHT - 60)) - (HEIGHT - 60))
            img[by : by + 60, bx : bx + 60] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def prepare(root: Path) -> Path:
    """Creates the demo's database, directory, clip and cameras under ``root`` (once)."""
    db_dir = root / "db"
    if (db_dir / "db").exists():
        print(f"nvr demo: reusing {root}")
        return db_dir
    root.mkdir(parents=True, exist_ok=True)
    clip = root / "demo-clip.mp4"
    print(f"nvr demo: encoding a {CLIP_SECONDS} s {WIDTH}x{HEIGHT} test clip: {clip}")
    encode_demo_clip(clip)
    Database.create(db_dir, RealClocks().realtime())
    dir_id = admin.add_dir(db_dir, root / "sample")
    for name in ("driveway", "garden"):
        admin.add_camera(db_dir, {
            "shortName": name,
            "description": "demo camera",
            "streams": {"main": {"url": str(clip), "sampleFileDirId": dir_id,
                                 "retainBytes": 200_000_000, "flushIfSec": 10}},
        })  # fmt: skip
    print(f"nvr demo: created database {db_dir} with cameras driveway and garden")
    return db_dir


async def _progress(d: daemon.Daemon) -> None:
    """Prints a line every ``PROGRESS_EVERY`` seconds until shutdown begins."""
    while True:
        with trio.move_on_after(PROGRESS_EVERY):
            await d.shutdown.wait()
            return
        parts = []
        for sid, streamer in d.streamers.items():
            s = d.db.streams[sid]
            cam = d.db.cameras[s.camera_id].short_name
            parts.append(
                f"{cam}: {streamer.state.value.kind}, {s.committed.num_recordings} recordings "
                f"committed ({format_size(s.committed.sample_file_bytes)}), "
                f"{streamer.counters.frames} frames read"
            )
        print("nvr demo: " + "; ".join(parts), flush=True)


async def _run(config: Config) -> None:
    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(daemon.run, config)
        nursery.start_soon(_progress, d)


def main(root: Path | None, http: str) -> int:
    root = root or Path(tempfile.mkdtemp(prefix="nvr-demo-"))
    db_dir = prepare(root)
    setup_logging("info", "text")
    print(f"nvr demo: recording; data in {root}. Ctrl-C stops (and flushes).")
    db_arg = shlex.quote(str(db_dir))
    print(f"nvr demo: afterwards, verify with: {nvr_command()} --db-dir {db_arg} check")
    # The demo's data is synthetic and it listens on loopback by default, so it needs no
    # login; a real install grants nothing without one (see conf/nvr.example.toml).
    bind = BindConfig(address=http, allow_unauthenticated=("viewVideo", "readCameraConfigs"))
    config = Config(db_dir=db_dir, binds=(bind,), rotate_interval_sec=60)
    trio.run(_run, config)
    print(f"nvr demo: stopped; the recordings stay in {root}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return main(Path(args.dir) if args.dir else None, args.http)


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="record two synthetic cameras into a throw-away directory")
    p.add_argument("--dir", default=None, help="data directory (default: a new temporary one)")
    p.add_argument("--http", default="127.0.0.1:8080", help="address for the web UI")
    p.set_defaults(func=cmd_demo)
