"""``Database``: the synchronous API over SQLite plus the in-memory state around it.

One class, assembled from mixins that each hold one part of the API in their own module:
``catalog`` (directories, cameras, streams, sample entries), ``lifecycle`` (pending
recordings, ``flush``, retention planning, garbage), ``motion`` (motion summaries),
``reads`` (listings, indexes, summaries, what ``nvr check`` reads), ``signals`` (signal
types, signals, their states) and ``archives`` (archives, their streams, what they
hold), all over ``core.DatabaseCore`` (the shared state, transactions and lookups).
Mixins rather than composition: every part reads and changes
the same in-memory state (a flush updates the streams the catalog loaded), so separate
objects would pass that state around or delegate dozens of methods one by one; a mixin
per module keeps each job in one file and ``Database`` one class with one API, and mypy
checks each mixin against ``DatabaseCore``. This module adds creating and opening
(through ``connection``) and recording this open in the ``open`` table.

Everything runs in the trio thread (docs/design.md, "Time"): calls are short; any call
over 100 ms is logged. SQLite errors are mapped to ``NvrError`` kinds.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path

from nvr.base.time90k import UNITS_PER_SEC, Duration, Time
from nvr.db import connection, raw, signing
from nvr.db.archives import Archives
from nvr.db.catalog import Catalog
from nvr.db.lifecycle import Lifecycle
from nvr.db.reads import Reads
from nvr.db.signals import Signals


class Database(Catalog, Lifecycle, Reads, Signals, Archives):
    """An open nvr database. Create with ``Database.create``, open with ``Database.open``."""

    @staticmethod
    def create(db_dir: Path | str, now: Time) -> uuidlib.UUID:
        """Creates a new, empty database in ``db_dir`` (made if missing).

        Refuses (``AlreadyExists``) when a database is already there, touching nothing.
        """
        new_uuid = uuidlib.uuid4()
        connection.create(Path(db_dir), new_uuid.bytes, now // UNITS_PER_SEC)
        signing.ensure_key(Path(db_dir))
        return new_uuid

    @classmethod
    def open(
        cls,
        db_dir: Path | str,
        *,
        read_only: bool = False,
        tz: dt.tzinfo,
        now: Callable[[], Time],
        monotonic: Callable[[], Duration] | None = None,
        lock: bool = True,
    ) -> Database:
        """Opens the database in ``db_dir``: locks the directory (exclusive, or shared for
        ``read_only``; never waits), checks the schema version, loads the in-memory state
        and, unless ``read_only``, records this open in the ``open`` table. ``lock=False``
        with ``read_only``: see ``connection.connect`` (what a running daemon committed)."""
        db_dir = Path(db_dir)
        conn, lock_fd = connection.connect(db_dir, read_only=read_only, lock=lock)
        try:
            db = cls(
                conn, lock_fd, db_dir=db_dir, read_only=read_only, tz=tz, now=now,
                monotonic=monotonic,
            )
        except BaseException:
            conn.close()
            os.close(lock_fd)
            raise
        try:
            db._load()
            db._load_motion()
            db._load_signals()
            db._load_archives()
            if not read_only:
                signing.ensure_key(db_dir)  # databases made before exports had no key
                db._record_open()
        except sqlite3.Error as e:
            db.close()
            raise connection.map_sqlite_error(
                e, f"loading database {db_dir / connection.DB_FILE}"
            ) from e
        except BaseException:
            db.close()
            raise
        return db

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record_open(self) -> None:
        u = uuidlib.uuid4()
        with self._transaction("recording this open") as conn:
            open_id = raw.insert_open(conn, u.bytes, self._now(), connection.boot_uuid())
        self.open_id, self.open_uuid = open_id, u
