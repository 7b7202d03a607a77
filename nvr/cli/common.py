"""What every command module of ``nvr.cli`` shares: the handler type, the database
directory from ``--db-dir``/``$NVR_DB_DIR``, a password from standard input, and how to
tell a person to run nvr again (``nvr_command``)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
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


def nvr_command(argv0: str | None = None, path: str | None = None) -> str:
    """How to run this nvr from a shell, for commands printed to a person: ``nvr`` when the
    ``nvr`` on ``$PATH`` is the one running, else the running script by its absolute path
    (``/home/me/nvr/.venv/bin/nvr`` after a venv install), else ``python -m nvr`` with this
    interpreter."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name != "nvr":
        return f"{shlex.quote(sys.executable)} -m nvr"
    me = Path(argv0).absolute()
    found = shutil.which("nvr", path=path)
    if found is not None and Path(found).resolve() == me.resolve():
        return "nvr"
    return shlex.quote(str(me))
