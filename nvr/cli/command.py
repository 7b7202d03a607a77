"""``nvr``'s parser and ``main``: which command runs, and how its errors are reported.

Errors the user can act on (``NvrError``) print one line to stderr and exit 1, or 2 when
the input itself is wrong (bad flags: argparse's usage line; bad values or config:
``InvalidArgument``); nothing prints a traceback unless ``NVR_DEBUG`` is set.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from nvr.base import errors
from nvr.cli import (
    archives,
    cameras,
    check,
    database,
    demo,
    dirs,
    export,
    run,
    signals,
    ts,
    users,
)
from nvr.cli.common import Command
from nvr.config import DEFAULT_DB_DIR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvr", description="network video recorder")
    parser.add_argument(
        "--db-dir",
        default=None,
        help=f"database directory (default: $NVR_DB_DIR, the config file's, or {DEFAULT_DB_DIR})",
    )
    # Options like --db-dir may come after the subcommand too: each subcommand accepts it
    # again, without a default of its own, so the top-level default stays in force.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db-dir",
        default=argparse.SUPPRESS,
        help="database directory (same as before the command)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_parser(sub, common)
    database.add_init_parser(sub, common)
    check.add_parser(sub, common)
    database.add_upgrade_parser(sub, common)
    config = sub.add_parser(
        "config",
        help="change cameras, directories, signals, archives and users (cameras, directories "
        "and users also through the daemon while it runs)",
    )
    what = config.add_subparsers(dest="what", required=True, metavar="WHAT")
    dirs.add_parsers(what, common)
    cameras.add_parsers(what, common)
    signals.add_parsers(what, common)
    archives.add_parsers(what, common)
    users.add_parsers(what, common)
    users.add_login_parser(sub, common)
    archives.add_restore_parser(sub, common)
    demo.add_parser(sub)
    ts.add_parser(sub)
    export.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    try:
        try:
            return func(args)
        except BaseExceptionGroup as group:
            # trio's nurseries wrap what a task raised; one NvrError is still one line
            only = _only_nvr_error(group)
            if only is None:
                raise
            raise only from group
    except errors.NvrError as e:
        if os.environ.get("NVR_DEBUG"):
            raise
        print(f"nvr {args.command}: {e}", file=sys.stderr)
        # Like argparse: 2 for what the user typed or configured wrong, 1 for the rest.
        return 2 if isinstance(e, errors.InvalidArgument) else 1
    except KeyboardInterrupt:
        return 130


def _only_nvr_error(group: BaseExceptionGroup[BaseException]) -> errors.NvrError | None:
    """The first ``NvrError`` inside a group of nothing else (however nested)."""
    found, rest = group.split(errors.NvrError)
    if found is None or rest is not None:
        return None
    return errors.first_leaf(found)


if __name__ == "__main__":
    sys.exit(main())
