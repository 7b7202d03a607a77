"""sd_notify over a real AF_UNIX datagram socket, as systemd listens."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvr.ops.systemd import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    yield s, path
    s.close()


def test_messages_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    n.notify("READY=1", "STATUS=recording 2 streams")
    assert sock.recv(4096) == b"READY=1\nSTATUS=recording 2 streams"


def test_abstract_socket_address() -> None:
    name = f"nvr-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(5)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).notify("WATCHDOG=1")
        assert s.recv(100) == b"WATCHDOG=1"
    finally:
        s.close()


def test_without_systemd_nothing_happens() -> None:
    n = Notifier({})
    assert not n.enabled and n.watchdog_interval is None
    n.notify("READY=1")  # no error


def test_watchdog_interval_is_half_the_timeout() -> None:
    assert Notifier({"WATCHDOG_USEC": "20000000"}).watchdog_interval == 10 * 90_000
    pid = str(os.getpid())
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": pid}).watchdog_interval == 90_000
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_a_vanished_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).notify("STOPPING=1")
    assert "could not notify systemd (STOPPING=1)" in caplog.text
