"""Raw SQL: every statement nvr runs against its database, and nothing else.

Functions here take a ``sqlite3.Connection`` (or cursor), run SQL and return plain rows or
values. They do not commit, keep no state and raise ``sqlite3`` errors unchanged;
``connection.py`` owns transactions and error mapping, ``Database`` the in-memory state.
The SQL of other table groups follows the same rules beside it: ``raw_auth`` (users,
sessions), ``raw_motion`` (motion summaries), ``raw_signals``, ``raw_evidence`` (protected
ranges, redactions) and ``raw_archive``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from nvr.db.frames_summary import FramesSummary

SCHEMA_VERSION = 13

ID_BITS = 32
#: recording ids from here up are pieces of recordings cut by a redaction
#: (``nvr.storage.redact``); a stream's own counter stays below (2^30 recordings: two
#: thousand years of one-minute recordings). Pieces stay below 2^31, so ids remain the
#: signed 32-bit integers Moonfire NVR's API (and its clients) use.
PIECE_BASE = 1 << 30
#: the first recording id outside a signed 32-bit integer
PIECE_END = 1 << 31


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
    conn.execute("delete from recording_day where stream_id = ?", (stream_id,))
    conn.execute("delete from archive_only_day where stream_id = ?", (stream_id,))
    conn.execute("delete from motion_hour where stream_id = ?", (stream_id,))
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
LIST_COLUMNS = """composite_id, open_id, start_time_90k, wall_duration_90k,
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
        f"""select {LIST_COLUMNS} from recording indexed by recording_cover
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
        f"""select {LIST_COLUMNS}, {_SUMMARY_COLUMNS} from recording
            where composite_id >= ? and composite_id < ? order by composite_id""",
        (composite_id(stream_id, start_id), composite_id(stream_id, end_id)),
    )


def list_oldest_recordings(
    conn: sqlite3.Connection, stream_id: int, after_cid: int
) -> Iterator[tuple[int, int, int, int]]:
    """(composite_id, start_time_90k, wall_duration_90k, sample_file_bytes) of the stream's
    recordings with composite id > ``after_cid``, oldest first (ids grow with time), but
    for redaction pieces (``list_pieces_by_time``)."""
    return conn.execute(
        """select composite_id, start_time_90k, wall_duration_90k, sample_file_bytes
           from recording where composite_id > ? and composite_id < ?
           order by composite_id""",
        (after_cid, composite_id(stream_id, PIECE_BASE)),
    )


def list_pieces_by_time(
    conn: sqlite3.Connection, stream_id: int
) -> list[tuple[int, int, int, int]]:
    """The same columns for the stream's redaction pieces (a few), by start time."""
    return conn.execute(
        """select composite_id, start_time_90k, wall_duration_90k, sample_file_bytes
           from recording where composite_id >= ? and composite_id < ?
           order by start_time_90k, composite_id""",
        (composite_id(stream_id, PIECE_BASE), composite_id(stream_id + 1, 0)),
    ).fetchall()


def stream_summary_rows(
    conn: sqlite3.Connection, stream_id: int
) -> Iterator[tuple[int, int, int]]:
    """(start_time_90k, wall_duration_90k, sample_file_bytes) of every recording of the
    stream, through the covering index: the scan that builds ``recording_day`` when it is
    missing (after an upgrade) or split in another zone."""
    return conn.execute(
        """select start_time_90k, wall_duration_90k, sample_file_bytes
           from recording indexed by recording_cover where stream_id = ?""",
        (stream_id,),
    )


def recording_time_range(
    conn: sqlite3.Connection, stream_id: int, max_wall_90k: int
) -> tuple[int | None, int | None]:
    """(earliest start, latest end) of the stream's recordings (None, None without
    recordings): each an index seek, never a scan of the stream's rows. The first is a
    lone ``min`` (SQLite reads one index entry for it); the latest end is among the
    recordings starting within ``max_wall_90k`` of the latest start (one starting earlier
    ends before that start)."""
    first = conn.execute(
        """select min(start_time_90k) from recording indexed by recording_cover
           where stream_id = ?""",
        (stream_id,),
    ).fetchone()[0]
    if first is None:
        return None, None
    last = conn.execute(
        """select max(start_time_90k + wall_duration_90k)
           from recording indexed by recording_cover
           where stream_id = ? and start_time_90k >= (
               select max(start_time_90k) from recording indexed by recording_cover
               where stream_id = ?) - ?""",
        (stream_id, stream_id, max_wall_90k),
    ).fetchone()[0]
    return first, last


# --- per-day totals (recording_day) -----------------------------------------------------------


def recording_day_zone(conn: sqlite3.Connection) -> str | None:
    """The zone ``recording_day``'s days are split in (None: the rows must be built)."""
    row = conn.execute("select zone from recording_day_zone").fetchone()
    return None if row is None else str(row[0])


#: the per-day tables: ``recording_day`` (local recordings) and ``archive_only_day``
#: (archive-only recordings, version 13); same columns, split in the same zone
DAY_TABLES = ("recording_day", "archive_only_day")


def list_recording_days(
    conn: sqlite3.Connection, table: str = "recording_day",
) -> Iterator[tuple[int, str, int, int, int, int, int]]:
    """(stream_id, day, recordings, duration_90k, started, sample_file_bytes, fs_bytes) of
    every stream's days (in ``table``: one of ``DAY_TABLES``)."""
    assert table in DAY_TABLES
    return conn.execute(
        f"""select stream_id, day, recordings, duration_90k, started, sample_file_bytes,
                  fs_bytes from {table}"""
    )


def add_recording_days(
    conn: sqlite3.Connection, stream_id: int, deltas: list[tuple[str, int, int, int, int, int]],
    table: str = "recording_day",
) -> None:
    """Adds per-day totals (day, recordings, duration_90k, started, sample_file_bytes,
    fs_bytes) of a stream: one indexed upsert per day."""
    assert table in DAY_TABLES
    conn.executemany(
        f"""insert into {table} (stream_id, day, recordings, duration_90k, started,
                                      sample_file_bytes, fs_bytes)
           values (?, ?, ?, ?, ?, ?, ?)
           on conflict (stream_id, day) do update set
             recordings = recordings + excluded.recordings,
             duration_90k = duration_90k + excluded.duration_90k,
             started = started + excluded.started,
             sample_file_bytes = sample_file_bytes + excluded.sample_file_bytes,
             fs_bytes = fs_bytes + excluded.fs_bytes""",
        [(stream_id, *d) for d in deltas],
    )


def subtract_recording_days(
    conn: sqlite3.Connection, stream_id: int, deltas: list[tuple[str, int, int, int, int, int]],
    table: str = "recording_day",
) -> None:
    """Subtracts per-day totals (as ``add_recording_days`` takes them); a day left with no
    recording goes. Raises ``IntegrityError`` for a day that is not there."""
    assert table in DAY_TABLES
    for day, recordings, duration, started, nbytes, fs in deltas:
        cur = conn.execute(
            f"""update {table} set recordings = recordings - ?,
                 duration_90k = duration_90k - ?, started = started - ?,
                 sample_file_bytes = sample_file_bytes - ?, fs_bytes = fs_bytes - ?
               where stream_id = ? and day = ?""",
            (recordings, duration, started, nbytes, fs, stream_id, day),
        )
        if cur.rowcount != 1:
            raise sqlite3.IntegrityError(f"stream {stream_id} has no totals for {day}")
        conn.execute(
            f"delete from {table} where stream_id = ? and day = ? and recordings = 0",
            (stream_id, day),
        )


def replace_recording_days(
    conn: sqlite3.Connection, zone: str | None,
    rows: list[tuple[int, str, int, int, int, int, int]],
    archive_only_rows: Sequence[tuple[int, str, int, int, int, int, int]] = (),
) -> None:
    """Replaces every ``recording_day`` and ``archive_only_day`` row (and the zone they
    are split in; None: to be built at the next open)."""
    conn.execute("delete from recording_day")
    conn.execute("delete from archive_only_day")
    conn.execute("delete from recording_day_zone")
    conn.executemany("insert into recording_day values (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("insert into archive_only_day values (?, ?, ?, ?, ?, ?, ?)",
                     archive_only_rows)
    if zone is not None:
        conn.execute("insert into recording_day_zone (zone) values (?)", (zone,))


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
        f"""select {LIST_COLUMNS}, {_SUMMARY_COLUMNS}, i.sample_file_sha256, p.video_index
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
