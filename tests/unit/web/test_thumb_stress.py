"""Part-way frame-threaded thumbnail decoders are freed without hanging: evicted, cancelled
and closed at shutdown many times, on real worker threads (``tests/support/thumb_stress.py``,
in a child process under a timeout: such a hang holds the GIL, so nothing in this process
could notice it). Before the fix (frame threads, packets made straight from Python bytes,
decoders let go of on the trio thread) the child hung in its first part, every time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import FIXTURES

ROOT = FIXTURES.parent
#: the child takes a few seconds on a loaded machine; this only bounds a hang
TIMEOUT_SEC = 120


def test_part_way_decoders_are_dropped_many_times_without_hanging(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.support.thumb_stress", str(tmp_path), "40"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_SEC)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"hung: no answer in {TIMEOUT_SEC} s\n{e.stderr!r}") from None
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert [x.split(":")[0] for x in lines] == ["dropped", "decoders", "app"], done.stdout
    assert lines[0] == "dropped: 20 decoders"
    assert lines[1].startswith("decoders: 40 renders"), lines
    assert lines[2].startswith("app: 20 requests, 20 renders"), lines
