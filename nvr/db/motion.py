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
may include up to a few minutes of the next one). Stored in ``motion_hour``, changed in
the same transaction as every summary stored and every recording deleted (flush,
redaction cut), and held in memory (``motion_hours``) per stream from the first time its
totals are asked for (``/api/?days=true``): an open reads neither the summaries nor those
rows (a year of 32 streams has 280,000 of them), unless the rows are missing or split in
another zone (``event_total_zone``): then one scan builds them for every stream
(``Database._load_event_totals``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from nvr.base.time90k import Time, to_datetime
from nvr.db import raw_motion
from nvr.db.core import DatabaseCore
from nvr.db.raw import split_composite_id
from nvr.db.raw_motion import MotionRow
from nvr.db.types import MAX_RECORDING_WALL_DURATION

#: a ``motion_hour`` row or change: (stream id, local day, local hour, seconds)
MotionHour = tuple[int, str, int, int]


class MotionStore(DatabaseCore):
    """``Database``'s motion summaries; see the module docstring."""

    def _load_motion(self, stored: bool) -> int:
        """The per-hour totals: nothing to do if ``stored`` (each stream's are read from
        ``motion_hour`` when first asked for: ``_motion_hours_of``), else built for every
        stream by a scan of the summaries (returns how many it read)."""
        if stored:
            return 0
        n = 0
        self.motion_hours = {sid: {} for sid in self.streams}
        with self._read("loading motion totals") as conn:
            for sid, start, seconds in raw_motion.motion_totals_rows(conn):
                self._count_motion([self._motion_hour(sid, start, seconds)])
                n += 1
        return n

    def _motion_hours_of(self, stream_id: int) -> dict[tuple[str, int], int]:
        """The stream's per-hour totals, read from ``motion_hour`` (one index range of its
        own rows) the first time."""
        hours = self.motion_hours.get(stream_id)
        if hours is None:
            with self._read("reading motion totals") as conn:
                hours = {(day, hour): seconds for day, hour, seconds
                         in raw_motion.list_stream_motion_hours(conn, stream_id)}
            self.motion_hours[stream_id] = hours
        return hours

    def _motion_hour_rows(self) -> list[MotionHour]:
        return [(sid, day, hour, seconds) for sid, hours in self.motion_hours.items()
                for (day, hour), seconds in hours.items()]

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
            hours = [self._motion_hour(stream_id, start, row.motion_seconds)]
            if old is not None:
                hours.append(self._motion_hour(stream_id, old[0], -old[1]))
            raw_motion.add_motion_hours(conn, hours)
        self._count_motion(hours)
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
        """After ``flush`` committed: forget the pending summaries."""
        for cid, _, _ in inserted:
            del self.pending_motion[cid]

    def _forget_pending_motion(self, cid: int) -> None:
        self.pending_motion.pop(cid, None)

    def _motion_hour(self, stream_id: int, start: Time, seconds: int) -> MotionHour:
        """The ``motion_hour`` change of ``seconds`` with motion in a recording of the
        stream starting at ``start``."""
        local = to_datetime(start, self.tz)
        return stream_id, local.date().isoformat(), local.hour, seconds

    def _count_motion(self, rows: Iterable[MotionHour]) -> None:
        """After the rows' transaction committed (``raw_motion.add_motion_hours``): the same
        change in memory."""
        for stream_id, day, hour, seconds in rows:
            hours = self.motion_hours.get(stream_id)
            if not seconds or hours is None:  # not read yet: it will be, changed
                continue
            total = hours.get((day, hour), 0) + seconds
            if total > 0:
                hours[(day, hour)] = total
            else:
                hours.pop((day, hour), None)

    def motion_days(self, stream_id: int) -> dict[str, tuple[int, dict[int, int]]]:
        """Local day -> (seconds with motion, {local hour: seconds})."""
        out: dict[str, tuple[int, dict[int, int]]] = {}
        for (day, hour), seconds in sorted(self._motion_hours_of(stream_id).items()):
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
