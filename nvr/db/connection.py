"""The SQLite connection: locking, creating, opening, and using it safely.

What belongs here: the database directory's ``flock`` (exclusive, or shared for read-only
opens; never waits), creating a new database file, connecting to an existing one with
nvr's pragmas and the schema-version check, the two ways every call uses the connection
(a timed read, a ``begin immediate`` transaction; both log a call over 100 ms) and the
mapping of ``sqlite3`` errors to ``NvrError`` kinds. Not here: SQL statements (``raw``)
and in-memory state (``Database``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

from nvr.base import errors
from nvr.base.clock import Stopwatch
from nvr.db import raw
from nvr.db.raw import SCHEMA_VERSION

log = logging.getLogger(__name__)

DB_FILE = "db"
SLOW_MS = 100.0


def map_sqlite_error(e: sqlite3.Error, what: str) -> errors.NvrError:
    msg = f"{what}: {e}"
    text = str(e).lower()
    if "locked" in text or "busy" in text:
        return errors.Unavailable(msg)
    if "full" in text:
        return errors.ResourceExhausted(msg)
    if "readonly" in text or "read-only" in text:
        return errors.FailedPrecondition(msg)
    if isinstance(e, sqlite3.IntegrityError):
        return errors.FailedPrecondition(msg)
    if "malformed" in text or "not a database" in text:
        return errors.DataLoss(msg)
    return errors.Internal(msg)


def lock_dir(db_dir: Path, *, exclusive: bool) -> int:
    """Locks the database directory (shared or exclusive, never waiting) and returns the
    descriptor that holds the lock."""
    with errors.mapped_os_errors(f"opening database directory {db_dir}"):
        fd = os.open(db_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with errors.mapped_os_errors(f"locking database directory {db_dir}"):
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                raise errors.Unavailable(
                    f"database directory {db_dir} is locked by another nvr process "
                    f"({'a writer' if not exclusive else 'a reader or writer'} holds it)"
                ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def create(db_dir: Path, uuid: bytes, unix_time: int) -> None:
    """Creates a new database file with the current schema in ``db_dir`` (made if
    missing). Refuses (``AlreadyExists``) when a database is already there, touching
    nothing."""
    with errors.mapped_os_errors(f"creating database directory {db_dir}"):
        db_dir.mkdir(parents=True, exist_ok=True)
    lock_fd = lock_dir(db_dir, exclusive=True)
    try:
        path = db_dir / DB_FILE
        if path.exists():
            raise errors.AlreadyExists(f"a database already exists at {path}; refusing to touch it")
        try:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                raw.set_pragmas(conn, read_only=False)
                raw.create_schema(conn, uuid, unix_time)
                conn.execute("commit")
            finally:
                conn.close()
        except sqlite3.Error as e:
            path.unlink(missing_ok=True)
            raise map_sqlite_error(e, f"creating database {path}") from e
    finally:
        os.close(lock_fd)


def connect(
    db_dir: Path, *, read_only: bool, lock: bool = True
) -> tuple[sqlite3.Connection, int]:
    """Locks ``db_dir`` (exclusive, or shared for ``read_only``) and connects to its
    database, refusing one of another schema version. Returns the connection and the
    descriptor holding the lock; the caller closes both. ``lock=False`` (read-only only)
    takes no lock: a look at what is committed while the daemon runs (the database is in
    WAL mode, so a reader neither waits for the daemon's commits nor holds them up)."""
    path = db_dir / DB_FILE
    if not path.exists():
        raise errors.NotFound(f"no database at {path}; create one with `nvr init`")
    if lock:
        lock_fd = lock_dir(db_dir, exclusive=not read_only)
    else:
        assert read_only, "only a read-only open may skip the lock"
        with errors.mapped_os_errors(f"opening database directory {db_dir}"):
            lock_fd = os.open(db_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            if read_only:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            else:
                conn = sqlite3.connect(path, isolation_level=None)
            raw.set_pragmas(conn, read_only=read_only)
            version = raw.schema_version(conn)
        except sqlite3.Error as e:
            raise map_sqlite_error(e, f"opening database {path}") from e
        if version != SCHEMA_VERSION:
            conn.close()
            raise _wrong_version(path, version)
    except BaseException:
        os.close(lock_fd)
        raise
    return conn, lock_fd


def _wrong_version(path: Path, version: int | None) -> errors.NvrError:
    if version is None:
        return errors.FailedPrecondition(f"{path} is not an nvr database")
    if version < SCHEMA_VERSION:
        return errors.FailedPrecondition(
            f"database schema is version {version}, this nvr needs "
            f"{SCHEMA_VERSION}: run `nvr upgrade` first"
        )
    return errors.FailedPrecondition(
        f"database schema is version {version}, newer than this nvr "
        f"supports ({SCHEMA_VERSION}): run a newer nvr"
    )


def boot_uuid() -> bytes | None:
    """This boot's id (``/proc/sys/kernel/random/boot_id``), noted with each open."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return uuidlib.UUID(f.read().strip()).bytes
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def timed_read(conn: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
    """Reads of ``what``: ``sqlite3`` errors become ``NvrError``s, slow reads are logged."""
    with _mapped_and_timed(what, "database read"):
        yield conn


@contextlib.contextmanager
def transaction(
    conn: sqlite3.Connection, what: str, *, read_only: bool
) -> Iterator[sqlite3.Connection]:
    """One ``begin immediate`` transaction doing ``what``: committed when the block ends,
    rolled back when it raises; ``sqlite3`` errors become ``NvrError``s, slow ones are
    logged. The error that ended the transaction is the one raised (see ``_roll_back``)."""
    if read_only:
        raise errors.FailedPrecondition(f"{what}: the database is open read-only")
    with _mapped_and_timed(what, "database operation"):
        conn.execute("begin immediate")
        try:
            yield conn
            conn.execute("commit")
        except BaseException:
            _roll_back(conn, what)
            raise


def _roll_back(conn: sqlite3.Connection, what: str) -> None:
    """Rolls back what is left of a failed transaction, never replacing the error that
    failed it. After some errors (``SQLITE_FULL``: "database or disk is full",
    ``SQLITE_IOERR``, ``SQLITE_BUSY``, ``SQLITE_NOMEM``) SQLite has already rolled the
    transaction back itself, and a ``rollback`` would fail with "cannot rollback - no
    transaction is active", which hid the disk-full error from the log and ``/api/``."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("rollback")
    except sqlite3.Error as e:
        log.error("%s: rolling back after a failure failed too: %s", what, e)


@contextlib.contextmanager
def _mapped_and_timed(what: str, kind: str) -> Iterator[None]:
    watch = Stopwatch()
    try:
        yield
    except sqlite3.Error as e:
        raise map_sqlite_error(e, what) from e
    finally:
        ms = watch.elapsed_ms()
        if ms > SLOW_MS:
            log.warning("slow %s: %s took %.0f ms", kind, what, ms)
