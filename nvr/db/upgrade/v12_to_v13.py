"""Schema version 12 -> 13: per-day totals of archive-only recordings.

Adds ``archive_only_day``: per stream and local day, the totals of its archive-only
recordings (``archive_only_recording``), shaped as ``recording_day`` and split in the same
zone, so that the API's ``days`` (the timeline) count the recordings the listing shows
from the archive without reading them. The rows are not computed here (the zone is the
daemon's, not known to the upgrade): the step empties ``recording_day_zone``, so the next
read-write open builds both tables from the recordings once, as after version 9.
The SQL is written out here, not taken from ``schema.sql``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table archive_only_day (
  stream_id integer not null references stream (id),
  day text not null,
  recordings integer not null check (recordings >= 0),
  duration_90k integer not null check (duration_90k >= 0),
  started integer not null check (started >= 0),
  sample_file_bytes integer not null check (sample_file_bytes >= 0),
  fs_bytes integer not null check (fs_bytes >= 0),
  primary key (stream_id, day)
) without rowid;
"""


def run(conn: sqlite3.Connection) -> None:
    conn.execute(_SQL)
    conn.execute("delete from recording_day_zone")
