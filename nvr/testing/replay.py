"""``ReplayOpener``: a deterministic ``Opener`` for tests on ``trio.testing.MockClock``.

No threads: every URL maps to a list of ``Session`` scripts (the k-th open of a URL plays
the k-th script; the last one repeats). A session replays a list of packets (typically
``load_packets`` of a fixture clip), looped a number of times or forever with timestamps
continuing, and delivers them at their pace: packet i is due ``pts[i] - pts[0]`` after the
open returned, and a batch of up to ``batch`` packets is handed over when its last packet
is due (``clocks.sleep_until``), as a real source hands over what it has read.

Faults: ``open_error`` (the open raises), ``open_delay`` (connecting takes virtual time),
``end_after`` (EOF after N packets), ``stall_after`` (then nothing is ever delivered, or
``Unavailable`` after ``OpenOptions.read_timeout`` if ``stall_raises``, as PyAV does),
``error_after`` (raise mid-stream), ``pts_shifts`` (add a step to the reported pts from a
packet on: jumps, repeats, backwards steps; delivery pacing keeps the true timeline).
``drain`` hands over the packets already due but not yet delivered, as a real source
hands over its partial batch at shutdown. ``ReplayOpener.opens`` records every open
with its virtual time, for backoff assertions.
``OpenOptions.realtime``/``loop`` are ignored: the script decides both.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import trio

from nvr.base.clock import Clocks
from nvr.base.errors import NotFound, NvrError, Unavailable
from nvr.base.time90k import Duration
from nvr.ingest.demuxer import read_file_packets
from nvr.ingest.source import OpenOptions, Packet


@functools.cache
def load_packets(path: str) -> tuple[Packet, ...]:
    """The packets of a local clip (read once per test process and shared; replays never
    modify them)."""
    return tuple(read_file_packets(path))


@dataclass(frozen=True, slots=True)
class Session:
    """What one open of a URL does (see the module docstring).

    ``loops`` is the number of passes over ``packets`` (``None``: forever); each pass
    continues the timestamps: it starts one frame interval (the last two packets' pts
    difference) after the previous pass's last packet. ``error_after`` is
    ``(n, error)``: ``n`` packets are delivered, then ``next_batch`` raises ``error``.
    """

    packets: Sequence[Packet] = ()
    loops: int | None = 1
    batch: int = 10
    open_error: NvrError | None = None
    open_delay: Duration = 0
    end_after: int | None = None
    stall_after: int | None = None
    stall_raises: bool = False
    error_after: tuple[int, NvrError] | None = None
    pts_shifts: Mapping[int, Duration] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loops != 1 and len(self.packets) < 2:
            raise ValueError("a looped session needs at least two packets")
        if self.batch < 1:
            raise ValueError("batch must be at least 1")

    @property
    def loop_span(self) -> Duration:
        """How far each pass shifts the timestamps."""
        first, prev, last = self.packets[0], self.packets[-2], self.packets[-1]
        return last.pts - first.pts + (last.pts - prev.pts)

    def packet_limit(self) -> int | None:
        """How many packets are delivered before the scripted end, stall or error."""
        limits = [self.end_after, self.stall_after]
        if self.loops is not None:
            limits.append(len(self.packets) * self.loops)
        if self.error_after is not None:
            limits.append(self.error_after[0])
        present = [n for n in limits if n is not None]
        return min(present) if present else None


@dataclass(frozen=True, slots=True)
class OpenRecord:
    """One call of ``ReplayOpener.open``: the URL and the virtual time it was called."""

    url: str
    at: Duration


def _fresh(error: NvrError) -> NvrError:
    """A new exception like ``error`` (raising one instance repeatedly piles up tracebacks)."""
    return type(error)(str(error))


class ReplaySource:
    """One replayed session (see ``nvr.ingest.source.Source``)."""

    def __init__(self, url: str, session: Session, clocks: Clocks, options: OpenOptions) -> None:
        self._url = url
        self._session = session
        self._clocks = clocks
        self._options = options
        self._origin = clocks.monotonic()
        self._limit = session.packet_limit()
        self._next = 0
        self._shift = 0
        self._closed = False
        self.low_latency = False  # replays keep their scripted batches

    async def next_batch(self) -> list[Packet]:
        if self._closed:
            raise Unavailable(f"{self._url}: source is closed")
        session = self._session
        if self._next == self._limit:
            await self._scripted_end()
            return []
        count = (
            session.batch if self._limit is None else min(session.batch, self._limit - self._next)
        )
        last = self._next + count - 1
        await self._clocks.sleep_until(self._origin + self._true_pts(last) - self._true_pts(0))
        batch = [self._packet(i) for i in range(self._next, last + 1)]
        self._next = last + 1
        return batch

    async def _scripted_end(self) -> None:
        """Raises, stalls or returns (EOF), whichever the script put at this point."""
        session = self._session
        if session.error_after is not None and self._next == session.error_after[0]:
            raise _fresh(session.error_after[1])
        if session.stall_after is not None and self._next == session.stall_after:
            if not session.stall_raises:
                await trio.sleep_forever()
            await self._clocks.sleep(self._options.read_timeout)
            raise Unavailable(f"{self._url}: read timed out")

    def _true_pts(self, index: int) -> int:
        """The pts of packet ``index`` on the true (unshifted) timeline."""
        passes, within = divmod(index, len(self._session.packets))
        pts = self._session.packets[within].pts
        return pts + passes * self._session.loop_span if passes else pts

    def _packet(self, index: int) -> Packet:
        self._shift += self._session.pts_shifts.get(index, 0)
        base = self._session.packets[index % len(self._session.packets)]
        return Packet(
            base.data, self._true_pts(index) + self._shift, base.is_key, base.sample_entry
        )

    async def drain(self, grace: Duration) -> list[Packet]:
        """The packets already due (received) but not yet handed over in a batch."""
        await trio.lowlevel.checkpoint()
        due = self._clocks.monotonic() - self._origin + self._true_pts(0)
        out: list[Packet] = []
        while self._next != self._limit and self._true_pts(self._next) <= due:
            out.append(self._packet(self._next))
            self._next += 1
        return out

    async def aclose(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()


class ReplayOpener:
    """Opens scripted sessions by URL (see the module docstring)."""

    def __init__(self, clocks: Clocks, scripts: Mapping[str, Sequence[Session]]) -> None:
        self._clocks = clocks
        self._scripts = scripts
        self.opens: list[OpenRecord] = []

    def open_times(self, url: str) -> list[Duration]:
        """The virtual times ``url`` was opened at, in order."""
        return [record.at for record in self.opens if record.url == url]

    async def open(self, url: str, options: OpenOptions) -> ReplaySource:
        sessions = self._scripts.get(url)
        if not sessions:
            raise NotFound(f"{url}: no replay script")
        session = sessions[min(len(self.open_times(url)), len(sessions) - 1)]
        self.opens.append(OpenRecord(url, self._clocks.monotonic()))
        if session.open_delay:
            await self._clocks.sleep(session.open_delay)
        else:
            await trio.lowlevel.checkpoint()
        if session.open_error is not None:
            raise _fresh(session.open_error)
        return ReplaySource(url, session, self._clocks, options)
