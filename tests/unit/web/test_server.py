"""``nvr.web.server``: a bare quart-trio app on hypercorn 0.18 shows the upstream defects
(connections left open after a response, a connection stuck after an early answer), and
nvr's server fixes them; its timeouts, connection limits and accept back-off. Real
sockets on port 0 with timeouts of fractions of a second, every wait bounded by a
deadline; the accept back-off runs on trio's MockClock with a listener that fails."""

from __future__ import annotations

import errno
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path

import h11
import hypercorn.config
import hypercorn.trio
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry, generate_latest
from quart import request, websocket
from quart_trio import QuartTrio
from trio_websocket import ConnectionClosed, open_websocket_url

from nvr.base.clock import RealClocks
from nvr.base.descriptors import DescriptorBudget
from nvr.base.time90k import zone
from nvr.config import BindConfig
from nvr.db.database import Database
from nvr.web.app import WebContext, create_app
from nvr.web.server import BindServer, BindStats, HttpCollector, HttpLimits
from tests.support.daemon import poll

BIND = BindConfig(address="127.0.0.1:0")
#: how long a test waits for what must happen at once (generous for a loaded machine)
PROMPT = 1.0


def bare_app() -> QuartTrio:
    """A minimal quart-trio app, nothing of nvr's."""
    app = QuartTrio("bare")

    @app.route("/")
    async def index() -> str:
        return "hello"

    @app.route("/refuse", methods=["POST"])
    async def refuse() -> tuple[str, int]:
        return "no", 403  # answered without reading the body

    @app.route("/echo", methods=["POST"])
    async def echo() -> str:
        return str(len(await request.get_data()))

    return app


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
POST_HEAD = b"POST /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n"


async def connect(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port)


async def read_response(stream: trio.SocketStream) -> h11.Response:
    """Reads one whole response (head and body); returns its head."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "t")]))
    client.send(h11.EndOfMessage())
    head: h11.Response | None = None
    with trio.fail_after(PROMPT):
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head


async def seconds_until_closed(stream: trio.SocketStream, limit: float) -> float:
    """Seconds until the server closes ``stream`` (EOF or reset); fails after ``limit``."""
    start = trio.current_time()
    with trio.fail_after(limit):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
    return trio.current_time() - start


async def stays_open(stream: trio.SocketStream, seconds: float) -> bool:
    """Whether ``stream`` neither closes nor answers for ``seconds``."""
    with trio.move_on_after(seconds):
        await stream.receive_some(65536)
        return False
    return True


@asynccontextmanager
async def served(
    app: QuartTrio, limits: HttpLimits, *, daemon_connections: int = 1000
) -> AsyncIterator[tuple[int, BindStats]]:
    """``app`` on nvr's server, port 0; stopped at the end."""
    srv = BindServer(
        app, BIND, limits, RealClocks(), daemon_slots=trio.Semaphore(daemon_connections)
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(srv.serve, stop.wait)
        yield int(urls[0].rsplit(":", 1)[1]), srv.stats
        stop.set()


# -- upstream ---------------------------------------------------------------------------


async def test_upstream_hypercorn_leaves_connections_open_after_a_response() -> None:
    """The upstream behaviour nvr works around (``nvr.web.server`` docstring, 1), on a bare
    quart-trio app and ``hypercorn.trio.serve``. Whether hypercorn's bookkeeping is
    cancelled depends on the order trio runs two ready tasks in, so each case is tried
    on five connections: the early answer's connection escapes about one time in five,
    the other two practically never. When this test fails, upstream has fixed it and the
    workaround can go."""
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.keep_alive_timeout = 0.1
    cases = {"kept alive": GET, "Connection: close": GET_CLOSE, "answered early": POST_HEAD}
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(partial(hypercorn.trio.serve, bare_app(), config))
        port = int(urls[0].rsplit(":", 1)[1])
        never_asked = await connect(port)
        streams: dict[str, list[trio.SocketStream]] = {case: [] for case in cases}
        for case, req in cases.items():
            for _ in range(5):
                stream = await connect(port)
                await stream.send_all(req)
                assert (await read_response(stream)).status_code in (200, 403)
                if req is POST_HEAD:
                    await stream.send_all(GET)  # it gives up its body and asks the next thing
                streams[case].append(stream)
        # Only the connection that never sent a request is closed by the keep-alive
        # timeout; ten times that later, the others are still open, and the request that
        # followed the early answer is not answered.
        assert await seconds_until_closed(never_asked, PROMPT) < PROMPT
        still_open: dict[str, int] = dict.fromkeys(cases, 0)

        async def check(case: str, stream: trio.SocketStream) -> None:
            still_open[case] += await stays_open(stream, 1.0)

        async with trio.open_nursery() as checks:
            for case, case_streams in streams.items():
                for stream in case_streams:
                    checks.start_soon(check, case, stream)
        assert all(still_open.values()), still_open
        nursery.cancel_scope.cancel()


# -- nvr's server -----------------------------------------------------------------------


async def test_kept_alive_connection_closes_after_the_idle_timeout() -> None:
    async with served(bare_app(), HttpLimits(idle_timeout_sec=0.3)) as (port, stats):
        stream = await connect(port)
        for _ in range(2):  # the timer restarts after every response
            await stream.send_all(GET)
            assert (await read_response(stream)).status_code == 200
        idle = await seconds_until_closed(stream, 0.3 + PROMPT)
        assert idle >= 0.25
        assert stats.timeouts["idle"] == 1
        with trio.fail_after(PROMPT):
            await poll(lambda: stats.open == 0)


async def test_connection_close_closes_at_once() -> None:
    async with served(bare_app(), HttpLimits(idle_timeout_sec=30)) as (port, stats):
        stream = await connect(port)
        await stream.send_all(GET_CLOSE)
        head = await read_response(stream)
        assert (b"connection", b"close") in head.headers
        assert await seconds_until_closed(stream, PROMPT) < PROMPT
        assert stats.timeouts["idle"] == 0


async def test_post_answered_before_its_body_does_not_hang_the_next_request() -> None:
    async with served(bare_app(), HttpLimits(idle_timeout_sec=30)) as (port, _stats):
        stream = await connect(port)
        await stream.send_all(POST_HEAD)
        head = await read_response(stream)
        assert head.status_code == 403
        # the answer says the connection ends, and it does: the client's next request
        # goes on a new connection instead of waiting for ever on this one
        assert (b"connection", b"close") in head.headers
        with suppress(trio.BrokenResourceError):
            await stream.send_all(GET)  # it gives up its body and asks the next thing
        assert await seconds_until_closed(stream, PROMPT) < PROMPT
        again = await connect(port)
        await again.send_all(GET)
        assert (await read_response(again)).status_code == 200
        # a body that did arrive keeps the connection usable
        await again.send_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        head = await read_response(again)
        assert head.status_code == 200 and (b"connection", b"close") not in head.headers
        await again.send_all(GET)
        assert (await read_response(again)).status_code == 200


async def test_nvr_app_refusing_a_post_before_its_body_closes_the_connection(
    tmp_path: Path,
) -> None:
    """The same through nvr's own app: a POST that needs a login is answered 401 before
    its body is read."""
    clocks = RealClocks()
    Database.create(tmp_path / "db", clocks.realtime())
    with Database.open(tmp_path / "db", tz=zone("UTC"), now=clocks.realtime) as db:
        app = create_app(WebContext(db=db, dirs={}, clocks=clocks, bind=BIND))
        async with served(app, HttpLimits(idle_timeout_sec=30)) as (port, _stats):
            stream = await connect(port)
            await stream.send_all(
                b"POST /api/users/ HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n"
            )
            head = await read_response(stream)
            assert head.status_code == 401
            assert (b"connection", b"close") in head.headers
            assert await seconds_until_closed(stream, PROMPT) < PROMPT


async def test_slow_request_head_is_cut_off() -> None:
    async with served(bare_app(), HttpLimits(idle_timeout_sec=0.3)) as (port, stats):
        stream = await connect(port)
        start = trio.current_time()
        with trio.fail_after(0.3 + PROMPT):
            with suppress(trio.BrokenResourceError):
                for byte in GET:  # one byte every 20 ms: the head would take 0.5 s
                    await stream.send_all(bytes([byte]))
                    await trio.sleep(0.02)
        closed_after = trio.current_time() - start + await seconds_until_closed(stream, PROMPT)
        assert 0.25 <= closed_after < 0.3 + PROMPT
        assert stats.timeouts["idle"] == 1


async def test_slow_request_body_is_cut_off() -> None:
    limits = HttpLimits(idle_timeout_sec=30, body_timeout_sec=0.3)
    async with served(bare_app(), limits) as (port, stats):
        stream = await connect(port)
        await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        start = trio.current_time()
        with trio.fail_after(0.3 + PROMPT):
            with suppress(trio.BrokenResourceError):
                for _ in range(100):  # 1 byte every 20 ms: the body would take 2 s
                    await stream.send_all(b"x")
                    await trio.sleep(0.02)
        closed_after = trio.current_time() - start + await seconds_until_closed(stream, PROMPT)
        assert 0.25 <= closed_after < 0.3 + PROMPT
        assert stats.timeouts["body"] == 1


async def test_a_long_response_is_not_cut_off_by_the_body_timeout() -> None:
    app = bare_app()

    @app.route("/slow")
    async def slow() -> str:
        await trio.sleep(0.5)
        return "done"

    limits = HttpLimits(idle_timeout_sec=0.2, body_timeout_sec=0.2)
    async with served(app, limits) as (port, stats):
        stream = await connect(port)
        await stream.send_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        with trio.fail_after(0.5 + PROMPT):
            assert (await read_response(stream)).status_code == 200
        assert stats.timeouts == {}


async def test_per_address_limit_closes_further_connections_at_once() -> None:
    limits = HttpLimits(idle_timeout_sec=30, max_connections_per_address=3)
    async with served(bare_app(), limits) as (port, stats):
        first = [await connect(port) for _ in range(3)]
        for s in first:
            await s.send_all(GET)
            assert (await read_response(s)).status_code == 200
        extra = await connect(port)
        assert await seconds_until_closed(extra, PROMPT) < PROMPT
        assert stats.refused_per_address == 1
        assert stats.open == 3
        await first[0].aclose()
        with trio.fail_after(PROMPT):
            await poll(lambda: stats.open == 2)
        again = await connect(port)
        await again.send_all(GET)
        assert (await read_response(again)).status_code == 200


@pytest.mark.parametrize("limit", ["bind", "daemon"])
async def test_at_the_connection_limit_accepting_stops_until_one_closes(limit: str) -> None:
    limits = HttpLimits(idle_timeout_sec=30, max_connections=2 if limit == "bind" else 100)
    async with served(bare_app(), limits, daemon_connections=2) as (port, stats):
        first = [await connect(port) for _ in range(2)]
        for s in first:
            await s.send_all(GET)
            assert (await read_response(s)).status_code == 200
        waiting = await connect(port)  # the kernel queues it; nvr does not accept it
        await waiting.send_all(GET)
        assert await stays_open(waiting, 0.3)
        reason = "bind limit" if limit == "bind" else "descriptor limit"
        assert stats.paused == {reason: 1}
        await first[0].aclose()
        assert (await read_response(waiting)).status_code == 200
        assert stats.refused_per_address == 0


# -- stopping: on trio's MockClock (autojump), so waiting shows as virtual time ----------


WS_UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def app_with_slow_route_and_websocket() -> QuartTrio:
    """``bare_app`` with ``/slow`` (answers after 2 s) and ``/ws`` (a WebSocket that sends
    one message and never ends, like a live view)."""
    app = bare_app()

    @app.route("/slow")
    async def slow() -> str:
        await trio.sleep(2)
        return "slow"

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.send("hello")
        await trio.sleep_forever()

    @app.websocket("/never-accepted")
    async def never_accepted() -> None:
        await trio.sleep_forever()

    @app.websocket("/flood")
    async def flood() -> None:
        await websocket.accept()
        while True:
            await websocket.send(bytes(65536))

    return app


async def test_stop_closes_idle_connections_and_websockets_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Nothing in flight: ``serve`` returns at the virtual time it was told to stop, not
    ``graceful_timeout_sec`` later; the WebSocket's client is told the server is going
    away (1001)."""
    limits = HttpLimits(idle_timeout_sec=30, graceful_timeout_sec=5)
    srv = BindServer(
        app_with_slow_route_and_websocket(), BIND, limits, RealClocks(),
        daemon_slots=trio.Semaphore(10),
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = int((await nursery.start(srv.serve, stop.wait))[0].rsplit(":", 1)[1])
        idle = await connect(port)
        await idle.send_all(GET)
        assert (await read_response(idle)).status_code == 200
        async with open_websocket_url(f"ws://127.0.0.1:{port}/ws") as ws:
            assert await ws.get_message() == "hello"
            stopped_at = trio.current_time()
            stop.set()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1001
        assert await seconds_until_closed(idle, 1) == 0
    assert trio.current_time() == stopped_at
    assert srv.stats.open == 0


async def test_stop_refuses_a_websocket_not_yet_accepted_with_503(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limits = HttpLimits(idle_timeout_sec=30, graceful_timeout_sec=5)
    srv = BindServer(
        app_with_slow_route_and_websocket(), BIND, limits, RealClocks(),
        daemon_slots=trio.Semaphore(10),
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = int((await nursery.start(srv.serve, stop.wait))[0].rsplit(":", 1)[1])
        stream = await connect(port)
        await stream.send_all(WS_UPGRADE.replace(b"/ws", b"/never-accepted"))
        await trio.testing.wait_all_tasks_blocked()
        stopped_at = trio.current_time()
        stop.set()
        answer = b""
        while data := await stream.receive_some(65536):
            answer += data
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"\r\nnvr is shutting down\r\n" in answer
    assert trio.current_time() == stopped_at


async def test_stop_waits_for_the_request_in_flight_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A request in flight (answered 2 s after it arrived) is answered, and ``serve``
    returns then, with a WebSocket and an idle connection open beside it."""
    limits = HttpLimits(idle_timeout_sec=30, graceful_timeout_sec=5)
    srv = BindServer(
        app_with_slow_route_and_websocket(), BIND, limits, RealClocks(),
        daemon_slots=trio.Semaphore(10),
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = int((await nursery.start(srv.serve, stop.wait))[0].rsplit(":", 1)[1])
        idle = await connect(port)
        await idle.send_all(GET)
        assert (await read_response(idle)).status_code == 200
        async with open_websocket_url(f"ws://127.0.0.1:{port}/ws") as ws:
            assert await ws.get_message() == "hello"
            busy = await connect(port)
            asked_at = trio.current_time()
            await busy.send_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            await trio.sleep(0.5)
            stop.set()
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
            assert trio.current_time() == asked_at + 0.5
        assert await seconds_until_closed(idle, 1) == 0
        client = h11.Connection(h11.CLIENT)
        client.send(h11.Request(method="GET", target="/slow", headers=[("Host", "t")]))
        while (event := client.next_event()) is h11.NEED_DATA:
            client.receive_data(await busy.receive_some(65536))
        assert isinstance(event, h11.Response) and event.status_code == 200
    assert trio.current_time() == asked_at + 2


@pytest.mark.parametrize("leaving", ["close handshake", "connection dropped"])
async def test_a_websocket_connection_ends_when_its_client_leaves(
    autojump_clock: trio.testing.MockClock, leaving: str
) -> None:
    """Not ``websocket_ping_interval`` (30 s) later: the connection's slot is free at once."""
    async with served(app_with_slow_route_and_websocket(), HttpLimits()) as (port, stats):
        if leaving == "close handshake":
            async with open_websocket_url(f"ws://127.0.0.1:{port}/ws") as ws:
                assert await ws.get_message() == "hello"
                assert stats.open == 1
                left_at = trio.current_time()
        else:
            stream = await connect(port)
            await stream.send_all(WS_UPGRADE)
            assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 101 ")
            assert stats.open == 1
            left_at = trio.current_time()
            await stream.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert stats.open == 0
        assert trio.current_time() == left_at


async def test_stop_ends_a_connection_whose_client_stopped_reading_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A WebSocket whose client reads nothing more: the server's send waits for room in the
    socket, and shutdown ends it at ``graceful_timeout_sec``."""
    limits = HttpLimits(idle_timeout_sec=30, graceful_timeout_sec=5)
    srv = BindServer(
        app_with_slow_route_and_websocket(), BIND, limits, RealClocks(),
        daemon_slots=trio.Semaphore(10),
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = int((await nursery.start(srv.serve, stop.wait))[0].rsplit(":", 1)[1])
        stream = await connect(port)
        await stream.send_all(WS_UPGRADE.replace(b"/ws", b"/flood"))
        assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 101 ")
        await trio.testing.wait_all_tasks_blocked()  # the socket's buffers are full
        assert srv.stats.open == 1
        stopped_at = trio.current_time()
        stop.set()
    assert trio.current_time() == stopped_at + 5
    await stream.aclose()


# -- accept errors ----------------------------------------------------------------------


class FailingListener(trio.abc.Listener[trio.SocketStream]):
    """``accept`` fails with ``errno`` ``failures`` times, then blocks for ever."""

    def __init__(self, code: int, failures: int) -> None:
        self.code, self.failures = code, failures
        self.attempts: list[float] = []

    async def accept(self) -> trio.SocketStream:
        self.attempts.append(trio.current_time())
        if len(self.attempts) <= self.failures:
            raise OSError(self.code, "Too many open files")
        await trio.sleep_forever()
        raise AssertionError

    async def aclose(self) -> None:
        pass


async def test_accept_errors_back_off_and_are_logged_once_a_minute(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    from nvr.base.clock import SimulatedClocks

    srv = BindServer(bare_app(), BIND, HttpLimits(), SimulatedClocks(0),
                     daemon_slots=trio.Semaphore(10))
    srv.stats.address = "127.0.0.1:8080"
    listener = FailingListener(errno.EMFILE, failures=20)
    start = trio.current_time()
    with caplog.at_level(logging.WARNING, logger="nvr.web.server"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(srv._accept_loop, listener, nursery)
            await trio.sleep(120)
            nursery.cancel_scope.cancel()
    waits = [round(b - a, 3) for a, b in itertools.pairwise(listener.attempts)]
    # 0.1 s doubling to 5 s; then accepting again
    assert waits[:8] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert len(listener.attempts) == 21
    assert srv.stats.accept_errors == 20
    lines = [r.getMessage() for r in caplog.records]
    # once at the first error, once a minute later with the count in between
    assert len(lines) == 2, lines
    assert lines[0] == (
        "accepting HTTP connections on 127.0.0.1:8080: Too many open files; retrying in 0.1 s"
    )
    unlogged = sum(1 for t in listener.attempts[1:] if t - start < 60)
    assert lines[1].endswith(f"retrying in 5 s (and {unlogged} more times in the last minute)")


def test_emfile_is_resource_exhausted() -> None:
    from nvr.base import errors

    for code in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
        e = errors.from_os_error(OSError(code, "Too many open files"), "accepting")
        assert isinstance(e, errors.ResourceExhausted), code
    assert str(errors.from_os_error(OSError(errno.EMFILE, "Too many open files"), "x")) == (
        "x: Too many open files"
    )


# -- metrics and the descriptor budget ---------------------------------------------------


async def test_metrics_show_limits_and_state() -> None:
    limits = HttpLimits(idle_timeout_sec=30, max_connections=7, max_connections_per_address=1)
    async with served(bare_app(), limits) as (port, stats):
        registry = CollectorRegistry()
        registry.register(HttpCollector([stats], DescriptorBudget(1024, 152)))
        one, two = await connect(port), await connect(port)
        await one.send_all(GET)
        await read_response(one)
        assert await seconds_until_closed(two, PROMPT) < PROMPT
        text = generate_latest(registry).decode()
        b = f'bind="127.0.0.1:{port}"'
        for line in (
            f"nvr_http_connections{{{b}}} 1.0",
            f"nvr_http_connections_max{{{b}}} 7.0",
            f"nvr_http_connections_per_address_max{{{b}}} 1.0",
            f"nvr_http_connections_refused_total{{{b}}} 1.0",
            f'nvr_http_timeouts_total{{{b},kind="body"}} 0.0',
            f'nvr_http_accept_paused_total{{{b},reason="bind limit"}} 0.0',
            f"nvr_http_accept_errors_total{{{b}}} 0.0",
            "nvr_http_connections_daemon_max 436.0",
            "nvr_open_files_limit 1024.0",
            "nvr_open_files_reserved 152.0",
        ):
            assert line in text.splitlines(), (line, text)



def test_the_control_socket_grants_everything_and_needs_a_short_path(tmp_path: Path) -> None:
    from nvr.config import PERMISSIONS, Config
    from nvr.web.server import control_bind

    bind = control_bind(Config(db_dir=tmp_path / "db"))
    assert bind is not None
    assert bind.address == f"unix:{tmp_path}/db/control.sock"
    assert set(bind.allow_unauthenticated) == set(PERMISSIONS)
    assert control_bind(Config(db_dir=Path("/" + "d" * 100))) is None  # over 107 bytes
