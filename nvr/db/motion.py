"""The motion part of ``Database``: storing per-recording motion summaries with their
recordings, the per-hour motion totals the API shows, and the rows motion search reads.

A summary usually arrives while its recording is still pending (analysis runs a second
or so behind the camera, the commit comes at the next flush): it waits in memory and
``flush`` inserts it in the same transaction as the recording row (``Lifecycle.flush``
calls ``_insert_pending_motion``). A summary for a committed recording is inserted at
once; one for a recording that no longer exists (abandoned, deleted) is dropped. So a
crash loses at most the summaries of recordings not yet committed, which is what the
crash loses of the recordings too. Deleting a recording deletes its summary
(``raw.move_recording_to_garbage``).

Per-hour totals: the seconds with motion of each recording, counted in the local hour
(of ``tz``) its recording starts in (a recording is a minute or so, so an hour's total
may include up to a few minutes of the next one); built by one scan at open and kept
current on every commit and delete.
"""

from __future__ import annotations

import sqlite3

from nvr.base.time90k import Time, to_datetime
from nvr.db import raw, raw_motion
from nvr.db.core import DatabaseCore
from nvr.db.raw import split_composite_id
from nvr.db.raw_motion import MotionRow
from nvr.db.types import MAX_RECORDING_WALL_DURATION


class MotionStore(DatabaseCore):
    """``Database``'s motion summaries; see the module docstring."""

    def _load_motion(self) -> None:
        with self._read("loading motion totals") as conn:
            for sid, start, seconds in raw_motion.motion_totals_rows(conn):
                self._count_motion(sid, start, seconds)

    def put_motion_summary(self, cid: int, row: MotionRow) -> str:
        """Stores the summary of recording ``cid``: now if it is committed, with its
        commit if it is pending. Returns what happened: "stored", "pending", "dropped"."""
        stream_id, recording_id = split_composite_id(cid)
        stream = self.streams.get(stream_id)
        if stream is None or self.read_only:
            return "dropped"
        if recording_id >= stream.cum_recordings:
            if any(p.composite_id == cid for p in stream.pending):
                self.pending_motion[cid] = row
                return "pending"
            return "dropped"
        with self._transaction("storing a motion summary") as conn:
            start = raw_motion.recording_start(conn, cid)
            if start is None:
                return "dropped"
            old = raw_motion.motion_seconds_of(conn, cid)
            raw_motion.insert_motion(conn, cid, row)
        if old is not None:
            self._count_motion(stream_id, old[0], -old[1])
        self._count_motion(stream_id, start, row.motion_seconds)
        return "stored"

    def _insert_pending_motion(
        self, conn: sqlite3.Connection, cid: int, start: Time
    ) -> tuple[int, Time, int] | None:
        """Within ``flush``'s transaction: the summary of a recording being committed."""
        row = self.pending_motion.get(cid)
        if row is None:
            return None
        raw_motion.insert_motion(conn, cid, row)
        return cid, start, row.motion_seconds

    def _committed_motion(self, inserted: list[tuple[int, Time, int]]) -> None:
        """After ``flush`` committed: forget the pending summaries, count them in."""
        for cid, start, seconds in inserted:
            del self.pending_motion[cid]
            self._count_motion(cid >> raw.ID_BITS, start, seconds)

    def _forget_pending_motion(self, cid: int) -> None:
        self.pending_motion.pop(cid, None)

    def _count_motion(self, stream_id: int, start: Time, seconds: int) -> None:
        if not seconds:
            return
        local = to_datetime(start, self.tz)
        key = (local.date().isoformat(), local.hour)
        hours = self.motion_hours.setdefault(stream_id, {})
        total = hours.get(key, 0) + seconds
        if total > 0:
            hours[key] = total
        else:
            hours.pop(key, None)

    def motion_days(self, stream_id: int) -> dict[str, tuple[int, dict[int, int]]]:
        """Local day -> (seconds with motion, {local hour: seconds})."""
        out: dict[str, tuple[int, dict[int, int]]] = {}
        for (day, hour), seconds in sorted(self.motion_hours.get(stream_id, {}).items()):
            total, hours = out.get(day, (0, {}))
            hours[hour] = seconds
            out[day] = (total + seconds, hours)
        return out

    def motion_search_rows(
        self, stream_id: int, region: bytes, lo: Time, hi: Time, after: Time
    ) -> list[tuple[int, int, int, bytes, bytes]]:
        """Committed recordings of the stream that start in ``[lo, hi)``, end after
        ``after`` and moved in ``region`` (a cell bitmap); see ``raw_motion.motion_search_rows``.
        Without those a redaction hides."""
        with self._read("reading motion summaries") as conn:
            rows = raw_motion.motion_search_rows(conn, stream_id, region, lo, hi, after)
        return [r for r in rows if not self.is_hidden(stream_id, r[1], r[1] + r[2])]

    def motion_debug_rows(
        self, stream_id: int, start: Time, end: Time, limit: int
    ) -> list[tuple[int, int, int, int, int, int, bytes, bytes]]:
        """Analysed recordings of the stream overlapping ``[start, end)`` with their whole
        summaries, at most ``limit``; see ``raw_motion.motion_debug_rows``. Without those a
        redaction hides."""
        with self._read("reading motion summaries") as conn:
            rows = raw_motion.motion_debug_rows(
                conn, stream_id, start, end, MAX_RECORDING_WALL_DURATION, limit
            )
        return [r for r in rows if not self.is_hidden(stream_id, r[1], r[1] + r[2])]
