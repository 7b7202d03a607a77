"""Motion on/off from analysed pictures: hysteresis and a minimum duration, at exact
media times, written to the camera's motion signal. Pure; no ``trio``, no ``av``.

- Motion *starts* at the first picture with a moved cell, but only once motion was seen
  in every analysed picture for ``min_duration`` (one still picture before that cancels
  the candidate: a single flickering cell never turns the signal on).
- Motion *ends* at the first still picture after the last moving one, once
  ``off_delay`` passed without motion (a short pause does not split an event).
- Global changes (``Analysis.global_change``) neither start nor end anything.

Writes: the signal says ``MOVING`` over ``[start, t + HOLD)`` when motion is confirmed at
``t`` and again whenever the held end comes within ``HOLD / 2``; at the end ``STILL``
over ``[end, held end)``. So a crash leaves at most ``HOLD`` of motion that did not
happen, and a reader never waits for an event to end to see it. Between events the
signal is in the state it was before (for a new signal: 0, unknown): nvr writes only
around events, not a steady stream of "still" (which would cost a commit every few
seconds per camera).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

STILL, MOVING = 1, 2
UNITS_PER_SEC = 90_000
HOLD = 10 * UNITS_PER_SEC

#: (state, start, end): the signal has ``state`` over ``[start, end)`` (Moonfire's
#: ``POST /api/signals`` semantics: afterwards what was there before resumes)
SignalWrite = Callable[[int, int, int], None]


@dataclass(frozen=True, slots=True)
class EventOptions:
    min_duration: int = UNITS_PER_SEC // 2
    off_delay: int = 2 * UNITS_PER_SEC


class MotionEvents:
    """Feeds ``(time, motion, global_change)`` per analysed picture, in time order."""

    def __init__(self, write: SignalWrite, options: EventOptions = EventOptions()) -> None:
        self._write = write
        self._opts = options
        self._candidate: int | None = None  # first moving picture, not yet confirmed
        self._start: int | None = None  # confirmed event's start
        self._first_still: int | None = None  # first still picture after motion
        self._held_until = 0
        #: (start, end) of every finished event, for tests and logs
        self.events: list[tuple[int, int]] = []

    @property
    def moving(self) -> bool:
        return self._start is not None

    def feed(self, time: int, motion: bool, global_change: bool = False) -> None:
        if global_change:
            return
        if self._start is None:
            if not motion:
                self._candidate = None
                return
            if self._candidate is None:
                self._candidate = time
            if time - self._candidate >= self._opts.min_duration:
                self._start, self._candidate = self._candidate, None
                self._hold(time)
            return
        if motion:
            self._first_still = None
            if self._held_until - time < HOLD // 2:
                self._hold(time)
            return
        if self._first_still is None:
            self._first_still = time
        if time - self._first_still >= self._opts.off_delay:
            self._end(self._first_still)

    def close(self, time: int) -> None:
        """The pictures stop (session ended, shutdown): an event in progress ends at
        its first still picture, or at ``time``."""
        self._candidate = None
        if self._start is not None:
            self._end(self._first_still if self._first_still is not None else time)

    def _hold(self, time: int) -> None:
        assert self._start is not None
        self._held_until = time + HOLD
        self._write(MOVING, self._start, self._held_until)

    def _end(self, end: int) -> None:
        assert self._start is not None
        if self._held_until > end:
            self._write(STILL, end, self._held_until)
        self.events.append((self._start, end))
        self._start = self._first_still = None
        self._held_until = 0
