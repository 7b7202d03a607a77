"""``nvr run`` as systemd starts it: a subprocess with ``NOTIFY_SOCKET`` and
``WATCHDOG_USEC`` in its environment, a real ``AF_UNIX`` datagram socket, real clocks.
No camera is needed: what is checked is the protocol (``READY=1`` once the HTTP port
accepts connections, ``WATCHDOG=1`` every half interval, ``STOPPING=1`` on SIGTERM, exit 0).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from nvr.base.clock import RealClocks
from nvr.db.database import Database
from tests.support.paths import REPO


def test_nvr_run_under_a_notify_socket(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    Database.create(db_dir, RealClocks().realtime())
    (tmp_path / "nvr.toml").write_text('[[binds]]\naddress = "127.0.0.1:0"\n')
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(10)
    env = {k: v for k, v in os.environ.items() if k not in ("NVR_DB_DIR", "NVR_DEBUG")}
    env |= {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"}
    log_path = tmp_path / "run.log"
    with notify, open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nvr", "--db-dir", str(db_dir), "run",
             "--config", str(tmp_path / "nvr.toml")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
        )
        try:
            messages: list[tuple[float, str]] = []
            bound_at_ready = None
            while len([m for _, m in messages if m == "WATCHDOG=1"]) < 4:
                data = notify.recv(4096).decode()
                messages.append((time.monotonic(), data))
                if data.startswith("READY=1"):
                    # the port it logged having bound accepts connections by now
                    text = log_path.read_text()
                    found = re.search(r"serving HTTP on http://127.0.0.1:(\d+)", text)
                    assert found, text
                    with socket.create_connection(("127.0.0.1", int(found[1])), timeout=1):
                        bound_at_ready = True
            proc.send_signal(signal.SIGTERM)
            while True:
                data = notify.recv(4096).decode()
                messages.append((time.monotonic(), data))
                if data == "STOPPING=1":
                    break
            status = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log_path.read_text()
    assert status == 0, output
    assert bound_at_ready, output
    kinds = [m.split("\n")[0] for _, m in messages]
    assert kinds.count("READY=1") == 1 and kinds[-1] == "STOPPING=1"
    pings = [t for t, m in messages if m == "WATCHDOG=1"]
    # every 0.5 s (real time: a generous margin for a loaded machine)
    assert all(0.3 < b - a < 1.5 for a, b in itertools.pairwise(pings)), pings
    assert "ERROR" not in output and "Traceback" not in output, output
