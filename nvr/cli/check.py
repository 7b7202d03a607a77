"""``nvr check``: verify (and, behind flags, repair) the database and sample files; while
the daemon runs, a read-only check of what it has committed (``nvr.offline.check``)."""

from __future__ import annotations

import argparse
import sys

from nvr.base import errors
from nvr.cli.common import Subparsers, db_dir


def cmd_check_archive(args: argparse.Namespace) -> int:
    from nvr.archive.check import check_archive
    from nvr.archive.client import S3Store, StoreConfig
    from nvr.offline import admin

    with admin.open_db(db_dir(args), read_only=True) as db:
        a = db.archive_by_name(args.archive)
        c = a.config
        store = S3Store(StoreConfig(c.endpoint, c.bucket, c.access_key, c.secret_key, c.region))
        report = check_archive(db, a.id, store, hash_objects=args.hash)
    for line in report.problems:
        print(line)
    print(
        f"checked archive {args.archive}: {report.recordings} recordings, {report.objects} "
        f"objects: {len(report.problems)} problems",
        file=sys.stderr,
    )
    return 0 if not report.problems else 1


def cmd_check(args: argparse.Namespace) -> int:
    from nvr.cli.control import daemon_running

    if args.archive is not None:
        return cmd_check_archive(args)
    from nvr.offline.check import check

    live = daemon_running(db_dir(args))
    if live:
        if args.delete_orphan_rows or args.trash_orphan_files:
            raise errors.FailedPrecondition(
                "the daemon runs (it holds the database's lock): stop it to repair"
            )
        print("nvr check: the daemon runs: checking what it has committed", file=sys.stderr)
    report = check(
        db_dir(args),
        live=live,
        hash_files=args.hash,
        delete_orphan_rows=args.delete_orphan_rows,
        trash_orphan_files=args.trash_orphan_files,
        progress=sys.stderr if sys.stderr.isatty() else None,
    )
    for line in report.problems:
        print(line)
    repaired = f", {report.repaired} repaired" if report.repaired else ""
    print(
        f"checked {report.recordings} recordings, {report.files} files "
        f"({report.garbage} garbage, {report.uncommitted_files} never committed): "
        f"{len(report.problems)} problems{repaired}",
        file=sys.stderr,
    )
    return 0 if report.unrepaired == 0 else 1


def add_parser(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "check",
        help="verify the database and sample files (repairs need the daemon stopped)",
        parents=[common],
    )
    p.add_argument("--hash", action="store_true",
                   help="also verify every file's (with --archive: object's) SHA-256")
    p.add_argument("--archive", default=None, metavar="NAME",
                   help="verify this archive's objects against the database instead "
                        "(missing, extra, wrong size or checksum)")
    p.add_argument(
        "--delete-orphan-rows",
        action="store_true",
        help="repair: delete the rows of recordings whose sample file is missing",
    )
    p.add_argument(
        "--trash-orphan-files",
        action="store_true",
        help="repair: move sample files that have no row into the directory's trash/",
    )
    p.set_defaults(func=cmd_check)
