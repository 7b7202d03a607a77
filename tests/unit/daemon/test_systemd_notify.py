"""The whole daemon (``nvr.daemon.run``) on a mock clock, talking sd_notify to a real
``AF_UNIX`` datagram socket as systemd would: ``READY=1`` only once the HTTP port accepts
connections, ``WATCHDOG=1`` every half ``WATCHDOG_USEC``, ``STOPPING=1`` on shutdown, and
no more pings while a syncer is stuck (fault injection) or once the event loop was blocked
(``MockClock.jump`` stands for a call that never yields)."""

from __future__ import annotations

import errno
import itertools
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr import daemon
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig, Config, parse_address
from nvr.db.database import Database
from nvr.ops.liveness import Liveness, ping_watchdog
from nvr.ops.systemd import Notifier
from nvr.storage.dir import SampleFileDir
from nvr.testing.env import create_env
from nvr.testing.faults import FaultyDir
from nvr.testing.replay import ReplayOpener, Session, load_packets
from tests.support.determinism import T0
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
CLIP = str(FIXTURES / "h264-640x360.mp4")
PING = 5.0  # WATCHDOG_USEC = 10 s: a ping every 5 s
STUCK, STREAMER_STUCK, THREAD_HUNG, BLOCKED = 60.0, 90.0, 45.0, 20.0  # the config's limits


pytestmark = pytest.mark.usefixtures("inline_seam")


@dataclass
class Systemd:
    """The notify socket, and every message with the (virtual) time it arrived."""

    sock: trio.socket.SocketType
    path: str
    messages: list[tuple[float, str]] = field(default_factory=list)

    async def listen(self) -> None:
        while True:
            data = await self.sock.recv(4096)
            self.messages.append((trio.current_time(), data.decode()))

    def times(self, message: str) -> list[float]:
        return [t for t, m in self.messages if message in m.split("\n")]


class CheckingNotifier(Notifier):
    """Before passing ``READY=1`` on, connects to every HTTP address the daemon bound: a
    READY sent before the port accepts connections fails the test."""

    def __init__(self, environ: dict[str, str], daemons: list[daemon.Daemon]) -> None:
        super().__init__(environ)
        self._daemons = daemons
        self.checked: list[str] = []

    def notify(self, *states: str) -> None:
        if "READY=1" in states:
            addresses = self._daemons[0].http_addresses
            assert addresses
            for a in addresses:
                host, port = parse_address(a.removeprefix("http://"))
                with socket.create_connection((host, port), timeout=1):
                    self.checked.append(a)
        super().notify(*states)


@dataclass
class Running:
    d: daemon.Daemon
    systemd: Systemd
    notifier: CheckingNotifier
    sdir: FaultyDir


@asynccontextmanager
async def running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cam1: Session | None = None
) -> AsyncIterator[Running]:
    """The daemon recording two replayed cameras (one HTTP bind on port 0; the second
    camera plays ``cam1`` if given), with its directory wrapped in a ``FaultyDir``; shut
    down in order when the block ends."""
    create_env(tmp_path, streams=2, flush_if_sec=0)
    dirs: list[FaultyDir] = []
    daemons: list[daemon.Daemon] = []

    def open_faulty(db: Database, dir_id: int, *, read_only: bool) -> SampleFileDir:
        dirs.append(FaultyDir.wrap(open_for_database(db, dir_id, read_only=read_only)))
        return dirs[-1]

    def make_daemon(*args: object) -> daemon.Daemon:
        daemons.append(make(*args))  # type: ignore[arg-type]
        return daemons[-1]

    open_for_database, make = daemon.open_for_database, daemon._make_daemon
    monkeypatch.setattr(daemon, "open_for_database", open_faulty)
    monkeypatch.setattr(daemon, "_make_daemon", make_daemon)

    path = str(tmp_path / "notify")
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await sock.bind(path)
    systemd = Systemd(sock, path)
    notifier = CheckingNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"}, daemons)
    config = Config(
        db_dir=tmp_path / "db",
        time_zone="UTC",
        binds=(BindConfig("127.0.0.1:0"),),
        watchdog_syncer_stuck_sec=STUCK,
        watchdog_streamer_stuck_sec=STREAMER_STUCK,
        watchdog_thread_hung_sec=THREAD_HUNG,
        watchdog_loop_blocked_sec=BLOCKED,
    )
    clocks = SimulatedClocks(T0)
    packets = load_packets(CLIP)
    opener = ReplayOpener(clocks, {
        "rtsp://cam0/main": [Session(packets, loops=None)],
        "rtsp://cam1/main": [cam1 or Session(packets, loops=None)],
    })
    with sock:
        async with trio.open_nursery() as outer:
            outer.start_soon(systemd.listen)
            async with trio.open_nursery() as nursery:
                d: daemon.Daemon = await nursery.start(
                    lambda task_status: daemon.run(
                        config, clocks=clocks, opener=opener, notifier=notifier,
                        handle_signals=False, task_status=task_status,
                    )
                )
                try:
                    yield Running(d, systemd, notifier, dirs[0])
                finally:
                    d.shutdown.set()
            await trio.sleep(0.1)  # the listener reads the last messages
            outer.cancel_scope.cancel()


def gaps(times: list[float]) -> set[float]:
    return {round(b - a, 6) for a, b in itertools.pairwise(times)}


async def test_ready_after_binding_pings_then_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path, monkeypatch) as r:
        started = trio.current_time()
        await trio.sleep(120)
        assert r.d.liveness.healthy
        committed = sum(s.cum_recordings for s in r.d.db.streams.values())
    systemd = r.systemd
    assert r.notifier.checked == r.d.http_addresses  # the port accepted a connection
    ready, stopping = systemd.times("READY=1"), systemd.times("STOPPING=1")
    assert len(ready) == 1 and len(stopping) == 1
    assert ("READY=1\nSTATUS=recording 2 streams") in [m for _, m in systemd.messages]
    pings = systemd.times("WATCHDOG=1")
    # one at start and then every 5 s, until the shutdown cancels the pinger
    assert pings[0] <= ready[0] and len([t for t in pings if started < t <= started + 120]) == 24
    assert gaps(pings) == {PING}
    assert stopping[0] >= started + 120
    assert committed > 0


async def test_pings_stop_while_a_syncer_is_stuck(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(tmp_path, monkeypatch) as r:
        syncer = next(iter(r.d.syncers.values()))
        await trio.sleep(30)
        r.sdir.fail("sync_file", errno.EIO)  # until healed
        with trio.fail_after(300):  # the next recording's fsync fails
            await syncer.status.wait_value(lambda st: not st.ok)
        assert syncer.busy_since is not None
        busy_since = syncer.busy_since / SEC
        await trio.sleep(STUCK + 240)
        assert not r.d.liveness.healthy
        body = r.d.metrics.exposition().decode()
        assert "nvr_healthy 0.0" in body
        healed = trio.current_time()
        r.sdir.heal()
        await trio.sleep(120)  # the next retry (backoff at most 10 s) succeeds
        assert r.d.liveness.healthy
    pings = r.systemd.times("WATCHDOG=1")
    before = [t for t in pings if t < healed]
    after = [t for t in pings if t >= healed]
    # pinging stopped within one interval of the syncer being stuck for STUCK seconds ...
    assert busy_since + STUCK <= before[-1] + PING and before[-1] <= busy_since + STUCK
    # ... stayed stopped while it was, and resumed once it recovered
    assert after and after[0] <= healed + 60 + PING
    assert gaps(after) == {PING}
    lines = [m for m in caplog.messages if "not pinging the systemd watchdog" in m]
    assert len(lines) == 1 and "fsync file failing" in lines[0], caplog.messages
    assert "healthy again" in caplog.text
    statuses = [m for _, m in r.systemd.messages if m.startswith("STATUS=")]
    assert statuses[0].startswith("STATUS=unhealthy (systemd will restart nvr): syncer of ")
    assert statuses[1:] == ["STATUS=healthy again"]


async def test_pings_stop_for_good_once_the_event_loop_was_blocked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(tmp_path, monkeypatch) as r:
        await trio.sleep(20)
        autojump_clock.jump(BLOCKED - 5)  # blocked, but not beyond the limit
        await trio.sleep(20)
        assert r.d.liveness.healthy
        assert r.d.liveness.max_lag >= (BLOCKED - 6) * SEC
        autojump_clock.jump(BLOCKED + 5)  # a call that did not yield for 25 s
        blocked_until = trio.current_time()
        await trio.sleep(1)
        assert not r.d.liveness.healthy
        await trio.sleep(600)
        problems = [str(p) for p in r.d.liveness.problems()]
    # the first task to wake after the block saw it: the monitor (due within 1 s) or the
    # pinger (within 5 s); trio picks which runs first
    assert len(problems) == 1
    found = re.fullmatch(r"event loop: was blocked for (\d+)\.\d+s", problems[0])
    assert found and BLOCKED < int(found[1]) <= BLOCKED + 5, problems
    pings = r.systemd.times("WATCHDOG=1")
    # the ping due while the loop was blocked is the last one
    assert max(pings) <= blocked_until
    lines = [m for m in caplog.messages if "not pinging the systemd watchdog" in m]
    assert len(lines) == 1 and "event loop" in lines[0]


async def test_a_camera_whose_handshake_never_ends_does_not_stop_the_pings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 12, point 6: the second camera's handshake never completes (it trickled one
    byte every 2 s). That camera gets a timeout at each connect deadline and is retried;
    the daemon stays healthy well past the streamer-stuck limit."""
    hung = Session(open_delay=3600 * SEC)
    async with running(tmp_path, monkeypatch, cam1=hung) as r:
        start = trio.current_time()
        await trio.sleep(STREAMER_STUCK + 120)
        assert r.d.liveness.problems() == []
        cam1 = r.d.streamers[max(r.d.streamers)]
        assert cam1.counters.disconnects["connect timeout"] >= 5
    pings = [t for t in r.systemd.times("WATCHDOG=1") if start < t <= start + 210]
    assert len(pings) == 210 / PING


async def test_pings_stop_while_a_camera_thread_hangs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A connect that its streamer gave up on and that FFmpeg's interrupt did not end (the
    PyAV opener registers it with the daemon's ThreadWatch, as here) is truly hung once
    THREAD_HUNG past its deadline: the pings stop."""
    async with running(tmp_path, monkeypatch) as r:
        start = trio.current_time()
        r.d.liveness.threads.expect_end("nvr connect rtsp://cam1/main", lambda: True, 40 * SEC)
        await trio.sleep(40 + THREAD_HUNG + 30)
        problems = [str(p) for p in r.d.liveness.problems()]
    pings = r.systemd.times("WATCHDOG=1")
    assert start + 40 + THREAD_HUNG <= max(pings) + PING
    assert max(pings) <= start + 40 + THREAD_HUNG + PING
    assert problems == [
        "thread 'nvr connect rtsp://cam1/main': still running 1m15.000s after its deadline"
    ]
    lines = [m for m in caplog.messages if "not pinging the systemd watchdog" in m]
    assert len(lines) == 1 and "nvr connect rtsp://cam1/main" in lines[0]


async def test_a_camera_that_is_down_does_not_stop_the_pings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    from nvr.base import errors

    down = Session(open_error=errors.Unavailable("connection refused"))
    async with running(tmp_path, monkeypatch, cam1=down) as r:
        start = trio.current_time()
        await trio.sleep(600)
        assert r.d.liveness.healthy
        cam1 = r.d.streamers[max(r.d.streamers)]
        assert cam1.counters.disconnects["open failed"] > 5
    pings = [t for t in r.systemd.times("WATCHDOG=1") if start < t <= start + 600]
    assert len(pings) == 600 / PING


async def test_liveness_tasks_report_started_and_stop_when_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(T0)
    liveness = Liveness(clocks, {})
    notifier = Notifier({"WATCHDOG_USEC": "10000000"})  # pings every 5 s, to no socket
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(liveness.monitor)
            await nursery.start(ping_watchdog, liveness, notifier, clocks)
            await clocks.sleep(30 * SEC)
            nursery.cancel_scope.cancel()
    assert trio.current_time() == 30
    assert (liveness.max_lag, liveness.problems()) == (0, [])
