"""Read coalescing: when a camera's reader thread should pause so frames gather.

A reader that keeps up with a live camera blocks in FFmpeg for every burst of RTP
packets: at 30 fps that is dozens of wake-ups a second per camera, and with tens of
cameras each wake-up also fights for the GIL. Those wake-ups, not the bytes, are most of
what recording costs (``tests/bench/bench_record.py`` prints context switches per
frame). So once the reader has caught up with the camera it pauses for a short while
(``pause``, 150 ms by default) and lets the kernel's socket buffer gather the next frames,
then reads them back to back without blocking.

``ReadCoalescer`` decides, frame by frame, whether the reader is at the live edge. A live
camera sends frames at the rate of their timestamps, so ``arrival - pts`` is constant for
frames read as soon as they arrive and larger for frames that waited. The smallest such
offset seen is the live edge; a frame read within ``edge_slack`` (50 ms, a frame or two)
of it was read as soon as it arrived (``at_edge``; shutdown uses it too: it reads on until
then, so the frames waiting in the socket are recorded). A reader that falls behind (a
busy machine) therefore stops pausing until it has caught up: pausing never adds to a
backlog. The edge creeps later by ``creep`` (1 ms per second) so a camera clock that runs
slow against ours (an offset that grows forever) does not stop the pauses for good.

Only RTSP over TCP readers pause: the kernel holds what arrives meanwhile (about 75 KB
for a 4 Mbit/s camera) and TCP's flow control makes the camera wait should it not; over
UDP a full socket buffer drops packets, so those readers never pause.

Only the reader thread uses this, with ``nvr.base.clock.io_monotonic`` times: it paces a
real socket, which a mock clock could not drive. Live viewers and shutdown interrupt the
pause (``nvr.ingest.demuxer``); the worst added latency to recording is one pause.
"""

from __future__ import annotations

#: how long a caught-up reader lets frames gather, in seconds
DEFAULT_PAUSE = 0.15
#: how fast the live edge creeps later, in seconds per second
DEFAULT_CREEP = 0.001
#: a frame read this close to the live edge counts as read as soon as it arrived
DEFAULT_EDGE_SLACK = 0.05


class ReadCoalescer:
    """See the module docstring. Times are in seconds."""

    def __init__(
        self,
        pause: float = DEFAULT_PAUSE,
        *,
        creep: float = DEFAULT_CREEP,
        edge_slack: float = DEFAULT_EDGE_SLACK,
    ) -> None:
        self.pause = pause
        self._creep = creep
        self._slack = edge_slack
        self._edge: float | None = None  # smallest arrival - media time seen (crept)
        self._edge_at = 0.0  # arrival time the edge was last updated at
        #: whether the last frame was read at the live edge (the reader sets it false after
        #: a pause: frames arrived meanwhile)
        self.at_edge = True

    def pause_after(self, arrival: float, media_time: float) -> float:
        """How long to pause after reading a frame of ``media_time`` at ``arrival``
        (0: read on); updates ``at_edge``."""
        offset = arrival - media_time
        if self._edge is not None:
            self._edge += self._creep * max(0.0, arrival - self._edge_at)
        if self._edge is None or offset < self._edge:
            self._edge = offset
        self._edge_at = arrival
        self.at_edge = offset - self._edge <= self._slack
        return self.pause if self.at_edge else 0.0
