"""Schema version 5 -> 6: archive.

Adds the archive tables (``archive``, ``archive_stream``, ``archived_recording``; see
``schema.sql`` and docs/design.md, "Archive tier"), empty. Nothing that exists is touched:
recordings, their rows, indexes and every ETag stay exactly as they were.

The SQL is written out here, not taken from ``schema.sql``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table archive (
  id integer primary key,
  uuid blob unique not null check (length(uuid) = 16),
  short_name text unique not null check (length(short_name) between 1 and 64),
  config text not null default '{}' check (json_valid(config))
);
create table archive_stream (
  archive_id integer not null references archive (id),
  stream_id integer not null references stream (id),
  primary key (archive_id, stream_id)
) without rowid;
create table archived_recording (
  archive_id integer not null references archive (id),
  composite_id integer not null,
  start_time_90k integer not null check (start_time_90k > 0),
  wall_duration_90k integer not null check (wall_duration_90k >= 0),
  sample_file_bytes integer not null check (sample_file_bytes > 0),
  sample_file_sha256 blob not null check (length(sample_file_sha256) = 32),
  archived_time_90k integer not null,
  primary key (archive_id, composite_id)
) without rowid;
"""


def run(conn: sqlite3.Connection) -> None:
    for statement in _SQL.split(";"):
        if statement.strip():
            conn.execute(statement)
