"""Schema version 11 -> 12: what archive retention has deleted, per archive and stream.

Adds ``archive_stream_retention``: for each archive and stream whose recordings it held,
the keys its objects are under (camera uuid, stream type) and the highest recording id
its own retention deleted. With it the uploader never uploads again a recording archive
retention deleted while it is still local (shorter archive retention than local), and a
deleted camera's archived recordings age out like any other's (the stream's row is gone,
this one is not). Empty after the upgrade: what retention deleted before is not known.
The SQL is written out here, not taken from ``schema.sql``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table archive_stream_retention (
  archive_id integer not null references archive (id),
  stream_id integer not null,
  camera_uuid blob not null check (length(camera_uuid) = 16),
  stream_type text not null check (stream_type in ('main', 'sub', 'ext')),
  expired_through_id integer not null default -1,
  primary key (archive_id, stream_id)
) without rowid;
"""


def run(conn: sqlite3.Connection) -> None:
    conn.execute(_SQL)
