"""Raw SQL: every statement nvr runs against its database, and nothing else.

Functions here take a ``sqlite3.Connection`` (or cursor), run SQL and return plain rows or
values. They do not commit, keep no state and raise ``sqlite3`` errors unchanged;
``connection.py`` owns transactions and error mapping, ``Database`` the in-memory state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from nvr.db.frames_summary import FramesSummary

SCHEMA_VERSION = 7

ID_BITS = 32


def schema_sql() -> str:
    return resources.files("nvr.db").joinpath("schema.sql").read_text()


def composite_id(stream_id: int, recording_id: int) -> int:
    return stream_id << ID_BITS | recording_id


def split_composite_id(cid: int) -> tuple[int, int]:
    return cid >> ID_BITS, cid & ((1 << ID_BITS) - 1)


#: The index summary's columns of ``recording``, in ``FramesSummary``'s field order.
SUMMARY_COLUMN_NAMES = ("duration_runs", "first_duration_90k", "first_duration_frames",
                        "last_duration_90k", "index_digest")
_SUMMARY_COLUMNS = ", ".join(SUMMARY_COLUMN_NAMES)


def summary_values(s: FramesSummary) -> tuple[int, int, int, int, bytes]:
    return s.runs, s.first_dur, s.first_run_len, s.last_dur, s.digest


def summary_from_columns(values: tuple[Any, ...]) -> FramesSummary | None:
    """The summary stored in ``_SUMMARY_COLUMNS`` (None when they are NULL)."""
    runs, first_dur, first_run_len, last_dur, digest = values
    if digest is None:
        return None
    return FramesSummary(runs, first_dur, first_run_len, last_dur, bytes(digest))


def set_pragmas(conn: sqlite3.Connection, *, read_only: bool) -> None:
    conn.execute("pragma foreign_keys = on")
    conn.execute("pragma synchronous = full")
    conn.execute("pragma busy_timeout = 0")
    if not read_only:
        conn.execute("pragma journal_mode = wal")


def create_schema(conn: sqlite3.Connection, uuid: bytes, unix_time: int) -> None:
    """Creates every table in one transaction, left open for the caller to commit."""
    conn.executescript("begin;\n" + schema_sql())
    conn.execute("insert into meta (uuid) values (?)", (uuid,))
    conn.execute(
        "insert into version (id, unix_time, notes) values (?, ?, 'created')",
        (SCHEMA_VERSION, unix_time),
    )


def insert_version(conn: sqlite3.Connection, version: int, unix_time: int, notes: str) -> None:
    conn.execute(
        "insert into version (id, unix_time, notes) values (?, ?, ?)", (version, unix_time, notes)
    )


def schema_version(conn: sqlite3.Connection) -> int | None:
    """The current schema version, or None when there is no ``version`` table."""
    has = conn.execute(
        "select 1 from sqlite_master where type = 'table' and name = 'version'"
    ).fetchone()
    if has is None:
        return None
    row = conn.execute("select max(id) from version").fetchone()
    return None if row is None else row[0]


def get_meta_uuid(conn: sqlite3.Connection) -> bytes:
    row = conn.execute("select uuid from meta").fetchone()
    return bytes(row[0])


def insert_open(
    conn: sqlite3.Connection, uuid: bytes, start_time_90k: int, boot_uuid: bytes | None
) -> int:
    cur = conn.execute(
        "insert into open (uuid, start_time_90k, boot_uuid) values (?, ?, ?)",
        (uuid, start_time_90k, boot_uuid),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def update_open(
    conn: sqlite3.Connection, open_id: int, end_time_90k: int, duration_90k: int
) -> None:
    conn.execute(
        "update open set end_time_90k = ?, duration_90k = ? where id = ?",
        (end_time_90k, duration_90k, open_id),
    )


def get_open_uuid(conn: sqlite3.Connection, open_id: int) -> bytes | None:
    row = conn.execute("select uuid from open where id = ?", (open_id,)).fetchone()
    return None if row is None else bytes(row[0])


def list_dirs(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "select id, path, uuid, last_complete_open_id from sample_file_dir order by id"
    ).fetchall()


def insert_dir(conn: sqlite3.Connection, path: str, uuid: bytes) -> int:
    cur = conn.execute("insert into sample_file_dir (path, uuid) values (?, ?)", (path, uuid))
    assert cur.lastrowid is not None
    return cur.lastrowid


def delete_dir(conn: sqlite3.Connection, dir_id: int) -> None:
    conn.execute("delete from sample_file_dir where id = ?", (dir_id,))


def set_dir_last_complete_open(conn: sqlite3.Connection, dir_id: int, open_id: int) -> None:
    conn.execute(
        "update sample_file_dir set last_complete_open_id = ? where id = ?", (open_id, dir_id)
    )


def list_cameras(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "select id, uuid, short_name, description, config from camera order by id"
    ).fetchall()


def insert_camera(
    conn: sqlite3.Connection, uuid: bytes, short_name: str, description: str, config: str
) -> int:
    cur = conn.execute(
        "insert into camera (uuid, short_name, description, config) values (?, ?, ?, ?)",
        (uuid, short_name, description, config),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def update_camera(
    conn: sqlite3.Connection, camera_id: int, short_name: str, description: str, config: str
) -> None:
    conn.execute(
        "update camera set short_name = ?, description = ?, config = ? where id = ?",
        (short_name, description, config, camera_id),
    )


def delete_camera(conn: sqlite3.Connection, camera_id: int) -> None:
    conn.execute("delete from camera where id = ?", (camera_id,))


def list_streams(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        """select id, camera_id, sample_file_dir_id, type, config, cum_recordings,
                  cum_media_duration_90k, cum_runs
           from stream order by id"""
    ).fetchall()


def insert_stream(
    conn: sqlite3.Connection, camera_id: int, dir_id: int | None, type_: str, config: str
) -> int:
    cur = conn.execute(
        "insert into stream (camera_id, sample_file_dir_id, type, config) values (?, ?, ?, ?)",
        (camera_id, dir_id, type_, config),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def update_stream(
    conn: sqlite3.Connection, stream_id: int, dir_id: int | None, config: str
) -> None:
    conn.execute(
        "update stream set sample_file_dir_id = ?, config = ? where id = ?",
        (dir_id, config, stream_id),
    )


def delete_stream(conn: sqlite3.Connection, stream_id: int) -> None:
    conn.execute("delete from archive_stream where stream_id = ?", (stream_id,))
    conn.execute("delete from stream where id = ?", (stream_id,))


def update_stream_counters(
    conn: sqlite3.Connection,
    stream_id: int,
    cum_recordings: int,
    cum_media_duration_90k: int,
    cum_runs: int,
) -> None:
    cur = conn.execute(
        """update stream set cum_recordings = ?, cum_media_duration_90k = ?, cum_runs = ?
           where id = ?""",
        (cum_recordings, cum_media_duration_90k, cum_runs, stream_id),
    )
    if cur.rowcount != 1:
        raise sqlite3.IntegrityError(f"stream {stream_id} vanished")


def list_video_sample_entries(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        """select id, width, height, rfc6381_codec, data, pasp_h_spacing, pasp_v_spacing
           from video_sample_entry order by id"""
    ).fetchall()


def insert_video_sample_entry(
    conn: sqlite3.Connection,
    width: int,
    height: int,
    rfc6381_codec: str,
    data: bytes,
    pasp_h_spacing: int,
    pasp_v_spacing: int,
) -> int:
    cur = conn.execute(
        """insert into video_sample_entry
             (width, height, rfc6381_codec, data, pasp_h_spacing, pasp_v_spacing)
           values (?, ?, ?, ?, ?, ?)""",
        (width, height, rfc6381_codec, data, pasp_h_spacing, pasp_v_spacing),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


@dataclass(frozen=True, slots=True)
class RecordingRow:
    """Everything the ``recording`` family of tables holds about one recording."""

    composite_id: int
    open_id: int
    run_offset: int
    flags: int
    sample_file_bytes: int
    start_time_90k: int
    prev_media_duration_90k: int
    prev_runs: int
    wall_duration_90k: int
    media_duration_delta_90k: int
    video_samples: int
    video_sync_samples: int
    video_sample_entry_id: int
    end_reason: str | None
    local_time_delta_90k: int | None
    local_time_since_open_90k: int | None
    wall_time_delta_90k: int | None
    sample_file_sha256: bytes | None
    video_index: bytes
    summary: FramesSummary  # of the whole video_index


def insert_recording(conn: sqlite3.Connection, r: RecordingRow) -> None:
    stream_id = r.composite_id >> ID_BITS
    conn.execute(
        f"""insert into recording
             (composite_id, open_id, stream_id, run_offset, flags, sample_file_bytes,
              start_time_90k, prev_media_duration_90k, prev_runs, wall_duration_90k,
              media_duration_delta_90k, video_samples, video_sync_samples,
              video_sample_entry_id, end_reason, {_SUMMARY_COLUMNS})
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            r.composite_id, r.open_id, stream_id, r.run_offset, r.flags, r.sample_file_bytes,
            r.start_time_90k, r.prev_media_duration_90k, r.prev_runs, r.wall_duration_90k,
            r.media_duration_delta_90k, r.video_samples, r.video_sync_samples,
            r.video_sample_entry_id, r.end_reason, *summary_values(r.summary),
        ),
    )
    conn.execute(
        """insert into recording_integrity
             (composite_id, local_time_delta_90k, local_time_since_open_90k,
              wall_time_delta_90k, sample_file_sha256)
           values (?, ?, ?, ?, ?)""",
        (
            r.composite_id, r.local_time_delta_90k, r.local_time_since_open_90k,
            r.wall_time_delta_90k, r.sample_file_sha256,
        ),
    )
    conn.execute(
        "insert into recording_playback (composite_id, video_index) values (?, ?)",
        (r.composite_id, r.video_index),
    )


def move_recording_to_garbage(conn: sqlite3.Connection, dir_id: int, cid: int) -> None:
    """Deletes one recording's rows and records its file as garbage of ``dir_id``."""
    conn.execute("delete from recording_motion where composite_id = ?", (cid,))
    conn.execute("delete from recording_playback where composite_id = ?", (cid,))
    conn.execute("delete from recording_integrity where composite_id = ?", (cid,))
    cur = conn.execute("delete from recording where composite_id = ?", (cid,))
    if cur.rowcount != 1:
        raise sqlite3.IntegrityError(f"recording {cid:016x} to delete is not in the database")
    conn.execute(
        "insert into garbage (sample_file_dir_id, composite_id) values (?, ?)", (dir_id, cid)
    )


def delete_recording(conn: sqlite3.Connection, cid: int) -> None:
    """Deletes one recording's rows without a garbage row (its file is already gone)."""
    conn.execute("delete from recording_motion where composite_id = ?", (cid,))
    conn.execute("delete from recording_playback where composite_id = ?", (cid,))
    conn.execute("delete from recording_integrity where composite_id = ?", (cid,))
    cur = conn.execute("delete from recording where composite_id = ?", (cid,))
    if cur.rowcount != 1:
        raise sqlite3.IntegrityError(f"recording {cid:016x} to delete is not in the database")


def recording_exists(conn: sqlite3.Connection, composite_id: int) -> bool:
    return conn.execute(
        "select 1 from recording where composite_id = ?", (composite_id,)
    ).fetchone() is not None


def count_recordings(conn: sqlite3.Connection) -> int:
    return int(conn.execute("select count(*) from recording").fetchone()[0])


def list_garbage(conn: sqlite3.Connection, dir_id: int) -> list[int]:
    return [
        row[0]
        for row in conn.execute(
            "select composite_id from garbage where sample_file_dir_id = ? order by composite_id",
            (dir_id,),
        )
    ]


def delete_garbage(conn: sqlite3.Connection, dir_id: int, cid: int) -> None:
    conn.execute(
        "delete from garbage where sample_file_dir_id = ? and composite_id = ?", (dir_id, cid)
    )


# Columns of the covering index, in the order ``ListedRecording.from_row`` expects.
_LIST_COLUMNS = """composite_id, open_id, start_time_90k, wall_duration_90k,
    media_duration_delta_90k, video_samples, video_sync_samples, video_sample_entry_id,
    sample_file_bytes, run_offset, flags, prev_media_duration_90k, prev_runs, end_reason"""
LIST_COLUMN_COUNT = 14


def list_recordings_by_time(
    conn: sqlite3.Connection, stream_id: int, start_90k: int, end_90k: int, max_wall_90k: int
) -> Iterator[tuple[int, ...]]:
    """Rows overlapping ``[start, end)``, oldest first, through the covering index.

    ``max_wall_90k`` bounds how far before ``start`` a recording can begin and still
    overlap, so the index range scan stays tight.
    """
    return conn.execute(
        f"""select {_LIST_COLUMNS} from recording indexed by recording_cover
            where stream_id = ? and start_time_90k > ? and start_time_90k < ?
              and start_time_90k + wall_duration_90k > ?
            order by start_time_90k""",
        (stream_id, start_90k - max_wall_90k, end_90k, start_90k),
    )


def list_recordings_by_id(
    conn: sqlite3.Connection, stream_id: int, start_id: int, end_id: int
) -> Iterator[tuple[int, ...]]:
    """Rows with recording ids in ``[start_id, end_id)``, in id order, each followed by
    its index summary's columns (``summary_from_columns``): a range of the table itself
    (not the covering index), so they cost nothing more to read."""
    return conn.execute(
        f"""select {_LIST_COLUMNS}, {_SUMMARY_COLUMNS} from recording
            where composite_id >= ? and composite_id < ? order by composite_id""",
        (composite_id(stream_id, start_id), composite_id(stream_id, end_id)),
    )


def list_oldest_recordings(
    conn: sqlite3.Connection, stream_id: int, after_cid: int
) -> Iterator[tuple[int, int, int, int]]:
    """(composite_id, start_time_90k, wall_duration_90k, sample_file_bytes) of the stream's
    recordings with composite id > ``after_cid``, oldest first (ids grow with time)."""
    return conn.execute(
        """select composite_id, start_time_90k, wall_duration_90k, sample_file_bytes
           from recording where composite_id > ? and composite_id < ?
           order by composite_id""",
        (after_cid, composite_id(stream_id + 1, 0)),
    )


def stream_summary_rows(
    conn: sqlite3.Connection, stream_id: int
) -> Iterator[tuple[int, int, int]]:
    """(start_time_90k, wall_duration_90k, sample_file_bytes) of every recording of the
    stream, through the covering index: the startup scan that builds the summaries."""
    return conn.execute(
        """select start_time_90k, wall_duration_90k, sample_file_bytes
           from recording indexed by recording_cover where stream_id = ?""",
        (stream_id,),
    )


def recording_time_range(conn: sqlite3.Connection, stream_id: int) -> tuple[int | None, int | None]:
    """(earliest start, latest end) of the stream's recordings, through the covering index
    (None, None without recordings)."""
    row = conn.execute(
        """select min(start_time_90k), max(start_time_90k + wall_duration_90k)
           from recording indexed by recording_cover where stream_id = ?""",
        (stream_id,),
    ).fetchone()
    return row[0], row[1]


def get_video_index(conn: sqlite3.Connection, cid: int) -> bytes | None:
    row = conn.execute(
        "select video_index from recording_playback where composite_id = ?", (cid,)
    ).fetchone()
    return None if row is None else bytes(row[0])


def iter_all_recordings(conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    """Every recording in id order (for ``nvr check``): the listing columns by id
    (``list_recordings_by_id``'s), then ``sample_file_sha256`` and ``video_index``
    (NULL where the integrity or playback row is missing)."""
    return conn.execute(
        f"""select {_LIST_COLUMNS}, {_SUMMARY_COLUMNS}, i.sample_file_sha256, p.video_index
           from recording r
           left join recording_integrity i using (composite_id)
           left join recording_playback p using (composite_id)
           order by r.composite_id"""
    )


def list_all_garbage(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    return conn.execute(
        "select sample_file_dir_id, composite_id from garbage order by 1, 2"
    ).fetchall()


def integrity_check(conn: sqlite3.Connection) -> list[str]:
    """Problems SQLite finds in the file and in foreign keys (empty when sound)."""
    lines = [row[0] for row in conn.execute("pragma integrity_check")]
    problems = [] if lines == ["ok"] else lines
    return problems + foreign_key_problems(conn)


def foreign_key_problems(conn: sqlite3.Connection) -> list[str]:
    return [
        f"{table} row {rowid} refers to a missing {parent} row"
        for table, rowid, parent, _ in conn.execute("pragma foreign_key_check")
    ]


# ----------------------------------------------------------------------------- signals


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


# ----------------------------------------------------------------------------- users, sessions

_USER_COLUMNS = """id, username, config, password_hash, password_id, password_failure_count,
    permissions"""


def list_users(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(f"select {_USER_COLUMNS} from user order by id").fetchall()


def get_user(conn: sqlite3.Connection, user_id: int) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(
        f"select {_USER_COLUMNS} from user where id = ?", (user_id,)
    ).fetchone()
    return row


def get_user_by_name(conn: sqlite3.Connection, username: str) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(
        f"select {_USER_COLUMNS} from user where username = ?", (username,)
    ).fetchone()
    return row


def insert_user(
    conn: sqlite3.Connection,
    username: str,
    config: str,
    password_hash: str | None,
    permissions: str,
) -> int:
    cur = conn.execute(
        """insert into user (username, config, password_hash, permissions)
           values (?, ?, ?, ?)""",
        (username, config, password_hash, permissions),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def update_user(
    conn: sqlite3.Connection, user_id: int, username: str, config: str, permissions: str
) -> None:
    conn.execute(
        "update user set username = ?, config = ?, permissions = ? where id = ?",
        (username, config, permissions, user_id),
    )


def set_user_password(conn: sqlite3.Connection, user_id: int, password_hash: str | None) -> None:
    """Sets the hash (NULL: no password login) and bumps ``password_id``."""
    conn.execute(
        "update user set password_hash = ?, password_id = password_id + 1 where id = ?",
        (password_hash, user_id),
    )


def rehash_user_password(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    """Replaces the hash of the same password (stronger parameters): ``password_id`` stays."""
    conn.execute("update user set password_hash = ? where id = ?", (password_hash, user_id))


def count_password_failure(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute(
        "update user set password_failure_count = password_failure_count + 1 where id = ?",
        (user_id,),
    )


def delete_user(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("delete from user_session where user_id = ?", (user_id,))
    conn.execute("delete from user where id = ?", (user_id,))


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A ``user_session`` row as a new session inserts it."""

    session_id_hash: bytes
    user_id: int
    seed: bytes
    flags: int
    domain: str | None
    description: str | None
    creation_password_id: int
    creation_time_sec: int
    creation_user_agent: str | None
    creation_peer_addr: str | None
    permissions: str


def insert_session(conn: sqlite3.Connection, s: SessionRow) -> None:
    conn.execute(
        """insert into user_session
             (session_id_hash, user_id, seed, flags, domain, description,
              creation_password_id, creation_time_sec, creation_user_agent,
              creation_peer_addr, permissions)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            s.session_id_hash, s.user_id, s.seed, s.flags, s.domain, s.description,
            s.creation_password_id, s.creation_time_sec, s.creation_user_agent,
            s.creation_peer_addr, s.permissions,
        ),
    )


def get_session(conn: sqlite3.Connection, session_id_hash: bytes) -> tuple[Any, ...] | None:
    """(user_id, seed, flags, creation_time_sec, revocation_time_sec, last_use_time_sec,
    use_count, permissions) of one session."""
    row: tuple[Any, ...] | None = conn.execute(
        """select user_id, seed, flags, creation_time_sec, revocation_time_sec,
                  last_use_time_sec, use_count, permissions
           from user_session where session_id_hash = ?""",
        (session_id_hash,),
    ).fetchone()
    return row


def note_session_use(
    conn: sqlite3.Connection,
    session_id_hash: bytes,
    time_sec: int,
    user_agent: str | None,
    peer_addr: str | None,
    uses: int,
) -> None:
    conn.execute(
        """update user_session set last_use_time_sec = ?, last_use_user_agent = ?,
                  last_use_peer_addr = ?, use_count = use_count + ?
           where session_id_hash = ?""",
        (time_sec, user_agent, peer_addr, uses, session_id_hash),
    )


def revoke_session(
    conn: sqlite3.Connection,
    session_id_hash: bytes,
    time_sec: int,
    user_agent: str | None,
    peer_addr: str | None,
    reason: int,
    detail: str | None,
) -> None:
    conn.execute(
        """update user_session set revocation_time_sec = ?, revocation_user_agent = ?,
                  revocation_peer_addr = ?, revocation_reason = ?,
                  revocation_reason_detail = ?
           where session_id_hash = ? and revocation_time_sec is null""",
        (time_sec, user_agent, peer_addr, reason, detail, session_id_hash),
    )


def revoke_user_sessions(
    conn: sqlite3.Connection,
    user_id: int,
    time_sec: int,
    reason: int,
    detail: str | None,
    keep_hash: bytes | None,
) -> int:
    """Revokes every live session of the user except ``keep_hash``; returns how many."""
    cur = conn.execute(
        """update user_session set revocation_time_sec = ?, revocation_reason = ?,
                  revocation_reason_detail = ?
           where user_id = ? and revocation_time_sec is null and session_id_hash is not ?""",
        (time_sec, reason, detail, user_id, keep_hash),
    )
    return cur.rowcount


def count_live_sessions(conn: sqlite3.Connection) -> dict[int, int]:
    """Unrevoked sessions per user id."""
    return dict(
        conn.execute(
            """select user_id, count(*) from user_session
               where revocation_time_sec is null group by user_id"""
        ).fetchall()
    )


# -- motion summaries ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MotionRow:
    """One ``recording_motion`` row (see schema.sql and ``nvr.motion.summary``)."""

    cells: bytes
    entries: bytes
    global_seconds: bytes
    motion_seconds: int
    frames: int
    skipped: int


def insert_motion(conn: sqlite3.Connection, cid: int, m: MotionRow) -> None:
    conn.execute(
        """insert or replace into recording_motion (composite_id, cells, entries,
           global_seconds, motion_seconds, frames, skipped) values (?, ?, ?, ?, ?, ?, ?)""",
        (cid, m.cells, m.entries, m.global_seconds, m.motion_seconds, m.frames, m.skipped),
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
    conn: sqlite3.Connection, stream_id: int, start: int, end: int, max_wall: int
) -> list[tuple[int, int, int, bytes, bytes]]:
    """(composite_id, start_time_90k, wall_duration_90k, cells, entries) of the stream's
    recordings that moved and overlap ``[start, end)``, by start time."""
    return conn.execute(
        """select r.composite_id, r.start_time_90k, r.wall_duration_90k, m.cells, m.entries
           from recording r join recording_motion m using (composite_id)
           where r.stream_id = ? and r.start_time_90k > ? and r.start_time_90k < ?
             and r.start_time_90k + r.wall_duration_90k > ? and m.motion_seconds > 0
           order by r.start_time_90k""",
        (stream_id, start - max_wall, end, start),
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


# -- archives ---------------------------------------------------------------------------------


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


def delete_archive(conn: sqlite3.Connection, archive_id: int) -> None:
    conn.execute("delete from archived_recording where archive_id = ?", (archive_id,))
    conn.execute("delete from archive_stream where archive_id = ?", (archive_id,))
    conn.execute("delete from archive where id = ?", (archive_id,))


_UNARCHIVED = """from recording r
    where r.stream_id in (select stream_id from archive_stream where archive_id = :a)
      and not exists (select 1 from archived_recording x
                      where x.archive_id = :a and x.composite_id = r.composite_id)"""


def list_unarchived(
    conn: sqlite3.Connection, archive_id: int, limit: int
) -> list[tuple[Any, ...]]:
    """The oldest committed recordings of the archive's streams that it does not hold yet
    (``_LIST_COLUMNS`` and the summary's, then ``sample_file_sha256``), oldest first."""
    return conn.execute(
        f"""select {", ".join("r." + c.strip() for c in _LIST_COLUMNS.split(","))},
                   {", ".join("r." + c for c in SUMMARY_COLUMN_NAMES)},
                   (select sample_file_sha256 from recording_integrity i
                    where i.composite_id = r.composite_id)
            {_UNARCHIVED} order by r.start_time_90k, r.composite_id limit :n""",
        {"a": archive_id, "n": limit},
    ).fetchall()


def unarchived_backlog(
    conn: sqlite3.Connection, archive_id: int
) -> tuple[int, int, int | None]:
    """(recordings, bytes, oldest start time) the archive does not hold yet."""
    row = conn.execute(
        f"""select count(*), coalesce(sum(r.sample_file_bytes), 0), min(r.start_time_90k)
            {_UNARCHIVED}""",
        {"a": archive_id},
    ).fetchone()
    return int(row[0]), int(row[1]), row[2]


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


def delete_archived_recording(conn: sqlite3.Connection, archive_id: int, cid: int) -> None:
    conn.execute(
        "delete from archived_recording where archive_id = ? and composite_id = ?",
        (archive_id, cid),
    )


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


def list_redactions(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        """select id, stream_id, start_time_90k, end_time_90k, reason, user_id, username,
                  creation_time_90k
           from redaction order by id""").fetchall()
