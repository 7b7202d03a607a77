"""``nvr.base.blocking``: ``run_blocking`` uses a worker thread, or runs inline in tests."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from nvr.base.blocking import inline_blocking, run_blocking


def thread_id_plus(offset: int) -> int:
    return threading.get_ident() + offset


async def test_runs_in_a_worker_thread_by_default() -> None:
    assert await run_blocking(thread_id_plus, 0) != threading.get_ident()


async def test_passes_arguments_and_returns_the_result() -> None:
    assert await run_blocking(divmod, 17, 5) == (3, 2)
    with inline_blocking():
        assert await run_blocking(divmod, 17, 5) == (3, 2)


async def test_exceptions_propagate() -> None:
    with pytest.raises(ZeroDivisionError):
        await run_blocking(divmod, 1, 0)
    with inline_blocking(), pytest.raises(ZeroDivisionError):
        await run_blocking(divmod, 1, 0)


async def test_runs_inline_within_inline_blocking() -> None:
    with inline_blocking():
        assert await run_blocking(thread_id_plus, 0) == threading.get_ident()
    assert await run_blocking(thread_id_plus, 0) != threading.get_ident()


async def test_inline_setting_is_inherited_by_tasks_spawned_inside() -> None:
    trio_thread = threading.get_ident()
    seen: dict[str, int] = {}

    async def record(name: str) -> None:
        seen[name] = await run_blocking(thread_id_plus, 0)

    async with trio.open_nursery() as nursery:
        with inline_blocking():
            nursery.start_soon(record, "spawned inside")
        nursery.start_soon(record, "spawned outside")
    with inline_blocking():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(record, "nursery inside")
    assert seen["spawned inside"] == trio_thread
    assert seen["nursery inside"] == trio_thread
    assert seen["spawned outside"] != trio_thread


async def test_inline_call_is_a_checkpoint() -> None:
    # Other tasks can run, and a cancellation can arrive, at every run_blocking call.
    with inline_blocking(), trio.testing.assert_checkpoints():
        await run_blocking(thread_id_plus, 0)


async def test_cancelled_inline_call_does_not_run() -> None:
    calls: list[int] = []
    with inline_blocking(), trio.CancelScope() as scope:
        scope.cancel()
        await run_blocking(calls.append, 1)
    assert scope.cancelled_caught
    assert calls == []


async def test_cancelled_threaded_call_does_not_run() -> None:
    calls: list[int] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        await run_blocking(calls.append, 1)
    assert scope.cancelled_caught
    assert calls == []


async def test_cancel_during_a_threaded_call_waits_for_it() -> None:
    """A write in a thread is never abandoned half-done: the cancelled caller gets the
    result, and the cancellation is delivered at its next checkpoint."""
    started = trio.Event()
    release = threading.Event()
    events: list[str] = []

    def write() -> str:
        trio.from_thread.run_sync(started.set)
        release.wait()
        events.append("write finished")
        return "written"

    async def caller(scope: trio.CancelScope) -> None:
        with scope:
            events.append(await run_blocking(write))
            await trio.lowlevel.checkpoint()
            events.append("not reached")

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller, scope)
        await started.wait()
        scope.cancel()
        release.set()
    assert events == ["write finished", "written"]
    assert scope.cancelled_caught


async def test_abandon_on_cancel_returns_at_once() -> None:
    release = threading.Event()
    started = trio.Event()

    def demux() -> None:
        trio.from_thread.run_sync(started.set)
        release.wait()

    with trio.CancelScope() as scope:

        async def cancel_when_started() -> None:
            await started.wait()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_when_started)
            await run_blocking(demux, abandon_on_cancel=True)
    release.set()
    assert scope.cancelled_caught


async def test_limiter_bounds_concurrent_threads() -> None:
    limiter = trio.CapacityLimiter(1)
    first_started = trio.Event()
    release_first = threading.Event()
    ran: list[str] = []

    def first() -> None:
        trio.from_thread.run_sync(first_started.set)
        release_first.wait()
        ran.append("first")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_blocking(first, limiter=limiter))
        await first_started.wait()
        nursery.start_soon(lambda: run_blocking(ran.append, "second", limiter=limiter))
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics().tasks_waiting == 1
        assert ran == []
        release_first.set()
    assert ran == ["first", "second"]
