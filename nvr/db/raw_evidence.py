"""Raw SQL of the evidence tables: protected ranges and redaction tombstones, and the
byte sums over recordings that retention and the forecast ask of them.

Same rules as ``nvr.db.raw``: functions take a ``sqlite3.Connection``, run SQL and return
plain rows or values; they do not commit and keep no state.
"""

from __future__ import annotations

import sqlite3
from typing import Any

# ----------------------------------------------------------------------------- protected ranges

_RANGE_COLUMNS = """id, camera_id, start_time_90k, end_time_90k, reason, expires_time_90k,
    created_time_90k, created_by, removed_time_90k, removed_by"""


def list_protected_ranges(
    conn: sqlite3.Connection, camera_id: int | None, *, removed: bool, limit: int = -1
) -> list[tuple[Any, ...]]:
    """Ranges of one camera (None: every camera), newest first; only those not removed
    unless ``removed``."""
    where = [] if removed else ["removed_time_90k is null"]
    args: list[Any] = []
    if camera_id is not None:
        where.append("camera_id = ?")
        args.append(camera_id)
    sql = f"select {_RANGE_COLUMNS} from protected_range"
    if where:
        sql += " where " + " and ".join(where)
    return conn.execute(sql + " order by id desc limit ?", (*args, limit)).fetchall()


def get_protected_range(
    conn: sqlite3.Connection, camera_id: int, range_id: int
) -> tuple[Any, ...] | None:
    """The camera's range ``range_id`` unless removed."""
    row: tuple[Any, ...] | None = conn.execute(
        f"""select {_RANGE_COLUMNS} from protected_range
            where id = ? and camera_id = ? and removed_time_90k is null""",
        (range_id, camera_id),
    ).fetchone()
    return row


def insert_protected_range(
    conn: sqlite3.Connection, camera_id: int, start: int, end: int, reason: str,
    expires: int | None, created: int, created_by: str,
) -> int:
    cur = conn.execute(
        """insert into protected_range (camera_id, start_time_90k, end_time_90k, reason,
               expires_time_90k, created_time_90k, created_by) values (?, ?, ?, ?, ?, ?, ?)""",
        (camera_id, start, end, reason, expires, created, created_by),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def remove_protected_range(
    conn: sqlite3.Connection, range_id: int, removed: int, removed_by: str
) -> bool:
    cur = conn.execute(
        """update protected_range set removed_time_90k = ?, removed_by = ?
           where id = ? and removed_time_90k is null""",
        (removed, removed_by, range_id),
    )
    return cur.rowcount == 1


def delete_camera_protected_ranges(conn: sqlite3.Connection, camera_id: int) -> None:
    conn.execute("delete from protected_range where camera_id = ?", (camera_id,))


def sum_recording_bytes_overlapping(
    conn: sqlite3.Connection, stream_id: int, start_90k: int, end_90k: int, max_wall_90k: int
) -> list[tuple[int, int]]:
    """(composite_id, sample_file_bytes) of the stream's recordings overlapping
    ``[start, end)``, through the covering index."""
    return conn.execute(
        """select composite_id, sample_file_bytes from recording indexed by recording_cover
           where stream_id = ? and start_time_90k > ? and start_time_90k < ?
             and start_time_90k + wall_duration_90k > ?""",
        (stream_id, start_90k - max_wall_90k, end_90k, start_90k),
    ).fetchall()


def recording_bytes_since(
    conn: sqlite3.Connection, stream_id: int, since_90k: int
) -> tuple[int, int]:
    """(sample_file_bytes, wall_duration_90k) summed over the stream's recordings that
    start at or after ``since_90k``, through the covering index."""
    row = conn.execute(
        """select coalesce(sum(sample_file_bytes), 0), coalesce(sum(wall_duration_90k), 0)
           from recording indexed by recording_cover
           where stream_id = ? and start_time_90k >= ?""",
        (stream_id, since_90k),
    ).fetchone()
    return int(row[0]), int(row[1])


# --- redactions ----------------------------------------------------------------------------


def insert_redaction(conn: sqlite3.Connection, stream_id: int, start: int, end: int,
                     reason: str, user_id: int | None, username: str | None, now: int) -> int:
    cur = conn.execute(
        """insert into redaction (stream_id, start_time_90k, end_time_90k, reason, user_id,
                                  username, creation_time_90k)
           values (?, ?, ?, ?, ?, ?, ?)""",
        (stream_id, start, end, reason, user_id, username, now))
    assert cur.lastrowid is not None
    return cur.lastrowid


def list_pieces(conn: sqlite3.Connection, from_cid: int, to_cid: int) -> list[int]:
    """Composite ids of recordings in ``[from_cid, to_cid)``."""
    return [row[0] for row in conn.execute(
        "select composite_id from recording where composite_id >= ? and composite_id < ?",
        (from_cid, to_cid))]


def composite_id_in_use(conn: sqlite3.Connection, cid: int) -> bool:
    row = conn.execute(
        """select exists (select 1 from recording where composite_id = ?)
                  or exists (select 1 from garbage where composite_id = ?)""",
        (cid, cid)).fetchone()
    return bool(row[0])


def delete_stream_redactions(conn: sqlite3.Connection, stream_id: int) -> None:
    conn.execute("delete from redaction where stream_id = ?", (stream_id,))


def list_redactions(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        """select id, stream_id, start_time_90k, end_time_90k, reason, user_id, username,
                  creation_time_90k
           from redaction order by id""").fetchall()
