"""Schema version 2 -> 3: signals.

Adds the signal tables (``signal_type``, ``signal_type_state``, ``signal``,
``signal_camera``, ``signal_change`` and the index ``signal_change_time``; see
``schema.sql``), empty. Nothing that exists is touched: recordings, their rows, indexes and
every ETag stay exactly as they were.

The SQL is written out here, not taken from ``schema.sql``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table signal_type (
  id integer primary key,
  uuid blob unique not null check (length(uuid) = 16),
  short_name text unique not null check (length(short_name) between 1 and 64)
);
create table signal_type_state (
  type_id integer not null references signal_type (id),
  value integer not null check (value between 1 and 255),
  name text not null check (length(name) between 1 and 64),
  motion integer not null default 0 check (motion in (0, 1)),
  color text check (color is null or length(color) between 1 and 32),
  primary key (type_id, value)
) without rowid;
create table signal (
  id integer primary key,
  uuid blob unique not null check (length(uuid) = 16),
  type_id integer not null references signal_type (id),
  short_name text unique not null check (length(short_name) between 1 and 64)
);
create table signal_camera (
  signal_id integer not null references signal (id),
  camera_id integer not null references camera (id),
  relation text not null check (relation in ('direct', 'indirect')),
  primary key (signal_id, camera_id)
) without rowid;
create table signal_change (
  signal_id integer not null references signal (id),
  time_90k integer not null check (time_90k > 0),
  state integer not null check (state between 0 and 255),
  primary key (signal_id, time_90k)
) without rowid;
create index signal_change_time on signal_change (time_90k, signal_id, state);
"""


def run(conn: sqlite3.Connection) -> None:
    for statement in _SQL.split(";"):
        if statement.strip():
            conn.execute(statement)
