"""The daemon: the nursery tree of DESIGN.md §3, start-up, signals and shutdown order.

```
run(config)
├─ signal watcher (outside the core nursery: it outlives the final flush)
└─ core nursery
   ├─ syncer per sample-file directory
   ├─ systemd watchdog
   ├─ web: hypercorn per HTTP bind (shutdown_trigger: the daemon's web stop)
   └─ ingest nursery
      └─ streamer per stream with mode=record
```

Start-up: open the database (exclusive lock), open every sample-file directory through
the open interlock, remove garbage and never-committed files, start the syncers, then the
streamers; then ``READY=1``.

Shutdown, on the first SIGINT/SIGTERM (or ``Daemon.shutdown.set()``): ``STOPPING=1``;
stop accepting HTTP requests and let those in flight finish (hypercorn's
``graceful_timeout``); cancel the ingest nursery (each streamer closes its open
recording, shielded and time-bounded); then cancel the core nursery, so each syncer
does its final flush (every completed recording fsynced and committed); close
directories and the database. A second signal exits the process at once: the database
and directories are crash-safe, so that loses at most the recordings not yet committed,
which start-up cleans up.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from functools import partial

import trio

from nvr.base.clock import Clocks, RealClocks
from nvr.base.time90k import UNITS_PER_SEC, local_zone_name, zone
from nvr.config import Config
from nvr.db.database import Database
from nvr.ingest.source import Opener
from nvr.ingest.streamer import Streamer, StreamerOptions, rotate_offset_for
from nvr.storage.dir import SampleFileDir, open_for_database, remove_garbage_and_uncommitted
from nvr.syncer import Syncer
from nvr.systemd import Notifier

log = logging.getLogger(__name__)

#: a syncer retrying this long makes the daemon stop pinging the systemd watchdog
STUCK_SYNCER_LIMIT = 10 * 60 * UNITS_PER_SEC


@dataclass
class Daemon:
    """A running daemon, as ``run`` reports it through ``task_status.started``."""

    config: Config
    db: Database
    syncers: dict[int, Syncer] = field(default_factory=dict)  # by dir id
    streamers: dict[int, Streamer] = field(default_factory=dict)  # by stream id
    #: set to begin an orderly shutdown
    shutdown: trio.Event = field(default_factory=trio.Event)
    #: where the web server listens (``http://127.0.0.1:43123``...), once started
    http_addresses: list[str] = field(default_factory=list)

    def stream_status(self, stream_id: int) -> dict[str, object] | None:
        """The live state of a recorded stream, for the API (``nvrStatus``)."""
        streamer = self.streamers.get(stream_id)
        if streamer is None:
            return None
        st = streamer.state.value
        out: dict[str, object] = {
            "state": st.kind,
            "since90k": st.since,
            "lastError": st.last_error,
            "nextTry90k": st.next_try,
        }
        dir_id = self.db.streams[stream_id].sample_file_dir_id
        syncer = self.syncers.get(dir_id) if dir_id is not None else None
        if syncer is not None:
            # the directory's side: a failing syncer step (e.g. a commit), and free space
            sy = syncer.status.value
            out["syncer"] = {
                "failingStep": sy.failing_step,
                "failingSince90k": sy.failing_since,
                "lastError": sy.last_error,
                "freeBytes": syncer.last_free_bytes,
            }
        return out

    def healthy(self, clocks: Clocks) -> bool:
        """False when a syncer has been failing for longer than ``STUCK_SYNCER_LIMIT``."""
        now = clocks.realtime()
        for s in self.syncers.values():
            st = s.status.value
            if st.failing_since is not None and now - st.failing_since > STUCK_SYNCER_LIMIT:
                return False
        return True


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
            daemon = Daemon(config, db)
            # The signal watcher lives outside the tree so that a second signal still
            # exits at once while the syncers' shielded final flush runs.
            async with trio.open_nursery() as signals:
                if handle_signals:
                    signals.start_soon(_watch_signals, daemon)
                await _run_tree(daemon, dirs, clocks, opener, read_only, notifier, task_status)
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
    task_status: trio.TaskStatus[Daemon],
) -> None:
    db, config = daemon.db, daemon.config
    stream_ids = [] if read_only else recorded_streams(db)
    if opener is None:
        from nvr.ingest.pyav import PyAvOpener

        limiter = trio.CapacityLimiter(config.worker_threads or len(stream_ids) + 2)
        opener = PyAvOpener(clocks, limiter)
    interval = config.rotate_interval_sec * UNITS_PER_SEC
    async with trio.open_nursery() as core:
        if not read_only:
            for dir_id, sdir in dirs.items():
                syncer = Syncer(
                    db, dir_id, sdir, clocks, min_free=config.min_free_for(db.dirs[dir_id].path)
                )
                daemon.syncers[dir_id] = syncer
                await core.start(syncer.run)
        if notifier.watchdog_interval:
            core.start_soon(_ping_watchdog, daemon, clocks, notifier)
        web_stop, web_done = trio.Event(), trio.Event()
        daemon.http_addresses = await core.start(_run_web, daemon, dirs, clocks, web_stop, web_done)
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
                    options=StreamerOptions(
                        rotate_interval=interval,
                        rotate_offset=rotate_offset_for(sid, interval),
                        read_timeout=round(config.read_timeout_sec * UNITS_PER_SEC),
                    ),
                )
                daemon.streamers[sid] = streamer
                ingest.start_soon(streamer.run)
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
        log.info("shutting down: final flush")
        core.cancel_scope.cancel()


async def _run_web(
    daemon: Daemon,
    dirs: dict[int, SampleFileDir],
    clocks: Clocks,
    stop: trio.Event,
    done: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves every configured bind until ``stop``; reports the bound addresses."""
    import hypercorn.config
    import hypercorn.trio

    from nvr.web.app import WebContext, create_app

    config = daemon.config
    addresses: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            for bind in config.binds:
                ctx = WebContext(
                    db=daemon.db,
                    dirs=dirs,
                    clocks=clocks,
                    bind=bind,
                    time_zone_name=config.time_zone or local_zone_name(),
                    stream_status=daemon.stream_status,
                )
                hc = hypercorn.config.Config()
                hc.bind = [bind.address]
                hc.graceful_timeout = config.graceful_timeout_sec
                hc.accesslog = None
                if bind.tls_cert and bind.tls_key:
                    hc.certfile, hc.keyfile = bind.tls_cert, bind.tls_key
                bound = await nursery.start(
                    partial(hypercorn.trio.serve, create_app(ctx), hc, shutdown_trigger=stop.wait)
                )
                log.info("serving HTTP on %s", ", ".join(bound))
                addresses.extend(bound)
            task_status.started(addresses)
    finally:
        done.set()


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


async def _ping_watchdog(daemon: Daemon, clocks: Clocks, notifier: Notifier) -> None:
    interval = notifier.watchdog_interval
    assert interval
    warned = False
    while True:
        if daemon.healthy(clocks):
            notifier.notify("WATCHDOG=1")
            warned = False
        elif not warned:
            log.error("a syncer is stuck: no longer pinging the systemd watchdog")
            warned = True
        await clocks.sleep(interval)
