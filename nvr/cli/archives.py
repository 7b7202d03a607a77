"""``nvr config archive add|list|edit|remove``: archives on S3-compatible storage.

Like the other configuration commands these work the same whether the daemon runs or
not (``nvr.cli.control``): while it runs, a change goes over its control socket to the
archive routes of the API and the daemon applies it at once (an added archive's uploader
starts, a changed one's restarts with the new settings, a removed one's stops; nothing
else is interrupted); otherwise the database is changed directly, through the same
validation (``nvr.reconfig.archive_change``). ``remove`` forgets the archive and what it
holds (its recordings kept only there go from the listings); the objects stay in the
bucket. The secret key is read from the first line of standard input
(``--secret-key-stdin``), never from the command line (it would be in the shell's history
and in ``ps``); ``list`` never shows either key. ``--stream CAMERA[/TYPE]`` (repeatable;
type main by default) picks the streams an archive copies; without it ``add`` copies every
main stream, and ``edit`` keeps the archive's streams.

``nvr archive restore NAME`` (``nvr.archive.restore``) rebuilds a database's cameras,
streams and recordings from archive NAME's descriptions: into the database of
``--db-dir`` (made if there is none), where NAME is configured, or, for a database lost
with the disk, is added first from the same options as ``add`` (nothing is uploaded to it
until streams are recorded again).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from nvr import reconfig
from nvr.base import errors
from nvr.base.units import format_size, parse_size
from nvr.cli import control
from nvr.cli.common import Subparsers, db_dir
from nvr.cli.control import CameraRef
from nvr.db.archives import Archive
from nvr.db.database import Database
from nvr.offline import admin


def _secret(args: argparse.Namespace) -> str | None:
    if not args.secret_key_stdin:
        return None
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise errors.InvalidArgument("--secret-key-stdin: nothing on standard input")
    return line


def _body(args: argparse.Namespace, camera: Callable[[str], CameraRef]) -> dict[str, Any]:
    """The API's ``archive`` (or ``update``) body of the options given
    (``nvr.reconfig.archive_change``); ``camera`` finds a camera by name."""
    body: dict[str, Any] = {}
    for name, key in (("endpoint", "endpoint"), ("bucket", "bucket"), ("prefix", "prefix"),
                      ("region", "region"), ("access_key", "accessKey")):
        v = getattr(args, name, None)
        if v is not None:
            body[key] = v
    secret = _secret(args)
    if secret is not None:
        body["secretKey"] = secret
    if args.retain_days is not None:
        body["retainDays"] = args.retain_days or None
    if args.retain_bytes is not None:
        body["retainBytes"] = parse_size(args.retain_bytes) or None
    if args.max_rate is not None:
        body["maxRate"] = parse_size(args.max_rate) or None
    if args.require_archived is not None:
        body["requireArchived"] = args.require_archived
    if args.stream is not None:
        streams = []
        for spec in args.stream:
            name, _, type_ = spec.partition("/")
            streams.append({"cameraUuid": camera(name).uuid, "type": type_ or "main"})
        body["streams"] = streams
    return body


def cmd_add(args: argparse.Namespace) -> int:
    if not args.secret_key_stdin:
        raise errors.InvalidArgument("the secret key is read with --secret-key-stdin")
    t = control.target(db_dir(args))
    out = t.add_archive({"shortName": args.name, **_body(args, t.camera)})
    print(f"added archive {args.name} ({out['uuid']}) copying {out['streams']} streams")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    t = control.target(db_dir(args))
    t.update_archive(args.name, _body(args, t.camera))
    print(f"changed archive {args.name}")
    return 0


def _describe(db: Database, a: Archive) -> str:
    c = a.config
    streams = ", ".join(
        f"{db.cameras[db.streams[s].camera_id].short_name}/{db.streams[s].type}"
        for s in sorted(a.streams)
    )
    retain = ", ".join(x for x in (
        f"{c.retain_days} days" if c.retain_days else "",
        format_size(c.retain_bytes) + " per stream" if c.retain_bytes else "",
    ) if x) or "kept forever"
    rate = f"max {format_size(c.max_rate)}/s" if c.max_rate else "no rate cap"
    return "\t".join((
        a.short_name, str(a.uuid), f"{c.endpoint}/{c.bucket}/{c.prefix}", retain, rate,
        "require_archived" if c.require_archived else "-", streams or "no streams",
    ))


def cmd_list(args: argparse.Namespace) -> int:
    with control.peek(db_dir(args)) as db:
        for a in db.archives.values():
            print(_describe(db, a))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    control.target(db_dir(args)).remove_archive(args.name)
    print(f"removed archive {args.name} (its objects stay in the bucket)")
    return 0


def _options(p: argparse.ArgumentParser, *, add: bool) -> None:
    p.add_argument("name", help="short name, unique")
    p.add_argument("--endpoint", required=add, help="http(s)://host[:port] of the S3 service")
    p.add_argument("--bucket", required=add)
    p.add_argument("--prefix", default=None, help="key prefix inside the bucket")
    p.add_argument("--region", default=None, help="signing region (default us-east-1)")
    p.add_argument("--access-key", required=add)
    p.add_argument("--secret-key-stdin", action="store_true",
                   help="read the secret key from the first line of standard input")
    p.add_argument("--retain-days", type=int, default=None,
                   help="delete archived recordings older than this (0: no limit)")
    p.add_argument("--retain-bytes", default=None,
                   help="keep at most this much per stream, e.g. 2T (0: no limit)")
    p.add_argument("--max-rate", default=None,
                   help="upload at most this many bytes per second, e.g. 5M (0: no cap)")
    p.add_argument("--require-archived", action=argparse.BooleanOptionalAction, default=None,
                   help="local retention deletes a copied recording only once archived")
    p.add_argument("--stream", action="append", default=None, metavar="CAMERA[/TYPE]",
                   help="a stream to copy (repeatable; type main by default). "
                        "add: default every main stream; edit: replaces the set")


def cmd_restore(args: argparse.Namespace) -> int:
    from nvr.archive import tombstones
    from nvr.archive.client import S3Store, StoreConfig
    from nvr.archive.restore import restore
    from nvr.base.clock import RealClocks
    from nvr.db import connection

    now = RealClocks().realtime()
    if not (db_dir(args) / connection.DB_FILE).exists():
        Database.create(db_dir(args), now)
        print(f"created a database in {db_dir(args)}", file=sys.stderr)
    with admin.open_db(db_dir(args)) as db:
        try:
            a = db.archive_by_name(args.name)
        except errors.NotFound:
            if not args.endpoint:
                raise errors.NotFound(
                    f"no archive named {args.name!r} here: give its --endpoint, --bucket, "
                    "--access-key and --secret-key-stdin (and --prefix) to add it"
                ) from None
            camera = control.LocalTarget(db_dir(args)).camera
            a = reconfig.add_archive(db, {"shortName": args.name, **_body(args, camera),
                                          "streams": []})
        c = a.config
        store = S3Store(StoreConfig(c.endpoint, c.bucket, c.access_key, c.secret_key, c.region))
        stones = tombstones.list_tombstones(store, c.prefix)
        report = restore(db, a.id, store, now, hidden=lambda d: tombstones.covered(
            stones, d.camera_uuid, d.stream_type, d.row["start_time_90k"],
            d.row["start_time_90k"] + d.row["wall_duration_90k"]))
    for line in report.problems:
        print(line)
    r = report.result
    print(f"restored {r.restored} recordings ({r.present} already here, {report.hidden} "
          f"under tombstones, {len(report.problems)} problems); added {r.cameras} cameras "
          f"and {r.streams} streams", file=sys.stderr)
    return 0 if not report.problems else 1


def add_restore_parser(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("archive", help="what is in an archive (restore)")
    what = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = what.add_parser(
        "restore", parents=[common],
        help="rebuild cameras, streams and recordings from an archive (e.g. after the disk "
        "was lost; the recordings play from the archive)",
    )
    _options(p, add=False)
    p.set_defaults(func=cmd_restore)


def add_parsers(what: Subparsers, common: argparse.ArgumentParser) -> None:
    s = what.add_parser("archive", help="archives on S3-compatible object storage")
    sub = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("add", help="add an archive", parents=[common])
    _options(p, add=True)
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("edit", help="change an archive", parents=[common])
    _options(p, add=False)
    p.set_defaults(func=cmd_edit)
    p = sub.add_parser("list", help="list archives (never their keys)", parents=[common])
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("remove", help="forget an archive (its objects stay)", parents=[common])
    p.add_argument("name")
    p.set_defaults(func=cmd_remove)
