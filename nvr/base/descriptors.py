"""File descriptors: the process's limit, and the share recording keeps for itself.

Every open file, socket, pipe and epoll handle is a descriptor, and the process may hold
``RLIMIT_NOFILE`` of them. Recording needs a few per stream (the sample file being
written, the camera's RTSP sockets, the syncer's fsync of a finished file) and a few for
the daemon itself (the database and its WAL, each sample-file directory, the event loop,
logging); HTTP needs one per connection, and a second while a response reads a sample
file. ``DescriptorBudget`` says how many HTTP connections fit beside recording's
reserve; the web server (``nvr.web.server``) stops accepting at that number, so a flood
of clients can never make the recorder fail to open a sample file.

Here: raising the soft limit and the reserve's arithmetic. Not here: who counts open
connections (``nvr.web.server``).
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: the daemon's own descriptors whatever it records: stdio, the database (file, WAL,
#: shared memory, lock), the event loop (epoll, wake-up pipe), the systemd socket,
#: listening sockets, libraries opening files; with margin
BASE_RESERVE = 64
#: per recorded stream: the sample file being written and the previous one being
#: synced, the RTSP connection (TCP, or RTP/RTCP over UDP) and one being reopened, and
#: what FFmpeg opens around them; with margin
PER_STREAM_RESERVE = 8
#: per sample-file directory: its descriptor, its meta file, trash, a file being fsynced
PER_DIR_RESERVE = 4
#: what one HTTP connection may hold: its socket, and a sample file it is serving
PER_HTTP_CONNECTION = 2


def raise_soft_limit() -> int:
    """Raises the soft ``RLIMIT_NOFILE`` to the hard limit (where the system allows);
    returns the soft limit then in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, e)
    return soft


@dataclass(frozen=True, slots=True)
class DescriptorBudget:
    """How the process's descriptors are shared between recording and HTTP."""

    #: the soft ``RLIMIT_NOFILE``
    limit: int
    #: kept for recording and the daemon itself
    reserve: int

    @classmethod
    def for_recording(cls, limit: int, *, streams: int, dirs: int) -> DescriptorBudget:
        return cls(limit, BASE_RESERVE + PER_STREAM_RESERVE * streams + PER_DIR_RESERVE * dirs)

    @property
    def http_connections(self) -> int:
        """Open HTTP connections, on all binds together, that fit beside the reserve
        (at least one: a daemon without any spare descriptor still answers, slowly)."""
        return max(1, (self.limit - self.reserve) // PER_HTTP_CONNECTION)
