"""The ``nvr`` command line: argument parsing and one-line error reporting.

Each subcommand is a small function taking the parsed arguments and returning an exit
status; the work itself lives in the layers below. Errors the user can act on
(``NvrError``) print one line to stderr and exit 1; bad flags exit 2 (argparse's usage
line); nothing prints a traceback unless ``NVR_DEBUG`` is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nvr.base import errors
from nvr.base.clock import RealClocks
from nvr.base.time90k import format_time, parse_time, zone

DEFAULT_DB_DIR = "/var/lib/nvr/db"

Command = Callable[[argparse.Namespace], int]


def _db_dir(args: argparse.Namespace) -> Path:
    return Path(args.db_dir)


def cmd_init(args: argparse.Namespace) -> int:
    from nvr.db.database import Database

    db_dir = _db_dir(args)
    u = Database.create(db_dir, RealClocks().realtime())
    print(f"created database {u} in {db_dir}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from nvr.check import check

    report = check(_db_dir(args), hash_files=args.hash)
    for line in report.problems:
        print(line)
    print(
        f"checked {report.recordings} recordings, {report.files} files "
        f"({report.garbage} garbage, {report.uncommitted_files} never committed): "
        f"{len(report.problems)} problems",
        file=sys.stderr,
    )
    return 0 if report.ok else 1


def cmd_ts(args: argparse.Namespace) -> int:
    tz = zone(args.tz)
    for text in args.times:
        try:
            t = parse_time(text, tz)
        except ValueError as e:
            raise errors.InvalidArgument(str(e)) from None
        print(f"{t} = {format_time(t, tz)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvr", description="network video recorder")
    parser.add_argument(
        "--db-dir",
        default=os.environ.get("NVR_DB_DIR", DEFAULT_DB_DIR),
        help="database directory (default: $NVR_DB_DIR or %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create a new, empty database")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("check", help="verify the database and sample files (daemon stopped)")
    p.add_argument("--hash", action="store_true", help="also verify every file's SHA-256")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("ts", help="convert between 90 kHz timestamps and dates")
    p.add_argument("times", nargs="+", metavar="TIME", help="90k integer or ISO 8601 time")
    p.add_argument("--tz", default=None, help="IANA time zone (default: the system's)")
    p.set_defaults(func=cmd_ts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Options like --db-dir may come after the subcommand too.
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except errors.NvrError as e:
        if os.environ.get("NVR_DEBUG"):
            raise
        print(f"nvr {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
