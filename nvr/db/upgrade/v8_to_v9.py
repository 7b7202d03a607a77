"""Schema version 8 -> 9: per-day totals of recordings.

Adds ``recording_day`` (per stream and local day: recordings, recorded time, those
starting in the day and their bytes) and ``recording_day_zone`` (the zone its days are
split in), both empty: the daemon's time zone is not known here, so the first open builds
the rows from the recordings (one scan, once) and every commit and deletion keeps them
from then on. No existing row changes. The SQL is written out here, not taken from
``raw.py``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table recording_day (
  stream_id integer not null references stream (id),
  day text not null,
  recordings integer not null check (recordings >= 0),
  duration_90k integer not null check (duration_90k >= 0),
  started integer not null check (started >= 0),
  sample_file_bytes integer not null check (sample_file_bytes >= 0),
  fs_bytes integer not null check (fs_bytes >= 0),
  primary key (stream_id, day)
) without rowid;
create table recording_day_zone (
  zone text not null
);
"""


def run(conn: sqlite3.Connection) -> None:
    for statement in _SQL.split(";"):
        if statement.strip():
            conn.execute(statement)
