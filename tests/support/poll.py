"""Waiting on a real server or process from a synchronous test: polls a condition until
it holds or a deadline passes. The one place an integration test sleeps in real time
(unit tests run on trio's MockClock and never do)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

POLL_SEC = 0.25


def wait_until(condition: Callable[[], T], seconds: float, failure: str) -> T:
    """Returns the first truthy value of ``condition()``, asked every ``POLL_SEC``; fails
    the test with ``failure`` if none came within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() >= deadline:
            pytest.fail(failure)
        time.sleep(POLL_SEC)
