"""Liveness: whether the daemon still does its job, and the systemd watchdog pings that
depend on it.

``Liveness`` answers one question, ``problems()``: is some part of the daemon truly hung?
One camera's misbehaviour never is a problem: a camera that is down, silent, slow,
trickling its handshake a byte at a time or sending garbage gets its own timeout or error
(its stream's state says which) and its streamer backs off and retries, which is
progress. "Truly hung" means one of these, each a wait that has its own deadline and did
not end long after it:

- **a syncer stuck**: its current pass has run for longer than
  ``LivenessLimits.syncer_stuck`` (a step retried over and over, or an fsync that never
  returns);
- **a streamer task hung**: connecting, or recording without a new frame, for longer than
  ``LivenessLimits.streamer_stuck``. Every wait of a streamer has a deadline far shorter
  (connecting: ``connect_timeout_sec``; a batch of frames: ``read_timeout_sec`` plus a
  margin; the config requires the limit to be at least twice the longer), so only a task
  that stopped honouring them, or one blocked handing recordings to a stuck syncer, gets
  there;
- **a camera thread hung**: a connect its streamer gave up on must return by the time
  FFmpeg's interrupt ends it (``nvr.ingest.thread_watch``: twice the connect timeout plus a
  second, plus 30 s for the name lookup no interrupt reaches); one still running
  ``LivenessLimits.thread_hung`` after that is blocked where nothing can end it, holding a
  token of the limiter every camera's connect needs;
- **the event loop blocked**: a task woke up more than ``LivenessLimits.loop_blocked``
  after its deadline (something ran for that long without yielding).

A stuck syncer, streamer or thread is a problem for as long as it stays stuck; a blocked
loop is latched: the daemon has shown it can freeze, and only a restart is trusted to
clear it.

``Liveness.monitor`` is the task that measures the loop's lag: it wakes every ``tick`` and
notes how late it woke. ``ping_watchdog`` sends ``WATCHDOG=1`` every half watchdog
interval while there is no problem, and stops (logging why, once per change) as soon as
there is one (saying why in ``STATUS=``, which ``systemctl status`` shows), so systemd
(``WatchdogSec``) kills and restarts the daemon. Neither task
decides anything else: metrics report the same state (``nvr_healthy``).

A limit of 0 disables its check. Time only comes from ``Clocks`` (monotonic), so tests
drive all of this with ``trio.testing.MockClock`` (``jump`` simulates a blocked loop).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import trio

from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC, Duration, format_duration
from nvr.ingest.streamer import Streamer
from nvr.ingest.thread_watch import ThreadWatch
from nvr.ops.systemd import Notifier
from nvr.syncer import Syncer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LivenessLimits:
    #: a syncer pass running this long means the syncer is stuck (0: never)
    syncer_stuck: Duration = 600 * UNITS_PER_SEC
    #: a streamer connecting, or recording without a new frame, this long is wedged (0: never)
    streamer_stuck: Duration = 300 * UNITS_PER_SEC
    #: a camera thread still running this long after its call's deadline is hung (0: never)
    thread_hung: Duration = 60 * UNITS_PER_SEC
    #: a task waking this late means the event loop was blocked (0: never)
    loop_blocked: Duration = 30 * UNITS_PER_SEC


@dataclass(frozen=True, slots=True)
class Problem:
    subject: str  # what is wrong ("syncer of /media/disk1/nvr", "event loop")
    detail: str  # how, for the log

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail}"


class Liveness:
    """See the module docstring. ``syncers`` and ``streamers`` are read at each check
    (live mappings); ``threads`` is the camera opener's (``PyAvOpener.threads``)."""

    def __init__(
        self,
        clocks: Clocks,
        syncers: Mapping[int, Syncer],
        streamers: Mapping[int, Streamer] | None = None,
        limits: LivenessLimits | None = None,
        *,
        threads: ThreadWatch | None = None,
        tick: Duration = UNITS_PER_SEC,
    ) -> None:
        self._clocks = clocks
        self._syncers = syncers
        self._streamers = streamers if streamers is not None else {}
        self.threads = threads or ThreadWatch(clocks)
        #: stream id -> (what progress looks like, monotonic time it last changed)
        self._progress: dict[int, tuple[tuple[object, ...], Duration]] = {}
        self.limits = limits or LivenessLimits()
        self._tick = tick
        #: the lateness of the monitor's last wake-up, and the largest seen
        self.last_lag: Duration = 0
        self.max_lag: Duration = 0
        #: set (for good) once the loop was seen blocked beyond the limit
        self.loop_blocked: str | None = None

    def note_lag(self, lag: Duration) -> None:
        """Records that a task woke ``lag`` after its deadline."""
        self.last_lag = lag
        self.max_lag = max(self.max_lag, lag)
        limit = self.limits.loop_blocked
        if limit and lag > limit and self.loop_blocked is None:
            self.loop_blocked = f"was blocked for {format_duration(lag)}"

    async def monitor(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Measures the event loop's lag until cancelled; reports started once it took its
        first deadline. Cancellation just stops it (it holds nothing); what it measured
        stays readable."""
        clocks = self._clocks
        deadline = clocks.monotonic()
        task_status.started()
        while True:
            deadline += self._tick
            await clocks.sleep_until(deadline)
            now = clocks.monotonic()
            self.note_lag(now - deadline)
            deadline = max(deadline, now - self._tick)  # after a block: no catch-up burst

    def stuck_syncers(self) -> list[tuple[Syncer, Duration]]:
        """Each syncer whose pass has run longer than the limit, with how long."""
        limit = self.limits.syncer_stuck
        if not limit:
            return []
        now = self._clocks.monotonic()
        out = []
        for s in self._syncers.values():
            since = s.busy_since
            if since is not None and now - since > limit:
                out.append((s, now - since))
        return out

    def stuck_streamers(self) -> list[tuple[Streamer, Duration]]:
        """Each streamer connecting, or recording without a new frame, for longer than the
        limit, with how long. Progress is sampled at each call (each ping or scrape)."""
        limit = self.limits.streamer_stuck
        now = self._clocks.monotonic()
        out = []
        for sid, streamer in self._streamers.items():
            st = streamer.state.value
            mark = (st.kind, st.since, streamer.counters.frames)
            prev = self._progress.get(sid)
            if prev is None or prev[0] != mark:
                self._progress[sid] = (mark, now)
                continue
            stalled = now - prev[1]
            if limit and st.kind in ("connecting", "recording") and stalled > limit:
                out.append((streamer, stalled))
        return out

    def hung_threads(self) -> list[tuple[str, Duration]]:
        """Each camera thread still running more than the limit after its deadline, with
        how long after."""
        limit = self.limits.thread_hung
        if not limit:
            return []
        return [(name, late) for name, late in self.threads.overdue() if late > limit]

    def problems(self) -> list[Problem]:
        """Why the daemon is not healthy (empty: it is)."""
        out = []
        for st, stalled in self.stuck_streamers():
            kind = st.state.value.kind
            what = "connecting" if kind == "connecting" else "recording without a new frame"
            out.append(
                Problem(f"streamer of {st.name}",
                        f"{what} for {format_duration(stalled)}")
            )
        for s, busy in self.stuck_syncers():
            st = s.status.value
            why = f"; {st.failing_step} failing: {st.last_error}" if st.failing_step else ""
            out.append(
                Problem(f"syncer of {s.path}", f"busy for {format_duration(busy)}{why}")
            )
        for name, late in self.hung_threads():
            out.append(
                Problem(f"thread {name!r}",
                        f"still running {format_duration(late)} after its deadline")
            )
        if self.loop_blocked is not None:
            out.append(Problem("event loop", self.loop_blocked))
        return out

    @property
    def healthy(self) -> bool:
        return not self.problems()


async def ping_watchdog(
    liveness: Liveness,
    notifier: Notifier,
    clocks: Clocks,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Pings the systemd watchdog every ``notifier.watchdog_interval`` while ``liveness``
    finds no problem, until cancelled; reports started before the first ping.
    Cancellation just stops the pings (at shutdown the daemon says ``STOPPING=1``, after
    which systemd no longer expects them)."""
    interval = notifier.watchdog_interval
    assert interval
    reported: set[str] = set()  # subjects of the problems last logged
    deadline = clocks.monotonic()
    task_status.started()
    while True:
        problems = liveness.problems()
        subjects = {p.subject for p in problems}
        if not problems:
            notifier.notify("WATCHDOG=1")
            if reported:
                log.warning("healthy again: pinging the systemd watchdog again")
                notifier.notify("STATUS=healthy again")
        elif subjects != reported:
            why = "; ".join(map(str, problems))
            log.error("not pinging the systemd watchdog: %s", why)
            notifier.notify(f"STATUS=unhealthy (systemd will restart nvr): {why}")
        reported = subjects
        deadline += interval
        await clocks.sleep_until(deadline)
        now = clocks.monotonic()
        liveness.note_lag(now - deadline)  # this task sees a blocked loop too
        deadline = max(deadline, now - interval)
