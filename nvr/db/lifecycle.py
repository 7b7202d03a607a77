"""The recording lifecycle part of ``Database``: pending recordings, ``flush``, retention
planning and garbage.

A recording is *pending* from ``add_recording`` (its writer fills it while it grows) through
``mark_done`` (the file holds every byte) and ``mark_synced`` (its directory's syncer
fsynced file and directory) until ``flush`` commits it. Deletions are *planned* (oldest
committed recordings first, never pending ones), then ``flush`` moves their rows to
``garbage`` in the same transaction; the syncer unlinks the files and
``mark_garbage_unlinked`` lets the next flush forget the garbage rows (docs/design.md,
"Recording, syncing and retention"). Not here: listings (``reads``) and the catalog.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Iterator

from nvr.base import errors
from nvr.base.time90k import UNITS_PER_SEC, Time
from nvr.db import raw, raw_archive, raw_motion
from nvr.db.frames_summary import summarize_index
from nvr.db.motion import MotionStore
from nvr.db.protection import Protection
from nvr.db.raw import composite_id, split_composite_id
from nvr.db.stream_summary import day_deltas, day_rows
from nvr.db.types import (
    MAX_RECORDING_WALL_DURATION,
    FlushResult,
    ListedRecording,
    PendingRecording,
    PendingState,
    PlannedDeletion,
    Stream,
)

log = logging.getLogger(__name__)


class Lifecycle(Protection, MotionStore):
    """``Database``'s recording lifecycle; see the module docstring."""

    # -- pending recordings ---------------------------------------------------------------

    def add_recording(
        self,
        stream_id: int,
        *,
        run_offset: int,
        start_time_90k: Time,
        video_sample_entry_id: int,
    ) -> PendingRecording:
        """Reserves the stream's next recording id for a new, growing recording.

        The previous pending recording of the stream must be closed (done or synced).
        ``prev_*`` fields are derived from the stream's committed and pending recordings.
        """
        stream = self._stream(stream_id)
        if self.open_id is None:
            raise errors.FailedPrecondition("cannot record: the database is open read-only")
        if stream.sample_file_dir_id is None:
            raise errors.FailedPrecondition(f"stream {stream_id} has no sample file directory")
        if stream.pending and stream.pending[-1].state is PendingState.GROWING:
            raise errors.FailedPrecondition(f"stream {stream_id} already has a growing recording")
        if video_sample_entry_id not in self.video_sample_entries:
            raise errors.NotFound(f"no video sample entry {video_sample_entry_id}")
        prev_media = stream.cum_media_duration_90k + sum(
            p.media_duration_90k for p in stream.pending
        )
        prev_runs = stream.cum_runs + sum(1 for p in stream.pending if p.run_offset == 0)
        if run_offset > 0:
            prev_runs -= 1  # the run this recording continues began before it
        rec = PendingRecording(
            composite_id=composite_id(stream_id, stream.next_recording_id),
            open_id=self.open_id,
            start_time_90k=start_time_90k,
            wall_duration_90k=0,
            media_duration_90k=0,
            video_samples=0,
            video_sync_samples=0,
            video_sample_entry_id=video_sample_entry_id,
            sample_file_bytes=0,
            run_offset=run_offset,
            flags=0,
            prev_media_duration_90k=prev_media,
            prev_runs=prev_runs,
            local_time_since_open_90k=self._since_open(),
        )
        stream.pending.append(rec)
        return rec

    def abandon_recording(self, rec: PendingRecording) -> None:
        """Forgets a growing recording whose writer failed. Only the stream's newest
        pending recording can go; its id will be reused (the caller removed the file)."""
        stream = self._stream(rec.stream_id)
        if not stream.pending or stream.pending[-1] is not rec:
            raise errors.Internal(f"recording {rec.composite_id:016x} is not the newest pending")
        stream.pending.pop()
        self._forget_pending_motion(rec.composite_id)

    def mark_done(self, rec: PendingRecording) -> None:
        rec.state = PendingState.DONE

    def mark_synced(self, composite_id_: int) -> None:
        stream_id, _ = split_composite_id(composite_id_)
        for p in self._stream(stream_id).pending:
            if p.composite_id == composite_id_:
                if p.state is PendingState.GROWING:
                    raise errors.Internal(f"recording {composite_id_:016x} is still growing")
                p.state = PendingState.SYNCED
                return
        raise errors.NotFound(f"no pending recording {composite_id_:016x}")

    def uncommitted_floor(self, stream_id: int) -> int:
        """Recording ids >= this were never committed for the stream (start-up cleanup)."""
        return self._stream(stream_id).cum_recordings

    def has_unflushed_work(self) -> bool:
        """Whether ``flush`` would change anything now."""
        for s in self.streams.values():
            if s.planned_deletions or (s.pending and s.pending[0].state is PendingState.SYNCED):
                return True
        return any(d.garbage_unlinked for d in self.dirs.values())

    # -- planning deletions ---------------------------------------------------------------

    def plan_retention(self, stream_id: int) -> list[PlannedDeletion]:
        """Plans deletion of the stream's oldest unprotected committed recordings until
        its bytes (committed + pending − already planned) fit ``retain_bytes`` and nothing
        unprotected is older than ``retain_days``. Each recording is planned at most once;
        pending and protected recordings are never planned; planning stops at the oldest
        recording that a ``require_archived`` archive of the stream does not hold yet
        (then the free-space floor decides). When protected video alone exceeds
        ``retain_bytes`` (``RetentionStatus.over_budget``), the byte budget deletes
        nothing: no deletion could meet it, and what is around an incident is worth more
        than a budget that cannot hold (the free-space floor still guards the disk). The
        deletions are committed by the next ``flush``."""
        stream = self._stream(stream_id)
        cfg = stream.config
        status = self.refresh_retention_status(stream_id)
        excess = 0 if status.over_budget else (
            stream.bytes_after_planned_deletions - cfg.retain_bytes
        )
        oldest_allowed: Time | None = None
        if cfg.retain_days is not None:
            oldest_allowed = self._now() - cfg.retain_days * 86_400 * UNITS_PER_SEC

        def wanted(nbytes: int, end: Time) -> bool:
            nonlocal excess
            if excess > 0 or (oldest_allowed is not None and end < oldest_allowed):
                excess -= nbytes
                return True
            return False

        before = len(stream.planned_deletions)
        self._plan_until(stream, wanted, self._may_delete(stream_id))
        return stream.planned_deletions[before:]

    def plan_delete_all_recordings(self, stream_id: int) -> int:
        """Plans deletion of every committed recording of a stream (committed by the next
        ``flush``). Returns how many were planned. Refused while the stream's camera has
        active protected ranges."""
        stream = self._stream(stream_id)
        self._check_unprotected(stream)
        return self._plan_until(stream, lambda _bytes, _start: True)

    def _plan_until(
        self, stream: Stream, wanted: Callable[[int, Time], bool],
        may_delete: Callable[[int], bool] | None = None,
    ) -> int:
        """Plans the oldest unprotected recordings (after those already planned) while
        ``wanted(bytes, end)``; protected ones are skipped, not a reason to stop; stops at
        the first one ``may_delete`` refuses (deletions stay an oldest-first prefix of the
        unprotected ones)."""
        n = 0
        for deletion in self.iter_unplanned_oldest(stream.id):
            if not wanted(deletion.sample_file_bytes,
                          deletion.start_time_90k + deletion.wall_duration_90k):
                break
            if may_delete is not None and not may_delete(deletion.composite_id):
                break
            stream.planned_deletions.append(deletion)
            n += 1
        return n

    def iter_unplanned_oldest(
        self, stream_id: int, batch: int = 256
    ) -> Iterator[PlannedDeletion]:
        """The stream's unprotected committed recordings not yet planned for deletion,
        oldest first, read lazily in batches (``storage.retention`` picks among several
        streams'). Redaction pieces (a few, ids above the stream's counter) are merged in
        by start time."""
        stream = self._stream(stream_id)
        guard = self.protected_at(stream.camera_id)
        planned = {d.composite_id for d in stream.planned_deletions}
        with self._read("listing redaction pieces") as conn:
            pieces = [PlannedDeletion(*row) for row in raw.list_pieces_by_time(conn, stream.id)
                      if row[0] not in planned]
        for d in heapq.merge(self._iter_oldest(stream, batch), pieces,
                             key=lambda d: (d.start_time_90k, d.composite_id)):
            if not (guard and guard.overlaps(d.start_time_90k,
                                             d.start_time_90k + d.wall_duration_90k)):
                yield d

    def _iter_oldest(self, stream: Stream, batch: int) -> Iterator[PlannedDeletion]:
        after = stream.planned_through
        while True:
            with self._read("listing the oldest recordings") as conn:
                rows = list(
                    itertools.islice(raw.list_oldest_recordings(conn, stream.id, after), batch)
                )
            for cid, start, wall, nbytes in rows:
                yield PlannedDeletion(cid, start, wall, nbytes)
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def add_planned_deletions(self, stream_id: int, dels: list[PlannedDeletion]) -> None:
        """Plans these deletions (the oldest committed recordings after those already
        planned, in order; see ``iter_unplanned_oldest``), committed by the next flush."""
        stream = self._stream(stream_id)
        last = stream.planned_through
        planned = {d.composite_id for d in stream.planned_deletions}
        for d in dels:
            piece = split_composite_id(d.composite_id)[1] >= raw.PIECE_BASE
            if (d.composite_id >> raw.ID_BITS != stream_id or d.composite_id in planned
                    or (not piece and d.composite_id <= last)):
                raise errors.Internal(f"deletion of {d.composite_id:016x} planned out of order")
            planned.add(d.composite_id)
            if not piece:
                last = d.composite_id
        stream.planned_deletions.extend(dels)

    def mark_garbage_unlinked(self, dir_id: int, cids: list[int]) -> None:
        """The syncer unlinked these files and fsynced the directory: the next flush may
        delete their garbage rows."""
        d = self._dir(dir_id)
        for cid in cids:
            d.garbage_needs_unlink.discard(cid)
            d.garbage_unlinked.add(cid)

    # -- committing ------------------------------------------------------------------------

    def flush(self, reason: str) -> FlushResult:
        """Commits, in one transaction: every stream's synced pending recordings (a prefix
        of its pending list, in order), the planned deletions (rows to ``garbage``; the
        row and index of one an archive holds to ``archive_only_recording``), and
        forgets garbage whose files are gone. In-memory state changes only after the
        commit succeeded, so a failed flush can simply be retried."""
        to_commit: dict[int, list[PendingRecording]] = {}
        for s in self.streams.values():
            n = 0
            while n < len(s.pending) and s.pending[n].state is PendingState.SYNCED:
                n += 1
            if n:
                to_commit[s.id] = s.pending[:n]
        to_delete = {
            s.id: list(s.planned_deletions) for s in self.streams.values() if s.planned_deletions
        }
        to_forget = {
            d.id: sorted(d.garbage_unlinked) for d in self.dirs.values() if d.garbage_unlinked
        }
        new_counters: dict[int, tuple[int, int, int]] = {}
        # Writers summarize in a worker thread at close; recordings made otherwise (tests,
        # benchmarks) are summarized here.
        summaries = {
            r.composite_id: r.index_summary or summarize_index(r.video_index)
            for recs in to_commit.values() for r in recs
        }
        motion: list[tuple[int, Time, int]] = []
        gone_motion: list[tuple[int, tuple[int, int]]] = []
        kept: list[raw_archive.DayRec] = []  # archive-only from now on
        with self._transaction(f"flush ({reason})") as conn:
            for sid, recs in to_commit.items():
                s = self.streams[sid]
                cum_rec, cum_media = s.cum_recordings, s.cum_media_duration_90k
                cum_runs = s.cum_runs
                for r in recs:
                    if r.recording_id != cum_rec:
                        raise errors.Internal(
                            f"recording {r.composite_id:016x} out of order (expected id {cum_rec})"
                        )
                    raw.insert_recording(conn, r.to_row(summaries[r.composite_id]))
                    inserted = self._insert_pending_motion(conn, r.composite_id, r.start_time_90k)
                    if inserted is not None:
                        motion.append(inserted)
                    cum_rec += 1
                    cum_media += r.media_duration_90k
                    cum_runs += r.run_offset == 0
                raw.update_stream_counters(conn, sid, cum_rec, cum_media, cum_runs)
                raw.add_recording_days(conn, sid, day_rows(day_deltas(
                    ((r.start_time_90k, r.wall_duration_90k, r.sample_file_bytes) for r in recs),
                    self.tz)))
                new_counters[sid] = (cum_rec, cum_media, cum_runs)
            for sid, dels in to_delete.items():
                dir_id = self.streams[sid].sample_file_dir_id
                assert dir_id is not None
                for d in dels:
                    seen = raw_motion.motion_seconds_of(conn, d.composite_id)
                    if seen is not None:
                        gone_motion.append((sid, seen))
                    # an archived recording stays listed and playable from the archive
                    if raw_archive.keep_if_archived(conn, d.composite_id):
                        kept.append((sid, d.start_time_90k, d.wall_duration_90k,
                                     d.sample_file_bytes))
                    raw.move_recording_to_garbage(conn, dir_id, d.composite_id)
                raw.subtract_recording_days(conn, sid, day_rows(day_deltas(
                    ((d.start_time_90k, d.wall_duration_90k, d.sample_file_bytes) for d in dels),
                    self.tz)))
            raw_archive.change_archive_only_days(conn, kept, self.tz, 1)
            for dir_id, cids in to_forget.items():
                for cid in cids:
                    raw.delete_garbage(conn, dir_id, cid)
            motion_hours = [
                *(self._motion_hour(cid >> raw.ID_BITS, start, n) for cid, start, n in motion),
                *(self._motion_hour(sid, start, -n) for sid, (start, n) in gone_motion)]
            raw_motion.add_motion_hours(conn, motion_hours)
            if self.open_id is not None:
                raw.update_open(conn, self.open_id, self._now(), self._since_open())
        # Committed: now update memory.
        for sid, start, wall, nbytes in kept:
            self.streams[sid].archive_only.add(start, wall, nbytes, self.tz)
        self._committed_motion(motion)
        self._count_motion(motion_hours)
        for sid, recs in to_commit.items():
            s = self.streams[sid]
            s.cum_recordings, s.cum_media_duration_90k, s.cum_runs = new_counters[sid]
            del s.pending[: len(recs)]
            for r in recs:
                s.committed.add(r.start_time_90k, r.wall_duration_90k, r.sample_file_bytes, self.tz)
            self._committed_recordings(sid, [
                (r.composite_id, r.start_time_90k, r.wall_duration_90k, r.sample_file_bytes)
                for r in recs])
        for sid, dels in to_delete.items():
            self._forget_deleted(self.streams[sid], dels)
            self._count_unarchived_deletions(sid, [d.composite_id for d in dels])
        for dir_id, cids in to_forget.items():
            self.dirs[dir_id].garbage_unlinked.difference_update(cids)
        self.flush_count += 1
        result = FlushResult(
            sum(map(len, to_commit.values())),
            sum(map(len, to_delete.values())),
            sum(map(len, to_forget.values())),
        )
        log.debug("flush (%s): %s", reason, result)
        for listener in list(self.flush_listeners):
            listener()
        return result

    def _forget_deleted(self, s: Stream, dels: list[PlannedDeletion]) -> None:
        """After a flush moved ``dels`` (the first planned deletions) to garbage: out of
        the plan and the summary, into the directory's garbage to unlink."""
        del s.planned_deletions[: len(dels)]
        assert s.sample_file_dir_id is not None
        dir_row = self.dirs[s.sample_file_dir_id]
        for d in dels:
            s.committed.remove(d.start_time_90k, d.wall_duration_90k, d.sample_file_bytes, self.tz)
            dir_row.garbage_needs_unlink.add(d.composite_id)
        dir_row.deleted_recordings += len(dels)
        dir_row.deleted_bytes += sum(d.sample_file_bytes for d in dels)
        with self._read("reading a stream's time range") as conn:
            s.committed.range_start, s.committed.range_end = raw.recording_time_range(
                conn, s.id, MAX_RECORDING_WALL_DURATION)

    def replace_recording(self, old: ListedRecording, pieces: list[raw.RecordingRow]) -> None:
        """Commits a redaction's cut of ``old`` (``nvr.storage.redact``), in one
        transaction: the pieces' rows (their files written and fsynced, the directory too)
        and ``old``'s row moved to ``garbage``, so its file goes the normal garbage way.
        Without pieces it is the deletion of a recording wholly redacted. Refused for a
        recording planned for deletion (the next flush deletes it anyway)."""
        stream = self._stream(old.stream_id)
        if any(d.composite_id == old.composite_id for d in stream.planned_deletions):
            raise errors.FailedPrecondition(
                f"recording {old.composite_id:016x} is planned for deletion")
        dir_id = stream.sample_file_dir_id
        assert dir_id is not None
        with self._transaction(f"cutting redacted recording {old.composite_id:016x}") as conn:
            seen = raw_motion.motion_seconds_of(conn, old.composite_id)
            for p in pieces:
                raw.insert_recording(conn, p)
            raw.move_recording_to_garbage(conn, dir_id, old.composite_id)
            raw.subtract_recording_days(conn, stream.id, day_rows(day_deltas(
                [(old.start_time_90k, old.wall_duration_90k, old.sample_file_bytes)], self.tz)))
            raw.add_recording_days(conn, stream.id, day_rows(day_deltas(
                [(p.start_time_90k, p.wall_duration_90k, p.sample_file_bytes) for p in pieces],
                self.tz)))
            motion_hours = [] if seen is None else [
                self._motion_hour(stream.id, seen[0], -seen[1])]
            raw_motion.add_motion_hours(conn, motion_hours)
        self._count_motion(motion_hours)
        stream.committed.remove(old.start_time_90k, old.wall_duration_90k,
                                old.sample_file_bytes, self.tz)
        for p in pieces:
            stream.committed.add(p.start_time_90k, p.wall_duration_90k, p.sample_file_bytes,
                                 self.tz)
        self.dirs[dir_id].garbage_needs_unlink.add(old.composite_id)
        self._count_unarchived_deletions(stream.id, [old.composite_id])
        self._committed_recordings(stream.id, [
            (p.composite_id, p.start_time_90k, p.wall_duration_90k, p.sample_file_bytes)
            for p in pieces])
        with self._read("reading a stream's time range") as conn:
            stream.committed.range_start, stream.committed.range_end = (
                raw.recording_time_range(conn, stream.id, MAX_RECORDING_WALL_DURATION))

    def delete_recording_rows(self, cids: list[int]) -> None:
        """Deletes committed recordings whose sample files are lost, in one transaction
        (``nvr check --delete-orphan-rows``). In-memory summaries are not updated: the
        caller closes the database afterwards; the per-day (and per-hour motion, per-day
        signal) totals are dropped, so the next open builds them again."""
        with self._transaction(f"deleting {len(cids)} recordings without files") as conn:
            for cid in cids:
                raw.delete_recording(conn, cid)
            raw.replace_recording_days(conn, None, [])
            raw_motion.set_event_total_zone(conn, None)
