"""Runs the GStreamer RTSP test camera (``tests/support/rtsp_server.py``) for tests.

``RtspServer`` starts the script with the system ``/usr/bin/python3`` (which has ``gi``),
waits for its ``READY <port>`` line, and lets a test break it the ways a camera breaks:
``kill()`` (SIGKILL: connections drop), ``freeze()``/``thaw()`` (SIGSTOP/SIGCONT:
connections stall), ``restart()`` (a new process on the same port). The pytest fixtures
at the bottom are registered by ``tests/conftest.py``; every server they start is closed
in a finalizer, and any server still running when the interpreter exits is killed.
"""

from __future__ import annotations

import atexit
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import quote

import pytest

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
HOST = "127.0.0.1"
#: the script's exit status when it cannot bind its port
EXIT_BIND_FAILED = 3
START_TIMEOUT = 15.0
RESTART_BIND_TIMEOUT = 5.0
CLOSE_TIMEOUT = 5.0


class RtspServerError(RuntimeError):
    """The test camera did not start; the message carries its stderr."""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What the test camera serves: ``/live`` (this size, rate, GOP and bitrate) and
    ``/file/<name>`` for every clip in ``fixtures/`` (unless ``fixtures`` is false) and
    in ``files``. ``user``/``password`` require digest authentication on every path."""

    width: int = 640
    height: int = 360
    fps: int = 30
    gop: int = 30
    bitrate_kbps: int = 500
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    files: Mapping[str, Path] = field(default_factory=dict)
    fixtures: bool = True

    def argv(self, port: int) -> list[str]:
        args = [
            f"--port={port}",
            f"--width={self.width}",
            f"--height={self.height}",
            f"--fps={self.fps}",
            f"--gop={self.gop}",
            f"--bitrate={self.bitrate_kbps}",
        ]
        args += [f"--file={name}={path}" for name, path in self.files.items()]
        if not self.fixtures:
            args.append("--no-fixtures")
        if self.user is not None and self.password is not None:
            args += [f"--user={self.user}", f"--password={self.password}"]
        return args


_running: set[RtspServer] = set()


class RtspServer:
    """One test-camera process (replaced by ``restart``). Use as a context manager or
    call ``close()``."""

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._port = 0
        self._exit_status: int | None = None
        #: seconds from spawning the last process to its READY line
        self.startup_seconds = 0.0

    @property
    def port(self) -> int:
        if self._port == 0:
            raise RuntimeError("the RTSP server has not started")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the current process is alive (False after it died on its own)."""
        return self._process is not None and self._process.poll() is None

    def stderr_text(self) -> str:
        """What the server has written to stderr so far (its log lines)."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def exit_report(self) -> str:
        """For a process that died on its own: its exit status and the end of its stderr."""
        process = self._process
        if process is None or process.poll() is None or self._stderr is None:
            return ""
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip()[-2000:]
        return f"exit status {process.returncode}; stderr ends:\n{tail}"

    @property
    def pid(self) -> int:
        return self._live_process().pid

    def start(self, port: int = 0) -> RtspServer:
        """Spawns the server and waits for READY; raises ``RtspServerError`` on failure."""
        if self._process is not None:
            raise RuntimeError("the RTSP server is already running")
        started = time.monotonic()
        self._spawn(port)
        self._port = self._wait_ready(started + START_TIMEOUT)
        self.startup_seconds = time.monotonic() - started
        return self

    def url(self, path: str, *, user: str | None = None, password: str | None = None) -> str:
        """``rtsp://[user:password@]127.0.0.1:PORT/path`` (userinfo percent-encoded)."""
        userinfo = ""
        if user is not None:
            userinfo = quote(user, safe="")
            if password is not None:
                userinfo += ":" + quote(password, safe="")
            userinfo += "@"
        return f"rtsp://{userinfo}{HOST}:{self.port}/{path.lstrip('/')}"

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections open and sends nothing."""
        self._live_process().send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._live_process().send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL and reap: every connection is reset, the port is free."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
            process.wait()
        self._forget_process()

    def restart(self) -> None:
        """Kills the current process (if any) and starts a new one on the same port,
        retrying briefly while the old socket still holds it."""
        port = self.port
        self.kill()
        deadline = time.monotonic() + RESTART_BIND_TIMEOUT
        while True:
            try:
                self.start(port)
                return
            except RtspServerError:
                if self._exit_status != EXIT_BIND_FAILED or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def close(self) -> None:
        """SIGTERM (after SIGCONT, in case it is frozen); SIGKILL if it does not exit."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._forget_process()

    def __enter__(self) -> RtspServer:
        return self.start() if self._process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _spawn(self, port: int) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _forget_process)
        self._exit_status = None
        self._process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), *self.options.argv(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        _running.add(self)

    def _wait_ready(self, deadline: float) -> int:
        process = self._live_process()
        assert process.stdout is not None
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self._fail(f"no READY line within {START_TIMEOUT} s")
                chunk = os.read(process.stdout.fileno(), 256)
                if not chunk:
                    self._fail("exited before READY")
                line += chunk
        word, _, port = line.decode().strip().partition(" ")
        if word != "READY" or not port.isdigit():
            self._fail(f"unexpected first line {line!r}")
        return int(port)

    def _fail(self, reason: str) -> None:
        process = self._live_process()
        if process.poll() is None:
            process.kill()
        self._exit_status = process.wait()
        assert self._stderr is not None
        self._stderr.seek(0)
        stderr = self._stderr.read().decode(errors="replace").strip()
        self._forget_process()
        raise RtspServerError(
            f"RTSP test server {reason} (exit status {self._exit_status}); stderr:\n{stderr}"
        )

    def _live_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the RTSP server is not running")
        return self._process

    def _forget_process(self) -> None:
        if self._process is not None:
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        _running.discard(self)


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.kill()


ServerFactory = Callable[..., RtspServer]


@pytest.fixture
def rtsp_server_factory() -> Iterator[ServerFactory]:
    """Starts servers with ``ServerOptions(**kwargs)``; closes them all after the test."""
    servers: list[RtspServer] = []

    def start(**kwargs: object) -> RtspServer:
        server = RtspServer(ServerOptions(**kwargs))  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def rtsp_server(rtsp_server_factory: ServerFactory) -> RtspServer:
    """A default test camera of this test's own (free to kill, freeze, restart)."""
    return rtsp_server_factory()


@pytest.fixture(scope="session")
def shared_rtsp_server() -> Iterator[RtspServer]:
    """A default test camera shared by the whole session: read from it, never break it."""
    with RtspServer() as server:
        yield server
