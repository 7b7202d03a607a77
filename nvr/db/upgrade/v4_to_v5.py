"""Schema version 4 -> 5: protected ranges (and per-camera rights).

Adds the ``protected_range`` table and its index (see ``schema.sql``): spans of a
camera's video that retention must keep. Per-camera rights need no schema change: a
user's (and a session's) ``permissions`` JSON may now carry ``"cameras": [uuid, ...]``,
which older rows simply lack (no limit). Nothing else is touched; no row changes.

The SQL is written out here, not taken from ``raw.py``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table protected_range (
  id integer primary key,
  camera_id integer not null references camera (id),
  start_time_90k integer not null check (start_time_90k >= 0),
  end_time_90k integer not null check (end_time_90k > start_time_90k),
  reason text not null check (length(reason) between 1 and 1000),
  expires_time_90k integer,
  created_time_90k integer not null,
  created_by text not null,
  removed_time_90k integer,
  removed_by text,
  check ((removed_time_90k is null) = (removed_by is null))
);
create index protected_range_camera on protected_range (camera_id, removed_time_90k);
"""


def run(conn: sqlite3.Connection) -> None:
    for statement in _SQL.split(";"):
        if statement.strip():
            conn.execute(statement)
