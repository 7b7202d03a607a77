"""The one seam where nvr leaves the trio thread.

Every blocking call other than SQLite (file I/O, fsync, PyAV demux) goes through
``run_blocking``. By default it runs the function in a worker thread. Deterministic tests
install an inline runner with ``inline_blocking()``: under ``MockClock`` autojump a task
waiting on a thread looks blocked and virtual time would jump, so tests run the call in the
trio thread instead. The runner is a context variable, so a test's setting is inherited by
the tasks it spawns and does not leak into other tests.

The one exception: each open camera session's reader thread (``nvr.ingest.pyav_source``)
is a plain ``threading.Thread``. It is not a call but a producer that lives as long as the
session, blocked in FFmpeg; through this seam it would hold a limiter token for hours
(starving the file writes that share the limiter) and, inline in tests, deadlock the trio
thread. That module's docstring gives the reasons in full.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import TypeVar

import trio

T = TypeVar("T")

_inline: contextvars.ContextVar[bool] = contextvars.ContextVar("nvr_inline_blocking", default=False)


async def run_blocking(
    fn: Callable[..., T],
    *args: object,
    limiter: trio.CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> T:
    """Runs ``fn(*args)`` in a worker thread (or inline, in tests) and returns its result.

    ``abandon_on_cancel`` is for reads that may block for long (a demux); file writes and
    fsyncs must never be abandoned half-done, so it defaults to ``False``.
    """
    if _inline.get():
        await trio.lowlevel.checkpoint()
        return fn(*args)
    return await trio.to_thread.run_sync(
        fn, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel
    )


@contextlib.contextmanager
def inline_blocking() -> Iterator[None]:
    """Within this block (and tasks spawned from it), ``run_blocking`` runs inline."""
    token = _inline.set(True)
    try:
        yield
    finally:
        _inline.reset(token)
