"""The protected-ranges part of ``Database``: spans of a camera's video that retention
keeps (docs/design.md, "Recording, syncing and retention").

What belongs here: adding, removing (kept as a row with who and when) and listing a
camera's protected ranges; whether a recording is protected now (``protected_at``, used
by retention planning in ``lifecycle`` and by ``storage.retention``'s free-space floor);
the bytes of a stream that protection holds (``retention_status``); the next expiry,
when syncers must re-plan. A range protects every stream of its camera while it is
*active*: not removed and, with an expiry, before that wall time (at it, no longer).

Adding a range also takes its recordings out of deletions already planned but not yet
flushed, so a protection that arrives between planning and the next flush still wins.
Not here: the retention rules themselves (``lifecycle``), HTTP (``nvr.web.protect``).
"""

from __future__ import annotations

import bisect
import logging

from nvr.base import errors
from nvr.base.time90k import Time
from nvr.db import raw_evidence
from nvr.db.core import DatabaseCore
from nvr.db.types import MAX_RECORDING_WALL_DURATION, ProtectedRange, RetentionStatus, Stream

log = logging.getLogger(__name__)

#: ranges a camera may have active at once (each is checked on every retention pass)
MAX_ACTIVE_PER_CAMERA = 1000
MAX_REASON = 1000
#: rows one listing returns at most (removed and expired ones included)
MAX_LISTED = 1000


class Intervals:
    """Disjoint, sorted ``[start, end)`` spans (merged ranges) with an overlap test."""

    def __init__(self, spans: list[tuple[Time, Time]]) -> None:
        merged: list[tuple[Time, Time]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self.spans = merged
        self._ends = [e for _, e in merged]

    def __bool__(self) -> bool:
        return bool(self.spans)

    def overlaps(self, start: Time, end: Time) -> bool:
        """Whether ``[start, end)`` (a zero-length span counts as ``[start, start+1)``)
        meets any span."""
        end = max(end, start + 1)
        i = bisect.bisect_right(self._ends, start)
        return i < len(self.spans) and self.spans[i][0] < end


class Protection(DatabaseCore):
    """``Database``'s protected ranges; see the module docstring."""

    def active_ranges(self, camera_id: int) -> list[ProtectedRange]:
        """The camera's active ranges, oldest first (expired ones are dropped here)."""
        now = self._now()
        ranges = self.protected.get(camera_id, [])
        active = [r for r in ranges if r.active(now)]
        if len(active) != len(ranges):
            self.protected[camera_id] = active
        return active

    def protected_at(self, camera_id: int) -> Intervals:
        """The camera's active ranges, merged, for overlap tests."""
        ranges = self.active_ranges(camera_id)
        return Intervals([(r.start_time_90k, r.end_time_90k) for r in ranges])

    def protect(
        self,
        camera_id: int,
        start: Time,
        end: Time,
        reason: str,
        *,
        expires: Time | None,
        by: str,
    ) -> ProtectedRange:
        """Adds an active range; its recordings leave any deletion already planned."""
        cam = self._camera(camera_id)
        now = self._now()
        if not 0 <= start < end:
            raise errors.InvalidArgument("a protected range needs 0 <= start < end")
        reason = reason.strip()
        if not 1 <= len(reason) <= MAX_REASON or not reason.isprintable():
            raise errors.InvalidArgument(
                f"the reason must be 1 to {MAX_REASON} printable characters"
            )
        if expires is not None and expires <= now:
            raise errors.InvalidArgument("the expiry must be in the future")
        if len(self.active_ranges(camera_id)) >= MAX_ACTIVE_PER_CAMERA:
            raise errors.ResourceExhausted(
                f"camera {cam.short_name!r} already has {MAX_ACTIVE_PER_CAMERA} protected "
                "ranges: remove some first"
            )
        with self._transaction(f"protecting video of {cam.short_name}") as conn:
            rid = raw_evidence.insert_protected_range(
                conn, camera_id, start, end, reason, expires, now, by
            )
        pr = ProtectedRange(rid, camera_id, start, end, reason, expires, now, by)
        self.protected.setdefault(camera_id, []).append(pr)
        guard = Intervals([(start, end)])
        for sid in cam.streams.values():
            s = self.streams[sid]
            s.planned_deletions = [
                d for d in s.planned_deletions
                if not guard.overlaps(d.start_time_90k, d.start_time_90k + d.wall_duration_90k)
            ]
            self.refresh_retention_status(sid)
        log.info(
            "%s protected video of camera %r from %d to %d (range %d, expires %s): %s",
            by, cam.short_name, start, end, rid, expires, reason,
        )
        self._protection_changed()
        return pr

    def unprotect(self, camera_id: int, range_id: int, *, by: str) -> ProtectedRange:
        """Removes an active or expired range (the row stays, with who and when)."""
        cam = self._camera(camera_id)
        now = self._now()
        with self._transaction(f"removing a protected range of {cam.short_name}") as conn:
            row = raw_evidence.get_protected_range(conn, camera_id, range_id)
            if row is None or not raw_evidence.remove_protected_range(conn, range_id, now, by):
                raise errors.NotFound(
                    f"camera {cam.short_name!r} has no protected range {range_id} (or it "
                    "was removed already)"
                )
        old = ProtectedRange(*row)
        self.protected[camera_id] = [
            r for r in self.protected.get(camera_id, []) if r.id != range_id
        ]
        for sid in cam.streams.values():
            self.refresh_retention_status(sid)
        log.warning(
            "%s removed protected range %d of camera %r (%d to %d, by %s: %s)",
            by, range_id, cam.short_name, old.start_time_90k, old.end_time_90k,
            old.created_by, old.reason,
        )
        self._protection_changed()
        return ProtectedRange(
            old.id, old.camera_id, old.start_time_90k, old.end_time_90k, old.reason,
            old.expires_time_90k, old.created_time_90k, old.created_by, now, by,
        )

    def list_protected(self, camera_id: int, *, all_rows: bool = False) -> list[ProtectedRange]:
        """The camera's active ranges, oldest first; with ``all_rows``, every row
        (removed and expired too), newest first, at most ``MAX_LISTED``."""
        self._camera(camera_id)
        if not all_rows:
            return self.active_ranges(camera_id)
        with self._read("listing protected ranges") as conn:
            rows = raw_evidence.list_protected_ranges(
                conn, camera_id, removed=True, limit=MAX_LISTED)
        return [ProtectedRange(*r) for r in rows]

    def next_protection_expiry(self) -> Time | None:
        """The earliest wall time an active range of any camera expires at."""
        expiries = [
            r.expires_time_90k
            for cam in list(self.protected)
            for r in self.active_ranges(cam)
            if r.expires_time_90k is not None
        ]
        return min(expiries, default=None)

    def retention_status(self, stream_id: int) -> RetentionStatus:
        """The stream's bytes (committed + pending − planned) split by protection now."""
        s = self._stream(stream_id)
        guard = self.protected_at(s.camera_id)
        protected = 0
        if guard:
            seen: set[int] = set()
            with self._read("summing protected bytes") as conn:
                for start, end in guard.spans:
                    for cid, nbytes in raw_evidence.sum_recording_bytes_overlapping(
                        conn, s.id, start, end, MAX_RECORDING_WALL_DURATION
                    ):
                        if cid not in seen:
                            seen.add(cid)
                            protected += nbytes
            protected += sum(
                p.sample_file_bytes for p in s.pending
                if guard.overlaps(p.start_time_90k, p.end_time_90k)
            )
        total = s.bytes_after_planned_deletions
        return RetentionStatus(protected, total - protected, s.config.retain_bytes)

    def refresh_retention_status(self, stream_id: int) -> RetentionStatus:
        st = self.retention_status(stream_id)
        self.streams[stream_id].retention = st
        return st

    def _protection_changed(self) -> None:
        for listener in list(self.protection_listeners):
            listener()

    def _check_unprotected(self, s: Stream) -> None:
        if self.active_ranges(s.camera_id):
            raise errors.FailedPrecondition(
                f"camera {self.cameras[s.camera_id].short_name!r} has protected ranges: "
                "remove them before deleting all its recordings"
            )
