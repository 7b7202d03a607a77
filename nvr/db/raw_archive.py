"""Raw SQL of the archive tables (archives, their streams, archived recordings).

Same rules as ``nvr.db.raw``: functions take a ``sqlite3.Connection``, run SQL and return
plain rows or values; they do not commit and keep no state.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from nvr.db import raw
from nvr.db.raw import LIST_COLUMNS, SUMMARY_COLUMN_NAMES, composite_id
from nvr.db.stream_summary import day_deltas, day_rows

#: (stream id, start, wall duration, bytes) of an archive-only recording: what its
#: per-day totals (``archive_only_day``) count
DayRec = tuple[int, int, int, int]


def list_archives(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("select id, uuid, short_name, config from archive order by id").fetchall()


def list_archive_streams(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    return conn.execute("select archive_id, stream_id from archive_stream").fetchall()


def insert_archive(conn: sqlite3.Connection, uuid: bytes, short_name: str, config: str) -> int:
    cur = conn.execute(
        "insert into archive (uuid, short_name, config) values (?, ?, ?)",
        (uuid, short_name, config),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def update_archive(conn: sqlite3.Connection, archive_id: int, config: str) -> None:
    conn.execute("update archive set config = ? where id = ?", (config, archive_id))


def set_archive_streams(conn: sqlite3.Connection, archive_id: int, stream_ids: list[int]) -> None:
    conn.execute("delete from archive_stream where archive_id = ?", (archive_id,))
    conn.executemany(
        "insert into archive_stream (archive_id, stream_id) values (?, ?)",
        [(archive_id, s) for s in stream_ids],
    )


def delete_archive(conn: sqlite3.Connection, archive_id: int) -> list[DayRec]:
    """Deletes the archive's rows; returns the archive-only rows that went with them."""
    conn.execute("delete from archived_recording where archive_id = ?", (archive_id,))
    conn.execute("delete from archive_stream_retention where archive_id = ?", (archive_id,))
    gone = forget_unheld_archive_only(conn)
    conn.execute("delete from archive_stream where archive_id = ?", (archive_id,))
    conn.execute("delete from archive where id = ?", (archive_id,))
    return gone


#: recordings of the archive's streams it does not hold, leaving out those under a
#: redaction (``Redactions.is_hidden``'s overlap test: they are never archived) and those
#: archive retention got to (``archive_stream_retention``: it would delete them again)
_UNARCHIVED = """from recording r
    where r.stream_id in (select stream_id from archive_stream where archive_id = :a)
      and not exists (select 1 from archived_recording x
                      where x.archive_id = :a and x.composite_id = r.composite_id)
      and not exists (select 1 from redaction d
                      where d.stream_id = r.stream_id
                        and d.start_time_90k < max(r.start_time_90k + r.wall_duration_90k,
                                                   r.start_time_90k + 1)
                        and d.end_time_90k > r.start_time_90k)
      and r.composite_id > (r.stream_id << 32) + coalesce(
          (select e.expired_through_id from archive_stream_retention e
           where e.archive_id = :a and e.stream_id = r.stream_id), -1)"""


def list_unarchived(
    conn: sqlite3.Connection, archive_id: int, limit: int, skip: list[int]
) -> list[tuple[Any, ...]]:
    """The oldest committed recordings of the archive's streams that it does not hold yet
    and that are not in ``skip`` (``LIST_COLUMNS`` and the summary's, then
    ``sample_file_sha256``), oldest first."""
    return conn.execute(
        f"""select {", ".join("r." + c.strip() for c in LIST_COLUMNS.split(","))},
                   {", ".join("r." + c for c in SUMMARY_COLUMN_NAMES)},
                   (select sample_file_sha256 from recording_integrity i
                    where i.composite_id = r.composite_id)
            {_UNARCHIVED}
              and r.composite_id not in (select value from json_each(:skip))
            order by r.start_time_90k, r.composite_id limit :n""",
        {"a": archive_id, "n": limit, "skip": json.dumps(skip)},
    ).fetchall()


def list_backlog(conn: sqlite3.Connection, archive_id: int) -> list[tuple[int, int, int]]:
    """(composite id, start time, bytes) of every recording the archive does not hold
    yet, by composite id (``Archives`` keeps them in memory from then on)."""
    return conn.execute(
        f"""select r.composite_id, r.start_time_90k, r.sample_file_bytes {_UNARCHIVED}
            order by r.composite_id""",
        {"a": archive_id},
    ).fetchall()


def insert_archived_recording(
    conn: sqlite3.Connection, archive_id: int, cid: int, start_90k: int, wall_90k: int,
    nbytes: int, sha256: bytes, now_90k: int,
) -> None:
    conn.execute(
        """insert into archived_recording (archive_id, composite_id, start_time_90k,
           wall_duration_90k, sample_file_bytes, sample_file_sha256, archived_time_90k)
           values (?, ?, ?, ?, ?, ?, ?)""",
        (archive_id, cid, start_90k, wall_90k, nbytes, sha256, now_90k),
    )


def list_archived(
    conn: sqlite3.Connection, archive_id: int, stream_id: int
) -> list[tuple[int, int, int, int, bytes]]:
    """(composite_id, start_time_90k, wall_duration_90k, sample_file_bytes, sha256) of the
    stream's recordings in the archive, oldest first."""
    return conn.execute(
        """select composite_id, start_time_90k, wall_duration_90k, sample_file_bytes,
                  sample_file_sha256
           from archived_recording
           where archive_id = ? and composite_id >= ? and composite_id < ?
           order by composite_id""",
        (archive_id, composite_id(stream_id, 0), composite_id(stream_id + 1, 0)),
    ).fetchall()


def archived_overlapping(
    conn: sqlite3.Connection, archive_id: int, stream_id: int, start: int, end: int
) -> list[int]:
    """Composite ids of the stream's recordings in the archive that overlap
    ``[start, end)`` (as ``Redactions.is_hidden`` decides)."""
    return [r[0] for r in conn.execute(
        """select composite_id from archived_recording
           where archive_id = ? and composite_id >= ? and composite_id < ?
             and start_time_90k < ?
             and max(start_time_90k + wall_duration_90k, start_time_90k + 1) > ?
           order by composite_id""",
        (archive_id, composite_id(stream_id, 0), composite_id(stream_id + 1, 0), end, start),
    )]


def archived_ids(conn: sqlite3.Connection, archive_id: int, cids: list[int]) -> set[int]:
    """Which of ``cids`` the archive holds."""
    out: set[int] = set()
    for i in range(0, len(cids), 500):
        chunk = cids[i:i + 500]
        out.update(r[0] for r in conn.execute(
            f"""select composite_id from archived_recording where archive_id = ?
                and composite_id in ({", ".join("?" * len(chunk))})""",
            (archive_id, *chunk)))
    return out


def delete_archived_recording(
    conn: sqlite3.Connection, archive_id: int, cid: int
) -> list[DayRec]:
    """Forgets that the archive holds the recording (and its archive-only row, if no
    other archive holds it, with its per-day totals). Returns the archive-only row it
    removed (for the totals in memory), if any."""
    conn.execute(
        "delete from archived_recording where archive_id = ? and composite_id = ?",
        (archive_id, cid),
    )
    gone = conn.execute(
        """delete from archive_only_recording where composite_id = :c and not exists
           (select 1 from archived_recording where composite_id = :c)
           returning stream_id, start_time_90k, wall_duration_90k, sample_file_bytes""",
        {"c": cid},
    ).fetchall()
    return [tuple(r) for r in gone]


# -- archive-only recordings ------------------------------------------------------------------

_ROW_COLUMNS = f"""composite_id, open_id, stream_id, run_offset, flags, sample_file_bytes,
    start_time_90k, prev_media_duration_90k, prev_runs, wall_duration_90k,
    media_duration_delta_90k, video_samples, video_sync_samples, video_sample_entry_id,
    end_reason, {", ".join(SUMMARY_COLUMN_NAMES)}"""
ROW_COLUMN_NAMES = tuple(c.strip() for c in _ROW_COLUMNS.split(","))


def keep_if_archived(conn: sqlite3.Connection, cid: int) -> bool:
    """Copies a recording's row and index to ``archive_only_recording`` if an archive
    holds it (before its local deletion, in the same transaction); returns whether."""
    cur = conn.execute(
        f"""insert into archive_only_recording ({_ROW_COLUMNS}, video_index)
            select {", ".join("r." + c for c in ROW_COLUMN_NAMES)}, p.video_index
            from recording r join recording_playback p using (composite_id)
            where r.composite_id = :c
              and exists (select 1 from archived_recording where composite_id = :c)""",
        {"c": cid},
    )
    return cur.rowcount == 1


def insert_archive_only(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """One archive-only recording from a dict of ``ROW_COLUMN_NAMES`` and ``video_index``
    (``nvr archive restore``)."""
    names = [*ROW_COLUMN_NAMES, "video_index"]
    conn.execute(
        f"""insert into archive_only_recording ({", ".join(names)})
            values ({", ".join(":" + n for n in names)})""",
        row,
    )


def forget_unheld_archive_only(conn: sqlite3.Connection) -> list[DayRec]:
    """Deletes the archive-only rows no archive holds; returns them (``DayRec``)."""
    return [tuple(r) for r in conn.execute(
        """delete from archive_only_recording where not exists
           (select 1 from archived_recording x
            where x.composite_id = archive_only_recording.composite_id)
           returning stream_id, start_time_90k, wall_duration_90k, sample_file_bytes"""
    ).fetchall()]


def archive_only_summary_rows(
    conn: sqlite3.Connection, stream_id: int
) -> Iterator[tuple[int, int, int]]:
    """(start, wall duration, bytes) of the stream's archive-only recordings: the scan
    that builds ``archive_only_day`` (as ``raw.stream_summary_rows``)."""
    return conn.execute(
        """select start_time_90k, wall_duration_90k, sample_file_bytes
           from archive_only_recording where stream_id = ?""", (stream_id,))


def delete_stream_archive_only(conn: sqlite3.Connection, stream_id: int) -> None:
    conn.execute("delete from archive_only_recording where stream_id = ?", (stream_id,))
    conn.execute("delete from archive_only_day where stream_id = ?", (stream_id,))


def list_archive_only_by_time(
    conn: sqlite3.Connection, stream_id: int, start_90k: int, end_90k: int, max_wall_90k: int
) -> Iterator[tuple[Any, ...]]:
    """As ``raw.list_recordings_by_time``, of archive-only recordings."""
    return conn.execute(
        f"""select {LIST_COLUMNS} from archive_only_recording
            where stream_id = ? and start_time_90k > ? and start_time_90k < ?
              and start_time_90k + wall_duration_90k > ?
            order by start_time_90k""",
        (stream_id, start_90k - max_wall_90k, end_90k, start_90k),
    )


def list_archive_only_by_id(
    conn: sqlite3.Connection, stream_id: int, start_id: int, end_id: int
) -> Iterator[tuple[Any, ...]]:
    """As ``raw.list_recordings_by_id``, of archive-only recordings."""
    return conn.execute(
        f"""select {LIST_COLUMNS}, {", ".join(SUMMARY_COLUMN_NAMES)}
            from archive_only_recording
            where composite_id >= ? and composite_id < ? order by composite_id""",
        (composite_id(stream_id, start_id), composite_id(stream_id, end_id)),
    )


def get_archive_only_index(conn: sqlite3.Connection, cid: int) -> bytes | None:
    row = conn.execute(
        "select video_index from archive_only_recording where composite_id = ?", (cid,)
    ).fetchone()
    return None if row is None else bytes(row[0])


def archives_holding(conn: sqlite3.Connection, cid: int) -> list[int]:
    """Ids of the archives that hold the recording, lowest first."""
    return [r[0] for r in conn.execute(
        "select archive_id from archived_recording where composite_id = ? order by 1", (cid,)
    )]


def insert_restored_stream(conn: sqlite3.Connection, stream_id: int, camera_id: int,
                           type_: str, config: str) -> None:
    """A stream with the id it had in the database that wrote an archive (composite ids
    embed it); not recorded (no directory)."""
    conn.execute(
        "insert into stream (id, camera_id, sample_file_dir_id, type, config) "
        "values (?, ?, null, ?, ?)",
        (stream_id, camera_id, type_, config),
    )


def recording_row_exists(conn: sqlite3.Connection, cid: int) -> bool:
    """Whether the recording is in ``recording`` or ``archive_only_recording``."""
    row = conn.execute(
        """select exists (select 1 from recording where composite_id = :c)
                  or exists (select 1 from archive_only_recording where composite_id = :c)""",
        {"c": cid},
    ).fetchone()
    return bool(row[0])


def hold(conn: sqlite3.Connection, archive_id: int, cid: int, start_90k: int, wall_90k: int,
         nbytes: int, sha256: bytes, now_90k: int) -> None:
    """As ``insert_archived_recording``, keeping a row already there."""
    conn.execute(
        """insert or ignore into archived_recording (archive_id, composite_id, start_time_90k,
           wall_duration_90k, sample_file_bytes, sample_file_sha256, archived_time_90k)
           values (?, ?, ?, ?, ?, ?, ?)""",
        (archive_id, cid, start_90k, wall_90k, nbytes, sha256, now_90k),
    )


def archived_ids_from(
    conn: sqlite3.Connection, archive_id: int, stream_id: int, start_id: int
) -> list[int]:
    """Composite ids of the stream's recordings the archive holds from recording id
    ``start_id`` on (the follower's window: an index range, not the stream's history)."""
    return [r[0] for r in conn.execute(
        """select composite_id from archived_recording
           where archive_id = ? and composite_id >= ? and composite_id < ?
           order by composite_id""",
        (archive_id, composite_id(stream_id, start_id), composite_id(stream_id + 1, 0)),
    )]


def last_archived_id(conn: sqlite3.Connection, archive_id: int, stream_id: int) -> int | None:
    """The highest composite id of the stream's recordings the archive holds."""
    row = conn.execute(
        """select max(composite_id) from archived_recording
           where archive_id = ? and composite_id >= ? and composite_id < ?""",
        (archive_id, composite_id(stream_id, 0), composite_id(stream_id + 1, 0)),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


# -- what archive retention deleted (archive_stream_retention) -------------------------------


def expire_archived(conn: sqlite3.Connection, archive_id: int, cid: int, camera_uuid: bytes,
                    stream_type: str) -> list[DayRec]:
    """Archive retention deleted the recording's objects: forgets that the archive holds
    it (``delete_archived_recording``, whose result it returns) and raises the stream's
    ``expired_through_id``."""
    gone = delete_archived_recording(conn, archive_id, cid)
    conn.execute(
        """insert into archive_stream_retention (archive_id, stream_id, camera_uuid,
                                                 stream_type, expired_through_id)
           values (?, ?, ?, ?, ?)
           on conflict (archive_id, stream_id) do update
           set expired_through_id = max(expired_through_id, excluded.expired_through_id)""",
        (archive_id, cid >> 32, camera_uuid, stream_type, cid & 0xFFFFFFFF),
    )
    return gone


def remember_stream_keys(conn: sqlite3.Connection, stream_id: int, camera_uuid: bytes,
                         stream_type: str) -> None:
    """Before a stream is deleted: the keys of its recordings, for every archive holding
    any, so that archive retention still finds their objects."""
    conn.execute(
        """insert or ignore into archive_stream_retention (archive_id, stream_id,
                                                           camera_uuid, stream_type)
           select distinct archive_id, ?, ?, ? from archived_recording
           where composite_id >= ? and composite_id < ?""",
        (stream_id, camera_uuid, stream_type, composite_id(stream_id, 0),
         composite_id(stream_id + 1, 0)),
    )


def retention_keys(conn: sqlite3.Connection, archive_id: int) -> list[tuple[int, bytes, str]]:
    """(stream id, camera uuid, stream type) of the archive's ``archive_stream_retention``
    rows."""
    return conn.execute(
        """select stream_id, camera_uuid, stream_type from archive_stream_retention
           where archive_id = ?""", (archive_id,)).fetchall()


def held_streams(conn: sqlite3.Connection, archive_id: int) -> list[int]:
    """The streams the archive holds recordings of (one index seek per stream)."""
    out: list[int] = []
    lo = 0
    while True:
        row = conn.execute(
            """select min(composite_id) from archived_recording
               where archive_id = ? and composite_id >= ?""", (archive_id, lo)).fetchone()
        if row is None or row[0] is None:
            return out
        sid = int(row[0]) >> 32
        out.append(sid)
        lo = composite_id(sid + 1, 0)


def change_archive_only_days(conn: sqlite3.Connection, recs: list[DayRec], tz: dt.tzinfo,
                             sign: int) -> None:
    """Adds (``sign`` 1) or subtracts (-1) archive-only recordings' per-day totals
    (``archive_only_day``), split in ``tz``."""
    by_stream: dict[int, list[tuple[int, int, int]]] = {}
    for sid, start, wall, nbytes in recs:
        by_stream.setdefault(sid, []).append((start, wall, nbytes))
    for sid, rs in sorted(by_stream.items()):
        rows = day_rows(day_deltas(rs, tz))
        if sign > 0:
            raw.add_recording_days(conn, sid, rows, table="archive_only_day")
        else:
            raw.subtract_recording_days(conn, sid, rows, table="archive_only_day")
