"""``nvr run`` as a subprocess for tests that kill it or need its log: started with a
TOML config written from keyword arguments, its output in a file."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from tests.support.paths import REPO

T = TypeVar("T")


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def write_config(path: Path, settings: dict[str, object],
                 tables: dict[str, dict[str, object]] | None = None) -> Path:
    lines = [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    for name, table in (tables or {}).items():
        lines.append(f"[{name}]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


#: what the daemon must not inherit from the test's environment (``JOURNAL_STREAM``: its
#: log lines would lose their timestamps)
_UNSET = ("NVR_DB_DIR", "NVR_DEBUG", "JOURNAL_STREAM")


def _limit_open_files(n: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


class NvrProcess:
    """``python -m nvr --db-dir D run --config F``; output (both streams) in ``log_path``;
    with ``open_files``, under that ``RLIMIT_NOFILE`` (soft and hard)."""

    def __init__(
        self, db_dir: Path, config: Path, log_path: Path, *, open_files: int | None = None
    ) -> None:
        self.log_path = log_path
        self.started = time.monotonic()
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nvr", "--db-dir", str(db_dir), "run",
                 "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={k: v for k, v in os.environ.items() if k not in _UNSET},
                preexec_fn=None if open_files is None else partial(_limit_open_files, open_files),
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_until(self, pred: Callable[[], T | None], timeout: float, what: str) -> T:
        """Polls ``pred`` while the daemon runs; returns its first true value."""
        deadline = time.monotonic() + timeout
        while not (value := pred()):
            assert self.alive(), f"nvr run exited while waiting for {what}:\n{self.log}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s:\n{self.log}"
            time.sleep(0.02)
        return value

    def keeps_running_for(self, seconds: float) -> None:
        """Lets ``seconds`` of real time pass (a camera sending part of a GOP), failing
        at once if the daemon exits meanwhile."""
        try:
            status = self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            return
        raise AssertionError(f"nvr run exited with {status}:\n{self.log}")

    def wait_serving(self) -> str:
        """The base URL of the first HTTP bind, once the log names it."""
        m = self.wait_until(
            lambda: re.search(r"serving HTTP on (http://127\.0\.0\.1:\d+)", self.log),
            timeout=20,
            what="the HTTP port",
        )
        return m[1]

    def signal(self, signum: int) -> float:
        """Sends ``signum``; returns ``time.monotonic()`` just before."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        return sent

    def wait_exit(self, timeout: float) -> tuple[int, float]:
        """(exit status, ``time.monotonic()`` it was seen); kills and fails after
        ``timeout``."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"nvr run did not exit within {timeout} s:\n{self.log}") from None
        return status, time.monotonic()

    def stop(self, signum: int, timeout: float = 10) -> int:
        """Sends ``signum`` and returns the exit status."""
        self.signal(signum)
        return self.wait_exit(timeout)[0]

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        self.kill()
