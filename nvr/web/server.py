"""Serving HTTP: nvr's accept loop and connection limits around hypercorn's per-connection
server, so that no HTTP client can take what recording needs.

``run_web`` serves every configured bind in the daemon's nursery; ``serve_bind`` serves
one app on one bind. Here belongs how connections are accepted, limited, timed out and
counted; not what they are answered (``nvr.web.app`` and its routes).

Upstream defects this module works around (hypercorn 0.18.0, quart-trio 0.12.0, trio
0.35; a bare quart-trio app on ``hypercorn.trio.serve`` shows them, see
``tests/unit/test_web_server.py``):

1. **No keep-alive timeout after a response; ``Connection: close`` is not closed; a
   request answered before its body arrived leaves the connection stuck.** When a request
   head arrives, ``hypercorn/protocol/h11.py`` ``H11Protocol._handle_events`` sends
   ``Updated(idle=False)``, and ``hypercorn/trio/tcp_server.py``
   ``TCPServer.protocol_send`` stops the keep-alive timer (``idle_task``). After the
   response, the app's last ``send`` runs ``HTTPStream._send_closed`` ->
   ``H11Protocol.stream_send(StreamClosed)`` -> ``H11Protocol._maybe_recycle`` *in the
   app's task*. ``_maybe_recycle`` first calls ``_close_stream``, which delivers
   ``http.disconnect`` to the app; quart-trio's ``TrioASGIHTTPConnection.handle_messages``
   (``quart_trio/asgi.py``) returns on it and cancels the nursery that holds the app's
   task, the one running ``_maybe_recycle``. Its next checkpoint raises ``Cancelled``:
   for a kept-alive connection that is ``TrioSingleTask.restart``'s lock when
   ``protocol_send(Updated(idle=True))`` restarts the timer; for one that must close
   (``Connection: close``, or the client still owing the body: h11 ``their_state``
   ``SEND_BODY``) it is ``SocketStream.send_eof`` in ``TCPServer._close``. So the timer is
   never restarted and the close never happens; ``config.read_timeout`` is ``None`` by
   default, so the connection, its task and its descriptor live until the client leaves.
   After an early answer h11 still expects the body, so the client's next request is
   parsed as body bytes and never answered. Workaround (``_finish_connection_state``):
   the app's ``send`` runs shielded from the app's cancellation, so hypercorn's connection
   bookkeeping always completes; and a response started before the request body was read
   says ``Connection: close`` (h11 then closes after it instead of waiting for the body).
2. **A closed connection's descriptor lingers.** When the client closes,
   ``TCPServer._read_data`` returns but the keep-alive timer task keeps the connection's
   task group, and so the socket, open until it expires. ``_Connection._read_data`` stops
   the timer.
3. **No request-body timeout.** hypercorn's only read timeout (``read_timeout``) applies
   to every read, so it would also cut off a long download or a quiet WebSocket; a body
   trickled byte by byte is never cut off. ``_Connection._read_data`` puts a deadline
   (``http_body_timeout_sec``) on the body only. Request heads are bounded by the
   keep-alive timer, which runs from the connection's start (or the previous response)
   until a head is complete, trickled or not (``http_idle_timeout_sec``).
4. **No connection limit, and EMFILE spins.** ``hypercorn/trio/run.py`` ``worker_serve``
   accepts through ``trio.serve_listeners``, which accepts without limit and, when
   ``accept`` fails with EMFILE/ENFILE/ENOMEM/ENOBUFS, logs the error with a traceback and
   retries every 0.1 s, for as long as it lasts. ``BindServer`` accepts itself: it stops
   accepting at the bind's ``max_connections`` and at the daemon-wide number of
   connections that fit beside recording's descriptor reserve
   (``nvr.base.descriptors``), closes connections beyond ``max_connections_per_address``
   at once, and backs off on accept errors (0.1 s doubling to 5 s), logging them at most
   once a minute with a count.
5. **Shutdown waits for every WebSocket.** hypercorn's graceful stop (``terminated``)
   closes idle connections only and waits for the others; ASGI tells a WebSocket app
   nothing of it, and a live view never finishes, so one open live view held shutdown
   for the whole ``graceful_timeout_sec``. ``_close_websockets_at`` ends every WebSocket
   when serving stops: the app is cancelled and the client gets close code 1001 (going
   away; a 503 if it had not been accepted yet). HTTP requests in flight are still
   waited for, up to ``graceful_timeout_sec``.
6. **A WebSocket's connection outlives it by up to ``websocket_ping_interval``.**
   ``hypercorn/protocol/ws_stream.py`` ``WSStream._send_pings`` sleeps between pings in
   the connection's task group and looks at ``closed`` only when it wakes, so after the
   client leaves the connection, its socket and its slot stay up to 30 s (and shutdown
   waited for it). ``_Connection._read_data`` cancels what is left of the connection's
   task group once the connection is closed.
7. **A body that ends short of its ``Content-Length`` is an "Error in ASGI
   Framework".** When a response's reads fail after its headers went out (the archive
   went away mid-download, ``nvr.web.view``), the only honest end is to close the
   connection; Quart still sends the final body message, on which h11 raises
   ``LocalProtocolError`` and hypercorn logs a traceback. ``_finish_connection_state``
   holds that final message back (forwarding its bytes), so the app ends mid-body and
   hypercorn closes the connection: the client sees fewer bytes than announced.

Also: TLS offers HTTP/1.1 only (the body and head limits above are HTTP/1.1's; nvr's
clients do not need HTTP/2), and the TLS handshake must finish within
``http_idle_timeout_sec``.

``/metrics`` (``HttpCollector``, registered on the daemon's registry): open connections,
limits, accepting paused by a limit, connections refused per address, timeouts and accept
errors, per bind.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from math import inf
from typing import TYPE_CHECKING, cast

import h11
import hypercorn.config
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    ConnectionState,
    LifespanState,
    Scope,
    WebsocketResponseBodyEvent,
    WebsocketResponseStartEvent,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nvr.base import errors
from nvr.base.clock import Clocks
from nvr.base.descriptors import DescriptorBudget
from nvr.base.log_limit import RateLimitedLog
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import MAX_UNIX_PATH, PERMISSIONS, BindConfig, Config, control_socket_path

if TYPE_CHECKING:
    from nvr.web.context import WebContext

log = logging.getLogger(__name__)

#: idle live-view WebSockets get a ping this often (as Moonfire NVR's do)
WEBSOCKET_PING_SEC = 30.0
#: accept errors (EMFILE...) retry after this long, doubling up to the maximum
ACCEPT_BACKOFF_MIN_SEC = 0.1
ACCEPT_BACKOFF_MAX_SEC = 5.0
#: why accepting paused (``nvr_http_accept_paused_total``)
PAUSE_REASONS = ("bind limit", "descriptor limit", "accept error")
TIMEOUT_KINDS = ("idle", "body")


_DEFAULTS, _BIND_DEFAULTS = Config(), BindConfig()


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """One bind's limits (``Config`` and ``BindConfig`` document them and their defaults)."""

    idle_timeout_sec: float = _DEFAULTS.http_idle_timeout_sec
    body_timeout_sec: float = _DEFAULTS.http_body_timeout_sec
    graceful_timeout_sec: float = _DEFAULTS.graceful_timeout_sec
    max_connections: int = _BIND_DEFAULTS.max_connections
    #: 0: no limit
    max_connections_per_address: int = _BIND_DEFAULTS.max_connections_per_address

    @classmethod
    def of(cls, config: Config, bind: BindConfig) -> HttpLimits:
        return cls(
            idle_timeout_sec=config.http_idle_timeout_sec,
            body_timeout_sec=config.http_body_timeout_sec,
            graceful_timeout_sec=config.graceful_timeout_sec,
            max_connections=bind.max_connections,
            max_connections_per_address=bind.max_connections_per_address,
        )


@dataclass
class BindStats:
    """What ``/metrics`` shows of one bind."""

    #: the bound address (``127.0.0.1:8080``), the metrics' ``bind`` label
    address: str = ""
    limits: HttpLimits = field(default_factory=HttpLimits)
    open: int = 0
    #: times accepting paused, by reason (``PAUSE_REASONS``)
    paused: Counter[str] = field(default_factory=Counter)
    #: connections closed at once: their address had ``max_connections_per_address`` open
    refused_per_address: int = 0
    #: connections closed by a timeout, by kind (``TIMEOUT_KINDS``)
    timeouts: Counter[str] = field(default_factory=Counter)
    accept_errors: int = 0


# -- the app side: hypercorn's connection state survives the app's cancellation ----------


def _announces_body(scope: Scope) -> bool:
    for name, value in cast(Sequence[tuple[bytes, bytes]], scope.get("headers", ())):
        name = name.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _finish_connection_state(app: ASGIFramework) -> ASGIFramework:
    """``app`` with workarounds 1 and 7 of the module docstring."""

    async def wrapped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body_read = not _announces_body(scope)
        declared: int | None = None  # the response's Content-Length (not for HEAD)
        sent = 0

        async def receive_noting_body() -> ASGIReceiveEvent:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read = True
            return message

        async def send_shielded(message: ASGISendEvent) -> None:
            nonlocal declared, sent
            if message["type"] == "http.response.start":
                if not body_read:
                    headers = [*message.get("headers", ()), (b"connection", b"close")]
                    message = {**message, "headers": headers}
                if scope.get("method") != "HEAD":
                    declared = _content_length(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if declared is not None and sent < declared and not message.get("more_body"):
                    message = {**message, "more_body": True}  # then the app ends: closed
            with trio.CancelScope(shield=True):
                await send(message)

        await app(scope, receive_noting_body, send_shielded)

    return wrapped


def _close_websockets_at(app: ASGIFramework, stopping: trio.Event) -> ASGIFramework:
    """``app`` with workaround 5 of the module docstring."""

    async def wrapped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        accepted = False

        async def send_noting_accept(message: ASGISendEvent) -> None:
            nonlocal accepted
            accepted = accepted or message["type"] == "websocket.accept"
            await send(message)

        async def cancel_at_stop(app_scope: trio.CancelScope) -> None:
            await stopping.wait()
            app_scope.cancel()

        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as app_scope:
                nursery.start_soon(cancel_at_stop, app_scope)
                await app(scope, receive, send_noting_accept)
            nursery.cancel_scope.cancel()
        if not app_scope.cancelled_caught:
            return
        # (after the app's own close, hypercorn ignores what follows). Shielded from the
        # stop's cancellation, but only until the stop's deadline: a client that stopped
        # reading never makes room for the close frame (an unbounded shield hung shutdown).
        reason = "nvr is shutting down"
        with trio.CancelScope(shield=True, deadline=trio.current_effective_deadline()):
            if accepted:
                await send({"type": "websocket.close", "code": 1001, "reason": reason})
            else:
                start: WebsocketResponseStartEvent = {
                    "type": "websocket.http.response.start", "status": 503, "headers": []
                }
                body: WebsocketResponseBodyEvent = {
                    "type": "websocket.http.response.body",
                    "body": reason.encode(),
                    "more_body": False,
                }
                await send(start)
                await send(body)

    return wrapped


# -- the connection side ----------------------------------------------------------------


class _Connection(TCPServer):
    """hypercorn's per-connection server with workarounds 2, 3 and 6 of the module docstring,
    counting its timeouts."""

    def __init__(
        self,
        app: ASGIWrapper,
        config: hypercorn.config.Config,
        context: WorkerContext,
        state: ConnectionState,
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
        limits: HttpLimits,
        stats: BindStats,
    ) -> None:
        super().__init__(app, config, context, state, stream)  # type: ignore[arg-type]
        self._limits = limits
        self._stats = stats
        self._request_at = -inf  # when the current request's head arrived

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated) and not event.idle:
            self._request_at = trio.current_time()
        await super().protocol_send(event)

    def _read_deadline(self) -> float:
        connection = getattr(self.protocol.protocol, "connection", None)
        if isinstance(connection, h11.Connection) and connection.their_state is h11.SEND_BODY:
            return self._request_at + self._limits.body_timeout_sec
        return inf

    async def _read_data(self) -> None:
        while True:
            try:
                with trio.fail_at(self._read_deadline()):
                    data = await self.stream.receive_some(MAX_RECV)
            except trio.TooSlowError:
                self._stats.timeouts["body"] += 1
                break
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                break
            await self.protocol.handle(RawData(bytes(data)))
            if data == b"":
                break
        await self.idle_task.stop()
        await self.protocol.handle(Closed())
        # workaround 6: nothing of a closed connection outlives it
        nursery = self._task_group._nursery
        if nursery is not None:
            nursery.cancel_scope.cancel()

    async def _idle_timeout(self) -> None:
        with trio.move_on_after(self.config.keep_alive_timeout) as idle:
            await self.context.terminated.wait()
        if idle.cancelled_caught:
            self._stats.timeouts["idle"] += 1
        with trio.CancelScope(shield=True):
            await self._initiate_server_close()


# -- one bind ---------------------------------------------------------------------------


def hypercorn_config(bind: BindConfig, limits: HttpLimits) -> hypercorn.config.Config:
    """Hypercorn's settings for one bind: its address, timeouts and, with ``tls_cert``
    and ``tls_key``, HTTPS."""
    hc = hypercorn.config.Config()
    hc.bind = [bind.address]
    hc.graceful_timeout = limits.graceful_timeout_sec
    hc.keep_alive_timeout = limits.idle_timeout_sec
    hc.ssl_handshake_timeout = limits.idle_timeout_sec
    hc.accesslog = None
    hc.websocket_ping_interval = WEBSOCKET_PING_SEC
    if bind.tls_cert and bind.tls_key:
        hc.certfile, hc.keyfile = bind.tls_cert, bind.tls_key
        hc.alpn_protocols = ["http/1.1"]
    return hc


_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

Listener = trio.SocketListener | trio.SSLListener[trio.SocketStream]
Stream = trio.SocketStream | trio.SSLStream[trio.SocketStream]


def _peer_address(stream: Stream) -> str | None:
    """The client's IP address; ``None`` on a Unix socket."""
    sock = stream.transport_stream.socket if isinstance(stream, trio.SSLStream) else stream.socket
    if sock.family not in (trio.socket.AF_INET, trio.socket.AF_INET6):
        return None
    return cast(str, sock.getpeername()[0])


class BindServer:
    """Serves one app on one bind (workaround 4 of the module docstring)."""

    def __init__(
        self,
        app: ASGIFramework,
        bind: BindConfig,
        limits: HttpLimits,
        clocks: Clocks,
        *,
        daemon_slots: trio.Semaphore,
        owner_only: bool = False,
    ) -> None:
        self._stopping = trio.Event()
        self._app = ASGIWrapper(_close_websockets_at(_finish_connection_state(app), self._stopping))
        #: a unix socket only its owner may connect to (the control socket)
        self._owner_only = owner_only
        self._hc = hypercorn_config(bind, limits)
        self._limits = limits
        self._clocks = clocks
        self._daemon_slots = daemon_slots
        self._bind_slots = trio.Semaphore(limits.max_connections)
        self._per_address: Counter[str] = Counter()
        self.stats = BindStats(limits=limits)
        self._context = WorkerContext(None)
        self._lifespan_state: LifespanState = {}
        self._log_accept_error = RateLimitedLog(clocks, log)
        self._log_connection_error = RateLimitedLog(clocks, log, logging.ERROR)

    async def serve(
        self,
        stop: Callable[[], Awaitable[object]],
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serves until ``stop()`` returns, then lets requests in flight finish (up to
        ``graceful_timeout_sec``); reports the bound URLs once every listener is open.
        Cancellation closes the listeners and every connection at once, without the
        grace period."""
        lifespan = Lifespan(self._app, self._hc, self._lifespan_state)
        async with trio.open_nursery() as lifespan_nursery:
            await lifespan_nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            listeners, urls = self._listen()
            try:
                async with trio.open_nursery() as connections:
                    async with trio.open_nursery() as accepting:
                        for listener in listeners:
                            accepting.start_soon(self._accept_loop, listener, connections)
                        task_status.started(urls)
                        await stop()
                        accepting.cancel_scope.cancel()
                    for listener in listeners:  # new clients are refused from here on
                        await trio.aclose_forcefully(listener)
                    await self._stop_connections(connections)
            finally:
                for listener in listeners:
                    await trio.aclose_forcefully(listener)
            await lifespan.wait_for_shutdown()
            lifespan_nursery.cancel_scope.cancel()

    async def _stop_connections(self, connections: trio.Nursery) -> None:
        # idle connections close at once (their timer waits on ``terminated``), WebSockets
        # too (``_close_websockets_at``), busy ones after their response, all of them by
        # the deadline
        # (the deadline first: a WebSocket's close frame is sent until it, see
        # ``_close_websockets_at``)
        connections.cancel_scope.deadline = trio.current_time() + self._limits.graceful_timeout_sec
        self._stopping.set()
        await self._context.terminated.set()

    def _listen(self) -> tuple[list[Listener], list[str]]:
        from hypercorn.utils import repr_socket_addr

        sockets = self._hc.create_sockets()
        if self._owner_only:  # before listen(): nobody else ever connects
            for sock in sockets.insecure_sockets:
                os.chmod(sock.getsockname(), 0o600)
        ssl_context = self._hc.create_ssl_context()
        listeners: list[Listener] = []
        urls: list[str] = []
        for sock, scheme in [
            *((s, "https") for s in sockets.secure_sockets),
            *((s, "http") for s in sockets.insecure_sockets),
        ]:
            sock.listen(self._hc.backlog)
            listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
            if scheme == "https":
                assert ssl_context is not None
                listeners.append(trio.SSLListener(listener, ssl_context, https_compatible=True))
            else:
                listeners.append(listener)
            urls.append(f"{scheme}://{repr_socket_addr(sock.family, sock.getsockname())}")
        self.stats.address = urls[0].split("://", 1)[1] if urls else ""
        return listeners, urls

    async def _acquire(self, slots: trio.Semaphore, reason: str) -> None:
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            self.stats.paused[reason] += 1
            await slots.acquire()

    async def _accept_loop(self, listener: Listener, connections: trio.Nursery) -> None:
        backoff = ACCEPT_BACKOFF_MIN_SEC
        while True:
            # At a limit, stop accepting: clients wait in the kernel's queue, and nothing
            # spins accepting and closing.
            await self._acquire(self._bind_slots, "bind limit")
            try:
                await self._acquire(self._daemon_slots, "descriptor limit")
            except BaseException:
                self._bind_slots.release()
                raise
            try:
                stream = await listener.accept()
            except BaseException as e:
                self._bind_slots.release()
                self._daemon_slots.release()
                if not isinstance(e, OSError) or e.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                self.stats.accept_errors += 1
                self.stats.paused["accept error"] += 1
                why = errors.from_os_error(e, f"accepting HTTP connections on {self.stats.address}")
                self._log_accept_error(f"{why}; retrying in {backoff:g} s")
                await self._clocks.sleep(round(backoff * UNITS_PER_SEC))
                backoff = min(2 * backoff, ACCEPT_BACKOFF_MAX_SEC)
                continue
            backoff = ACCEPT_BACKOFF_MIN_SEC
            connections.start_soon(self._run_connection, stream)

    async def _run_connection(self, stream: Stream) -> None:
        address: str | None = None
        try:
            try:
                address = _peer_address(stream)
            except OSError:  # the client is gone already
                return
            per_address = self._limits.max_connections_per_address
            if address is not None and per_address:
                if self._per_address[address] >= per_address:
                    self.stats.refused_per_address += 1
                    address = None
                    return
                self._per_address[address] += 1
            self.stats.open += 1
            try:
                await _Connection(
                    self._app,
                    self._hc,
                    self._context,
                    ConnectionState(self._lifespan_state.copy()),
                    stream,
                    self._limits,
                    self.stats,
                )
            except Exception as e:  # a server bug must not end serving (nor recording)
                self._log_connection_error("HTTP connection failed", exc_info=e)
            finally:
                self.stats.open -= 1
        finally:
            await trio.aclose_forcefully(stream)
            if address is not None and self._limits.max_connections_per_address:
                self._per_address[address] -= 1
                if not self._per_address[address]:
                    del self._per_address[address]
            self._bind_slots.release()
            self._daemon_slots.release()


# -- the daemon's binds -----------------------------------------------------------------


async def run_web(
    config: Config,
    shared: WebContext,
    budget: DescriptorBudget,
    stop: trio.Event,
    done: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serves every configured bind until ``stop``; reports the bound addresses. All binds
    together hold at most ``budget.http_connections`` connections. ``shared`` is what
    every bind's app reads (the daemon's database, directories, clocks, hub, metrics);
    each bind gets its own copy with its ``BindConfig`` and the one user store and
    failed-login counter of all binds. ``done`` is set when every bind has stopped, on
    ``stop`` or on cancellation (which stops them at once, without the grace period)."""
    from nvr.db.auth import Auth, SessionPolicy
    from nvr.transcode import Settings
    from nvr.web.app import create_app
    from nvr.web.login_limit import LoginLimiter
    from nvr.web.thumb import ThumbnailCollector, Thumbnails
    from nvr.web.transcoding import TranscodeCollector, Transcodes

    addresses: list[str] = []
    # One user/session store, one failed-login counter and one thumbnail cache for all
    # binds.
    policy = SessionPolicy(config.session_idle_timeout_sec, config.session_max_age_sec)
    users = Auth(shared.db, now=shared.clocks.realtime, policy=policy)
    limiter = LoginLimiter(shared.clocks)
    thumbnails = Thumbnails()
    transcodes = Transcodes(
        Settings(max_height=config.transcode_max_height, nice=config.transcode_nice),
        max_concurrent=config.transcode_max_concurrent,
    )
    daemon_slots = trio.Semaphore(budget.http_connections)
    stats: list[BindStats] = []
    if config.binds:
        log.info(
            "open files: limit %d, %d kept for recording; HTTP may hold %d connections",
            budget.limit, budget.reserve, budget.http_connections,
        )
        if shared.metrics is not None:
            shared.metrics.registry.register(HttpCollector(stats, budget))
            shared.metrics.registry.register(ThumbnailCollector(thumbnails))
            shared.metrics.registry.register(TranscodeCollector(transcodes))
    control = control_bind(config)
    try:
        async with trio.open_nursery() as nursery:
            for bind in (*config.binds, *((control,) if control else ())):
                ctx = dataclasses.replace(
                    shared, bind=bind, auth=users, login_limiter=limiter, thumbnails=thumbnails,
                    transcodes=transcodes,
                )
                server = BindServer(
                    create_app(ctx),
                    bind,
                    HttpLimits.of(config, bind),
                    shared.clocks,
                    daemon_slots=daemon_slots,
                    owner_only=bind is control,
                )
                try:
                    bound = await nursery.start(server.serve, stop.wait)
                except* OSError as group:  # address in use, not ours to bind...
                    e = errors.first_leaf(group)
                    raise errors.from_os_error(e, f"cannot listen on {bind.address}") from e
                if bind is control:
                    log.info("control socket (for nvr config) at %s", control.address[5:])
                    continue
                log.info("serving HTTP on %s", ", ".join(bound))
                addresses.extend(bound)
                stats.append(server.stats)
            task_status.started(addresses)
    finally:
        try:
            await thumbnails.aclose()  # its kept decoders, on a worker thread (shielded)
        finally:
            done.set()


def control_bind(config: Config) -> BindConfig | None:
    """The control socket's bind: the API on a unix socket beside the database, for
    ``nvr config`` while the daemon runs; only the database's owner may connect
    (``0600``), and whoever can connects with every permission. None when its path is
    too long for a unix socket."""
    path = control_socket_path(config.db_dir)
    if len(os.fsencode(path)) > MAX_UNIX_PATH:
        log.warning("no control socket: its path %s is too long for a unix socket", path)
        return None
    return BindConfig(
        address=f"unix:{path}",
        allow_unauthenticated=PERMISSIONS,
        max_connections=16,
        max_connections_per_address=0,
    )


class HttpCollector(Collector):
    """``nvr_http_*`` for ``/metrics``: each bind's ``BindStats`` and the descriptor
    budget, read at scrape time."""

    def __init__(self, binds: Sequence[BindStats], budget: DescriptorBudget) -> None:
        self._binds = binds
        self._budget = budget

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, doc: str, labels: Sequence[str] = ("bind",)) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=list(labels))

        def counter(name: str, doc: str, labels: Sequence[str] = ("bind",)) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=list(labels))

        open_ = gauge("nvr_http_connections", "Open HTTP connections")
        limit = gauge("nvr_http_connections_max", "The bind's max_connections")
        per_address = gauge(
            "nvr_http_connections_per_address_max",
            "The bind's max_connections_per_address (0: no limit)",
        )
        paused = counter(
            "nvr_http_accept_paused",
            "Times accepting stopped at a limit or after an accept error",
            ("bind", "reason"),
        )
        refused = counter(
            "nvr_http_connections_refused",
            "Connections closed at once: their address had max_connections_per_address open",
        )
        timeouts = counter(
            "nvr_http_timeouts", "Connections closed by a timeout", ("bind", "kind")
        )
        accept_errors = counter(
            "nvr_http_accept_errors", "accept() failures (too many open files...)"
        )
        for b in self._binds:
            open_.add_metric([b.address], b.open)
            limit.add_metric([b.address], b.limits.max_connections)
            per_address.add_metric([b.address], b.limits.max_connections_per_address)
            for reason in PAUSE_REASONS:
                paused.add_metric([b.address, reason], b.paused[reason])
            refused.add_metric([b.address], b.refused_per_address)
            for kind in TIMEOUT_KINDS:
                timeouts.add_metric([b.address, kind], b.timeouts[kind])
            accept_errors.add_metric([b.address], b.accept_errors)
        yield from (open_, limit, per_address, paused, refused, timeouts, accept_errors)
        total = gauge(
            "nvr_http_connections_daemon_max",
            "Open HTTP connections on all binds together at most: what fits in the "
            "open-files limit beside recording's reserve",
            (),
        )
        total.add_metric([], self._budget.http_connections)
        fds = gauge("nvr_open_files_limit", "The soft RLIMIT_NOFILE", ())
        fds.add_metric([], self._budget.limit)
        reserve = gauge(
            "nvr_open_files_reserved", "Descriptors kept for recording, never used by HTTP", ()
        )
        reserve.add_metric([], self._budget.reserve)
        yield from (total, fds, reserve)

