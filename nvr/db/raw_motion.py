"""Raw SQL of the per-recording motion summaries (``recording_motion``).

Same rules as ``nvr.db.raw``: functions take a ``sqlite3.Connection``, run SQL and return
plain rows or values; they do not commit and keep no state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MotionRow:
    """One ``recording_motion`` row (see schema.sql and ``nvr.motion.summary``)."""

    cells: bytes
    entries: bytes
    global_seconds: bytes
    motion_seconds: int
    frames: int
    skipped: int


def cells_ints(bitmap: bytes) -> tuple[int, int, int, int]:
    """A 32-byte cell bitmap as the four signed 64-bit integers of
    ``recording_motion.cells_0`` .. ``cells_3`` (bit ``c % 64`` of ``cells_{c // 64}``)."""
    if len(bitmap) != 32:
        raise ValueError(f"a cell bitmap has 32 bytes, not {len(bitmap)}")
    a, b, c, d = (int.from_bytes(bitmap[i : i + 8], "little", signed=True) for i in (0, 8, 16, 24))
    return a, b, c, d


def insert_motion(conn: sqlite3.Connection, cid: int, m: MotionRow) -> None:
    conn.execute(
        """insert or replace into recording_motion (composite_id, cells, entries,
           global_seconds, motion_seconds, frames, skipped, cells_0, cells_1, cells_2, cells_3)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (cid, m.cells, m.entries, m.global_seconds, m.motion_seconds, m.frames, m.skipped,
         *cells_ints(m.cells)),
    )


def recording_start(conn: sqlite3.Connection, cid: int) -> int | None:
    row = conn.execute(
        "select start_time_90k from recording where composite_id = ?", (cid,)
    ).fetchone()
    return int(row[0]) if row else None


def motion_seconds_of(conn: sqlite3.Connection, cid: int) -> tuple[int, int] | None:
    """(start_time_90k, motion_seconds) of a committed recording with a motion row."""
    row = conn.execute(
        """select r.start_time_90k, m.motion_seconds from recording_motion m
           join recording r using (composite_id) where m.composite_id = ?""",
        (cid,),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else None


def motion_totals_rows(conn: sqlite3.Connection) -> Iterator[tuple[int, int, int]]:
    """(stream_id, start_time_90k, motion_seconds) of every recording that moved."""
    yield from conn.execute(
        """select r.stream_id, r.start_time_90k, m.motion_seconds from recording_motion m
           join recording r using (composite_id) where m.motion_seconds > 0"""
    )


def motion_search_rows(
    conn: sqlite3.Connection, stream_id: int, region: bytes, lo: int, hi: int, after: int
) -> list[tuple[int, int, int, bytes, bytes]]:
    """(composite_id, start_time_90k, wall_duration_90k, cells, entries) of the stream's
    recordings that start in ``[lo, hi)``, end after ``after`` and moved in a cell of
    ``region`` (a cell bitmap), by start time. The region is tested on the stored union
    (``cells_0..3``) inside SQLite: the entries of other recordings are never read."""
    return conn.execute(
        """select r.composite_id, r.start_time_90k, r.wall_duration_90k, m.cells, m.entries
           from recording r join recording_motion m using (composite_id)
           where r.stream_id = ? and r.start_time_90k >= ? and r.start_time_90k < ?
             and r.start_time_90k + r.wall_duration_90k > ?
             and (m.cells_0 & ? or m.cells_1 & ? or m.cells_2 & ? or m.cells_3 & ?)
           order by r.start_time_90k""",
        (stream_id, lo, hi, after, *cells_ints(region)),
    ).fetchall()


def motion_debug_rows(
    conn: sqlite3.Connection, stream_id: int, start: int, end: int, max_wall: int, limit: int
) -> list[tuple[int, int, int, int, int, int, bytes, bytes]]:
    """(composite_id, start_time_90k, wall_duration_90k, frames, skipped, motion_seconds,
    entries, global_seconds) of the stream's analysed recordings overlapping
    ``[start, end)``, by start time, at most ``limit``."""
    return conn.execute(
        """select r.composite_id, r.start_time_90k, r.wall_duration_90k, m.frames, m.skipped,
                  m.motion_seconds, m.entries, m.global_seconds
           from recording r join recording_motion m using (composite_id)
           where r.stream_id = ? and r.start_time_90k > ? and r.start_time_90k < ?
             and r.start_time_90k + r.wall_duration_90k > ?
           order by r.start_time_90k limit ?""",
        (stream_id, start - max_wall, end, start, limit),
    ).fetchall()


# --- per-hour totals (motion_hour) and the zone of the event totals ---------------------


def event_total_zone(conn: sqlite3.Connection) -> str | None:
    """The zone ``motion_hour`` and ``signal_day`` are split in (None: to be built)."""
    row = conn.execute("select zone from event_total_zone").fetchone()
    return None if row is None else str(row[0])


def set_event_total_zone(conn: sqlite3.Connection, zone: str | None) -> None:
    conn.execute("delete from event_total_zone")
    if zone is not None:
        conn.execute("insert into event_total_zone (zone) values (?)", (zone,))


def list_stream_motion_hours(
    conn: sqlite3.Connection, stream_id: int
) -> list[tuple[str, int, int]]:
    """(day, hour, seconds) of the stream's ``motion_hour`` rows."""
    return conn.execute(
        "select day, hour, seconds from motion_hour where stream_id = ?", (stream_id,)
    ).fetchall()


def list_motion_hours(conn: sqlite3.Connection) -> list[tuple[int, str, int, int]]:
    """(stream_id, day, hour, seconds) of every ``motion_hour`` row."""
    return conn.execute("select stream_id, day, hour, seconds from motion_hour").fetchall()


def add_motion_hours(
    conn: sqlite3.Connection, rows: Iterable[tuple[int, str, int, int]]
) -> None:
    """Adds (stream_id, day, hour, seconds) to the stored totals (seconds may be
    negative); a total left at 0 or below goes."""
    rows = [r for r in rows if r[3]]
    conn.executemany(
        """insert into motion_hour (stream_id, day, hour, seconds) values (?, ?, ?, ?)
           on conflict do update set seconds = seconds + excluded.seconds""",
        rows,
    )
    conn.executemany(
        "delete from motion_hour where stream_id = ? and day = ? and hour = ? and seconds <= 0",
        [r[:3] for r in rows],
    )


def replace_motion_hours(
    conn: sqlite3.Connection, rows: Iterable[tuple[int, str, int, int]]
) -> None:
    conn.execute("delete from motion_hour")
    conn.executemany("insert into motion_hour values (?, ?, ?, ?)", rows)
