"""systemd integration: ``sd_notify`` messages over ``$NOTIFY_SOCKET``.

``Notifier`` sends ``READY=1``, ``STOPPING=1``, ``STATUS=...`` and ``WATCHDOG=1``
datagrams to the socket systemd names in the environment (a path, or an abstract
socket when it starts with ``@``). Without ``NOTIFY_SOCKET`` every call does nothing, so
the daemon runs the same outside systemd. ``watchdog_interval`` is how often to ping:
half of ``$WATCHDOG_USEC``, as systemd recommends.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from nvr.base.time90k import Duration

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET")
        self._address: str | bytes | None = None
        if path:
            self._address = "\0" + path[1:] if path.startswith("@") else path
        self.watchdog_interval: Duration | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID")
        if usec.isdigit() and int(usec) > 0 and (pid is None or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) * 9 // 200  # µs -> 90k units, halved

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *states: str) -> None:
        if self._address is None:
            return
        message = "\n".join(states).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto(message, self._address)
        except OSError as e:
            log.warning("could not notify systemd (%s): %s", states[0], e)
