"""``ThreadWatch``: the camera threads that were told to end, and by when they must have.

A camera's blocking calls into FFmpeg run in threads that trio cannot cancel. A connect
that its caller gave up on (the streamer's connect deadline) is abandoned
(``nvr.ingest.pyav_source``), and FFmpeg's interrupt callback ends the call by a time
known then (``nvr.ingest.demuxer``, Timeouts: ``Demuxer.connect_deadline``). The source
registers the thread here with that time; ``overdue`` names the threads still running
after it. One past its time by a wide margin is hung: blocked where no interrupt reaches,
holding a token of the connect limiter other cameras need. That is what the liveness rule
reports (``nvr.ops.liveness``; docs/design.md, "Recording, syncing and retention",
Liveness); a camera that merely misbehaves never gets there.

(A session's reader thread is not registered: its reads end at FFmpeg's socket timeout
when the camera goes silent, and while a camera trickles bytes the read makes progress,
so the thread is slow, not hung.)

Threads only ever answer ``running()``; everything here runs on the trio thread, and time
comes from ``Clocks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nvr.base.clock import Clocks
from nvr.base.time90k import Duration


@dataclass(frozen=True, slots=True)
class EndingThread:
    """A thread told to end: what it is, whether it still runs, and by when it must not."""

    name: str
    running: Callable[[], bool]
    due: Duration  # monotonic


class ThreadWatch:
    """See the module docstring."""

    def __init__(self, clocks: Clocks) -> None:
        self._clocks = clocks
        self._ending: list[EndingThread] = []

    def expect_end(self, name: str, running: Callable[[], bool], within: Duration) -> None:
        """Notes that the thread ``name`` (still running while ``running()``) must end
        within ``within`` from now."""
        if running():
            self._ending.append(EndingThread(name, running, self._clocks.monotonic() + within))

    def running(self) -> list[EndingThread]:
        """The registered threads still running; forgets those that ended."""
        self._ending = [t for t in self._ending if t.running()]
        return list(self._ending)

    def overdue(self) -> list[tuple[str, Duration]]:
        """Each registered thread still running after its time, with how long after it."""
        now = self._clocks.monotonic()
        return [(t.name, now - t.due) for t in self.running() if now > t.due]
