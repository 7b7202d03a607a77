"""Raw SQL of the signal tables (signal types, signals, their cameras and state changes).

Same rules as ``nvr.db.raw``: functions take a ``sqlite3.Connection``, run SQL and return
plain rows or values; they do not commit and keep no state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any


def list_signal_types(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("select id, uuid, short_name from signal_type order by id").fetchall()


def list_signal_type_states(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select type_id, value, name, motion, color from signal_type_state "
        "order by type_id, value"
    ).fetchall()


def insert_signal_type(conn: sqlite3.Connection, uuid: bytes, short_name: str) -> int:
    cur = conn.execute(
        "insert into signal_type (uuid, short_name) values (?, ?)", (uuid, short_name)
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def insert_signal_type_state(
    conn: sqlite3.Connection, type_id: int, value: int, name: str, motion: bool,
    color: str | None,
) -> None:
    conn.execute(
        "insert into signal_type_state (type_id, value, name, motion, color) "
        "values (?, ?, ?, ?, ?)",
        (type_id, value, name, int(motion), color),
    )


def delete_signal_type(conn: sqlite3.Connection, type_id: int) -> None:
    conn.execute("delete from signal_type_state where type_id = ?", (type_id,))
    conn.execute("delete from signal_type where id = ?", (type_id,))


def list_signals(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("select id, uuid, type_id, short_name from signal order by id").fetchall()


def list_signal_cameras(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select signal_id, camera_id, relation from signal_camera order by signal_id, camera_id"
    ).fetchall()


def insert_signal(conn: sqlite3.Connection, uuid: bytes, type_id: int, short_name: str) -> int:
    cur = conn.execute(
        "insert into signal (uuid, type_id, short_name) values (?, ?, ?)",
        (uuid, type_id, short_name),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def insert_signal_camera(
    conn: sqlite3.Connection, signal_id: int, camera_id: int, relation: str
) -> None:
    conn.execute(
        "insert into signal_camera (signal_id, camera_id, relation) values (?, ?, ?)",
        (signal_id, camera_id, relation),
    )


def delete_camera_signal_links(conn: sqlite3.Connection, camera_id: int) -> None:
    conn.execute("delete from signal_camera where camera_id = ?", (camera_id,))


def delete_signal(conn: sqlite3.Connection, signal_id: int) -> None:
    conn.execute("delete from signal_change where signal_id = ?", (signal_id,))
    conn.execute("delete from signal_day where signal_id = ?", (signal_id,))
    conn.execute("delete from signal_camera where signal_id = ?", (signal_id,))
    conn.execute("delete from signal where id = ?", (signal_id,))


def iter_all_signal_changes(conn: sqlite3.Connection) -> Iterator[tuple[int, int, int]]:
    """(signal id, time, state) of every change, by signal then time."""
    yield from conn.execute(
        "select signal_id, time_90k, state from signal_change order by signal_id, time_90k"
    )


def signal_change_before(
    conn: sqlite3.Connection, signal_id: int, t: int
) -> tuple[int, int] | None:
    """(time, state) of the signal's last change before ``t``."""
    row = conn.execute(
        "select time_90k, state from signal_change where signal_id = ? and time_90k < ? "
        "order by time_90k desc limit 1",
        (signal_id, t),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def signal_change_after(
    conn: sqlite3.Connection, signal_id: int, t: int
) -> tuple[int, int] | None:
    """(time, state) of the signal's first change after ``t``."""
    row = conn.execute(
        "select time_90k, state from signal_change where signal_id = ? and time_90k > ? "
        "order by time_90k limit 1",
        (signal_id, t),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def nth_signal_change(conn: sqlite3.Connection, signal_id: int, n: int) -> tuple[int, int] | None:
    """(time, state) of the signal's ``n``-th change (from 0), oldest first."""
    row = conn.execute(
        "select time_90k, state from signal_change where signal_id = ? "
        "order by time_90k limit 1 offset ?",
        (signal_id, n),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def signal_changes_between(
    conn: sqlite3.Connection, signal_id: int, lo: int, hi: int
) -> list[tuple[int, int]]:
    """(time, state) of the signal's changes in ``[lo, hi]``, oldest first."""
    return [
        (t, s)
        for t, s in conn.execute(
            "select time_90k, state from signal_change "
            "where signal_id = ? and time_90k between ? and ? order by time_90k",
            (signal_id, lo, hi),
        )
    ]


def delete_signal_changes(conn: sqlite3.Connection, signal_id: int, lo: int, hi: int) -> None:
    """Deletes the signal's changes in ``[lo, hi]``."""
    conn.execute(
        "delete from signal_change where signal_id = ? and time_90k between ? and ?",
        (signal_id, lo, hi),
    )


def insert_signal_change(conn: sqlite3.Connection, signal_id: int, t: int, state: int) -> None:
    conn.execute(
        "insert into signal_change (signal_id, time_90k, state) values (?, ?, ?)",
        (signal_id, t, state),
    )


def list_signal_changes_by_time(
    conn: sqlite3.Connection, start: int, end: int, limit: int
) -> list[tuple[int, int, int]]:
    """(time, signal id, state) of every signal's changes in ``[start, end)``, by time
    then signal, at most ``limit`` (through ``signal_change_time``)."""
    return [
        (t, sid, s)
        for t, sid, s in conn.execute(
            "select time_90k, signal_id, state from signal_change "
            "where time_90k >= ? and time_90k < ? order by time_90k, signal_id limit ?",
            (start, end, limit),
        )
    ]


# --- per-day totals (signal_day) ---------------------------------------------------------


def list_signal_days(conn: sqlite3.Connection) -> list[tuple[int, str, int, int]]:
    """(signal_id, day, state, duration_90k) of every ``signal_day`` row."""
    return conn.execute("select signal_id, day, state, duration_90k from signal_day").fetchall()


def add_signal_days(conn: sqlite3.Connection, rows: Iterable[tuple[int, str, int, int]]) -> None:
    """Adds (signal_id, day, state, duration_90k) to the stored totals (durations may be
    negative); a total left at 0 or below goes."""
    rows = [r for r in rows if r[3]]
    conn.executemany(
        """insert into signal_day (signal_id, day, state, duration_90k) values (?, ?, ?, ?)
           on conflict do update set duration_90k = duration_90k + excluded.duration_90k""",
        rows,
    )
    conn.executemany(
        "delete from signal_day where signal_id = ? and day = ? and state = ? "
        "and duration_90k <= 0",
        [r[:3] for r in rows],
    )


def replace_signal_days(
    conn: sqlite3.Connection, rows: Iterable[tuple[int, str, int, int]]
) -> None:
    conn.execute("delete from signal_day")
    conn.executemany("insert into signal_day values (?, ?, ?, ?)", rows)


def first_and_last_change(
    conn: sqlite3.Connection, signal_id: int
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(time, state) of the signal's first and last change (two index seeks), or None."""
    first = signal_change_after(conn, signal_id, -1)
    last = signal_change_before(conn, signal_id, (1 << 63) - 1)
    if first is None or last is None:
        return None
    return first, last
