"""The daemon: the nursery tree, start-up, signals and shutdown order (docs/design.md,
"The nursery tree and shutdown").

```
run(config)
├─ signal watcher (outside the core nursery: it outlives the final flush)
└─ core nursery
   ├─ syncer per sample-file directory
   ├─ uploader per archive (``Supervisor.start_uploaders``); read-only: a
   │  follower per archive instead (``nvr.archive.follow.start_followers``)
   ├─ event loop monitor (``Liveness.monitor``)
   ├─ systemd watchdog (``ping_watchdog``: only while ``Liveness`` finds no problem)
   ├─ web: ``nvr.web.server.run_web``, one server per HTTP bind and the control socket
   │  (until the web stop)
   └─ ``Supervisor.run``: the ingest nursery
      └─ camera (a cancel scope each): ``nvr.supervisor.CAMERA_TASKS`` (motion analysis
         for a camera with motion on, ``camera_motion``), then a streamer per stream with
         mode=record
```

The camera and syncer subtrees belong to ``nvr.supervisor.Supervisor``, which also
applies configuration changes to them while the daemon runs (docs/design.md, "Live
configuration").

Start-up: raise the open-files limit (``nvr.base.descriptors``: HTTP never takes the
descriptors recording needs), open the database (exclusive lock), open every sample-file
directory through the open interlock, remove garbage and never-committed files, start
the syncers, then the streamers; then ``READY=1``. ``Daemon.metrics`` reads the syncers
and streamers at scrape time (``nvr.ops.metrics``).

Shutdown, on the first SIGINT/SIGTERM (or ``Daemon.shutdown.set()``): ``STOPPING=1``;
stop accepting HTTP requests and let those in flight finish (``graceful_timeout_sec``);
cancel the ingest nursery once a configuration change being applied is done (each
streamer closes its open recording, shielded and time-bounded); then cancel the core
nursery, so each syncer does its final flush (every completed recording fsynced and
committed); close directories and the database. A second
signal exits the process at once: the database and directories are crash-safe, so that
loses at most the recordings not yet committed, which start-up cleans up.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field

import trio

from nvr.archive.client import OpenStore, open_s3
from nvr.archive.follow import Follower, start_followers
from nvr.archive.reader import ArchiveReads, open_archive_reads
from nvr.archive.uploader import Uploader
from nvr.base import descriptors, errors
from nvr.base.clock import Clocks, RealClocks
from nvr.base.log_limit import RateLimitedLog
from nvr.base.time90k import UNITS_PER_SEC, local_zone_name, zone
from nvr.config import Config
from nvr.db.database import Database
from nvr.ingest.hub import FrameHub
from nvr.ingest.source import Opener
from nvr.ingest.streamer import Streamer
from nvr.motion.detector import DEFAULT_SENSITIVITY
from nvr.motion.events import SignalWrite
from nvr.motion.task import MotionAnalyzer, MotionOptions, start_motion
from nvr.ops.liveness import Liveness, LivenessLimits, ping_watchdog
from nvr.ops.metrics import Metrics
from nvr.ops.systemd import Notifier
from nvr.storage.dir import SampleFileDir, open_for_database, remove_garbage_and_uncommitted
from nvr.supervisor import CAMERA_TASKS, CameraTasks, Supervisor, recorded_streams
from nvr.syncer import Syncer
from nvr.web.context import StreamStatus, WebContext
from nvr.web.server import run_web

log = logging.getLogger(__name__)


@dataclass
class Daemon:
    """A running daemon, as ``run`` reports it through ``task_status.started``."""

    config: Config
    db: Database
    liveness: Liveness
    metrics: Metrics
    syncers: dict[int, Syncer] = field(default_factory=dict)  # by dir id
    streamers: dict[int, Streamer] = field(default_factory=dict)  # by stream id
    uploaders: dict[int, Uploader] = field(default_factory=dict)  # by archive id
    #: makes an archive's object store (tests put an in-process one)
    open_store: OpenStore = open_s3
    #: a read-only daemon's archive followers, by archive id
    followers: dict[int, Follower] = field(default_factory=dict)
    #: set to begin an orderly shutdown
    shutdown: trio.Event = field(default_factory=trio.Event)
    #: where the web server listens (``http://127.0.0.1:43123``...), once started
    http_addresses: list[str] = field(default_factory=list)
    #: live frames from the streamers to WebSocket viewers
    hub: FrameHub = field(default_factory=FrameHub)
    #: the cameras' and directories' tasks; applies configuration changes (once started)
    supervisor: Supervisor | None = None
    #: motion analysis by analysed stream id
    motion: dict[int, MotionAnalyzer] = field(default_factory=dict)
    #: the decode slots all cameras' motion analyses share
    motion_limiter: trio.CapacityLimiter = field(
        default_factory=lambda: trio.CapacityLimiter(max(1, os.cpu_count() or 1))
    )

    def stream_status(self, stream_id: int) -> StreamStatus | None:
        """The live state of a recorded stream (None: not recorded here): its streamer's
        and its directory's syncer's. ``nvr.web.api`` formats it (``nvrStatus``)."""
        streamer = self.streamers.get(stream_id)
        if streamer is None:
            return None
        dir_id = self.db.streams[stream_id].sample_file_dir_id
        syncer = self.syncers.get(dir_id) if dir_id is not None else None
        if syncer is None:
            return StreamStatus(streamer.state.value)
        return StreamStatus(
            streamer.state.value, syncer.status.value, syncer.last_free_bytes, syncer.min_free
        )


def open_dirs(db: Database, *, read_only: bool) -> dict[int, SampleFileDir]:
    """Opens every directory through the interlock; read-write also cleans up."""
    dirs: dict[int, SampleFileDir] = {}
    try:
        for dir_id in sorted(db.dirs):
            dirs[dir_id] = open_for_database(db, dir_id, read_only=read_only)
            if not read_only:
                removed = remove_garbage_and_uncommitted(db, dir_id, dirs[dir_id])
                if removed:
                    log.info("%s: removed %d stale files", db.dirs[dir_id].path, removed)
        if not read_only and db.has_unflushed_work():
            db.flush("start-up cleanup")
    except BaseException:
        for d in dirs.values():
            d.close()
        raise
    return dirs


def _make_daemon(
    config: Config, db: Database, dirs: dict[int, SampleFileDir], clocks: Clocks
) -> Daemon:
    syncers: dict[int, Syncer] = {}
    streamers: dict[int, Streamer] = {}
    uploaders: dict[int, Uploader] = {}
    limits = LivenessLimits(
        syncer_stuck=round(config.watchdog_syncer_stuck_sec * UNITS_PER_SEC),
        streamer_stuck=round(config.watchdog_streamer_stuck_sec * UNITS_PER_SEC),
        thread_hung=round(config.watchdog_thread_hung_sec * UNITS_PER_SEC),
        loop_blocked=round(config.watchdog_loop_blocked_sec * UNITS_PER_SEC),
    )
    liveness = Liveness(clocks, syncers, streamers, limits)
    hub = FrameHub()
    motion: dict[int, MotionAnalyzer] = {}
    metrics = Metrics(
        db,
        clocks=clocks,
        dirs=dirs,
        syncers=syncers,
        streamers=streamers,
        uploaders=uploaders,
        liveness=liveness,
        hub=hub,
        motion=motion,
    )
    return Daemon(
        config, db, liveness, metrics, syncers, streamers,
        uploaders=uploaders, hub=hub, motion=motion,
    )


async def run(
    config: Config,
    *,
    clocks: Clocks | None = None,
    opener: Opener | None = None,
    read_only: bool = False,
    notifier: Notifier | None = None,
    handle_signals: bool = True,
    open_store: OpenStore | None = None,
    task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Runs the daemon until shutdown; reports the ``Daemon`` once it is ready (every
    directory open, every bind listening, every streamer connecting). The orderly
    shutdown is ``Daemon.shutdown.set()`` (what a signal does). Cancelling the task instead
    stops every part at once: HTTP without its grace period, but each streamer still
    closes its recording and each syncer still runs its final flush, shielded and bounded
    by their own timeouts; directories and the database are closed either way."""
    clocks = clocks or RealClocks()
    notifier = notifier or Notifier()
    open_files_limit = descriptors.raise_soft_limit()
    db = _open_db(config, clocks, read_only)
    try:
        dirs = open_dirs(db, read_only=read_only)
        try:
            daemon = _make_daemon(config, db, dirs, clocks)
            if open_store is not None:
                daemon.open_store = open_store
            # The signal watcher lives outside the tree so that a second signal still
            # exits at once while the syncers' shielded final flush runs.
            async with trio.open_nursery() as signals:
                if handle_signals:
                    await signals.start(_watch_signals, daemon)
                budget = descriptors.DescriptorBudget.for_recording(
                    open_files_limit,
                    streams=len(recorded_streams(db)) if not read_only else 0,
                    dirs=len(dirs),
                )
                await _run_tree(
                    daemon, dirs, clocks, opener, read_only, notifier, budget, task_status
                )
                signals.cancel_scope.cancel()
        finally:
            for d in dirs.values():
                d.close()
    finally:
        db.close()
    log.info("stopped")


def _open_db(config: Config, clocks: Clocks, read_only: bool) -> Database:
    """The database; a read-only daemon that follows an archive (``nvr.archive.follow``)
    opens it read-write, to add the archive's new recordings (it records nothing)."""
    def open_(ro: bool) -> Database:
        return Database.open(config.db_dir, read_only=ro, tz=zone(config.time_zone),
                             now=clocks.realtime, monotonic=clocks.monotonic)

    db = open_(read_only)
    if read_only and config.archive_follow_interval_sec > 0 and db.archives:
        db.close()
        db = open_(False)
    return db


async def _run_tree(
    daemon: Daemon,
    dirs: dict[int, SampleFileDir],
    clocks: Clocks,
    opener: Opener | None,
    read_only: bool,
    notifier: Notifier,
    budget: descriptors.DescriptorBudget,
    task_status: trio.TaskStatus[Daemon],
) -> None:
    db, config = daemon.db, daemon.config
    if opener is None:
        from nvr.ingest.pyav_source import PyAvOpener

        n_streams = 0 if read_only else len(recorded_streams(db))
        limiter = trio.CapacityLimiter(config.worker_threads or n_streams + 2)
        opener = PyAvOpener(clocks, limiter, threads=daemon.liveness.threads)
    archive_reads = open_archive_reads(db, daemon.open_store)
    try:
        await _run_core(daemon, dirs, clocks, opener, read_only, notifier, budget, task_status,
                        archive_reads)
    finally:
        archive_reads.close()


async def _run_core(
    daemon: Daemon,
    dirs: dict[int, SampleFileDir],
    clocks: Clocks,
    opener: Opener,
    read_only: bool,
    notifier: Notifier,
    budget: descriptors.DescriptorBudget,
    task_status: trio.TaskStatus[Daemon],
    archive_reads: ArchiveReads,
) -> None:
    db, config = daemon.db, daemon.config
    async with trio.open_nursery() as core:
        supervisor = daemon.supervisor = Supervisor(
            daemon, dirs, clocks, opener, core, archive_reads, daemon.open_store
        )
        if not read_only:
            for dir_id in dirs:
                await supervisor.start_syncer(dir_id)
            await supervisor.start_uploaders()
        elif not db.read_only:
            daemon.followers = await start_followers(
                core, db, clocks, round(config.archive_follow_interval_sec * UNITS_PER_SEC))
        core.start_soon(daemon.liveness.monitor)
        if notifier.watchdog_interval:
            core.start_soon(ping_watchdog, daemon.liveness, notifier, clocks)
        web_stop, web_done = trio.Event(), trio.Event()
        shared = WebContext(
            db=db,
            dirs=dirs,
            clocks=clocks,
            time_zone_name=config.time_zone or local_zone_name(),
            hub=daemon.hub,
            stream_status=daemon.stream_status,
            metrics=daemon.metrics,
            reconfigure=supervisor,
            uploaders=daemon.uploaders,
            opener=opener,
            archive_reads=archive_reads,
        )
        daemon.http_addresses = await core.start(
            run_web, config, shared, budget, web_stop, web_done
        )
        if not read_only:
            await core.start(supervisor.run)
        log.info(
            "recording %d streams into %d directories%s",
            len(daemon.streamers),
            len(dirs),
            " (read-only)" if read_only else "",
        )
        notifier.notify("READY=1", f"STATUS=recording {len(daemon.streamers)} streams")
        task_status.started(daemon)
        await daemon.shutdown.wait()
        notifier.notify("STOPPING=1")
        log.info("shutting down: finishing HTTP requests")
        web_stop.set()
        with trio.move_on_after(config.graceful_timeout_sec + 1):
            await web_done.wait()
        log.info("shutting down: closing recordings")
        async with supervisor.lock:  # a change being applied finishes first
            await supervisor.stop_cameras()
        for streamer in daemon.streamers.values():
            c = streamer.counters
            log.info(
                "%s: %d frames (%d bytes) received, %d recordings, %d frames dropped, "
                "%d sessions",
                streamer.name, c.frames, c.bytes, c.recordings, c.frames_dropped, c.sessions,
            )
        for sid, analyzer in daemon.motion.items():
            m = analyzer.counters
            log.info(
                "stream %d motion: %d frames decoded, %d pictures analysed, %d frames skipped, "
                "%d decode errors, %d events, %d summaries",
                sid, m.frames, m.pictures, m.skipped, m.decode_errors, m.events, m.summaries,
            )
        log.info("shutting down: final flush")
        core.cancel_scope.cancel()


async def start_camera_motion(
    daemon: Daemon,
    nursery: trio.Nursery,
    camera_id: int,
    recorded: list[int],
    limiter: trio.CapacityLimiter,
    clocks: Clocks,
    signal: SignalWrite | None = None,
) -> MotionAnalyzer | None:
    """Starts the camera's motion analysis in ``nursery`` if its configuration turns it
    on and the chosen stream is recorded here (analysis reads the frames the streamer
    writes, ``nvr.motion.task``); before the streamers start, so it misses no frame.
    ``signal`` receives the motion signal's writes (default: ``motion_signal_writer``)."""
    db = daemon.db
    cfg = db.cameras[camera_id].config
    if cfg.motion is None:
        return None
    sid = db.cameras[camera_id].streams.get(cfg.motion)
    if sid is None or sid not in recorded:
        log.warning(
            "camera %s: motion analysis needs its %s stream recorded; it is off",
            db.cameras[camera_id].short_name, cfg.motion,
        )
        return None
    options = MotionOptions(
        fps=daemon.config.motion_fps,
        sensitivity=cfg.motion_sensitivity or DEFAULT_SENSITIVITY,
        mask=frozenset(cfg.motion_mask or ()),
    )
    if signal is None:
        signal = motion_signal_writer(db, camera_id, clocks)
    analyzer = await start_motion(
        nursery, stream_id=sid, hub=daemon.hub, store=db.put_motion_summary, signal=signal,
        options=options, limiter=limiter,
    )
    previous = daemon.motion.get(sid)
    if previous is not None:  # restarted with its camera: metrics' counters never go back
        analyzer.counters = previous.counters
    daemon.motion[sid] = analyzer
    return analyzer


async def camera_motion(
    tasks: CameraTasks, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The ``CAMERA_TASKS`` entry for motion analysis: runs the camera's analysis (if its
    configuration turns it on) until the camera's tasks stop; reports started once it is
    subscribed, before the supervisor starts the camera's streamers."""
    daemon = tasks.daemon
    assert isinstance(daemon, Daemon)
    async with trio.open_nursery() as nursery:
        await start_camera_motion(
            daemon, nursery, tasks.camera_id, recorded_streams(daemon.db),
            daemon.motion_limiter, tasks.clocks,
        )
        task_status.started()


CAMERA_TASKS.append(camera_motion)


def motion_signal_writer(db: Database, camera_id: int, clocks: Clocks) -> SignalWrite:
    """Writes a camera's motion events to its motion signal (``Database.motion_signal``,
    made if missing) through ``update_signals``. A failed write (a full disk, a time the
    signals store refuses) is logged, at most once a minute, and analysis goes on."""
    signal_id = db.motion_signal(camera_id).id
    limited = RateLimitedLog(clocks, log)

    def write(state: int, start: int, end: int) -> None:
        try:
            db.update_signals([signal_id], [state], start, end)
        except errors.NvrError as e:
            limited(f"camera {camera_id}: motion signal not written: {e}")

    return write


async def _watch_signals(
    daemon: Daemon, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The first SIGINT/SIGTERM sets ``daemon.shutdown``; a second exits the process at
    once. Reports started once the signals are caught (from then on a signal never
    interrupts start-up). Cancellation (once the tree has shut down) just stops catching
    them."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if not daemon.shutdown.is_set():
                log.info("%s: shutting down (send it again to exit at once)", name)
                daemon.shutdown.set()
            else:
                log.warning("second %s: exiting at once", name)
                logging.shutdown()
                os._exit(128 + signum)
