"""Schema version 9 -> 10: the motion union as integers.

Adds to ``recording_motion`` the columns ``cells_0`` .. ``cells_3``: the union bitmap
``cells`` again, as four signed 64-bit integers (bit ``c % 64`` of ``cells_{c // 64}``),
so that motion search tests a region with SQL's ``&`` and reads the per-second entries
only of recordings that moved in it. Existing rows get theirs computed from ``cells``.
The SQL and the conversion are written out here, not taken from ``raw.py``: a step is
frozen history.
"""

from __future__ import annotations

import sqlite3

_SQL = [
    f"alter table recording_motion add column cells_{i} integer not null default 0"
    for i in range(4)
]


def run(conn: sqlite3.Connection) -> None:
    for statement in _SQL:
        conn.execute(statement)
    rows = conn.execute("select composite_id, cells from recording_motion").fetchall()
    conn.executemany(
        "update recording_motion set cells_0 = ?, cells_1 = ?, cells_2 = ?, cells_3 = ? "
        "where composite_id = ?",
        [
            (*(int.from_bytes(cells[i : i + 8], "little", signed=True) for i in range(0, 32, 8)),
             cid)
            for cid, cells in rows
        ],
    )
