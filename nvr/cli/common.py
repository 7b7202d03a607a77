"""What every command module of ``nvr.cli`` shares: the handler type, the database
directory from ``--db-dir``/``$NVR_DB_DIR`` and a password from standard input."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from nvr.base import errors
from nvr.config import DEFAULT_DB_DIR

#: a command's handler: the parsed arguments in, the exit status out
Command = Callable[[argparse.Namespace], int]
#: where a command module adds its parsers (a string: the class is generic only to mypy)
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def explicit_db_dir(args: argparse.Namespace) -> str | None:
    """``--db-dir``, else ``$NVR_DB_DIR``, else None."""
    return args.db_dir or os.environ.get("NVR_DB_DIR") or None


def db_dir(args: argparse.Namespace) -> Path:
    return Path(explicit_db_dir(args) or DEFAULT_DB_DIR)


def read_password(args: argparse.Namespace) -> str | None:
    """The first line of standard input with ``--password-stdin``, else None."""
    if not getattr(args, "password_stdin", False):
        return None
    line = sys.stdin.readline()
    if not line:
        raise errors.InvalidArgument("--password-stdin: nothing on standard input")
    return line.rstrip("\r\n")
