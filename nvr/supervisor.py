"""The daemon's per-camera and per-directory tasks, and applying configuration changes to
them while it records (docs/design.md, "The nursery tree and shutdown"; docs/design.md,
"Live configuration").

What belongs here: starting each camera's tasks under a cancel scope of their own (its
streamers, one per recorded stream, and every task of ``CAMERA_TASKS``), each directory's
syncer under its own, and ``apply``: after a change is committed to the database, the
running tasks are compared with what the database now says, and exactly the cameras whose
recording settings changed are stopped (their open recordings end with end reason
``"reconfigured"``, closed and handed to the syncer like at shutdown) and started again;
removed cameras are stopped, new ones started. Other cameras are not touched. Changes are
applied one at a time (``lock``). Not here: validating or committing a change
(``nvr.reconfig``), HTTP. Imports: everything below ``web``.

**Tasks of a camera.** ``CAMERA_TASKS`` is the one place a per-camera task (motion
analysis, say) hooks in: a function that receives a ``CameraTasks`` context and runs until
cancelled. It is started with the camera's streamers, and cancelled and started again with
them whenever the camera is reconfigured.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import trio

from nvr.archive.client import OpenStore, open_s3
from nvr.archive.reader import WORKERS, ArchiveReads
from nvr.archive.uploader import CONCURRENCY, Uploader, sample_opener
from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC, Duration, format_duration
from nvr.db.database import Database
from nvr.db.types import PendingState
from nvr.ingest.source import Opener
from nvr.ingest.streamer import StreamCounters, Streamer, StreamerOptions, rotate_offset_for
from nvr.storage.dir import SampleFileDir, open_for_database, remove_garbage_and_uncommitted
from nvr.syncer import Syncer

if TYPE_CHECKING:
    from nvr.config import Config
    from nvr.ingest.hub import FrameHub
    from nvr.motion.task import MotionAnalyzer
    from nvr.ops.metrics import Metrics

log = logging.getLogger(__name__)

#: the end reason of a recording cut short because its camera's settings changed
RECONFIGURED = "reconfigured"
#: how long a removed camera's last recordings may take to be synced
SETTLE_TIMEOUT: Duration = 30 * UNITS_PER_SEC


class Daemon(Protocol):
    """What the supervisor reads and fills of its daemon (``nvr.daemon.Daemon``)."""

    config: Config
    db: Database
    metrics: Metrics
    syncers: dict[int, Syncer]
    streamers: dict[int, Streamer]
    uploaders: dict[int, Uploader]
    hub: FrameHub
    motion: dict[int, MotionAnalyzer]


@dataclass(frozen=True, slots=True)
class CameraTasks:
    """What a task of ``CAMERA_TASKS`` gets: its camera, and the camera's streamers (by
    stream id) started with it."""

    camera_id: int
    db: Database
    clocks: Clocks
    #: filled as the streamers start, after every task of ``CAMERA_TASKS`` reported started
    streamers: dict[int, Streamer]
    daemon: Daemon


#: per-camera tasks besides the streamers, each ``async def task(tasks: CameraTasks, *,
#: task_status)``: started (``nursery.start``) before the camera's streamers, so that one
#: subscribing to their frames misses none, and run until the camera's tasks stop
#: (reconfigured, removed, shutdown). The daemon adds motion analysis
#: (``nvr.daemon.camera_motion``).
CAMERA_TASKS: list[Callable[..., Awaitable[None]]] = []


def recorded_streams(db: Database) -> list[int]:
    return [
        s.id
        for s in db.streams.values()
        if s.config.mode == "record" and s.sample_file_dir_id is not None and s.config.url
    ]


def camera_settings(db: Database, camera_id: int) -> Hashable | None:
    """What the camera's tasks are started with (None: it records nothing): its
    credentials, its recorded streams' settings and its motion analysis settings (for
    ``nvr.daemon.camera_motion``). A change of these restarts them; its name, description
    or other settings (the motion signal's name) do not. A task of
    ``CAMERA_TASKS`` that must restart when more changes adds it here."""
    cam, recorded = db.cameras[camera_id], _recorded(db)
    streams = tuple(
        sorted(
            (t, sid, db.streams[sid].sample_file_dir_id, db.streams[sid].config.to_json())
            for t, sid in cam.streams.items()
            if sid in recorded
        )
    )
    cfg = cam.config
    motion = (cfg.motion, cfg.motion_sensitivity, tuple(cfg.motion_mask or ()))
    return (cfg.username, cfg.password, streams, motion) if streams else None


def _recorded(db: Database) -> set[int]:
    return set(recorded_streams(db))


@dataclass(eq=False)
class _Camera:
    settings: Hashable
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    streamers: dict[int, Streamer] = field(default_factory=dict)


@dataclass(eq=False)
class _Dir:
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)


def archive_settings(db: Database, archive_id: int) -> Hashable:
    """What an archive's uploader is started with: its whole configuration and streams
    (a change of any restarts it; compared, never shown: it holds the keys)."""
    a = db.archives[archive_id]
    return a.config.to_json(), tuple(sorted(a.streams))


@dataclass(eq=False)
class _Upload:
    settings: Hashable
    uploader: Uploader
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)


class Supervisor:
    """Runs the cameras' and directories' tasks of one daemon. See the module docstring."""

    def __init__(
        self,
        daemon: Daemon,
        dirs: dict[int, SampleFileDir],
        clocks: Clocks,
        opener: Opener,
        core: trio.Nursery,
        archive_reads: ArchiveReads | None = None,
        open_store: OpenStore = open_s3,
    ) -> None:
        self._daemon = daemon
        self._db = daemon.db
        self._dirs = dirs
        self._clocks = clocks
        self._opener = opener
        self._core = core
        self._ingest: trio.Nursery | None = None
        self._ingest_done = trio.Event()
        self._cameras: dict[int, _Camera] = {}
        #: each stream's counters, kept across restarts (metrics' counters never go back)
        self._counters: dict[int, StreamCounters] = {}
        self._syncer_tasks: dict[int, _Dir] = {}
        self._reads = archive_reads
        self._open_store = open_store
        self._uploads: dict[int, _Upload] = {}
        self._uploading = False  # start_uploaders was called (not a read-only daemon)
        #: held while a change is committed and applied: changes apply one at a time
        self.lock = trio.Lock()

    # -- directories -------------------------------------------------------------------

    async def start_syncer(self, dir_id: int) -> None:
        config = self._daemon.config
        syncer = Syncer(
            self._db, dir_id, self._dirs[dir_id], self._clocks,
            min_free=config.min_free_for(self._db.dirs[dir_id].path),
        )
        syncer.on_commit = self._daemon.metrics.commit_observer(dir_id)
        self._daemon.syncers[dir_id] = syncer
        task = self._syncer_tasks[dir_id] = _Dir()

        async def run(task_status: trio.TaskStatus[None]) -> None:
            try:
                with task.scope:
                    await syncer.run(task_status=task_status)
            finally:
                task.done.set()

        await self._core.start(run)

    async def dir_added(self, dir_id: int) -> None:
        """Opens a directory just committed and starts its syncer."""
        sdir = open_for_database(self._db, dir_id, read_only=False)
        remove_garbage_and_uncommitted(self._db, dir_id, sdir)
        self._dirs[dir_id] = sdir
        await self.start_syncer(dir_id)
        log.info("sample file directory %s added", self._db.dirs[dir_id].path)

    async def stop_syncer(self, dir_id: int) -> None:
        """Stops a directory's syncer (its final pass runs) and closes the directory;
        before an empty directory is removed from the database."""
        task = self._syncer_tasks.pop(dir_id, None)
        if task is not None:
            task.scope.cancel()
            await task.done.wait()
        syncer = self._daemon.syncers.pop(dir_id, None)
        if syncer is not None:
            syncer.detach()
        sdir = self._dirs.pop(dir_id, None)
        if sdir is not None:
            sdir.close()

    # -- archives --------------------------------------------------------------------

    async def start_uploaders(self) -> None:
        """Starts one uploader per archive in the core nursery; from now on ``apply``
        starts, stops and restarts them as archives are added, removed and changed."""
        self._uploading = True
        await self._apply_archives(initial=True)

    async def _apply_archives(self, *, initial: bool = False) -> None:
        if not self._uploading:
            return
        for aid, up in list(self._uploads.items()):
            if aid not in self._db.archives or archive_settings(self._db, aid) != up.settings:
                await self.stop_uploader(aid)
        for aid in sorted(self._db.archives):
            if aid not in self._uploads:
                await self._start_uploader(aid, initial=initial)
        if self._reads is not None:
            for aid in [a for a in self._reads.stores if a not in self._db.archives]:
                del self._reads.stores[aid]

    async def _start_uploader(self, archive_id: int, *, initial: bool) -> None:
        a = self._db.archives[archive_id]
        store = await run_blocking(self._open_store, a.config, CONCURRENCY)
        uploader = Uploader(self._db, archive_id, store, sample_opener(self._db, self._dirs),
                            self._clocks)
        up = self._uploads[archive_id] = _Upload(archive_settings(self._db, archive_id),
                                                 uploader)
        self._daemon.uploaders[archive_id] = uploader

        async def run(task_status: trio.TaskStatus[None]) -> None:
            try:
                with up.scope:
                    await uploader.run(task_status=task_status)
            finally:
                up.done.set()

        await self._core.start(run)
        if self._reads is not None and not initial:  # playback reads the new settings too
            self._reads.stores[archive_id] = await run_blocking(self._open_store, a.config,
                                                               WORKERS)
        if not initial:
            log.info("archive %s: uploader started", a.short_name)

    async def stop_uploader(self, archive_id: int) -> None:
        """Stops an archive's uploader: an upload in flight is abandoned (not recorded:
        it is done again), what was complete is recorded first."""
        up = self._uploads.pop(archive_id, None)
        if up is None:
            return
        up.scope.cancel()
        await up.done.wait()
        up.uploader.detach()
        if self._daemon.uploaders.get(archive_id) is up.uploader:
            del self._daemon.uploaders[archive_id]
        log.info("archive %d: uploader stopped", archive_id)

    # -- cameras -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Runs the cameras' tasks in the ingest nursery until ``stop_cameras``; reports
        started once every camera's streamers are connecting."""
        try:
            async with trio.open_nursery() as ingest:
                self._ingest = ingest
                async with self.lock:
                    await self._apply()
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._ingest = None
            self._ingest_done.set()

    async def stop_cameras(self) -> None:
        """Shutdown: cancels every camera's tasks (each closes its open recording) and
        waits for them."""
        if self._ingest is not None:
            self._ingest.cancel_scope.cancel()
            await self._ingest_done.wait()

    async def apply(self) -> None:
        """Brings the running camera tasks and uploaders in line with the database (call
        with ``lock`` held, after committing a change)."""
        if self._ingest is not None:
            await self._apply()
        await self._apply_archives()

    async def _apply(self) -> None:
        want = {cid: camera_settings(self._db, cid) for cid in self._db.cameras}
        for cid, running in list(self._cameras.items()):
            if want.get(cid) != running.settings:
                await self.stop_camera(cid)
        for cid, settings in want.items():
            if settings is not None and cid not in self._cameras:
                await self._start_camera(cid, settings)
        for sid in [s for s in self._counters if s not in self._db.streams]:
            del self._counters[sid]  # a removed camera's
        for sid in [s for s in self._daemon.motion if s not in self._db.streams]:
            del self._daemon.motion[sid]

    async def _start_camera(self, camera_id: int, settings: Hashable) -> None:
        assert self._ingest is not None
        cam = self._cameras[camera_id] = _Camera(settings)
        recorded = _recorded(self._db)
        streams = self._db.cameras[camera_id].streams.values()
        stream_ids = sorted(s for s in streams if s in recorded)

        async def run(task_status: trio.TaskStatus[None]) -> None:
            try:
                with cam.scope:
                    async with trio.open_nursery() as nursery:
                        tasks = CameraTasks(
                            camera_id, self._db, self._clocks, cam.streamers, self._daemon
                        )
                        for hook in CAMERA_TASKS:
                            await nursery.start(hook, tasks)
                        for sid in stream_ids:
                            streamer = self._streamer(sid)
                            cam.streamers[sid] = self._daemon.streamers[sid] = streamer
                            await nursery.start(streamer.run)
                        task_status.started()
            finally:
                cam.done.set()

        await self._ingest.start(run)

    async def stop_camera(self, camera_id: int, reason: str = RECONFIGURED) -> None:
        """Stops a camera's tasks: its open recordings end with ``reason``."""
        cam = self._cameras.pop(camera_id, None)
        if cam is None:
            return
        for sid, streamer in cam.streamers.items():
            streamer.stop_reason = reason
            if self._daemon.streamers.get(sid) is streamer:
                del self._daemon.streamers[sid]
        cam.scope.cancel()
        await cam.done.wait()
        log.info("camera %d: tasks stopped (%s)", camera_id, reason)

    async def settle(self, camera_id: int) -> None:
        """Stops a camera's tasks and waits until its recordings are synced, then commits
        them: afterwards it has nothing pending (before deleting its recordings)."""
        await self.stop_camera(camera_id)
        stream_ids = list(self._db.cameras[camera_id].streams.values())

        def synced() -> bool:
            return all(
                p.state is PendingState.SYNCED
                for sid in stream_ids
                for p in self._db.streams[sid].pending
            )

        with trio.move_on_at(self._clocks.deadline_after(SETTLE_TIMEOUT)):
            while not synced():
                await self._clocks.sleep(UNITS_PER_SEC // 20)
        if not synced():
            raise errors.Unavailable(
                f"camera {self._db.cameras[camera_id].short_name!r}: its last recordings "
                f"are not synced after {format_duration(SETTLE_TIMEOUT)} (is its directory "
                "failing? see nvrStatus); try again"
            )
        if any(self._db.streams[sid].pending for sid in stream_ids):
            self._db.flush("committing a removed camera's recordings")

    def _streamer(self, sid: int) -> Streamer:
        config, db = self._daemon.config, self._db
        stream_dir = db.streams[sid].sample_file_dir_id
        assert stream_dir is not None
        interval = config.rotate_interval_sec * UNITS_PER_SEC
        streamer = Streamer(
            db=db,
            stream_id=sid,
            sdir=self._dirs[stream_dir],
            sink=self._daemon.syncers[stream_dir],
            opener=self._opener,
            clocks=self._clocks,
            hub=self._daemon.hub,
            options=StreamerOptions(
                rotate_interval=interval,
                rotate_offset=rotate_offset_for(sid, interval),
                read_timeout=round(config.read_timeout_sec * UNITS_PER_SEC),
                connect_timeout=round(config.connect_timeout_sec * UNITS_PER_SEC),
            ),
        )
        streamer.counters = self._counters.setdefault(sid, streamer.counters)
        return streamer
