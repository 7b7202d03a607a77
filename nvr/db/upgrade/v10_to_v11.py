"""Schema version 10 -> 11: per-hour motion and per-day signal totals.

Adds ``motion_hour`` (per stream, local day and hour: seconds with motion of the
recordings starting in it), ``signal_day`` (per signal, local day and state: time in that
state between consecutive changes) and ``event_total_zone`` (the zone both are split in),
all empty: the daemon's time zone is not known here, so the first open builds the rows
(one scan of the motion summaries and the signal changes, once) and every write keeps
them from then on. No existing row changes. The SQL is written out here, not taken from
``raw.py``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table motion_hour (
  stream_id integer not null references stream (id),
  day text not null,
  hour integer not null check (hour between 0 and 23),
  seconds integer not null,
  primary key (stream_id, day, hour)
) without rowid;
create table signal_day (
  signal_id integer not null references signal (id),
  day text not null,
  state integer not null check (state between 1 and 255),
  duration_90k integer not null,
  primary key (signal_id, day, state)
) without rowid;
create table event_total_zone (
  zone text not null
);
"""


def run(conn: sqlite3.Connection) -> None:
    for statement in _SQL.split(";"):
        if statement.strip():
            conn.execute(statement)
