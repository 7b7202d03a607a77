"""``DatabaseCore``: the state and helpers every part of ``Database`` shares.

What belongs here: the open connection and its lock, the in-memory catalog (cameras,
streams, directories, sample entries) that the mixins read and change, the transaction
and read helpers, lookups that raise ``NotFound``, and closing. Not here: any operation
of its own (those are in ``catalog``, ``lifecycle`` and ``reads``), opening (``database``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path

from nvr.base import errors
from nvr.base.time90k import Duration, Time
from nvr.db import raw, raw_motion
from nvr.db.connection import timed_read, transaction
from nvr.db.recording import VideoSampleEntry
from nvr.db.types import Camera, ProtectedRange, SampleFileDirRow, Stream


class DatabaseCore:
    """What the ``Database`` mixins share; see the module docstring."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        lock_fd: int,
        *,
        db_dir: Path,
        read_only: bool,
        tz: dt.tzinfo,
        now: Callable[[], Time],
        monotonic: Callable[[], Duration] | None,
    ) -> None:
        self._conn = conn
        self._lock_fd = lock_fd
        self.db_dir = db_dir
        self.read_only = read_only
        self.tz = tz
        self._now = now
        self._monotonic = monotonic
        self._open_monotonic = monotonic() if monotonic else 0
        self.uuid = uuidlib.UUID(bytes=raw.get_meta_uuid(conn))
        self.open_id: int | None = None
        self.open_uuid: uuidlib.UUID | None = None
        self.cameras: dict[int, Camera] = {}
        self.streams: dict[int, Stream] = {}
        self.dirs: dict[int, SampleFileDirRow] = {}
        self.video_sample_entries: dict[int, VideoSampleEntry] = {}
        self._entry_ids: dict[bytes, int] = {}
        #: camera id -> its protected ranges not removed (expired ones pruned lazily)
        self.protected: dict[int, list[ProtectedRange]] = {}
        #: called after a protected range was added or removed (syncers re-plan retention)
        self.protection_listeners: list[Callable[[], None]] = []
        #: called after a tombstone committed (the syncers remove its bytes; the
        #: archives' uploaders write it to their archives)
        self.redaction_listeners: list[Callable[[], None]] = []
        #: called after every successful flush (syncers wake up to unlink new garbage)
        self.flush_listeners: list[Callable[[], None]] = []
        self.flush_count = 0
        #: motion summaries of pending recordings, inserted when they are committed
        self.pending_motion: dict[int, raw_motion.MotionRow] = {}
        #: per stream read so far: (local day, local hour) -> seconds with motion (``db.motion``)
        self.motion_hours: dict[int, dict[tuple[str, int], int]] = {}
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.close()
        finally:
            os.close(self._lock_fd)

    def _transaction(self, what: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn, what, read_only=self.read_only)

    def _read(self, what: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return timed_read(self._conn, what)

    def _since_open(self) -> Duration:
        """Monotonic time since this open (0 without a monotonic clock)."""
        return self._monotonic() - self._open_monotonic if self._monotonic else 0

    def _camera(self, camera_id: int) -> Camera:
        try:
            return self.cameras[camera_id]
        except KeyError:
            raise errors.NotFound(f"no camera with id {camera_id}") from None

    def _stream(self, stream_id: int) -> Stream:
        try:
            return self.streams[stream_id]
        except KeyError:
            raise errors.NotFound(f"no stream with id {stream_id}") from None

    def _forget_camera_signals(self, camera_id: int) -> None:
        """After a camera was deleted: its signals' ties to it go (``signals`` does it)."""

    def _may_delete(self, stream_id: int) -> Callable[[int], bool] | None:
        """For budget retention: which of the stream's recordings may be deleted now
        (None: any). ``archives`` holds back those not yet in a ``require_archived``
        archive."""
        return None

    def _count_unarchived_deletions(self, stream_id: int, cids: list[int]) -> None:
        """Told of deletions just committed (``archives`` counts what was never
        archived)."""

    def _forget_stream_archives(self, stream_id: int) -> None:
        """After a stream was deleted: archives stop copying it (``archives`` does it)."""

    def _committed_recordings(self, stream_id: int, recs: list[tuple[int, Time, int, int]]) -> None:
        """Told of recordings just committed, as (composite id, start, wall duration,
        bytes) (``archives`` adds them to its backlogs)."""

    def _redaction_added(self) -> None:
        """Told that a redaction was committed (``archives`` recounts its backlogs)."""

    def _delete_stream_redactions(self, conn: sqlite3.Connection, stream_id: int) -> None:
        """Inside the transaction deleting a stream: its tombstones go (``redactions``
        does it, logging each)."""

    def is_hidden(self, stream_id: int, start: Time, end: Time) -> bool:
        """Whether a redaction hides anything of ``[start, end)`` (``redactions``)."""
        return False

    def _dir(self, dir_id: int) -> SampleFileDirRow:
        try:
            return self.dirs[dir_id]
        except KeyError:
            raise errors.NotFound(f"no sample file directory with id {dir_id}") from None
