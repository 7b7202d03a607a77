"""``nvr config camera add|list|edit|remove``: cameras and their streams."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from nvr.base.units import format_size, parse_size
from nvr.cli.common import Subparsers, db_dir, read_password
from nvr.motion.detector import MAX_SENSITIVITY, MIN_SENSITIVITY
from nvr.motion.summary import parse_cells
from nvr.offline import admin
from nvr.storage.forecast import StreamForecast
from nvr.storage.space import DiskSpace, budget_bytes, budget_warning


def _motion_spec(args: argparse.Namespace) -> admin.MotionSpec:
    return admin.MotionSpec(args.motion, args.motion_sensitivity, args.motion_mask)


def _stream_specs(args: argparse.Namespace) -> dict[str, admin.StreamSpec]:
    retain = parse_size(args.retain_bytes)
    days = args.retain_days or None
    specs = {
        "main": admin.StreamSpec(
            args.main_url, retain, args.flush_if_sec, args.rtsp_transport, retain_days=days
        )
    }
    if args.sub_url:
        sub_retain = (
            parse_size(args.sub_retain_bytes) if args.sub_retain_bytes else retain // 10
        )
        specs["sub"] = admin.StreamSpec(
            args.sub_url, sub_retain, args.flush_if_sec, args.rtsp_transport, retain_days=days
        )
    return specs


def warn_about_budgets(args: argparse.Namespace, camera: str) -> None:
    """Warns on standard error about each directory of ``camera``'s streams whose streams'
    budgets are more than its disk holds (``nvr.storage.space``)."""
    with admin.open_db(db_dir(args), read_only=True) as db:
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
    cam = admin.add_camera(
        db_dir(args),
        name=args.name,
        dir_path=Path(args.dir),
        streams=_stream_specs(args),
        description=args.description,
        username=args.username,
        password=read_password(args),
        motion=_motion_spec(args),
    )
    print(f"added camera {cam.short_name} ({cam.uuid}) with streams {', '.join(cam.streams)}")
    print_forecast(args, cam.short_name)
    warn_about_budgets(args, cam.short_name)
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
    with admin.open_db(db_dir(args), read_only=True) as db:
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
    urls = {t: u for t, u in (("main", args.main_url), ("sub", args.sub_url)) if u}
    cam = admin.edit_camera(
        db_dir(args),
        args.camera,
        new_name=args.name,
        description=args.description,
        username=args.username,
        password=read_password(args),
        urls=urls,
        retain_bytes={
            t: parse_size(v)
            for t, v in (("main", args.retain_bytes), ("sub", args.sub_retain_bytes))
            if v
        },
        flush_if_sec=args.flush_if_sec,
        dir_path=Path(args.dir) if args.dir else None,
        retain_days=(
            {t: args.retain_days for t in ("main", "sub")}
            if args.retain_days is not None
            else None
        ),
        motion=_motion_spec(args),
        motion_signal=args.motion_signal,
    )
    print(f"updated camera {cam.short_name}")
    print_forecast(args, cam.short_name)
    warn_about_budgets(args, cam.short_name)
    return 0


def cmd_camera_remove(args: argparse.Namespace) -> int:
    n = admin.remove_camera(db_dir(args), args.camera, delete_recordings=args.delete_recordings,
                            unprotect=args.unprotect)
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
