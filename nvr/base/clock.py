"""Clocks: the only place nvr reads the time.

``Clocks`` gives wall time (``realtime``, 90k since the epoch) and a monotonic time
(``monotonic``, 90k since an arbitrary point) and sleeps until a monotonic deadline.
Both implementations take the monotonic time from trio's clock, so ``trio.sleep_until``
and our deadlines agree; ``deadline_after`` (a 90k duration from now) and ``deadline_at``
(a ``monotonic()`` time) give the deadline a trio cancel scope takes (``trio.move_on_at``,
``CancelScope.deadline``), so no caller converts units by hand:

- ``RealClocks``: wall time from the system.
- ``SimulatedClocks(start)``: wall time is ``start`` plus the trio time elapsed since the
  object was made; under ``trio.testing.MockClock`` everything is virtual and exact.

Outside a trio run (the CLI), only ``realtime()`` of ``RealClocks`` is usable.
"""

from __future__ import annotations

import time
from typing import Protocol

import trio

from nvr.base.time90k import UNITS_PER_SEC, Duration, Time


class Clocks(Protocol):
    def realtime(self) -> Time: ...

    def monotonic(self) -> Duration: ...

    async def sleep_until(self, deadline: Duration) -> None: ...

    async def sleep(self, duration: Duration) -> None: ...

    def deadline_after(self, duration: Duration) -> float:
        """The trio deadline (seconds on trio's clock) ``duration`` from now."""
        ...

    def deadline_at(self, monotonic: Duration) -> float:
        """The trio deadline of a ``monotonic()`` time."""
        ...


def instrumentation_stamp() -> float:
    """``time.monotonic()``: a system-wide clock readable from any thread and comparable
    across processes, for instrumentation only (``Packet.received``, which the live-view
    benchmark joins with a viewer process's arrival times). nvr's logic never reads it:
    decisions take time from ``Clocks``, so tests can step it."""
    return time.monotonic()


def io_monotonic() -> float:
    """``time.monotonic()`` for a worker thread that paces or times real I/O (the PyAV
    reader coalescing its socket reads, ``nvr.ingest.pacing``; a camera's connect timed to
    tell FFmpeg's handshake timeout from invalid data, ``nvr.ingest.demuxer``): it waits on
    a real socket, which a mock clock could not drive. Never used for what gets recorded or
    when."""
    return time.monotonic()


def _trio_now() -> Duration:
    return round(trio.current_time() * UNITS_PER_SEC)


class _TrioMonotonic:
    def monotonic(self) -> Duration:
        return _trio_now()

    async def sleep_until(self, deadline: Duration) -> None:
        await trio.sleep_until(self.deadline_at(deadline))

    async def sleep(self, duration: Duration) -> None:
        await trio.sleep(max(0, duration) / UNITS_PER_SEC)

    def deadline_after(self, duration: Duration) -> float:
        return trio.current_time() + duration / UNITS_PER_SEC

    def deadline_at(self, monotonic: Duration) -> float:
        return monotonic / UNITS_PER_SEC


class RealClocks(_TrioMonotonic):
    def realtime(self) -> Time:
        return time.time_ns() * 9 // 100_000


class SimulatedClocks(_TrioMonotonic):
    """Wall time that advances with trio's (possibly mock) clock, starting at ``start``.

    Must be created inside the trio run whose clock drives it.
    """

    def __init__(self, start: Time) -> None:
        self._start = start
        self._origin = _trio_now()

    def realtime(self) -> Time:
        return self._start + _trio_now() - self._origin


class Stopwatch:
    """Measures how long a piece of synchronous work took, for "slow operation" logs.

    Uses the process's performance counter, not ``Clocks``: it measures real CPU/IO time
    even under a mock clock, and is never used to make decisions.
    """

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000
