"""Schema version 1 -> 2: each recording row stores its whole index's summary.

Adds ``recording``'s five summary columns (``duration_runs``, ``first_duration_90k``,
``first_duration_frames``, ``last_duration_90k``, ``index_digest``; see ``schema.sql``) with
``ALTER TABLE ... ADD COLUMN``, which leaves the rows and the covering index as they are,
then computes each recording's summary from its ``video_index`` with
``nvr.db.frames_summary``, the code that computes it at commit time and for requests, so
stored summaries and ETags agree. A recording whose index does not decode, or whose totals
differ from its row, keeps NULLs and is logged (``nvr check`` reports it; it is served by
decoding its index, as before). The indexes are read in batches of composite ids, so memory
stays bounded however many recordings there are.

The SQL is written out here, not taken from ``raw.py``: a step is frozen history.
"""

from __future__ import annotations

import logging
import sqlite3

from nvr.base.errors import DataLoss
from nvr.db.frames_summary import FramesSummary, summarize
from nvr.db.recording import IndexTotals, check_totals, decode_video_index

log = logging.getLogger(__name__)

BATCH = 1000

_COLUMNS = (
    "duration_runs integer check (duration_runs > 0)",
    "first_duration_90k integer check (first_duration_90k >= 0)",
    "first_duration_frames integer check (first_duration_frames > 0)",
    "last_duration_90k integer check (last_duration_90k >= 0)",
    """index_digest blob check (
      (index_digest is null and duration_runs is null and first_duration_90k is null
       and first_duration_frames is null and last_duration_90k is null)
      or (length(index_digest) = 16 and duration_runs is not null
          and first_duration_90k is not null and first_duration_frames is not null
          and last_duration_90k is not null))""",
)


def run(conn: sqlite3.Connection) -> None:
    for column in _COLUMNS:
        conn.execute(f"alter table recording add column {column}")
    after, done, skipped = -1, 0, 0
    while True:
        rows = conn.execute(
            """select r.composite_id, r.video_samples, r.video_sync_samples,
                      r.sample_file_bytes, r.wall_duration_90k + r.media_duration_delta_90k,
                      p.video_index
               from recording r left join recording_playback p using (composite_id)
               where r.composite_id > ? order by r.composite_id limit ?""",
            (after, BATCH),
        ).fetchall()
        if not rows:
            break
        updates = []
        for cid, frames, keys, nbytes, media, index in rows:
            summary = _summary(cid, index, IndexTotals(frames, keys, nbytes, media))
            if summary is None:
                skipped += 1
                continue
            updates.append((summary.runs, summary.first_dur, summary.first_run_len,
                            summary.last_dur, summary.digest, cid))
        conn.executemany(
            """update recording set duration_runs = ?, first_duration_90k = ?,
                      first_duration_frames = ?, last_duration_90k = ?, index_digest = ?
               where composite_id = ?""",
            updates,
        )
        done += len(updates)
        after = rows[-1][0]
    log.info("stored the index summary of %d recordings; %d without one", done, skipped)


def _summary(cid: int, index: bytes | None, row: IndexTotals) -> FramesSummary | None:
    if index is None:
        log.warning("recording %016x has no video_index: no summary stored", cid)
        return None
    try:
        arrays = decode_video_index(index)
        check_totals(arrays.totals, row)
    except DataLoss as e:
        log.warning("recording %016x: %s: no summary stored", cid, e)
        return None
    return summarize(arrays)
