"""``nvr init`` (a new, empty database) and ``nvr upgrade`` (its schema to this nvr's)."""

from __future__ import annotations

import argparse
import sys

from nvr.base.clock import RealClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.cli.common import Subparsers, db_dir


def cmd_init(args: argparse.Namespace) -> int:
    from nvr.db.database import Database

    path = db_dir(args)
    u = Database.create(path, RealClocks().realtime())
    print(f"created database {u} in {path}")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from nvr.db.upgrade import upgrade

    result = upgrade(
        db_dir(args),
        now_sec=RealClocks().realtime() // UNITS_PER_SEC,
        preset_journal=args.preset_journal,
        vacuum=not args.no_vacuum,
    )
    from nvr.db import signing

    if signing.ensure_key(db_dir(args)):
        print(f"created the export signing key {db_dir(args) / signing.KEY_FILE}",
              file=sys.stderr)
    if result.backup is None:
        print(f"database is already at schema version {result.new_version}; nothing to do")
    else:
        print(
            f"upgraded from schema version {result.old_version} to {result.new_version}; "
            f"the old database is copied to {result.backup}. Verify with `nvr run --read-only`."
        )
    return 0


def add_init_parser(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("init", help="create a new, empty database", parents=[common])
    p.set_defaults(func=cmd_init)


def add_upgrade_parser(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "upgrade", help="upgrade the database schema (daemon stopped)", parents=[common]
    )
    p.add_argument(
        "--preset-journal",
        default="delete",
        choices=("delete", "truncate", "persist", "memory", "wal", "off"),
        help="journal mode while upgrading (default delete; WAL is restored afterwards)",
    )
    p.add_argument("--no-vacuum", action="store_true", help="skip the vacuum after upgrading")
    p.set_defaults(func=cmd_upgrade)
