"""The database: a synchronous API over SQLite plus the in-memory state around it.

What lives here:
- creating, locking (``flock`` on the database directory) and opening the database, and
  the schema-version check;
- cameras, streams, sample-file directories and video sample entries, cached in memory;
- recordings not yet committed ("pending"), owned by their writers while they grow and
  then by their directory's syncer; readers see them together with committed ones;
- ``flush()``: one transaction that commits every synced pending recording of every
  stream, moves planned deletions to ``garbage`` and forgets unlinked garbage;
- per-stream summaries (time range, duration, bytes, per-day totals in the configured
  IANA zone), built by one scan at open and kept current on every commit and delete, so
  the API never scans the recording table.

Everything runs in the trio thread (DESIGN.md §4): calls are short; any call over 100 ms
is logged. SQLite errors are mapped to ``NvrError`` kinds here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import fcntl
import itertools
import json
import logging
import os
import sqlite3
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nvr.base import errors
from nvr.base.clock import Stopwatch
from nvr.base.time90k import UNITS_PER_SEC, Duration, Time, from_datetime, to_datetime
from nvr.db import raw
from nvr.db.frames_summary import FramesSummary, summarize_index
from nvr.db.raw import SCHEMA_VERSION, RecordingRow, composite_id, split_composite_id
from nvr.db.recording import VideoSampleEntry

log = logging.getLogger(__name__)

DB_FILE = "db"
SLOW_MS = 100.0
MAX_RECORDING_WALL_DURATION: Duration = 5 * 60 * UNITS_PER_SEC
FLAG_TRAILING_ZERO = 1
STREAM_TYPES = ("main", "sub", "ext")
STREAM_MODES = ("record", "live", "off")


# ----------------------------------------------------------------------------- config types


@dataclass(slots=True)
class CameraConfig:
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    onvif_url: str | None = None

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, text: str) -> CameraConfig:
        d = json.loads(text)
        return cls(d.get("username"), d.get("password"), d.get("onvif_url"))


@dataclass(slots=True)
class StreamConfig:
    url: str = ""
    mode: str = "record"
    retain_bytes: int = 0
    retain_days: int | None = None
    flush_if_sec: int = 60
    rtsp_transport: str = "tcp"

    def validate(self) -> None:
        if self.mode not in STREAM_MODES:
            raise errors.InvalidArgument(f"stream mode must be one of {', '.join(STREAM_MODES)}")
        if self.retain_bytes < 0:
            raise errors.InvalidArgument("retain_bytes must be >= 0")
        if self.retain_days is not None and self.retain_days <= 0:
            raise errors.InvalidArgument("retain_days must be > 0")
        if self.flush_if_sec < 0:
            raise errors.InvalidArgument("flush_if_sec must be >= 0")
        if self.rtsp_transport not in ("tcp", "udp"):
            raise errors.InvalidArgument("rtsp_transport must be tcp or udp")

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, text: str) -> StreamConfig:
        d = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ----------------------------------------------------------------------------- state types


@dataclass(slots=True)
class Camera:
    id: int
    uuid: uuidlib.UUID
    short_name: str
    description: str
    config: CameraConfig
    streams: dict[str, int] = field(default_factory=dict)  # type -> stream id


@dataclass(slots=True)
class SampleFileDirRow:
    """A ``sample_file_dir`` row plus the garbage bookkeeping of its syncer."""

    id: int
    path: str
    uuid: uuidlib.UUID
    last_complete_open_id: int | None
    #: composite ids in ``garbage`` whose files still have to be unlinked
    garbage_needs_unlink: set[int] = field(default_factory=set)
    #: composite ids whose files are unlinked (and the dir fsynced): rows go at next flush
    garbage_unlinked: set[int] = field(default_factory=set)
    #: recordings (and their sample file bytes) moved to garbage since the database was
    #: opened: retention's work, for metrics
    deleted_recordings: int = 0
    deleted_bytes: int = 0


class PendingState(enum.Enum):
    GROWING = "growing"  # its writer is still adding frames
    DONE = "done"  # the writer closed it; the file holds every byte
    SYNCED = "synced"  # the syncer fsynced file and directory; ready to commit


@dataclass(slots=True, eq=False)
class PendingRecording:
    """A recording that is not committed yet. Its writer fills the media fields while
    it grows; the syncer marks it synced; ``Database.flush`` commits it."""

    composite_id: int
    open_id: int
    run_offset: int
    start_time_90k: Time
    prev_media_duration_90k: Duration
    prev_runs: int
    video_sample_entry_id: int
    local_time_since_open_90k: Duration
    flags: int = 0
    sample_file_bytes: int = 0
    media_duration_90k: Duration = 0
    wall_duration_90k: Duration = 0
    video_samples: int = 0
    video_sync_samples: int = 0
    video_index: bytes = b""
    end_reason: str | None = None
    local_time_delta_90k: Duration = 0
    wall_time_delta_90k: Duration = 0
    sample_file_sha256: bytes | None = None
    #: the whole index's summary: set by the writer once the index is final
    index_summary: FramesSummary | None = None
    state: PendingState = PendingState.GROWING

    @property
    def stream_id(self) -> int:
        return self.composite_id >> raw.ID_BITS

    @property
    def recording_id(self) -> int:
        return split_composite_id(self.composite_id)[1]

    @property
    def end_time_90k(self) -> Time:
        return self.start_time_90k + self.wall_duration_90k

    def to_row(self, summary: FramesSummary) -> RecordingRow:
        return RecordingRow(
            composite_id=self.composite_id,
            open_id=self.open_id,
            run_offset=self.run_offset,
            flags=self.flags,
            sample_file_bytes=self.sample_file_bytes,
            start_time_90k=self.start_time_90k,
            prev_media_duration_90k=self.prev_media_duration_90k,
            prev_runs=self.prev_runs,
            wall_duration_90k=self.wall_duration_90k,
            media_duration_delta_90k=self.media_duration_90k - self.wall_duration_90k,
            video_samples=self.video_samples,
            video_sync_samples=self.video_sync_samples,
            video_sample_entry_id=self.video_sample_entry_id,
            end_reason=self.end_reason,
            local_time_delta_90k=self.local_time_delta_90k,
            local_time_since_open_90k=self.local_time_since_open_90k,
            wall_time_delta_90k=self.wall_time_delta_90k,
            sample_file_sha256=self.sample_file_sha256,
            video_index=self.video_index,
            summary=summary,
        )


@dataclass(frozen=True, slots=True)
class ListedRecording:
    """One recording as listings show it (committed or pending).

    ``index_summary`` is its whole index's summary when the listing carries it: listings by
    id (what ``view.mp4`` reads) do for committed recordings that have one and for pending
    ones whose writer has finished; listings by time (the covering index) do only for
    pending ones. It takes no part in comparisons."""

    composite_id: int
    open_id: int
    start_time_90k: Time
    wall_duration_90k: Duration
    media_duration_90k: Duration
    video_samples: int
    video_sync_samples: int
    video_sample_entry_id: int
    sample_file_bytes: int
    run_offset: int
    flags: int
    prev_media_duration_90k: Duration
    prev_runs: int
    end_reason: str | None = None
    growing: bool = False
    committed: bool = True
    index_summary: FramesSummary | None = field(default=None, compare=False)

    @property
    def recording_id(self) -> int:
        return split_composite_id(self.composite_id)[1]

    @property
    def end_time_90k(self) -> Time:
        return self.start_time_90k + self.wall_duration_90k

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ListedRecording:
        """From a row of ``raw``'s listing columns, which store the media duration as a
        delta against the wall duration, optionally followed by the summary columns."""
        (cid, open_id, start, wall, delta, samples, sync_samples, entry_id, nbytes,
         run_offset, flags, prev_media, prev_runs, end_reason) = row[:raw.LIST_COLUMN_COUNT]
        summary = (raw.summary_from_columns(row[raw.LIST_COLUMN_COUNT:])
                   if len(row) > raw.LIST_COLUMN_COUNT else None)
        return cls(cid, open_id, start, wall, wall + delta, samples, sync_samples, entry_id,
                   nbytes, run_offset, flags, prev_media, prev_runs, end_reason,
                   index_summary=summary)

    @classmethod
    def from_pending(cls, p: PendingRecording) -> ListedRecording:
        return cls(
            p.composite_id,
            p.open_id,
            p.start_time_90k,
            p.wall_duration_90k,
            p.media_duration_90k,
            p.video_samples,
            p.video_sync_samples,
            p.video_sample_entry_id,
            p.sample_file_bytes,
            p.run_offset,
            p.flags,
            p.prev_media_duration_90k,
            p.prev_runs,
            p.end_reason,
            growing=p.state is PendingState.GROWING,
            committed=False,
            index_summary=p.index_summary,
        )


@dataclass(frozen=True, slots=True)
class PlannedDeletion:
    composite_id: int
    start_time_90k: Time
    wall_duration_90k: Duration
    sample_file_bytes: int


@dataclass(slots=True)
class DayTotal:
    recordings: int = 0  # recordings overlapping the day (one spanning midnight counts twice)
    duration_90k: Duration = 0  # recorded wall time within the day


@dataclass(slots=True)
class StreamSummary:
    """Totals over a stream's committed recordings."""

    num_recordings: int = 0
    sample_file_bytes: int = 0
    #: bytes the files occupy on disk (each rounded up to a whole filesystem block)
    fs_bytes: int = 0
    duration_90k: Duration = 0
    range_start: Time | None = None
    range_end: Time | None = None
    #: local date "YYYY-mm-dd" -> totals of that day
    days: dict[str, DayTotal] = field(default_factory=dict)


@dataclass(slots=True)
class Stream:
    id: int
    camera_id: int
    type: str
    sample_file_dir_id: int | None
    config: StreamConfig
    cum_recordings: int
    cum_media_duration_90k: Duration
    cum_runs: int
    pending: list[PendingRecording] = field(default_factory=list)
    planned_deletions: list[PlannedDeletion] = field(default_factory=list)
    committed: StreamSummary = field(default_factory=StreamSummary)

    @property
    def next_recording_id(self) -> int:
        return self.cum_recordings + len(self.pending)

    @property
    def bytes_after_planned_deletions(self) -> int:
        """Committed plus pending bytes, minus what is already planned for deletion:
        the figure retention compares with ``retain_bytes``."""
        return (
            self.committed.sample_file_bytes
            + sum(p.sample_file_bytes for p in self.pending)
            - sum(d.sample_file_bytes for d in self.planned_deletions)
        )


@dataclass(frozen=True, slots=True)
class FlushResult:
    committed: int  # recordings inserted
    deleted: int  # recordings moved to garbage
    garbage_removed: int  # garbage rows forgotten


# ----------------------------------------------------------------------------- helpers


FS_BLOCK = 4096


def fs_bytes(nbytes: int) -> int:
    """The disk space a file of ``nbytes`` takes, in whole 4 KiB blocks."""
    return -(-nbytes // FS_BLOCK) * FS_BLOCK


def day_key(t: Time, tz: dt.tzinfo) -> str:
    return to_datetime(t, tz).date().isoformat()


def split_by_day(start: Time, duration: Duration, tz: dt.tzinfo) -> Iterator[tuple[str, Duration]]:
    """Splits ``[start, start + duration)`` at local midnights of ``tz`` (days may have
    23 or 25 hours) into (day key, duration within that day)."""
    end = start + duration
    t = start
    while True:
        local = to_datetime(t, tz)
        next_day = local.date() + dt.timedelta(days=1)
        midnight = from_datetime(
            dt.datetime(next_day.year, next_day.month, next_day.day, tzinfo=tz)
        )
        stop = min(end, midnight)
        if stop > t or duration == 0:
            yield local.date().isoformat(), stop - t
        if stop >= end:
            return
        t = stop


def day_bounds(day: str, tz: dt.tzinfo) -> tuple[Time, Time]:
    """[start, end) of a local day in 90k units."""
    d = dt.date.fromisoformat(day)
    n = d + dt.timedelta(days=1)
    return (
        from_datetime(dt.datetime(d.year, d.month, d.day, tzinfo=tz)),
        from_datetime(dt.datetime(n.year, n.month, n.day, tzinfo=tz)),
    )


def _boot_uuid() -> bytes | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return uuidlib.UUID(f.read().strip()).bytes
    except (OSError, ValueError):
        return None


def map_sqlite_error(e: sqlite3.Error, what: str) -> errors.NvrError:
    msg = f"{what}: {e}"
    text = str(e).lower()
    if "locked" in text or "busy" in text:
        return errors.Unavailable(msg)
    if "full" in text:
        return errors.ResourceExhausted(msg)
    if "readonly" in text or "read-only" in text:
        return errors.FailedPrecondition(msg)
    if isinstance(e, sqlite3.IntegrityError):
        return errors.FailedPrecondition(msg)
    if "malformed" in text or "not a database" in text:
        return errors.DataLoss(msg)
    return errors.Internal(msg)


# ----------------------------------------------------------------------------- the database


class Database:
    """An open nvr database. Create with ``Database.create``, open with ``Database.open``."""

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
        #: called after every successful flush (syncers wake up to unlink new garbage)
        self.flush_listeners: list[Callable[[], None]] = []
        #: called whenever a pending recording is added, changed or committed
        self.change_listeners: list[Callable[[int], None]] = []
        self.flush_count = 0
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    @staticmethod
    def create(db_dir: Path | str, now: Time) -> uuidlib.UUID:
        """Creates a new, empty database in ``db_dir`` (made if missing).

        Refuses (``AlreadyExists``) when a database is already there, touching nothing.
        """
        db_dir = Path(db_dir)
        try:
            db_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise errors.from_os_error(e, f"creating database directory {db_dir}") from e
        lock_fd = _lock_dir(db_dir, exclusive=True)
        try:
            path = db_dir / DB_FILE
            if path.exists():
                raise errors.AlreadyExists(
                    f"a database already exists at {path}; refusing to touch it"
                )
            new_uuid = uuidlib.uuid4()
            try:
                conn = sqlite3.connect(path, isolation_level=None)
                try:
                    raw.set_pragmas(conn, read_only=False)
                    raw.create_schema(conn, new_uuid.bytes, now // UNITS_PER_SEC)
                    conn.execute("commit")
                finally:
                    conn.close()
            except sqlite3.Error as e:
                path.unlink(missing_ok=True)
                raise map_sqlite_error(e, f"creating database {path}") from e
            return new_uuid
        finally:
            os.close(lock_fd)

    @classmethod
    def open(
        cls,
        db_dir: Path | str,
        *,
        read_only: bool = False,
        tz: dt.tzinfo,
        now: Callable[[], Time],
        monotonic: Callable[[], Duration] | None = None,
    ) -> Database:
        """Opens the database in ``db_dir``: locks the directory (exclusive, or shared for
        ``read_only``; never waits), checks the schema version, loads the in-memory state
        and, unless ``read_only``, records this open in the ``open`` table."""
        db_dir = Path(db_dir)
        path = db_dir / DB_FILE
        if not path.exists():
            raise errors.NotFound(f"no database at {path}; create one with `nvr init`")
        lock_fd = _lock_dir(db_dir, exclusive=not read_only)
        try:
            try:
                if read_only:
                    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
                else:
                    conn = sqlite3.connect(path, isolation_level=None)
                raw.set_pragmas(conn, read_only=read_only)
                version = raw.schema_version(conn)
            except sqlite3.Error as e:
                raise map_sqlite_error(e, f"opening database {path}") from e
            if version is None:
                conn.close()
                raise errors.FailedPrecondition(f"{path} is not an nvr database")
            if version != SCHEMA_VERSION:
                conn.close()
                if version < SCHEMA_VERSION:
                    raise errors.FailedPrecondition(
                        f"database schema is version {version}, this nvr needs "
                        f"{SCHEMA_VERSION}: run `nvr upgrade` first"
                    )
                raise errors.FailedPrecondition(
                    f"database schema is version {version}, newer than this nvr "
                    f"supports ({SCHEMA_VERSION}): run a newer nvr"
                )
            db = cls(
                conn,
                lock_fd,
                db_dir=db_dir,
                read_only=read_only,
                tz=tz,
                now=now,
                monotonic=monotonic,
            )
        except BaseException:
            os.close(lock_fd)
            raise
        try:
            db._load()
            if not read_only:
                db._record_open()
        except sqlite3.Error as e:
            db.close()
            raise map_sqlite_error(e, f"loading database {path}") from e
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.close()
        finally:
            os.close(self._lock_fd)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise errors.FailedPrecondition(f"{what}: the database is open read-only")
        watch = Stopwatch()
        try:
            self._conn.execute("begin immediate")
            try:
                yield self._conn
                self._conn.execute("commit")
            except BaseException:
                self._conn.execute("rollback")
                raise
        except sqlite3.Error as e:
            raise map_sqlite_error(e, what) from e
        finally:
            ms = watch.elapsed_ms()
            if ms > SLOW_MS:
                log.warning("slow database operation: %s took %.0f ms", what, ms)

    def _read(self, what: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return _timed_read(self._conn, what)

    def _load(self) -> None:
        conn = self._conn
        for row in raw.list_dirs(conn):
            dir_id, path, u, last = row
            self.dirs[dir_id] = SampleFileDirRow(dir_id, path, uuidlib.UUID(bytes=bytes(u)), last)
        for dir_id, cid in raw.list_all_garbage(conn):
            self.dirs[dir_id].garbage_needs_unlink.add(cid)
        for row in raw.list_cameras(conn):
            cam_id, u, name, desc, cfg = row
            self.cameras[cam_id] = Camera(
                cam_id, uuidlib.UUID(bytes=bytes(u)), name, desc, CameraConfig.from_json(cfg)
            )
        for row in raw.list_streams(conn):
            sid, cam_id, dir_id, type_, cfg, cum_rec, cum_media, cum_runs = row
            stream = Stream(
                sid,
                cam_id,
                type_,
                dir_id,
                StreamConfig.from_json(cfg),
                cum_rec,
                cum_media,
                cum_runs,
            )
            self.streams[sid] = stream
            self.cameras[cam_id].streams[type_] = sid
            for start, wall, nbytes in raw.stream_summary_rows(conn, sid):
                self._add_to_summary(stream.committed, start, wall, nbytes)
        for row in raw.list_video_sample_entries(conn):
            eid, w, h, codec, data, ph, pv = row
            entry = VideoSampleEntry(w, h, codec, bytes(data), ph, pv)
            self.video_sample_entries[eid] = entry
            self._entry_ids[entry.data] = eid

    def _record_open(self) -> None:
        u = uuidlib.uuid4()
        with self._transaction("recording this open") as conn:
            open_id = raw.insert_open(conn, u.bytes, self._now(), _boot_uuid())
        self.open_id, self.open_uuid = open_id, u

    def _add_to_summary(self, s: StreamSummary, start: Time, wall: Duration, nbytes: int) -> None:
        s.num_recordings += 1
        s.sample_file_bytes += nbytes
        s.fs_bytes += fs_bytes(nbytes)
        s.duration_90k += wall
        end = start + wall
        s.range_start = start if s.range_start is None else min(s.range_start, start)
        s.range_end = end if s.range_end is None else max(s.range_end, end)
        for day, d in split_by_day(start, wall, self.tz):
            total = s.days.setdefault(day, DayTotal())
            total.recordings += 1
            total.duration_90k += d

    def _remove_from_summary(
        self, stream: Stream, start: Time, wall: Duration, nbytes: int
    ) -> None:
        s = stream.committed
        s.num_recordings -= 1
        s.sample_file_bytes -= nbytes
        s.fs_bytes -= fs_bytes(nbytes)
        s.duration_90k -= wall
        for day, d in split_by_day(start, wall, self.tz):
            total = s.days[day]
            total.recordings -= 1
            total.duration_90k -= d
            if total.recordings == 0:
                del s.days[day]

    def _refresh_range(self, stream: Stream) -> None:
        row = self._conn.execute(
            """select min(start_time_90k), max(start_time_90k + wall_duration_90k)
               from recording indexed by recording_cover where stream_id = ?""",
            (stream.id,),
        ).fetchone()
        stream.committed.range_start, stream.committed.range_end = row

    def _notify_change(self, stream_id: int) -> None:
        for listener in list(self.change_listeners):
            listener(stream_id)

    # -- sample file dirs, cameras, streams ------------------------------------------

    def add_sample_file_dir(self, path: str, dir_uuid: uuidlib.UUID) -> SampleFileDirRow:
        if any(d.path == path for d in self.dirs.values()):
            raise errors.AlreadyExists(f"sample file directory {path} is already configured")
        with self._transaction(f"adding sample file directory {path}") as conn:
            dir_id = raw.insert_dir(conn, path, dir_uuid.bytes)
        d = SampleFileDirRow(dir_id, path, dir_uuid, None)
        self.dirs[dir_id] = d
        return d

    def remove_sample_file_dir(self, dir_id: int) -> None:
        d = self._dir(dir_id)
        users = [s.id for s in self.streams.values() if s.sample_file_dir_id == dir_id]
        if users or d.garbage_needs_unlink or d.garbage_unlinked:
            raise errors.FailedPrecondition(
                f"sample file directory {d.path} is still used by streams or holds garbage"
            )
        with self._transaction(f"removing sample file directory {d.path}") as conn:
            raw.delete_dir(conn, dir_id)
        del self.dirs[dir_id]

    def complete_dir_open(self, dir_id: int) -> None:
        """Step 2 of the open interlock: the directory is now owned by this open."""
        assert self.open_id is not None
        with self._transaction("completing sample file directory open") as conn:
            raw.set_dir_last_complete_open(conn, dir_id, self.open_id)
        self.dirs[dir_id].last_complete_open_id = self.open_id

    def open_uuid_of(self, open_id: int) -> uuidlib.UUID | None:
        with self._read("looking up an open") as conn:
            u = raw.get_open_uuid(conn, open_id)
        return None if u is None else uuidlib.UUID(bytes=u)

    def add_camera(
        self,
        short_name: str,
        *,
        description: str = "",
        config: CameraConfig | None = None,
        streams: dict[str, tuple[int | None, StreamConfig]] | None = None,
    ) -> Camera:
        """Adds a camera and its streams (type -> (sample file dir id, config)) at once."""
        config = config or CameraConfig()
        streams = streams or {}
        self._check_camera_fields(short_name, None, streams)
        cam_uuid = uuidlib.uuid4()
        stream_ids: dict[str, int] = {}
        with self._transaction(f"adding camera {short_name}") as conn:
            cam_id = raw.insert_camera(
                conn, cam_uuid.bytes, short_name, description, config.to_json()
            )
            for type_, (dir_id, scfg) in streams.items():
                stream_ids[type_] = raw.insert_stream(conn, cam_id, dir_id, type_, scfg.to_json())
        cam = Camera(cam_id, cam_uuid, short_name, description, config, dict(stream_ids))
        self.cameras[cam_id] = cam
        for type_, sid in stream_ids.items():
            dir_id, scfg = streams[type_]
            self.streams[sid] = Stream(sid, cam_id, type_, dir_id, scfg, 0, 0, 0)
        return cam

    def _check_camera_fields(
        self,
        short_name: str,
        camera_id: int | None,
        streams: dict[str, tuple[int | None, StreamConfig]],
    ) -> None:
        if not 1 <= len(short_name) <= 64:
            raise errors.InvalidArgument("camera name must be 1 to 64 characters")
        for c in self.cameras.values():
            if c.short_name == short_name and c.id != camera_id:
                raise errors.AlreadyExists(f"a camera named {short_name!r} already exists")
        for type_, (dir_id, scfg) in streams.items():
            if type_ not in STREAM_TYPES:
                raise errors.InvalidArgument(f"stream type must be one of {STREAM_TYPES}")
            scfg.validate()
            if dir_id is not None and dir_id not in self.dirs:
                raise errors.NotFound(f"no sample file directory with id {dir_id}")
            if scfg.mode == "record" and dir_id is None:
                raise errors.InvalidArgument(f"{type_} stream records but has no directory")

    def update_camera(
        self,
        camera_id: int,
        *,
        short_name: str | None = None,
        description: str | None = None,
        config: CameraConfig | None = None,
        streams: dict[str, tuple[int | None, StreamConfig]] | None = None,
    ) -> Camera:
        """Changes a camera and adds or reconfigures streams. Moving a stream that has
        recordings to another directory is refused."""
        cam = self._camera(camera_id)
        short_name = cam.short_name if short_name is None else short_name
        description = cam.description if description is None else description
        config = cam.config if config is None else config
        streams = streams or {}
        self._check_camera_fields(short_name, camera_id, streams)
        for type_, (dir_id, _) in streams.items():
            sid = cam.streams.get(type_)
            if sid is not None:
                s = self.streams[sid]
                has_video = s.committed.num_recordings > 0 or s.pending
                if has_video and dir_id != s.sample_file_dir_id:
                    raise errors.FailedPrecondition(
                        f"{type_} stream has recordings; it cannot move to another directory"
                    )
        new_ids: dict[str, int] = {}
        with self._transaction(f"updating camera {short_name}") as conn:
            raw.update_camera(conn, camera_id, short_name, description, config.to_json())
            for type_, (dir_id, scfg) in streams.items():
                sid = cam.streams.get(type_)
                if sid is None:
                    new_ids[type_] = raw.insert_stream(
                        conn, camera_id, dir_id, type_, scfg.to_json()
                    )
                else:
                    raw.update_stream(conn, sid, dir_id, scfg.to_json())
        cam.short_name, cam.description, cam.config = short_name, description, config
        for type_, (dir_id, scfg) in streams.items():
            if type_ in new_ids:
                sid = new_ids[type_]
                cam.streams[type_] = sid
                self.streams[sid] = Stream(sid, camera_id, type_, dir_id, scfg, 0, 0, 0)
            else:
                s = self.streams[cam.streams[type_]]
                s.sample_file_dir_id, s.config = dir_id, scfg
        return cam

    def delete_camera(self, camera_id: int) -> None:
        """Deletes a camera and its streams. Refused while any stream has recordings
        (delete them first: ``delete_all_recordings``)."""
        cam = self._camera(camera_id)
        for sid in cam.streams.values():
            s = self.streams[sid]
            if s.committed.num_recordings or s.pending or s.planned_deletions:
                raise errors.FailedPrecondition(
                    f"camera {cam.short_name!r} still has recordings; delete them first"
                )
        with self._transaction(f"deleting camera {cam.short_name}") as conn:
            for sid in cam.streams.values():
                raw.delete_stream(conn, sid)
            raw.delete_camera(conn, camera_id)
        for sid in cam.streams.values():
            del self.streams[sid]
        del self.cameras[camera_id]

    def plan_delete_all_recordings(self, stream_id: int) -> int:
        """Plans deletion of every committed recording of a stream (committed by the next
        ``flush``). Returns how many were planned."""
        stream = self._stream(stream_id)
        return self._plan_until(stream, lambda _bytes, _start: True)

    def camera_by_uuid(self, u: uuidlib.UUID) -> Camera:
        for c in self.cameras.values():
            if c.uuid == u:
                return c
        raise errors.NotFound(f"no camera {u}")

    def camera_by_name(self, name: str) -> Camera:
        for c in self.cameras.values():
            if c.short_name == name:
                return c
        raise errors.NotFound(f"no camera named {name!r}")

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

    def _dir(self, dir_id: int) -> SampleFileDirRow:
        try:
            return self.dirs[dir_id]
        except KeyError:
            raise errors.NotFound(f"no sample file directory with id {dir_id}") from None

    def insert_video_sample_entry(self, entry: VideoSampleEntry) -> int:
        """Returns the id of an identical stored entry, inserting it if new."""
        existing = self._entry_ids.get(entry.data)
        if existing is not None:
            stored = self.video_sample_entries[existing]
            if stored != entry:
                raise errors.FailedPrecondition(
                    f"sample entry {existing} has the same codec data but different fields"
                )
            return existing
        with self._transaction("inserting a video sample entry") as conn:
            eid = raw.insert_video_sample_entry(
                conn,
                entry.width,
                entry.height,
                entry.rfc6381_codec,
                entry.data,
                entry.pasp_h_spacing,
                entry.pasp_v_spacing,
            )
        self.video_sample_entries[eid] = entry
        self._entry_ids[entry.data] = eid
        return eid

    # -- the recording lifecycle ----------------------------------------------------------

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
            run_offset=run_offset,
            start_time_90k=start_time_90k,
            prev_media_duration_90k=prev_media,
            prev_runs=prev_runs,
            video_sample_entry_id=video_sample_entry_id,
            local_time_since_open_90k=(self._monotonic() - self._open_monotonic)
            if self._monotonic
            else 0,
        )
        stream.pending.append(rec)
        self._notify_change(stream_id)
        return rec

    def recording_changed(self, rec: PendingRecording) -> None:
        """Called by the writer after it updated a growing recording's fields."""
        self._notify_change(rec.stream_id)

    def abandon_recording(self, rec: PendingRecording) -> None:
        """Forgets a growing recording whose writer failed. Only the stream's newest
        pending recording can go; its id will be reused (the caller removed the file)."""
        stream = self._stream(rec.stream_id)
        if not stream.pending or stream.pending[-1] is not rec:
            raise errors.Internal(f"recording {rec.composite_id:016x} is not the newest pending")
        stream.pending.pop()
        self._notify_change(rec.stream_id)

    def mark_done(self, rec: PendingRecording) -> None:
        rec.state = PendingState.DONE
        self._notify_change(rec.stream_id)

    def mark_synced(self, composite_id_: int) -> None:
        stream_id, _ = split_composite_id(composite_id_)
        for p in self._stream(stream_id).pending:
            if p.composite_id == composite_id_:
                if p.state is PendingState.GROWING:
                    raise errors.Internal(f"recording {composite_id_:016x} is still growing")
                p.state = PendingState.SYNCED
                return
        raise errors.NotFound(f"no pending recording {composite_id_:016x}")

    def has_unflushed_work(self) -> bool:
        """Whether ``flush`` would change anything now."""
        for s in self.streams.values():
            if s.planned_deletions or (s.pending and s.pending[0].state is PendingState.SYNCED):
                return True
        return any(d.garbage_unlinked for d in self.dirs.values())

    def plan_retention(self, stream_id: int) -> list[PlannedDeletion]:
        """Plans deletion of the stream's oldest committed recordings until its bytes
        (committed + pending − already planned) fit ``retain_bytes`` and nothing is older
        than ``retain_days``. Each recording is planned at most once; pending recordings are
        never planned. The deletions are committed by the next ``flush``."""
        stream = self._stream(stream_id)
        cfg = stream.config
        excess = stream.bytes_after_planned_deletions - cfg.retain_bytes
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
        self._plan_until(stream, wanted)
        return stream.planned_deletions[before:]

    def _plan_until(self, stream: Stream, wanted: Callable[[int, Time], bool]) -> int:
        after = (
            stream.planned_deletions[-1].composite_id
            if stream.planned_deletions
            else composite_id(stream.id, 0) - 1
        )
        n = 0
        with self._read("planning deletions") as conn:
            for cid, start, wall, nbytes in raw.list_oldest_recordings(conn, stream.id, after):
                if not wanted(nbytes, start + wall):
                    break
                stream.planned_deletions.append(PlannedDeletion(cid, start, wall, nbytes))
                n += 1
        return n

    def iter_unplanned_oldest(
        self, stream_id: int, batch: int = 256
    ) -> Iterator[PlannedDeletion]:
        """The stream's committed recordings not yet planned for deletion, oldest first,
        read lazily in batches (``storage.retention`` picks among several streams')."""
        stream = self._stream(stream_id)
        after = (
            stream.planned_deletions[-1].composite_id
            if stream.planned_deletions
            else composite_id(stream.id, 0) - 1
        )
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
        last = stream.planned_deletions[-1].composite_id if stream.planned_deletions else -1
        for d in dels:
            if d.composite_id >> raw.ID_BITS != stream_id or d.composite_id <= last:
                raise errors.Internal(f"deletion of {d.composite_id:016x} planned out of order")
            last = d.composite_id
        stream.planned_deletions.extend(dels)

    def mark_garbage_unlinked(self, dir_id: int, cids: list[int]) -> None:
        """The syncer unlinked these files and fsynced the directory: the next flush may
        delete their garbage rows."""
        d = self._dir(dir_id)
        for cid in cids:
            d.garbage_needs_unlink.discard(cid)
            d.garbage_unlinked.add(cid)

    def flush(self, reason: str) -> FlushResult:
        """Commits, in one transaction: every stream's synced pending recordings (a prefix
        of its pending list, in order), the planned deletions (rows to ``garbage``), and
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
                    cum_rec += 1
                    cum_media += r.media_duration_90k
                    cum_runs += r.run_offset == 0
                raw.update_stream_counters(conn, sid, cum_rec, cum_media, cum_runs)
                new_counters[sid] = (cum_rec, cum_media, cum_runs)
            for sid, dels in to_delete.items():
                dir_id = self.streams[sid].sample_file_dir_id
                assert dir_id is not None
                for d in dels:
                    raw.move_recording_to_garbage(conn, dir_id, d.composite_id)
            for dir_id, cids in to_forget.items():
                for cid in cids:
                    raw.delete_garbage(conn, dir_id, cid)
            if self.open_id is not None:
                mono = self._monotonic() - self._open_monotonic if self._monotonic else 0
                raw.update_open(conn, self.open_id, self._now(), mono)
        # Committed: now update memory.
        for sid, recs in to_commit.items():
            s = self.streams[sid]
            s.cum_recordings, s.cum_media_duration_90k, s.cum_runs = new_counters[sid]
            del s.pending[: len(recs)]
            for r in recs:
                self._add_to_summary(
                    s.committed, r.start_time_90k, r.wall_duration_90k, r.sample_file_bytes
                )
        for sid, dels in to_delete.items():
            s = self.streams[sid]
            del s.planned_deletions[: len(dels)]
            assert s.sample_file_dir_id is not None
            garbage = self.dirs[s.sample_file_dir_id].garbage_needs_unlink
            for d in dels:
                self._remove_from_summary(
                    s, d.start_time_90k, d.wall_duration_90k, d.sample_file_bytes
                )
                garbage.add(d.composite_id)
            dir_row = self.dirs[s.sample_file_dir_id]
            dir_row.deleted_recordings += len(dels)
            dir_row.deleted_bytes += sum(d.sample_file_bytes for d in dels)
            self._refresh_range(s)
        for dir_id, cids in to_forget.items():
            self.dirs[dir_id].garbage_unlinked.difference_update(cids)
        self.flush_count += 1
        result = FlushResult(
            sum(map(len, to_commit.values())),
            sum(map(len, to_delete.values())),
            sum(map(len, to_forget.values())),
        )
        log.debug("flush (%s): %s", reason, result)
        for sid in to_commit:
            self._notify_change(sid)
        for listener in list(self.flush_listeners):
            listener()
        return result

    # -- startup cleanup helpers (used by the storage layer) ------------------------------

    def uncommitted_floor(self, stream_id: int) -> int:
        """Recording ids >= this were never committed for the stream."""
        return self._stream(stream_id).cum_recordings

    def streams_in_dir(self, dir_id: int) -> list[Stream]:
        return [s for s in self.streams.values() if s.sample_file_dir_id == dir_id]

    def stream_summary(self, stream_id: int) -> StreamSummary:
        """The stream's totals over committed and pending recordings (growing ones
        included, as far as they have grown), as the API reports them."""
        stream = self._stream(stream_id)
        c = stream.committed
        out = StreamSummary(
            c.num_recordings,
            c.sample_file_bytes,
            c.fs_bytes,
            c.duration_90k,
            c.range_start,
            c.range_end,
            {day: DayTotal(t.recordings, t.duration_90k) for day, t in c.days.items()},
        )
        for p in stream.pending:
            if p.video_samples:
                self._add_to_summary(
                    out, p.start_time_90k, p.wall_duration_90k, p.sample_file_bytes
                )
        return out

    # -- reads --------------------------------------------------------------------------

    def list_recordings_by_time(
        self, stream_id: int, start: Time, end: Time
    ) -> list[ListedRecording]:
        """Committed and pending recordings overlapping ``[start, end)``, oldest first."""
        return self._committed_and_pending(
            stream_id,
            lambda conn: raw.list_recordings_by_time(
                conn, stream_id, start, end, MAX_RECORDING_WALL_DURATION
            ),
            lambda p: p.start_time_90k < end
            and max(p.end_time_90k, p.start_time_90k + 1) > start,
        )

    def list_recordings_by_id(
        self, stream_id: int, start_id: int, end_id: int
    ) -> list[ListedRecording]:
        """Committed and pending recordings with ids in ``[start_id, end_id)``."""
        return self._committed_and_pending(
            stream_id,
            lambda conn: raw.list_recordings_by_id(conn, stream_id, start_id, end_id),
            lambda p: start_id <= p.recording_id < end_id,
        )

    def _committed_and_pending(
        self,
        stream_id: int,
        rows: Callable[[sqlite3.Connection], Iterator[tuple[Any, ...]]],
        wanted: Callable[[PendingRecording], bool],
    ) -> list[ListedRecording]:
        """The committed rows ``rows`` selects, then the pending recordings (with at least
        one frame) ``wanted`` accepts: together, in id order."""
        stream = self._stream(stream_id)
        with self._read("listing recordings") as conn:
            out = [ListedRecording.from_row(row) for row in rows(conn)]
        out.extend(
            ListedRecording.from_pending(p) for p in stream.pending if p.video_samples and wanted(p)
        )
        return out

    def get_video_index(self, cid: int) -> bytes:
        """The ``video_index`` of a committed or pending recording."""
        stream_id, _ = split_composite_id(cid)
        stream = self.streams.get(stream_id)
        if stream is not None:
            for p in stream.pending:
                if p.composite_id == cid:
                    return p.video_index
        with self._read("reading a video index") as conn:
            data = raw.get_video_index(conn, cid)
        if data is None:
            raise errors.NotFound(f"no recording {cid:016x}")
        return data

    def iter_all_recordings(self) -> Iterator[sqlite3.Row]:
        """Every committed recording with its integrity and playback rows (``nvr check``)."""
        try:
            yield from raw.iter_all_recordings(self._conn)
        except sqlite3.Error as e:
            raise map_sqlite_error(e, "reading recordings") from e

    def all_garbage(self) -> set[tuple[int, int]]:
        """(dir id, composite id) of every garbage row."""
        with self._read("listing garbage") as conn:
            return set(raw.list_all_garbage(conn))

    def count_recordings(self) -> int:
        with self._read("counting recordings") as conn:
            return raw.count_recordings(conn)

    def delete_recording_rows(self, cids: list[int]) -> None:
        """Deletes committed recordings whose sample files are lost, in one transaction
        (``nvr check --delete-orphan-rows``). In-memory summaries are not updated: the
        caller closes the database afterwards."""
        with self._transaction(f"deleting {len(cids)} recordings without files") as conn:
            for cid in cids:
                raw.delete_recording(conn, cid)

    def integrity_check(self) -> list[str]:
        with self._read("checking database integrity") as conn:
            return raw.integrity_check(conn)

    def list_garbage(self, dir_id: int) -> list[int]:
        with self._read("listing garbage") as conn:
            return raw.list_garbage(conn, dir_id)


@contextlib.contextmanager
def _timed_read(conn: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
    watch = Stopwatch()
    try:
        yield conn
    except sqlite3.Error as e:
        raise map_sqlite_error(e, what) from e
    finally:
        ms = watch.elapsed_ms()
        if ms > SLOW_MS:
            log.warning("slow database read: %s took %.0f ms", what, ms)


def _lock_dir(db_dir: Path, *, exclusive: bool) -> int:
    try:
        fd = os.open(db_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise errors.from_os_error(e, f"opening database directory {db_dir}") from e
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise errors.Unavailable(
            f"database directory {db_dir} is locked by another nvr process "
            f"({'a writer' if not exclusive else 'a reader or writer'} holds it)"
        ) from None
    except OSError as e:
        os.close(fd)
        raise errors.from_os_error(e, f"locking database directory {db_dir}") from e
    return fd
