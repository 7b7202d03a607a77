"""Schema version 3 -> 4: motion summaries.

Adds the table ``recording_motion`` (one row per recording whose motion was analysed; see
``schema.sql`` and ``nvr.motion.summary``). Existing recordings get no row: they were
never analysed, and search treats a recording without a row as not analysed.

The SQL is written out here, not taken from ``raw.py``: a step is frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = """
create table recording_motion (
  composite_id integer primary key references recording (composite_id),
  cells blob not null check (length(cells) = 32),  -- union of the cells that moved (bitmap)
  -- 4 bytes per (second, moved cell): uint16 LE second, uint8 cell, uint8 level (1..255)
  entries blob not null check (length(entries) % 4 = 0),
  global_seconds blob not null check (length(global_seconds) % 2 = 0),  -- uint16 LE seconds
  motion_seconds integer not null check (motion_seconds >= 0),  -- seconds with motion
  frames integer not null check (frames >= 0),  -- pictures analysed
  skipped integer not null check (skipped >= 0)  -- frames skipped: analysis fell behind
)
"""


def run(conn: sqlite3.Connection) -> None:
    conn.execute(_SQL)
