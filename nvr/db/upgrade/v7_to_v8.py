"""Schema version 7 -> 8: archive-only recordings.

Adds ``archive_only_recording`` (the rows and indexes of recordings whose local sample
file is gone while an archive holds them; see ``schema.sql``) and an index of
``archived_recording`` by recording. No existing row changes. The SQL is written out here,
not taken from ``raw.py``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table archive_only_recording (
  composite_id integer primary key,
  open_id integer not null,
  stream_id integer not null references stream (id),
  run_offset integer not null check (run_offset >= 0),
  flags integer not null default 0,
  sample_file_bytes integer not null check (sample_file_bytes > 0),
  start_time_90k integer not null check (start_time_90k > 0),
  prev_media_duration_90k integer not null check (prev_media_duration_90k >= 0),
  prev_runs integer not null check (prev_runs >= 0),
  wall_duration_90k integer not null
      check (wall_duration_90k >= 0 and wall_duration_90k < 5 * 60 * 90000),
  media_duration_delta_90k integer not null,
  video_samples integer not null check (video_samples > 0),
  video_sync_samples integer not null check (video_sync_samples > 0),
  video_sample_entry_id integer not null references video_sample_entry (id),
  end_reason text,
  duration_runs integer check (duration_runs > 0),
  first_duration_90k integer check (first_duration_90k >= 0),
  first_duration_frames integer check (first_duration_frames > 0),
  last_duration_90k integer check (last_duration_90k >= 0),
  index_digest blob check (index_digest is null or length(index_digest) = 16),
  video_index blob not null check (length(video_index) > 0),
  check (composite_id >> 32 = stream_id)
);
create index archive_only_recording_time on archive_only_recording (stream_id, start_time_90k);
create index archived_recording_cid on archived_recording (composite_id);
"""


def run(conn: sqlite3.Connection) -> None:
    for statement in _SQL.split(";"):
        if statement.strip():
            conn.execute(statement)
