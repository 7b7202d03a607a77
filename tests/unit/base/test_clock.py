"""``nvr.base.clock``: simulated clocks advance exactly with trio's ``MockClock``."""

from __future__ import annotations

import time

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from nvr.base.clock import Clocks, RealClocks, SimulatedClocks
from nvr.base.time90k import UNITS_PER_HOUR, UNITS_PER_SEC

START = 161_580_771_000_000  # 2026-11-22T10:05:00Z


async def test_simulated_starts_at_start(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    assert clocks.realtime() == START
    assert clocks.monotonic() == 0


async def test_simulated_clocks_advance_exactly_with_virtual_sleeps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks: Clocks = SimulatedClocks(START)
    await clocks.sleep(90_000)
    assert (clocks.realtime(), clocks.monotonic()) == (START + 90_000, 90_000)
    await clocks.sleep(1)
    assert (clocks.realtime(), clocks.monotonic()) == (START + 90_001, 90_001)
    await trio.sleep(2.5)
    assert (clocks.realtime(), clocks.monotonic()) == (START + 315_001, 315_001)


async def test_sleep_until_wakes_at_the_exact_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    deadline = clocks.monotonic() + 7 * UNITS_PER_HOUR + 12_345
    await clocks.sleep_until(deadline)
    assert clocks.monotonic() == deadline
    assert clocks.realtime() == START + deadline
    assert trio.current_time() == deadline / UNITS_PER_SEC


async def test_sleep_until_a_past_deadline_returns_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    await clocks.sleep(1000)
    await clocks.sleep_until(500)
    await clocks.sleep(-5)
    assert clocks.monotonic() == 1000


async def test_realtime_follows_the_mock_clock_not_the_system(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    autojump_clock.jump(3600)
    assert clocks.realtime() == START + UNITS_PER_HOUR
    assert clocks.monotonic() == UNITS_PER_HOUR


async def test_created_later_counts_from_its_own_origin(
    autojump_clock: trio.testing.MockClock,
) -> None:
    await trio.sleep(10)
    clocks = SimulatedClocks(START)
    assert clocks.realtime() == START
    assert clocks.monotonic() == 10 * UNITS_PER_SEC
    await clocks.sleep(90)
    assert clocks.realtime() == START + 90


async def test_concurrent_sleepers_wake_in_deadline_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, deadline: int) -> None:
        await clocks.sleep_until(deadline)
        woke.append((name, clocks.monotonic()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper, "c", 3 * UNITS_PER_SEC)
        nursery.start_soon(sleeper, "a", 1)
        nursery.start_soon(sleeper, "b", UNITS_PER_SEC)
    assert woke == [("a", 1), ("b", UNITS_PER_SEC), ("c", 3 * UNITS_PER_SEC)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 10 * UNITS_PER_HOUR), max_size=200))
def test_many_sleeps_add_up_to_the_tick(durations: list[int]) -> None:
    async def main() -> tuple[int, int]:
        clocks = SimulatedClocks(START)
        for d in durations:
            await clocks.sleep(d)
        return clocks.monotonic(), clocks.realtime()

    clock = trio.testing.MockClock(autojump_threshold=0)
    total = sum(durations)
    assert trio.run(main, clock=clock) == (total, START + total)


async def test_real_clocks_read_the_system_time() -> None:
    before = time.time_ns() * 9 // 100_000
    now = RealClocks().realtime()
    after = time.time_ns() * 9 // 100_000
    assert before <= now <= after


async def test_real_clocks_monotonic_is_trio_time() -> None:
    clocks = RealClocks()
    before = round(trio.current_time() * UNITS_PER_SEC)
    now = clocks.monotonic()
    after = round(trio.current_time() * UNITS_PER_SEC)
    assert before <= now <= after


async def test_deadline_after_cancels_at_the_exact_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks: Clocks = SimulatedClocks(START)
    await clocks.sleep(1234)
    with trio.move_on_at(clocks.deadline_after(5 * UNITS_PER_SEC + 7)) as scope:
        await trio.sleep_forever()
    assert scope.cancelled_caught
    assert clocks.monotonic() == 1234 + 5 * UNITS_PER_SEC + 7
    with trio.CancelScope(deadline=RealClocks().deadline_after(-1)) as past:
        await trio.sleep_forever()
    assert past.cancelled_caught and clocks.monotonic() == 1234 + 5 * UNITS_PER_SEC + 7


async def test_deadline_at_cancels_at_that_monotonic_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks: Clocks = SimulatedClocks(START)
    at = clocks.monotonic() + 3 * UNITS_PER_SEC + 11
    with trio.move_on_at(clocks.deadline_at(at)) as scope:
        await trio.sleep_forever()
    assert scope.cancelled_caught
    assert clocks.monotonic() == at
