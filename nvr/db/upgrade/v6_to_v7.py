"""Schema version 6 -> 7: redactions.

Adds the ``redaction`` table (tombstones: ranges of a stream treated as never recorded;
see ``schema.sql``) and its index. No existing row changes. The SQL is written out here,
not taken from ``raw.py``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table redaction (
  id integer primary key,
  stream_id integer not null references stream (id),
  start_time_90k integer not null check (start_time_90k >= 0),
  end_time_90k integer not null check (end_time_90k > start_time_90k),
  reason text not null,
  user_id integer,
  username text,
  creation_time_90k integer not null
);
create index redaction_stream on redaction (stream_id, start_time_90k);
"""


def run(conn: sqlite3.Connection) -> None:
    for statement in _SQL.split(";"):
        if statement.strip():
            conn.execute(statement)
