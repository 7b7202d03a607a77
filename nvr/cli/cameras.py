"""``nvr config camera add|list|edit|remove``: cameras and their streams, changed through
the running daemon or in the database (``nvr.cli.control``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from nvr.base.units import format_size, parse_size
from nvr.cli import control
from nvr.cli.common import Subparsers, db_dir, read_password
from nvr.motion.detector import MAX_SENSITIVITY, MIN_SENSITIVITY
from nvr.motion.summary import parse_cells
from nvr.offline import admin
from nvr.storage.forecast import StreamForecast
from nvr.storage.space import DiskSpace, budget_bytes, budget_warning


def _motion(args: argparse.Namespace) -> dict[str, Any]:
    """The motion fields of a camera's config (``--motion``, ``--motion-sensitivity``,
    ``--motion-mask``) that were given."""
    out: dict[str, Any] = {}
    if args.motion is not None:
        out["motion"] = None if args.motion == "off" else args.motion
    if args.motion_sensitivity is not None:
        out["motionSensitivity"] = args.motion_sensitivity
    if args.motion_mask is not None:
        out["motionMask"] = args.motion_mask
    return out


def _stream(url: str, dir_id: int, retain: int, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "url": url,
        "sampleFileDirId": dir_id,
        "retainBytes": retain,
        "flushIfSec": args.flush_if_sec,
        "rtspTransport": args.rtsp_transport,
    }
    if args.retain_days:
        out["retainDays"] = args.retain_days
    return out


def _credentials(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.username is not None:
        out["username"] = args.username
    password = read_password(args)
    if password is not None:
        out["password"] = password
    return out


def warn_about_budgets(args: argparse.Namespace, camera: str) -> None:
    """Warns on standard error about each directory of ``camera``'s streams whose streams'
    budgets are more than its disk holds (``nvr.storage.space``)."""
    with control.peek(db_dir(args)) as db:
        cam = db.camera_by_name(camera)
        dir_ids = {db.streams[sid].sample_file_dir_id for sid in cam.streams.values()}
        for dir_id in sorted(d for d in dir_ids if d is not None):
            path = db.dirs[dir_id].path
            try:
                space = DiskSpace.of(os.statvfs(path))
            except OSError:
                continue  # not mounted now: the daemon will say so
            warning = budget_warning(budget_bytes(db, dir_id), space)
            if warning:
                print(f"warning: {path}: {warning}", file=sys.stderr)


def cmd_camera_add(args: argparse.Namespace) -> int:
    to = control.target(db_dir(args))
    dir_id = to.dir_id(Path(args.dir).absolute())
    retain = parse_size(args.retain_bytes)
    streams = {"main": _stream(args.main_url, dir_id, retain, args)}
    if args.sub_url:
        sub_retain = parse_size(args.sub_retain_bytes) if args.sub_retain_bytes else retain // 10
        streams["sub"] = _stream(args.sub_url, dir_id, sub_retain, args)
    body: dict[str, Any] = {"shortName": args.name, "description": args.description,
                            "streams": streams}  # fmt: skip
    config = _credentials(args) | _motion(args)
    if config:
        body["config"] = config
    cam = to.add_camera(body)
    print(f"added camera {cam.name} ({cam.uuid}) with streams {', '.join(sorted(streams))}")
    print_forecast(args, cam.name)
    warn_about_budgets(args, cam.name)
    return 0


def forecast_line(type_: str, f: StreamForecast) -> str:
    """What the budget just set holds, in words (``nvr.storage.forecast``)."""
    keep = f"keep {format_size(f.retain_bytes)}" + (
        f" / {f.retain_days} days" if f.retain_days else "")
    if f.bytes_per_sec is None or f.budget_days is None:
        return f"  {type_}: {keep}: nothing recorded in the last day, so no forecast yet"
    held = "" if f.held_days is None else f"; holds {f.held_days:.1f} days now"
    return (f"  {type_}: {keep}: about {f.budget_days:.1f} days at the last day's average "
            f"of {f.bytes_per_sec * 8 / 1e6:.2f} Mbit/s{held}")


def print_forecast(args: argparse.Namespace, name: str) -> None:
    for type_, f in admin.camera_forecast(db_dir(args), name):
        print(forecast_line(type_, f))


def cmd_camera_list(args: argparse.Namespace) -> int:
    with control.peek(db_dir(args)) as db:
        for cam in db.cameras.values():
            print(f"{cam.short_name}\t{cam.uuid}\t{cam.description}")
            m = cam.config
            if m.motion:
                print(
                    f"  motion on {m.motion}, sensitivity {m.motion_sensitivity or 5}"
                    + (f", {len(m.motion_mask)} cells masked" if m.motion_mask else "")
                )
            for type_, sid in sorted(cam.streams.items()):
                st = db.streams[sid]
                c = st.committed
                print(
                    f"  {type_}\t{st.config.url}\t{st.config.mode}\t"
                    f"keep {format_size(st.config.retain_bytes)}"
                    + (f" / {st.config.retain_days} days" if st.config.retain_days else "")
                    + "\t"
                    f"{c.num_recordings} recordings, {format_size(c.sample_file_bytes)}"
                )
    return 0


def cmd_camera_edit(args: argparse.Namespace) -> int:
    """Only what is named changes: ``--retain-days`` and ``--flush-if-sec`` apply to every
    stream; a ``--sub-url`` for a camera without a sub stream adds one (into ``--dir``, or
    the camera's directory)."""
    to = control.target(db_dir(args))
    cam = to.camera(args.camera)
    update: dict[str, Any] = {}
    if args.name is not None:
        update["shortName"] = args.name
    if args.description is not None:
        update["description"] = args.description
    credentials = _credentials(args) | _motion(args)
    if args.motion_signal is not None:
        credentials["motionSignal"] = args.motion_signal
    if credentials:
        update["config"] = credentials
    dir_id = to.dir_id(Path(args.dir).absolute()) if args.dir else None
    urls = {"main": args.main_url, "sub": args.sub_url}
    sizes = {"main": args.retain_bytes, "sub": args.sub_retain_bytes}
    streams: dict[str, dict[str, Any]] = {}
    for t in sorted(cam.stream_types | {t for t, u in urls.items() if u}):
        s: dict[str, Any] = {}
        if urls.get(t):
            s["url"] = urls[t]
        if sizes.get(t):
            s["retainBytes"] = parse_size(sizes[t])
        if args.retain_days is not None:
            s["retainDays"] = args.retain_days or None
        if args.flush_if_sec is not None:
            s["flushIfSec"] = args.flush_if_sec
        if dir_id is not None:
            s["sampleFileDirId"] = dir_id
        if s:
            streams[t] = s
    if streams:
        update["streams"] = streams
    to.update_camera(cam, update)
    print(f"updated camera {args.name or cam.name}")
    print_forecast(args, args.name or cam.name)
    warn_about_budgets(args, args.name or cam.name)
    return 0


def cmd_camera_remove(args: argparse.Namespace) -> int:
    to = control.target(db_dir(args))
    n = to.remove_camera(
        to.camera(args.camera), delete_recordings=args.delete_recordings, unprotect=args.unprotect
    )
    print(f"removed camera {args.camera}" + (f" and {n} recordings" if n else ""))
    return 0


def _days(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _sensitivity(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not MIN_SENSITIVITY <= n <= MAX_SENSITIVITY:
        raise argparse.ArgumentTypeError(
            f"must be a whole number {MIN_SENSITIVITY} to {MAX_SENSITIVITY}"
        )
    return n


def _mask(text: str) -> list[int]:
    try:
        return parse_cells(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _motion_options(p: argparse.ArgumentParser, *, default: str | None) -> None:
    p.add_argument(
        "--motion", choices=("sub", "main", "off"), default=default,
        help="which stream motion analysis decodes (it must be recorded); off: none"
        + (" (default off)" if default else ""),
    )
    p.add_argument(
        "--motion-sensitivity", type=_sensitivity, default=None, metavar="N",
        help="1 (least) to 10 (most sensitive); default 5",
    )
    p.add_argument(
        "--motion-mask", type=_mask, default=None, metavar="CELLS",
        help="cells of the 16x16 grid (row * 16 + col) to ignore: e.g. 0-15,32, or 64 hex "
        "digits (a bitmap, as the API's cells=), or none",
    )


def add_parsers(what: Subparsers, common: argparse.ArgumentParser) -> None:
    c = what.add_parser("camera", help="cameras and their streams")
    csub = c.add_subparsers(dest="action", required=True, metavar="ACTION")

    def credentials(p: argparse.ArgumentParser) -> None:
        p.add_argument("--username", default=None, help="camera user name")
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the camera password from the first line of standard input",
        )

    p = csub.add_parser("add", help="add a camera", parents=[common])
    p.add_argument("--name", required=True, help="short name, unique")
    p.add_argument("--main-url", required=True, help="rtsp:// URL of the main stream")
    p.add_argument("--sub-url", default=None, help="rtsp:// URL of the sub stream")
    p.add_argument("--dir", required=True, help="sample file directory to record into")
    p.add_argument(
        "--retain-bytes",
        required=True,
        metavar="SIZE",
        help="bytes of main-stream video to keep, e.g. 500G or 2TiB",
    )
    p.add_argument(
        "--sub-retain-bytes",
        default=None,
        metavar="SIZE",
        help="bytes of sub-stream video to keep (default: a tenth of the main's)",
    )
    p.add_argument(
        "--retain-days",
        type=_days,
        default=None,
        metavar="DAYS",
        help="also delete video older than this many days (default: no age limit)",
    )
    p.add_argument(
        "--flush-if-sec",
        type=int,
        default=60,
        help="commit recordings at most this long after they end (default 60)",
    )
    p.add_argument("--rtsp-transport", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--description", default="")
    credentials(p)
    _motion_options(p, default="off")
    p.set_defaults(func=cmd_camera_add)

    p = csub.add_parser("list", help="list cameras and streams", parents=[common])
    p.set_defaults(func=cmd_camera_list)

    p = csub.add_parser("edit", help="change a camera", parents=[common])
    p.add_argument("camera", help="the camera's current short name")
    p.add_argument("--name", default=None, help="new short name")
    p.add_argument("--main-url", default=None)
    p.add_argument("--sub-url", default=None)
    p.add_argument("--dir", default=None, help="directory for newly added streams")
    p.add_argument("--retain-bytes", default=None, metavar="SIZE", help="for the main stream")
    p.add_argument("--sub-retain-bytes", default=None, metavar="SIZE", help="for the sub stream")
    p.add_argument(
        "--retain-days",
        type=_days,
        default=None,
        metavar="DAYS",
        help="delete video older than this many days, both streams (0: no age limit)",
    )
    p.add_argument("--flush-if-sec", type=int, default=None)
    p.add_argument("--description", default=None)
    p.add_argument(
        "--motion-signal",
        default=None,
        metavar="SIGNAL",
        help="the signal its motion detector writes, made if missing ('': '<camera> motion')",
    )
    credentials(p)
    _motion_options(p, default=None)
    p.set_defaults(func=cmd_camera_edit)

    p = csub.add_parser("remove", help="remove a camera", parents=[common])
    p.add_argument("camera")
    p.add_argument(
        "--delete-recordings",
        action="store_true",
        help="also delete its recordings (otherwise a camera with any is kept)",
    )
    p.add_argument(
        "--unprotect",
        action="store_true",
        help="remove its protected ranges first (otherwise protected video is kept)",
    )
    p.set_defaults(func=cmd_camera_remove)
