"""``nvr config dir add|list``: sample-file directories."""

from __future__ import annotations

import argparse
from pathlib import Path

from nvr.base.units import format_size
from nvr.cli.common import Subparsers, db_dir
from nvr.offline import admin


def cmd_dir_add(args: argparse.Namespace) -> int:
    row = admin.add_dir(db_dir(args), Path(args.path))
    print(f"added sample file directory {row.path} (id {row.id})")
    return 0


def cmd_dir_list(args: argparse.Namespace) -> int:
    with admin.open_db(db_dir(args), read_only=True) as db:
        for d in db.dirs.values():
            streams = db.streams_in_dir(d.id)
            used = sum(s.committed.sample_file_bytes for s in streams)
            print(f"{d.id}\t{d.path}\t{len(streams)} streams\t{format_size(used)} used")
    return 0


def add_parsers(what: Subparsers, common: argparse.ArgumentParser) -> None:
    d = what.add_parser("dir", help="sample file directories")
    dsub = d.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("add", help="create and add a directory", parents=[common])
    p.add_argument("path")
    p.set_defaults(func=cmd_dir_add)
    p = dsub.add_parser("list", help="list directories", parents=[common])
    p.set_defaults(func=cmd_dir_list)
