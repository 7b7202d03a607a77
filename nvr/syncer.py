"""The syncer: one task per sample-file directory that makes recordings durable.

Writers hand finished recordings to their directory's syncer, in order (``submit``).
Each iteration (``run_once``) of the syncer:

1. fsyncs every newly received recording's file, then the directory, marks them synced
   and plans retention for their streams (oldest committed recordings beyond
   ``retain_bytes``/``retain_days``, counting pending bytes);
2. schedules a flush for each at ``now + flush_if_sec`` (a heap of deadlines); when the
   earliest deadline has come it calls ``Database.flush``, which commits every synced
   recording of the whole database and the planned deletions in one transaction, so
   there is one commit per flush window however many streams there are;
3. after a flush, deletes signal changes older than the oldest recording of the cameras
   each signal is tied to (``Database.prune_signal_changes``, bounded per call);
4. unlinks this directory's garbage, fsyncs the directory and lets the next flush forget
   the garbage rows.

With a free-space floor (``min_free``), each pass (and at least every
``FREE_CHECK_INTERVAL``) also measures the filesystem's free space (``free_bytes``,
injectable; by default ``statvfs`` of the directory) and, when it is below the floor,
plans deletion of the directory's oldest video (``storage.retention``) and flushes at
once, so the files go before the disk fills.

Any failing step is retried, forever and in order (nothing is skipped or reordered),
with capped exponential backoff. The first failure of each kind is logged, then at most
once a minute per kind; ``status`` says whether the syncer is healthy or retrying since
when and why; ``busy_since`` says since when the current pass has been running (the
watchdog's "stuck" test), and ``on_commit`` (if set) is told how long each flush took,
retries included (metrics). When the queue of received recordings is full, ``submit``
blocks, so a stuck directory stops its streams instead of growing memory without bound.

Protected ranges (``nvr.db.protection``): when one is added or removed, and at the
wall time an active one expires, the syncer re-plans retention for its streams and
flushes at once, so released recordings go exactly then. A stream whose protected video
alone exceeds ``retain_bytes`` is logged (a warning, at most once a minute per stream).

Redactions (``nvr.db.redactions``, ``nvr.storage.redact``): at start, when a tombstone
commits and after every flush, the syncer looks for committed recordings a tombstone hides
and removes their redacted frames, one recording at a time, in this order: write each
surviving piece as a new sample file (never the old one changed) and fsync it, fsync the
directory, then commit the pieces' rows and the old row's move to ``garbage`` in one
transaction (``Database.replace_recording``), then unlink the old file by the garbage path
of the same pass. A crash before the commit leaves the old recording (hidden by its
tombstone since that committed) and piece files with no row, which start-up removes; after
it, the pieces and the old file in garbage. A recording wholly redacted has no piece: its
row goes to garbage alone. A failing cut is logged (at most once a minute) and retried
after ``REDACT_RETRY`` without holding up commits.

On cancellation the syncer performs a final, shielded, time-bounded pass: everything
already received is fsynced and committed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import trio
import trio_util

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC, Duration, Time, format_duration
from nvr.db.database import Database
from nvr.db.stream_summary import fs_bytes
from nvr.db.types import ListedRecording, PendingRecording
from nvr.storage import retention
from nvr.storage.dir import SampleFileDir
from nvr.storage.redact import plan_cut, write_piece

log = logging.getLogger(__name__)

T = TypeVar("T")

LOG_INTERVAL: Duration = 60 * UNITS_PER_SEC
#: with a free-space floor, free space is measured at least this often
FREE_CHECK_INTERVAL: Duration = 5 * UNITS_PER_SEC
#: a failed redaction cut is tried again after this long
REDACT_RETRY: Duration = 60 * UNITS_PER_SEC


@dataclass(frozen=True, slots=True)
class SyncerStatus:
    """What the syncer is doing, for ``/api/``, metrics and the watchdog."""

    failing_step: str | None = None  # None: healthy
    failing_since: Time | None = None  # wall time of the first failure of this streak
    last_error: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.failing_step is None


@dataclass(slots=True)
class _LogLimiter:
    last_logged: Duration
    suppressed: int = 0


class Syncer:
    """The syncer of one sample-file directory. See the module docstring."""

    def __init__(
        self,
        db: Database,
        dir_id: int,
        sdir: SampleFileDir,
        clocks: Clocks,
        *,
        queue_size: int = 32,
        initial_backoff: Duration = UNITS_PER_SEC,
        max_backoff: Duration = 60 * UNITS_PER_SEC,
        final_flush_timeout: Duration = 30 * UNITS_PER_SEC,
        min_free: int = 0,
        free_bytes: Callable[[], int] | None = None,
    ) -> None:
        self._db = db
        self.dir_id = dir_id
        self._sdir = sdir
        self._clocks = clocks
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._final_flush_timeout = final_flush_timeout
        self._send, self._recv = trio.open_memory_channel[PendingRecording](queue_size)
        self._poke = trio.Event()
        self._unsynced: list[PendingRecording] = []  # received, not yet fsynced
        self._heap: list[tuple[Duration, int]] = []  # (flush deadline, composite id)
        self._log_limits: dict[str, _LogLimiter] = {}
        self.status = trio_util.AsyncValue(SyncerStatus())
        self.commits = 0  # flushes this syncer performed
        #: monotonic time the running pass began (None: waiting for work)
        self.busy_since: Duration | None = None
        #: called after each flush with how long it took, retries included
        self.on_commit: Callable[[Duration], None] | None = None
        self.min_free = min_free
        self._free_bytes = free_bytes or self._statvfs_free
        self._next_free_check: Duration = 0
        #: bytes free at the last measurement (None: not measured yet)
        self.last_free_bytes: int | None = None
        #: a protected range was added or removed: re-plan retention on the next pass
        self._replan = False
        #: the wall time the next protected range expires at (None: none will)
        self._next_expiry: Time | None = db.next_protection_expiry()
        #: look for recordings a tombstone hides (at start, after a flush or a tombstone)
        self._redact_due = True
        self._redact_retry_at: Duration = 0
        db.flush_listeners.append(self._poke_now)
        db.protection_listeners.append(self._protection_changed)
        db.redaction_listeners.append(self._poke_now)

    @property
    def path(self) -> str:
        return str(self._sdir.path)

    def detach(self) -> None:
        """Stops listening to the database's flushes (once ``run`` has ended, before the
        directory is removed)."""
        if self._poke_now in self._db.flush_listeners:
            self._db.flush_listeners.remove(self._poke_now)
        if self._poke_now in self._db.redaction_listeners:
            self._db.redaction_listeners.remove(self._poke_now)

    def _statvfs_free(self) -> int:
        st = self._sdir.statvfs()
        return st.f_bavail * st.f_frsize

    def _poke_now(self) -> None:
        # after a flush (or a new tombstone): a committed recording may need cutting
        if self._db.has_redactions():
            self._redact_due = True
        self._poke.set()

    def _protection_changed(self) -> None:
        self._replan = True
        self._poke.set()

    def _expiry_deadline(self) -> Duration | None:
        """The monotonic time of the next protected range's expiry, if any."""
        expiry = self._next_expiry
        if expiry is None:
            return None
        return self._clocks.monotonic() + max(0, expiry - self._clocks.realtime())

    @property
    def queued(self) -> int:
        return self._send.statistics().current_buffer_used

    async def submit(self, rec: PendingRecording) -> None:
        """Queues a finished recording (called by writers, in order). Blocks while the
        queue is full, i.e. while this directory cannot keep up."""
        await self._send.send(rec)
        self._poke.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Runs passes as work comes until cancelled; reports started at once.

        Cancellation ends the running pass where it is (nothing it already did is
        undone: received recordings stay queued until marked synced), then a final pass
        runs shielded, for at most ``final_flush_timeout``: every recording already
        received is fsynced and committed, planned deletions too, and garbage unlinked.
        If that pass does not finish in time, what stays uncommitted is logged (start-up
        cleans it up). Either way the cancellation then goes on."""
        task_status.started()
        try:
            while True:
                await self._wait_for_work()
                self.busy_since = self._clocks.monotonic()
                await self.run_once()
                self.busy_since = None
        finally:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = self._clocks.deadline_after(self._final_flush_timeout)
                await self._final_flush()
            if scope.cancelled_caught:
                log.error(
                    "%s: final flush did not finish within %s; %d recordings stay uncommitted",
                    self._sdir.path, format_duration(self._final_flush_timeout),
                    sum(1 for s in self._db.streams_in_dir(self.dir_id) for _ in s.pending),
                )

    def next_deadline(self) -> Duration | None:
        """The monotonic time of the next planned flush, if any."""
        self._prune_heap()
        return self._heap[0][0] if self._heap else None

    async def _wait_for_work(self) -> None:
        deadline = self.next_deadline()
        for other in (self._next_free_check if self.min_free > 0 else None,
                      self._expiry_deadline(),
                      self._redact_retry_at if self._redact_due else None):
            if other is not None:
                deadline = other if deadline is None else min(deadline, other)
        if self._has_work_now(deadline):
            return
        at = math.inf if deadline is None else self._clocks.deadline_at(deadline)
        with trio.move_on_at(at):
            await self._poke.wait()

    def _has_work_now(self, deadline: Duration | None) -> bool:
        return (
            self.queued > 0
            or bool(self._unsynced)
            or bool(self._db.dirs[self.dir_id].garbage_needs_unlink)
            or self._replan
            or (self._redact_due and self._redact_retry_at <= self._clocks.monotonic())
            or (self._next_expiry is not None and self._next_expiry <= self._clocks.realtime())
            or (deadline is not None and deadline <= self._clocks.monotonic())
        )

    async def run_once(self) -> None:
        """One pass: sync what was received, flush if a deadline has come, unlink garbage."""
        self._poke = trio.Event()
        await self._sync_received()
        if self._replan_retention():
            await self._flush("protection changed or expired")
        deadline = self.next_deadline()
        if deadline is not None and deadline <= self._clocks.monotonic():
            await self._flush("flush deadline")
        await self._remove_redacted()
        await self._unlink_garbage()
        # After the unlinks, so free space already counts every file in garbage.
        if await self._keep_free_space():
            await self._flush("free-space floor")
            await self._unlink_garbage()

    def _replan_retention(self) -> bool:
        """After a protection change, or once an expiry has come: plans retention for
        every stream of the directory. Returns whether it planned any deletion."""
        expiry = self._next_expiry
        if not self._replan and (expiry is None or expiry > self._clocks.realtime()):
            return False
        self._replan = False
        self._next_expiry = self._db.next_protection_expiry()
        planned = False
        for s in self._db.streams_in_dir(self.dir_id):
            planned |= bool(self._db.plan_retention(s.id))
            self._note_over_budget(s.id)
        return planned

    def _note_over_budget(self, stream_id: int) -> None:
        st = self._db.streams[stream_id].retention
        if st is None or not st.over_budget:
            return
        stream = self._db.streams[stream_id]
        self._log_limited(
            f"over budget {stream_id}", logging.WARNING,
            "camera %s stream %s: %d bytes of protected video exceed its retain_bytes of "
            "%d: retention deletes none of its video for its size until protection is "
            "removed or expires or the budget grows",
            self._db.cameras[stream.camera_id].short_name, stream.type,
            st.protected_bytes, st.retain_bytes,
        )

    async def _keep_free_space(self) -> bool:
        """Measures free space (with a floor configured); plans deletions when it is
        below the floor. Returns whether it planned any."""
        if self.min_free <= 0:
            return False
        self._next_free_check = self._clocks.monotonic() + FREE_CHECK_INTERVAL
        free = await self._retry("statvfs", self._blocking(self._free_bytes))
        self.last_free_bytes = free
        need = retention.free_space_deficit(self._db, self.dir_id, free, self.min_free)
        if need <= 0:
            return False
        planned = retention.plan_free_space(self._db, self.dir_id, need)
        freed = sum(fs_bytes(d.sample_file_bytes) for d in planned)
        if freed < need:
            self._log_limited(
                "free space", logging.WARNING,
                "%s: %d bytes free, below the floor of %d, and only %d bytes of unprotected "
                "video left to delete", self._sdir.path, free, self.min_free, freed,
            )
        elif planned:
            self._log_limited(
                "free-space deletions", logging.INFO,
                "%s: %d bytes free, below the floor of %d: deleting the %d oldest recordings",
                self._sdir.path, free, self.min_free, len(planned),
            )
        return bool(planned)

    async def _sync_received(self) -> None:
        # Received recordings stay in ``_unsynced`` until marked synced, so a pass
        # cancelled half-way is redone (fsync twice is harmless) by the final flush.
        while True:
            try:
                self._unsynced.append(self._recv.receive_nowait())
            except trio.WouldBlock:
                break
        if not self._unsynced:
            return
        for rec in self._unsynced:
            await self._retry("fsync file", self._blocking(self._sdir.sync_file, rec.composite_id))
        await self._retry("fsync directory", self._blocking(self._sdir.sync))
        now = self._clocks.monotonic()
        received, self._unsynced = self._unsynced, []
        for rec in received:
            self._db.mark_synced(rec.composite_id)
            stream = self._db.streams[rec.stream_id]
            self._db.plan_retention(rec.stream_id)
            self._note_over_budget(rec.stream_id)
            deadline = now + stream.config.flush_if_sec * UNITS_PER_SEC
            heapq.heappush(self._heap, (deadline, rec.composite_id))

    async def _flush(self, reason: str) -> None:
        async def flush() -> None:
            await trio.lowlevel.checkpoint()
            self._db.flush(reason)

        async def prune_signals() -> None:
            await trio.lowlevel.checkpoint()
            self._db.prune_signal_changes()

        started = self._clocks.monotonic()
        await self._retry("commit", flush)
        self.commits += 1
        if self.on_commit is not None:
            self.on_commit(self._clocks.monotonic() - started)
        self._prune_heap()
        # retention of signals follows the recordings' (a no-op unless some flush deleted
        # the oldest recording of a signal's cameras; bounded per call)
        await self._retry("prune signals", prune_signals)

    def _prune_heap(self) -> None:
        """Drops deadlines of recordings some flush has already committed."""
        pending = {
            p.composite_id for s in self._db.streams_in_dir(self.dir_id) for p in s.pending
        }
        if all(cid in pending for _, cid in self._heap):
            return
        self._heap = [e for e in self._heap if e[1] in pending]
        heapq.heapify(self._heap)

    async def _unlink_garbage(self) -> None:
        garbage = sorted(self._db.dirs[self.dir_id].garbage_needs_unlink)
        if not garbage:
            return
        for cid in garbage:
            await self._retry("unlink", self._blocking(self._sdir.unlink, cid))
        await self._retry("fsync directory", self._blocking(self._sdir.sync))
        self._db.mark_garbage_unlinked(self.dir_id, garbage)

    async def _remove_redacted(self) -> None:
        """Cuts or deletes every committed recording a tombstone hides (see the module
        docstring); on a failure, tries again after ``REDACT_RETRY``."""
        if not self._redact_due or self._redact_retry_at > self._clocks.monotonic():
            return
        self._redact_due = False
        for rec in self._db.redaction_work(self.dir_id):
            try:
                await self._cut(rec)
            except errors.NvrError as e:
                self._redact_due = True
                self._redact_retry_at = self._clocks.monotonic() + REDACT_RETRY
                self._log_limited(
                    "redaction", logging.ERROR,
                    "%s: removing the redacted frames of recording %016x failed, will retry "
                    "in %s: %s", self._sdir.path, rec.composite_id,
                    format_duration(REDACT_RETRY), e,
                )
                return

    async def _cut(self, rec: ListedRecording) -> None:
        db = self._db
        assert db.open_id is not None
        tombstones = db.redactions_overlapping(rec.stream_id, rec.start_time_90k,
                                               rec.end_time_90k)
        pieces = await run_blocking(plan_cut, rec, db.get_video_index(rec.composite_id),
                                    tombstones, db.open_id)
        for p in pieces:
            if db.composite_id_in_use(p.row.composite_id):
                raise errors.FailedPrecondition(
                    f"its piece's id {p.row.composite_id:016x} is taken (recordings "
                    "overlapping in time?): it stays hidden whole")
        rows = []
        try:
            for p in pieces:
                sha = await run_blocking(write_piece, self._sdir, rec.composite_id, p)
                rows.append(dataclasses.replace(p.row, sample_file_sha256=sha))
            if pieces:
                await run_blocking(self._sdir.sync)
            db.replace_recording(rec, rows)
        except errors.NvrError:
            for p in pieces:  # never committed: no row names them (best effort)
                with contextlib.suppress(errors.NvrError):
                    await run_blocking(self._sdir.unlink, p.row.composite_id)
            raise
        kept = sum(r.video_samples for r in rows)
        log.info("%s: recording %016x cut by a redaction: %d of its %d frames kept in %d "
                 "new recordings, its file goes", self._sdir.path, rec.composite_id, kept,
                 rec.video_samples, len(rows))

    async def _final_flush(self) -> None:
        await self._sync_received()
        if self._db.has_unflushed_work():
            await self._flush("shutdown")
        await self._unlink_garbage()

    @staticmethod
    def _blocking(fn: Callable[..., T], *args: object) -> Callable[[], Awaitable[T]]:
        return lambda: run_blocking(fn, *args)

    # -- retrying --------------------------------------------------------------------------

    async def _retry(self, step: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Runs ``fn`` until it succeeds, sleeping with capped exponential backoff after
        each ``NvrError``. Only ``NvrError`` is retried: anything else is a bug."""
        attempt = 0
        while True:
            try:
                result = await fn()
            except errors.NvrError as e:
                attempt += 1
                self._failed(step, e, attempt)
                backoff = min(self._initial_backoff << min(attempt - 1, 30), self._max_backoff)
                await self._clocks.sleep(backoff)
                continue
            if attempt:
                self._recovered(step, attempt)
            return result

    def _failed(self, step: str, e: errors.NvrError, attempt: int) -> None:
        prev = self.status.value
        since = prev.failing_since if prev.failing_step == step else self._clocks.realtime()
        self.status.value = SyncerStatus(step, since, str(e), attempt)
        self._log_limited(
            step, logging.ERROR, "%s: %s failed (attempt %d), will retry: %s",
            self._sdir.path, step, attempt, e,
        )

    def _recovered(self, step: str, attempts: int) -> None:
        self.status.value = SyncerStatus()
        self._log_limited(
            step, logging.WARNING, "%s: %s succeeded after %d failed attempts",
            self._sdir.path, step, attempts,
        )

    def _log_limited(self, step: str, level: int, msg: str, *args: object) -> None:
        """Logs at most once a minute per step; says how many lines were held back."""
        now = self._clocks.monotonic()
        limit = self._log_limits.get(step)
        if limit is not None and now - limit.last_logged < LOG_INTERVAL:
            limit.suppressed += 1
            return
        suppressed = 0 if limit is None else limit.suppressed
        if suppressed:
            msg += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        log.log(level, msg, *args)
        self._log_limits[step] = _LogLimiter(now)
