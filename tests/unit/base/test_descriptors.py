"""``nvr.base.descriptors``: raising the soft open-files limit (in a child process, so the
test's own limit is left alone) and the reserve's arithmetic."""

from __future__ import annotations

import resource
import subprocess
import sys

from nvr.base.descriptors import DescriptorBudget


def _limit_to(soft: int, hard: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def raised(soft: int, hard: int) -> str:
    return subprocess.run(
        [sys.executable, "-c",
         "import resource; from nvr.base.descriptors import raise_soft_limit; "
         "print(raise_soft_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"],
        preexec_fn=lambda: _limit_to(soft, hard),
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()


def test_soft_limit_is_raised_to_the_hard_one() -> None:
    assert raised(100, 300) == "300 300"
    assert raised(256, 256) == "256 256"


def test_http_gets_what_the_reserve_leaves() -> None:
    budget = DescriptorBudget.for_recording(1024, streams=10, dirs=2)
    assert budget.reserve == 64 + 8 * 10 + 4 * 2
    assert budget.http_connections == (1024 - budget.reserve) // 2
    assert DescriptorBudget(100, 200).http_connections == 1  # still answers, one at a time
