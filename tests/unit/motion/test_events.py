"""Motion on/off with hysteresis and a minimum duration, at exact times."""

from __future__ import annotations

from nvr.motion.events import HOLD, MOVING, STILL, EventOptions, MotionEvents

S = 90_000
STEP = S // 5


def run(pattern: str, start: int = 1000 * S) -> tuple[MotionEvents, list[tuple[int, int, int]]]:
    """Feeds one picture per STEP: ``#`` motion, ``.`` still, ``G`` global change."""
    writes: list[tuple[int, int, int]] = []
    ev = MotionEvents(lambda state, a, b: writes.append((state, a, b)), EventOptions())
    for i, c in enumerate(pattern):
        ev.feed(start + i * STEP, c == "#", c == "G")
    return ev, writes


def test_no_motion_no_writes() -> None:
    ev, writes = run("." * 50 + "G" + "." * 20)
    assert writes == [] and ev.events == []


def test_short_flicker_never_turns_on() -> None:
    # min_duration 0.5 s: two moving pictures span 0.2 s, then a still one cancels
    ev, writes = run("..##..#.#.##." + "." * 20)
    assert writes == [] and ev.events == []


def test_on_and_off_at_exact_times() -> None:
    t0 = 1000 * S
    ev, writes = run("...." + "#" * 10 + "." * 15)
    on, off = t0 + 4 * STEP, t0 + 14 * STEP
    assert ev.events == [(on, off)]
    confirmed = t0 + (4 + 3) * STEP  # 0.6 s of motion >= 0.5 s
    assert writes == [(MOVING, on, confirmed + HOLD), (STILL, off, confirmed + HOLD)]


def test_short_pause_does_not_split() -> None:
    t0 = 1000 * S
    ev, _ = run("#" * 5 + "." * 5 + "#" * 5 + "." * 20)
    assert ev.events == [(t0, t0 + 15 * STEP)]


def test_global_change_neither_starts_nor_ends() -> None:
    t0 = 1000 * S
    ev, _ = run("#" * 5 + "GGGGGGGGGGGGGGG" + "#" + "." * 20)
    assert ev.events == [(t0, t0 + 21 * STEP)]


def test_long_motion_extends_the_hold_and_close_ends_it() -> None:
    t0 = 1000 * S
    ev, writes = run("#" * 200)
    assert ev.moving
    assert [w[0] for w in writes] == [MOVING] * len(writes)
    assert all(w[1] == t0 for w in writes)
    ends = [w[2] for w in writes]
    assert ends == sorted(ends) and len(writes) > 5
    ev.close(t0 + 200 * STEP)
    assert ev.events == [(t0, t0 + 200 * STEP)]
    assert writes[-1] == (STILL, t0 + 200 * STEP, ends[-1])
