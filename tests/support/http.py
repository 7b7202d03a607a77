"""Serving the web app over a real socket for tests (binds on port 0).

- ``in_thread``: runs an async "server" function in a ``trio.run`` of its own in a thread,
  for synchronous tests (Playwright's sync API, hypothesis over a shared server): yields
  what the function passed to ``task_status.started`` and stops it at the end of the block.
- ``daemon_in_thread``: the real ``nvr.daemon.run`` that way (orderly shutdown at the end).
- ``VIEW_BIND``: a port-0 loopback bind granting ``viewVideo`` without a login, as the
  demo does until sessions exist.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import trio

from nvr import daemon
from nvr.config import BindConfig, Config

VIEW_BIND = BindConfig(address="127.0.0.1:0", allow_unauthenticated=("viewVideo",))
THREAD_TIMEOUT = 30.0


@contextmanager
def in_thread(
    start: Callable[..., Awaitable[object]],
    stop: Callable[[Any], None] | None = None,
) -> Iterator[Any]:
    """Runs ``await nursery.start(start)`` in a new thread's ``trio.run``; yields the value
    it reported. At the end ``stop(value)`` is called in that thread's trio loop (default:
    cancel), and the thread is joined; an exception in it is raised here."""
    reported: queue.Queue[tuple[str, Any]] = queue.Queue()
    failure: list[BaseException] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            value = await nursery.start(start)
            reported.put(("ok", (value, trio.lowlevel.current_trio_token(), nursery.cancel_scope)))

    def thread() -> None:
        try:
            trio.run(main)
        except BaseException as e:  # reported to the test
            failure.append(e)
            reported.put(("error", e))

    t = threading.Thread(target=thread, name="test-server", daemon=True)
    t.start()
    kind, payload = reported.get(timeout=THREAD_TIMEOUT)
    if kind == "error":
        t.join(THREAD_TIMEOUT)
        raise payload
    value, token, scope = payload
    try:
        yield value
    finally:
        if t.is_alive():
            # (it may have ended by itself meanwhile: an error is in ``failure``)
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(
                    (lambda: stop(value)) if stop is not None else scope.cancel, trio_token=token
                )
        t.join(THREAD_TIMEOUT)
        assert not t.is_alive(), "the test server did not stop"
    if failure:
        raise failure[0]


def view_config(config: Config) -> Config:
    """``config`` with one loopback bind on a free port that grants ``viewVideo``."""
    return replace(config, binds=(VIEW_BIND,), time_zone=config.time_zone or "UTC")


@contextmanager
def daemon_in_thread(config: Config, *, read_only: bool = False) -> Iterator[daemon.Daemon]:
    """The real daemon (``handle_signals=False``) in a thread; shut down in order at the
    end. ``Daemon.http_addresses`` says where it listens."""

    async def start(task_status: trio.TaskStatus[daemon.Daemon]) -> None:
        await daemon.run(config, read_only=read_only, handle_signals=False, task_status=task_status)

    def stop(d: daemon.Daemon) -> None:
        d.shutdown.set()

    with in_thread(start, stop) as d:
        yield d
