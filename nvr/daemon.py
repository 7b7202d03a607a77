"""The daemon: the nursery tree of DESIGN.md §3, start-up, signals and shutdown order.

```
run(config)
├─ signal watcher (outside the core nursery: it outlives the final flush)
└─ core nursery
   ├─ syncer per sample-file directory
   ├─ event loop monitor (``Liveness.monitor``)
   ├─ systemd watchdog (``ping_watchdog``: only while ``Liveness`` finds no problem)
   ├─ web: ``nvr.web.server.run_web``, one server per HTTP bind (until the web stop)
   └─ ingest nursery
      └─ streamer per stream with mode=record
```

Start-up: raise the open-files limit (``nvr.base.descriptors``: HTTP never takes the
descriptors recording needs), open the database (exclusive lock), open every sample-file
directory through the open interlock, remove garbage and never-committed files, start
the syncers, then the streamers; then ``READY=1``. ``Daemon.metrics`` reads the syncers
and streamers at scrape time (``nvr.metrics``).

Shutdown, on the first SIGINT/SIGTERM (or ``Daemon.shutdown.set()``): ``STOPPING=1``;
stop accepting HTTP requests and let those in flight finish (``graceful_timeout_sec``);
cancel the ingest nursery (each streamer closes its open recording, shielded and
time-bounded); then cancel the core nursery, so each syncer does its final flush (every
completed recording fsynced and committed); close directories and the database. A second
signal exits the process at once: the database and directories are crash-safe, so that
loses at most the recordings not yet committed, which start-up cleans up.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field

import trio

from nvr.base import descriptors
from nvr.base.clock import Clocks, RealClocks
from nvr.base.time90k import UNITS_PER_SEC, zone
from nvr.config import Config
from nvr.db.database import Database
from nvr.ingest.hub import FrameHub
from nvr.ingest.source import Opener
from nvr.ingest.streamer import Streamer, StreamerOptions, rotate_offset_for
from nvr.ops.liveness import Liveness, LivenessLimits, ping_watchdog
from nvr.ops.metrics import Metrics
from nvr.ops.systemd import Notifier
from nvr.storage.dir import SampleFileDir, open_for_database, remove_garbage_and_uncommitted
from nvr.syncer import Syncer
from nvr.web.context import StreamStatus
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
    #: set to begin an orderly shutdown
    shutdown: trio.Event = field(default_factory=trio.Event)
    #: where the web server listens (``http://127.0.0.1:43123``...), once started
    http_addresses: list[str] = field(default_factory=list)
    #: live frames from the streamers to WebSocket viewers
    hub: FrameHub = field(default_factory=FrameHub)

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


def recorded_streams(db: Database) -> list[int]:
    return [
        s.id
        for s in db.streams.values()
        if s.config.mode == "record" and s.sample_file_dir_id is not None and s.config.url
    ]


def _make_daemon(
    config: Config, db: Database, dirs: dict[int, SampleFileDir], clocks: Clocks
) -> Daemon:
    syncers: dict[int, Syncer] = {}
    streamers: dict[int, Streamer] = {}
    limits = LivenessLimits(
        syncer_stuck=round(config.watchdog_syncer_stuck_sec * UNITS_PER_SEC),
        streamer_stuck=round(config.watchdog_streamer_stuck_sec * UNITS_PER_SEC),
        thread_hung=round(config.watchdog_thread_hung_sec * UNITS_PER_SEC),
        loop_blocked=round(config.watchdog_loop_blocked_sec * UNITS_PER_SEC),
    )
    liveness = Liveness(clocks, syncers, streamers, limits)
    hub = FrameHub()
    metrics = Metrics(
        db,
        clocks=clocks,
        dirs=dirs,
        syncers=syncers,
        streamers=streamers,
        liveness=liveness,
        hub=hub,
    )
    return Daemon(config, db, liveness, metrics, syncers, streamers, hub=hub)


async def run(
    config: Config,
    *,
    clocks: Clocks | None = None,
    opener: Opener | None = None,
    read_only: bool = False,
    notifier: Notifier | None = None,
    handle_signals: bool = True,
    task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Runs the daemon until shutdown. See the module docstring."""
    clocks = clocks or RealClocks()
    notifier = notifier or Notifier()
    open_files_limit = descriptors.raise_soft_limit()
    db = Database.open(
        config.db_dir,
        read_only=read_only,
        tz=zone(config.time_zone),
        now=clocks.realtime,
        monotonic=clocks.monotonic,
    )
    try:
        dirs = open_dirs(db, read_only=read_only)
        try:
            daemon = _make_daemon(config, db, dirs, clocks)
            # The signal watcher lives outside the tree so that a second signal still
            # exits at once while the syncers' shielded final flush runs.
            async with trio.open_nursery() as signals:
                if handle_signals:
                    signals.start_soon(_watch_signals, daemon)
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
    stream_ids = [] if read_only else recorded_streams(db)
    if opener is None:
        from nvr.ingest.pyav_source import PyAvOpener

        limiter = trio.CapacityLimiter(config.worker_threads or len(stream_ids) + 2)
        opener = PyAvOpener(clocks, limiter, threads=daemon.liveness.threads)
    interval = config.rotate_interval_sec * UNITS_PER_SEC
    async with trio.open_nursery() as core:
        if not read_only:
            for dir_id, sdir in dirs.items():
                syncer = Syncer(
                    db, dir_id, sdir, clocks, min_free=config.min_free_for(db.dirs[dir_id].path)
                )
                syncer.on_commit = daemon.metrics.commit_observer(dir_id)
                daemon.syncers[dir_id] = syncer
                await core.start(syncer.run)
        core.start_soon(daemon.liveness.monitor)
        if notifier.watchdog_interval:
            core.start_soon(ping_watchdog, daemon.liveness, notifier, clocks)
        web_stop, web_done = trio.Event(), trio.Event()
        daemon.http_addresses = await core.start(
            run_web, daemon, dirs, clocks, budget, web_stop, web_done
        )
        async with trio.open_nursery() as ingest:
            for sid in stream_ids:
                stream_dir = db.streams[sid].sample_file_dir_id
                assert stream_dir is not None
                streamer = Streamer(
                    db=db,
                    stream_id=sid,
                    sdir=dirs[stream_dir],
                    sink=daemon.syncers[stream_dir],
                    opener=opener,
                    clocks=clocks,
                    hub=daemon.hub,
                    options=StreamerOptions(
                        rotate_interval=interval,
                        rotate_offset=rotate_offset_for(sid, interval),
                        read_timeout=round(config.read_timeout_sec * UNITS_PER_SEC),
                        connect_timeout=round(config.connect_timeout_sec * UNITS_PER_SEC),
                    ),
                )
                daemon.streamers[sid] = streamer
                await ingest.start(streamer.run)
            log.info(
                "recording %d streams into %d directories%s",
                len(stream_ids),
                len(dirs),
                " (read-only)" if read_only else "",
            )
            notifier.notify("READY=1", f"STATUS=recording {len(stream_ids)} streams")
            task_status.started(daemon)
            await daemon.shutdown.wait()
            notifier.notify("STOPPING=1")
            log.info("shutting down: finishing HTTP requests")
            web_stop.set()
            with trio.move_on_after(config.graceful_timeout_sec + 1):
                await web_done.wait()
            log.info("shutting down: closing recordings")
            ingest.cancel_scope.cancel()
        for sid, streamer in daemon.streamers.items():
            c = streamer.counters
            log.info(
                "stream %d: %d frames (%d bytes) received, %d recordings, %d frames dropped, "
                "%d sessions",
                sid, c.frames, c.bytes, c.recordings, c.frames_dropped, c.sessions,
            )
        log.info("shutting down: final flush")
        core.cancel_scope.cancel()


async def _watch_signals(daemon: Daemon) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not daemon.shutdown.is_set():
                log.info("%s: shutting down (send it again to exit at once)", name)
                daemon.shutdown.set()
            else:
                log.warning("second %s: exiting at once", name)
                logging.shutdown()
                os._exit(128 + signum)
