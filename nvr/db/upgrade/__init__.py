"""Schema upgrades (``nvr upgrade``): one module per step, ``vN_to_vN+1.py``.

What belongs here: the machinery that moves a database from the schema version it was
written with to ``SCHEMA_VERSION`` (``nvr/db/raw.py``), and the steps themselves. Each
step module defines ``run(conn: sqlite3.Connection) -> None``, which changes the schema
and data from version N to N+1 inside a transaction the machinery opened (with foreign
keys off, so tables can be rebuilt the way SQLite's ``ALTER TABLE`` documentation says);
it must not commit.

``upgrade`` does, in order:
1. locks the database directory exclusively (the daemon must be stopped);
2. copies the database file, with SQLite's online backup, to ``db.vN.bak`` (``.N``
   suffixes never overwrite an earlier backup) **before** writing anything;
3. sets the journal mode to ``preset_journal`` (default ``delete``: the upgrade does not
   depend on the WAL or ``-shm`` files being intact);
4. runs each step in its own transaction, which also inserts that step's ``version`` row
   and runs ``pragma foreign_key_check``; a failing step rolls back only itself, leaving
   the database at the last completed version (run ``nvr upgrade`` again once fixed);
5. ``vacuum`` (unless ``no_vacuum``), then back to WAL.
Afterwards ``nvr run --read-only`` opens the upgraded database without writing to it.

THE RULE for every schema change (version 1 shipped; the tests enforce it):
- ``schema.sql`` changes only together with ``SCHEMA_VERSION += 1``, a step module
  ``vN_to_vN+1.py`` here, and a frozen copy of the new schema as
  ``tests/support/schemas/vN+1.sql`` (the old copy stays: it builds the fixtures);
- ``tests/unit/test_upgrade.py`` gets ``test_vN_to_vN+1``, which builds a fixture
  database with the *previous* schema (``tests/support/schemas/vN.sql``), fills every
  table, upgrades it and checks that no row was lost;
- ``test_upgrade.py::test_every_version_has_a_step_and_a_test`` fails while
  ``SCHEMA_VERSION`` is higher than the newest step's target, while ``schema.sql``
  differs from its frozen copy, or while a step has no test.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from nvr.base import errors
from nvr.db import raw
from nvr.db.connection import DB_FILE, lock_dir, map_sqlite_error

log = logging.getLogger(__name__)

#: the first released schema: databases are created at it, no step leads to it
BASE_VERSION = 1
JOURNAL_MODES = ("delete", "truncate", "persist", "memory", "wal", "off")
_STEP_RE = re.compile(r"v(\d+)_to_v(\d+)")

StepFn = Callable[[sqlite3.Connection], None]


def discover_steps() -> dict[int, StepFn]:
    """The steps in this package, by the version they start from."""
    steps: dict[int, StepFn] = {}
    for info in pkgutil.iter_modules(__path__):
        m = _STEP_RE.fullmatch(info.name)
        if m is None:
            continue
        old, new = int(m[1]), int(m[2])
        if new != old + 1:
            raise errors.Internal(f"upgrade step {info.name} does not go up by one version")
        module = importlib.import_module(f"{__name__}.{info.name}")
        steps[old] = module.run
    return steps


def newest_target(steps: Mapping[int, StepFn]) -> int:
    """The version the newest step leads to (``BASE_VERSION`` without steps)."""
    return max([BASE_VERSION, *(v + 1 for v in steps)])


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    old_version: int
    new_version: int
    backup: Path | None  # None: nothing to do, nothing copied


def upgrade(
    db_dir: Path | str,
    *,
    now_sec: int,
    preset_journal: str = "delete",
    vacuum: bool = True,
    steps: Mapping[int, StepFn] | None = None,
    target: int | None = None,
) -> UpgradeResult:
    """Upgrades the database in ``db_dir`` to ``target`` (default ``SCHEMA_VERSION``);
    see the module docstring. ``steps`` (default: this package's) and ``target`` are
    injectable for tests."""
    steps = discover_steps() if steps is None else steps
    target = raw.SCHEMA_VERSION if target is None else target
    if preset_journal not in JOURNAL_MODES:
        raise errors.InvalidArgument(
            f"--preset-journal must be one of {', '.join(JOURNAL_MODES)}"
        )
    db_dir = Path(db_dir)
    path = db_dir / DB_FILE
    if not path.exists():
        raise errors.NotFound(f"no database at {path}")
    lock_fd = lock_dir(db_dir, exclusive=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            return _upgrade(conn, path, now_sec, preset_journal, vacuum, steps, target)
        except sqlite3.Error as e:
            raise map_sqlite_error(e, f"upgrading {path}") from e
        finally:
            conn.close()
    finally:
        os.close(lock_fd)


def _upgrade(
    conn: sqlite3.Connection,
    path: Path,
    now_sec: int,
    preset_journal: str,
    vacuum: bool,
    steps: Mapping[int, StepFn],
    target: int,
) -> UpgradeResult:
    version = raw.schema_version(conn)
    if version is None:
        raise errors.FailedPrecondition(f"{path} is not an nvr database")
    if version > target:
        raise errors.FailedPrecondition(
            f"database schema is version {version}, newer than this nvr supports ({target})"
        )
    if version == target:
        return UpgradeResult(version, version, None)
    missing = [v for v in range(version, target) if v not in steps]
    if missing:
        raise errors.FailedPrecondition(
            f"no upgrade step from version {missing[0]} (database is at {version}, "
            f"target {target})"
        )
    backup = _backup(conn, path, version)
    log.info("upgrading %s from version %d to %d; backup at %s", path, version, target, backup)
    conn.execute(f"pragma journal_mode = {preset_journal}")
    conn.execute("pragma foreign_keys = off")
    for v in range(version, target):
        conn.execute("begin immediate")
        try:
            steps[v](conn)
            problems = raw.foreign_key_problems(conn)
            if problems:
                raise errors.DataLoss(
                    f"upgrade step {v} -> {v + 1} left problems: {'; '.join(problems[:5])}"
                )
            raw.insert_version(conn, v + 1, now_sec, f"upgraded from {v}")
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        log.info("upgraded %s to version %d", path, v + 1)
    if vacuum:
        conn.execute("vacuum")
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma foreign_keys = on")
    return UpgradeResult(version, target, backup)


def _backup(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copies the database (consistently, WAL included) to a new ``db.vN.bak`` file."""
    dest = path.with_name(f"{path.name}.v{version}.bak")
    n = 0
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.v{version}.bak.{n}")
    out = sqlite3.connect(dest)
    try:
        conn.backup(out)
        out.execute("pragma journal_mode = delete")
    finally:
        out.close()
    return dest
