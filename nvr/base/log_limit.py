"""``RateLimitedLog``: a recurring problem logged at most once a minute, with how often it
happened in between, so that a failure repeating for hours (a full disk, a flood of
connections) keeps the log readable. Which problems recur, and at what level they are
logged, is the caller's; time comes from ``Clocks``."""

from __future__ import annotations

import logging

from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC, Duration

#: a recurring problem is logged at most once this often
LOG_EVERY: Duration = 60 * UNITS_PER_SEC


class RateLimitedLog:
    """Logs to ``logger`` at ``level`` at most once per ``LOG_EVERY``; a later line says how
    many were held back."""

    def __init__(
        self, clocks: Clocks, logger: logging.Logger, level: int = logging.WARNING
    ) -> None:
        self._clocks = clocks
        self._logger = logger
        self._level = level
        self._next: Duration | None = None
        self._unlogged = 0

    def __call__(self, message: str, *, exc_info: BaseException | None = None) -> None:
        now = self._clocks.monotonic()
        if self._next is not None and now < self._next:
            self._unlogged += 1
            return
        more = f" (and {self._unlogged} more times in the last minute)" if self._unlogged else ""
        self._logger.log(self._level, "%s%s", message, more, exc_info=exc_info)
        self._next, self._unlogged = now + LOG_EVERY, 0
