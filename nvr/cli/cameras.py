"""``nvr config camera add|list|edit|remove``: cameras and their streams, changed through
the running daemon or in the database (``nvr.cli.control``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nvr.base.units import format_size, parse_size
from nvr.cli import control
from nvr.cli.common import Subparsers, db_dir, read_password


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
    credentials = _credentials(args)
    if credentials:
        body["config"] = credentials
    cam = to.add_camera(body)
    print(f"added camera {cam.name} ({cam.uuid}) with streams {', '.join(sorted(streams))}")
    return 0


def cmd_camera_list(args: argparse.Namespace) -> int:
    with control.peek(db_dir(args)) as db:
        for cam in db.cameras.values():
            print(f"{cam.short_name}\t{cam.uuid}\t{cam.description}")
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
    credentials = _credentials(args)
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
    return 0


def cmd_camera_remove(args: argparse.Namespace) -> int:
    to = control.target(db_dir(args))
    n = to.remove_camera(to.camera(args.camera), delete_recordings=args.delete_recordings)
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
    p.set_defaults(func=cmd_camera_edit)

    p = csub.add_parser("remove", help="remove a camera", parents=[common])
    p.add_argument("camera")
    p.add_argument(
        "--delete-recordings",
        action="store_true",
        help="also delete its recordings (otherwise a camera with any is kept)",
    )
    p.set_defaults(func=cmd_camera_remove)
