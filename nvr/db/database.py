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
import logging
import os
import sqlite3
import uuid as uuidlib
import zoneinfo
from collections.abc import Callable
from pathlib import Path

from nvr.base.time90k import UNITS_PER_SEC, Duration, Time, to_datetime
from nvr.db import connection, raw, raw_motion, raw_signals, signing
from nvr.db.archives import Archives
from nvr.db.catalog import Catalog
from nvr.db.lifecycle import Lifecycle
from nvr.db.reads import Reads
from nvr.db.signals import Signals, signal_day_totals
from nvr.db.stream_summary import zone_key

log = logging.getLogger(__name__)


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
            db._load_event_totals()
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

    def _load_event_totals(self) -> None:
        """The per-hour motion and per-day signal totals: read from ``motion_hour`` and
        ``signal_day`` when they are split in this open's zone; else (after an upgrade,
        a repair, an open in another zone) built by one scan of the motion summaries and
        the signal changes, logged, and (read-write) stored for the next opens."""
        zone = zone_key(self.tz)
        stored = raw_motion.event_total_zone(self._conn) == zone
        summaries = self._load_motion(stored)
        changes = self._load_signals(stored)
        if stored:
            return
        log.info("built the motion and signal totals from %d motion summaries and %d signal "
                 "changes (time zone %s)", summaries, changes, zone)
        if not self.read_only:
            with self._transaction("storing motion and signal totals") as conn:
                raw_motion.replace_motion_hours(conn, self._motion_hour_rows())
                raw_signals.replace_signal_days(conn, self._signal_day_rows())
                raw_motion.set_event_total_zone(conn, zone)

    def event_total_problems(self) -> list[str]:
        """What ``nvr check`` reports of the stored motion and signal totals: each stream
        and signal whose ``motion_hour`` / ``signal_day`` rows differ from a recomputation
        (one scan of the summaries and changes, in the zone the rows are split in), with
        how many rows differ and the first. Nothing while the rows are to be built (no
        zone) or split in a zone this system does not know."""
        with self._read("checking motion and signal totals") as conn:
            conn.execute("begin")  # one snapshot: a live daemon may write meanwhile
            try:
                zone = raw_motion.event_total_zone(conn)
                tz = _zone(zone, self.tz)
                if tz is None:
                    return []
                stored_m = {(sid, day, hour): n for sid, day, hour, n
                            in raw_motion.list_motion_hours(conn)}
                stored_s = {(sid, day, state): d for sid, day, state, d
                            in raw_signals.list_signal_days(conn)}
                computed_m: dict[tuple[int, str, int], int] = {}
                for sid, start, seconds in raw_motion.motion_totals_rows(conn):
                    local = to_datetime(start, tz)
                    key = (sid, local.date().isoformat(), local.hour)
                    computed_m[key] = computed_m.get(key, 0) + seconds
                computed_s = signal_day_totals(raw_signals.iter_all_signal_changes(conn), tz)
            finally:
                conn.execute("commit")
        return [*_differences("motion totals of stream", "hour", stored_m, computed_m),
                *_differences("day totals of signal", "state", stored_s, computed_s)]

    def _record_open(self) -> None:
        u = uuidlib.uuid4()
        with self._transaction("recording this open") as conn:
            open_id = raw.insert_open(conn, u.bytes, self._now(), connection.boot_uuid())
        self.open_id, self.open_uuid = open_id, u


def _zone(key: str | None, tz: dt.tzinfo) -> dt.tzinfo | None:
    """The zone named ``key`` (``tz`` if that is its name); None if unknown."""
    if key is None or key == zone_key(tz):
        return None if key is None else tz
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _differences(
    what: str, sub: str, stored: dict[tuple[int, str, int], int],
    computed: dict[tuple[int, str, int], int],
) -> list[str]:
    """One line per owner (the key's first part) whose rows differ."""
    found: dict[int, list[tuple[str, int, int, int]]] = {}
    for key in sorted(stored.keys() | computed.keys()):
        a, b = stored.get(key, 0), computed.get(key, 0)
        if a != b:
            found.setdefault(key[0], []).append((key[1], key[2], a, b))
    return [
        f"{what} {owner}: {len(rows)} row(s) differ from a recomputation, the first on "
        f"{rows[0][0]} {sub} {rows[0][1]} (stored {rows[0][2]}, recomputed {rows[0][3]})"
        for owner, rows in found.items()
    ]
