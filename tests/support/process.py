"""``nvr run`` as a subprocess for tests that kill it or need its log: started with a
TOML config written from keyword arguments, its output in a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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


class NvrProcess:
    """``python -m nvr --db-dir D run --config F``; output (both streams) in ``log_path``."""

    def __init__(self, db_dir: Path, config: Path, log_path: Path) -> None:
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
                env={k: v for k, v in os.environ.items() if k not in ("NVR_DB_DIR", "NVR_DEBUG")},
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_until(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            assert self.alive(), f"nvr run exited while waiting for {what}:\n{self.log}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s:\n{self.log}"
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        self.kill()
