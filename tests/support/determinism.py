"""What keeps unit tests deterministic: the suite's epoch and the inline thread seam.

``T0`` is the wall time every simulated clock of the suite starts at, on a minute
boundary so rotations line up. ``inline_seam`` (a fixture, registered in
``tests/conftest.py``: request it with ``pytest.mark.usefixtures("inline_seam")``) runs
``nvr.base.blocking.run_blocking`` on the trio thread for the test and every task it
spawns, so a ``MockClock`` with ``autojump_threshold=0`` never mistakes a worker thread
for idleness (docs/design.md, "Time"). ``run_inline`` is the same for code that takes its
runner as an argument or where a module's ``run_blocking`` is patched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from nvr.base.blocking import inline_blocking
from nvr.base.time90k import UNITS_PER_SEC

T = TypeVar("T")

#: 2023-11-14T22:14:00Z (90 kHz units)
T0 = 1_700_000_040 * UNITS_PER_SEC


@pytest.fixture
def inline_seam() -> Iterator[None]:
    """``run_blocking`` runs inline for the test (and tasks spawned from it)."""
    with inline_blocking():
        yield


async def run_inline(fn: Callable[..., T], *args: object, **_kw: object) -> T:
    """A ``run_blocking`` that calls ``fn`` on the trio thread."""
    return fn(*args)
