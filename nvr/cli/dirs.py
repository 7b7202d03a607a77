"""``nvr config dir add|remove|list``: sample-file directories (``nvr.cli.control``:
through the running daemon or in the database)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nvr.base.units import format_size
from nvr.cli import control
from nvr.cli.common import Subparsers, db_dir


def cmd_dir_add(args: argparse.Namespace) -> int:
    path = Path(args.path).absolute()
    dir_id = control.target(db_dir(args)).add_dir(path)
    print(f"added sample file directory {path} (id {dir_id})")
    return 0


def cmd_dir_remove(args: argparse.Namespace) -> int:
    path = Path(args.path).absolute()
    to = control.target(db_dir(args))
    to.remove_dir(to.dir_id(path))
    print(f"removed sample file directory {path} (its files stay on disk)")
    return 0


def cmd_dir_list(args: argparse.Namespace) -> int:
    with control.peek(db_dir(args)) as db:
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
    p = dsub.add_parser(
        "remove", help="forget a directory no stream uses (its files stay)", parents=[common]
    )
    p.add_argument("path")
    p.set_defaults(func=cmd_dir_remove)
    p = dsub.add_parser("list", help="list directories", parents=[common])
    p.set_defaults(func=cmd_dir_list)
