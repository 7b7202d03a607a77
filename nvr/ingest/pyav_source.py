"""The trio side of the PyAV demuxer: ``PyAvOpener`` and the sessions it opens, ``PyAvSource``.

Connecting is one ``run_blocking`` call under the opener's limiter with
``abandon_on_cancel=True`` (an abandoned connect closes the container itself when FFmpeg
returns). After that each source has a reader thread of its own that runs
``Demuxer.read_batch`` in a loop, queues the batches and wakes trio once per batch; nothing
is ever in flight between the two, so cancelling ``next_batch`` loses nothing, and
``drain`` hands over the partial batch at shutdown (every frame received up to the signal
is recorded). For ``OpenOptions.realtime`` (a file played as a camera) the trio side paces
packets at their timestamps with ``clocks.sleep_until``.

**The reader thread is the one exception to the thread seam** (``nvr.base.blocking``;
docs/design.md, "Time"): it is started here with ``threading.Thread``, not through
``run_blocking``, because it is not a call but a producer that lives as long as its session
(hours), blocked inside FFmpeg until the camera sends more or in a coalescing pause:

- through ``run_blocking`` a trio task would have to sit on it for the whole session, in a
  nursery a ``Source`` does not have (the streamer gets it from ``Opener.open``);
- it would hold a ``CapacityLimiter`` token for the whole session: on the limiter every
  ``run_blocking`` call shares, more cameras than its size would starve the sample-file
  writes and fsyncs that recording waits for; on one of its own, the limiter would limit
  nothing;
- it must never run inline: tests install ``inline_blocking()``, under which
  ``run_blocking`` runs the function on the trio thread, where a reader that waits for room
  in its queue (emptied by the trio side) or for FFmpeg would deadlock the run
  (``test_realtime_paces_packets_at_their_timestamps`` reads a file this way on a
  ``MockClock``);
- it cannot be cancelled anyway: ``aclose`` asks it to stop, and it closes the container
  and exits once its current read returns (within the read timeout for a silent camera:
  ``nvr.ingest.demuxer``, Timeouts).

Everything else that blocks here (connecting, closing an abandoned container) is a call and
goes through ``run_blocking``. A connect whose caller gave up (the streamer's connect
deadline) is abandoned: it returns when FFmpeg's interrupt ends it, and the opener's
``ThreadWatch`` expects it by then (``nvr.ingest.thread_watch``); liveness reports one that
outlives that by far.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import trio

from nvr.base.blocking import run_blocking
from nvr.base.clock import Clocks
from nvr.base.errors import NvrError, Unavailable
from nvr.base.time90k import UNITS_PER_SEC, Duration
from nvr.ingest.demuxer import Demuxer, is_network_url
from nvr.ingest.pacing import DEFAULT_PAUSE
from nvr.ingest.source import OpenOptions, Packet, scrub_userinfo
from nvr.ingest.thread_watch import ThreadWatch

T = TypeVar("T")


class PyAvSource:
    """One open session (see ``nvr.ingest.source.Source``) with a reader thread of its own
    (a plain ``threading.Thread``, not ``run_blocking``: see the module docstring).

    The thread reads batches (``Demuxer.read_batch``) into a short queue and wakes the
    trio side with one ``run_sync_soon`` per batch; when the queue is full it waits, so a
    slow consumer holds at most ``max_queued`` batches. Nothing is ever in flight between
    the thread and trio: a cancelled ``next_batch`` loses nothing, and ``drain`` (at
    shutdown) makes the thread cut its current batch after the packet being read, hand
    over everything it has and then, a frame at a time, whatever still waits in the
    socket up to the camera's live edge.
    """

    def __init__(
        self, demuxer: Demuxer, clocks: Clocks, realtime: bool, *, max_queued: int = 4
    ) -> None:
        self._demuxer = demuxer
        self._clocks = clocks
        self._realtime = realtime
        self._token = trio.lowlevel.current_trio_token()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._batches: deque[list[Packet]] = deque()  # [] marks the end of the stream
        self._max_queued = max_queued
        self._error: NvrError | None = None
        self._finished = False  # the reader thread has queued all it will and exited
        self._stopping = False
        self._draining = False
        self._wakeup: trio.Event | None = None
        self._pending: deque[Packet] = deque()  # realtime: read but not yet due
        self._origin: Duration | None = None
        self._thread = threading.Thread(
            target=self._read_loop, name=f"nvr read {scrub_userinfo(demuxer.url)}", daemon=True
        )
        self._thread.start()

    # -- the reader thread --

    def _read_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    while len(self._batches) >= self._max_queued and not (
                        self._stopping or self._draining
                    ):
                        self._room.wait()
                    if self._stopping:
                        return
                try:
                    batch = self._demuxer.mapping_errors(self._demuxer.read_batch)
                except NvrError as e:
                    with self._lock:
                        self._error = e
                    return
                with self._lock:
                    if self._draining:
                        batch += self._demuxer.take_ready()
                    self._batches.append(batch)
                    self._wake_locked()
                    # Draining: read on, a frame at a time, what already waits in the
                    # socket (a paced reader may be a pause behind), then stop.
                    if not batch or (self._draining and self._demuxer.caught_up):
                        return
        finally:
            self._demuxer.close()
            with self._lock:
                self._finished = True
                self._wake_locked()

    def _wake_locked(self) -> None:
        event, self._wakeup = self._wakeup, None
        if event is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(event.set)

    # -- the trio side --

    async def _wait_for_reader(self, *, until_finished: bool = False) -> None:
        """Waits until the reader queues something or exits (``until_finished``: until it
        exits). Call without the lock, after finding nothing to take under it."""
        with self._lock:
            if self._finished or (self._batches and not until_finished):
                return
            event = self._wakeup = trio.Event()
        await event.wait()

    async def _read(self) -> list[Packet]:
        while True:
            with self._lock:
                if self._stopping:
                    raise Unavailable(f"{self._demuxer.url}: source is closed")
                if self._batches:
                    batch = self._batches.popleft()
                    self._room.notify()
                    return batch
                if self._error is not None:
                    raise self._error
                if self._finished:
                    raise Unavailable(f"{self._demuxer.url}: source is closed")
            await self._wait_for_reader()

    async def next_batch(self) -> list[Packet]:
        if not self._realtime:
            return await self._read()
        return await self._next_paced_batch()

    async def _next_paced_batch(self) -> list[Packet]:
        """The packets due by now (at least one), sleeping until the first is due."""
        if not self._pending:
            batch = await self._read()
            if not batch:
                return []
            self._pending.extend(batch)
        if self._origin is None:
            self._origin = self._clocks.monotonic() - self._pending[0].pts
        await self._clocks.sleep_until(self._origin + self._pending[0].pts)
        now = self._clocks.monotonic()
        due = [self._pending.popleft()]
        while self._pending and self._origin + self._pending[0].pts <= now:
            due.append(self._pending.popleft())
        return due

    @property
    def low_latency(self) -> bool:
        return self._demuxer.cut_early and not self._draining

    @low_latency.setter
    def low_latency(self, on: bool) -> None:
        if not (self._draining or self._stopping) and on != self._demuxer.cut_early:
            self._demuxer.cut_early = on
            self._demuxer.set_pausing(not on)

    async def drain(self, grace: Duration) -> list[Packet]:
        """See ``Source.drain``. A realtime (paced file) source has nothing that arrived
        early, so it returns nothing."""
        if self._realtime:
            return []
        self._demuxer.cut_early = True
        self._demuxer.set_pausing(False)
        with self._lock:
            self._draining = True
            self._room.notify()
        with trio.move_on_at(self._clocks.deadline_after(grace)):
            while not self._finished:
                await self._wait_for_reader(until_finished=True)
        with self._lock:
            packets = [p for batch in self._batches for p in batch]
            self._batches.clear()
        return packets

    async def aclose(self) -> None:
        """Stops the reader; it closes the container once its current read returns (a
        stalled camera's read returns within the read timeout)."""
        self._demuxer.cut_early = True
        self._demuxer.set_pausing(False)
        with self._lock:
            self._stopping = True
            self._room.notify()
        await trio.lowlevel.checkpoint()


async def _in_thread(
    demuxer: Demuxer, fn: Callable[[], T], limiter: trio.CapacityLimiter, threads: ThreadWatch
) -> T:
    """Runs ``fn`` (a connect) in a worker thread. On cancellation the thread is abandoned,
    and ``threads`` expects it to return by the connect's deadline; it closes the container
    when its blocked call returns (or, if it never started, we close now)."""
    try:
        return await run_blocking(
            demuxer.run_in_worker, fn, limiter=limiter, abandon_on_cancel=True
        )
    except trio.Cancelled:
        if demuxer.request_close():
            await _close_in_thread(demuxer, limiter)
        else:
            threads.expect_end(
                f"nvr connect {scrub_userinfo(demuxer.url)}", demuxer.in_call,
                demuxer.connect_deadline,
            )
        raise


async def _close_in_thread(demuxer: Demuxer, limiter: trio.CapacityLimiter) -> None:
    """Closes the container in a worker thread, shielded: closing is short and must happen."""
    with trio.CancelScope(shield=True):
        await run_blocking(demuxer.close, limiter=limiter)


class PyAvOpener:
    """Opens RTSP URLs and local files (paths or ``file:`` URLs) with PyAV.

    ``limiter`` bounds the threads that connect (each open source then has its own reader
    thread); the daemon sizes it for its number of streams.
    ``max_batch`` caps the media time of one batch when key frames are far apart;
    ``read_pause`` is how long a caught-up camera reader pauses (``nvr.ingest.pacing``;
    0: never). ``threads`` learns of every connect abandoned (see the module docstring).
    """

    def __init__(
        self,
        clocks: Clocks,
        limiter: trio.CapacityLimiter,
        *,
        max_batch: Duration = UNITS_PER_SEC,
        read_pause: float = DEFAULT_PAUSE,
        threads: ThreadWatch | None = None,
    ) -> None:
        self._clocks = clocks
        self._limiter = limiter
        self._max_batch = max_batch
        self._read_pause = read_pause
        self.threads = threads or ThreadWatch(clocks)

    async def open(self, url: str, options: OpenOptions) -> PyAvSource:
        demuxer = Demuxer(url, options, self._max_batch, self._read_pause)
        await _in_thread(demuxer, demuxer.connect, self._limiter, self.threads)
        realtime = options.realtime and not is_network_url(url)
        return PyAvSource(demuxer, self._clocks, realtime)
