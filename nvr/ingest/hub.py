"""The frame hub: frames straight from ingest to live viewers, never through the database.

Each streamer publishes the frames it has just written (so each belongs to a known
recording) as ``LiveFrame``s; each live viewer (a WebSocket of ``nvr.web.live``) holds
a ``Subscription`` to one stream. A subscription

- starts at the next key frame (a viewer cannot decode from anywhere else);
- never takes a frame its ``skip`` predicate refuses (a live viewer's: frames inside a
  redaction, ``nvr.web.live``), and resumes at the next key frame it accepts;
- holds at most ``max_frames`` frames and ``max_bytes`` bytes for a viewer that reads
  slower than the camera sends. Past that it drops everything queued, counts what it
  dropped, and resumes at the next key frame; the viewer learns the count from ``get``.
  Frame payloads are shared ``bytes`` objects, so a viewer costs its queue, not a copy.

When a stream's session ends (the camera failed), ``session_ended`` tells its viewers
why at once (``Subscription.take_ended`` after ``get``), so a live tile says "offline"
instead of showing a frozen frame; the subscription stays, and the first frames of the
next session follow on it (from a key frame: a run starts at one).

``subscribers(stream_id)`` tells the streamer whether to publish at all, ``viewers``
whether a live viewer is watching, so it asks its source for per-frame batches (low
latency) only while one is. Motion analysis (``nvr.motion.task``) subscribes with
``live=False``: it wants every frame, in batches, and never lowers the latency. Everything here runs
on the trio thread; ``publish`` never blocks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import trio

from nvr.base.time90k import Duration, Time
from nvr.codec.nal import FrameBytes
from nvr.db.recording import VideoSampleEntry


@dataclass(frozen=True, slots=True)
class LiveRecording:
    """The recording live frames belong to, as it was when they were published (its start
    time may still move while it grows: the writer refines it)."""

    open_id: int
    recording_id: int
    start_time_90k: Time
    prev_media_duration_90k: Duration
    prev_runs: int
    video_sample_entry_id: int
    sample_entry: VideoSampleEntry


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One frame. ``media_start`` is its media time within the recording; ``duration``
    is the time to the next frame, which is not known yet for the newest frame: that one
    carries the previous frame interval as an estimate (waiting for the next frame would
    add a frame interval of latency)."""

    data: FrameBytes
    is_key: bool
    media_start: Duration
    duration: Duration
    recording: LiveRecording
    #: ``instrumentation_stamp()`` when the source read the frame (``Packet.received``)
    received: float = 0.0


class Subscription:
    """One viewer's queue of one stream's frames (see the module docstring)."""

    def __init__(self, stream_id: int, max_frames: int, max_bytes: int,
                 skip: Callable[[LiveFrame], bool] | None = None) -> None:
        self.stream_id = stream_id
        self._skip = skip
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._queue: deque[LiveFrame] = deque()
        self._bytes = 0
        self._dropped = 0
        self._wait_for_key = True
        self._after_drop = False  # waiting for a key frame because frames were dropped
        self._ended: str | None = None  # why the stream's session ended, not yet taken
        self._ready = trio.Event()

    def _offer(self, frame: LiveFrame) -> None:
        if self._skip is not None and self._skip(frame):
            self._wait_for_key = True  # resume at the first key frame not skipped
            return
        if self._wait_for_key:
            if not frame.is_key:
                self._dropped += self._after_drop
                return
            self._wait_for_key = self._after_drop = False
        if len(self._queue) >= self._max_frames or self._bytes + len(frame.data) > self._max_bytes:
            self._dropped += len(self._queue) + 1
            self._queue.clear()
            self._bytes = 0
            self._wait_for_key = self._after_drop = True
            self._ready.set()  # so the viewer hears about the drop now
            return
        self._queue.append(frame)
        self._bytes += len(frame.data)
        self._ready.set()

    async def get(self) -> tuple[int, list[LiveFrame]]:
        """Waits for news: (frames dropped since the last call, frames to send now). After
        a drop the frames (if any) start at a key frame."""
        while not self._queue and not self._dropped and self._ended is None:
            self._ready = trio.Event()
            await self._ready.wait()
        dropped, self._dropped = self._dropped, 0
        frames = list(self._queue)
        self._queue.clear()
        self._bytes = 0
        return dropped, frames

    def take_ended(self) -> str | None:
        """Why the stream's session ended since the last call (None: it did not), after
        the frames ``get`` returned (they came before the end)."""
        ended, self._ended = self._ended, None
        return ended

    def _end(self, reason: str) -> None:
        self._ended = reason
        self._wait_for_key = True
        self._ready.set()


class FrameHub:
    """Per-stream sets of subscriptions; see the module docstring."""

    def __init__(self, *, max_frames: int = 150, max_bytes: int = 16 << 20) -> None:
        self._subs: dict[int, set[Subscription]] = {}
        self._live: dict[int, int] = {}
        self._max_frames = max_frames
        self._max_bytes = max_bytes

    def viewers(self, stream_id: int) -> int:
        """Live viewers of the stream (subscriptions with ``live=True``)."""
        return self._live.get(stream_id, 0)

    def subscribers(self, stream_id: int) -> int:
        return len(self._subs.get(stream_id, ()))

    @contextmanager
    def subscribe(
        self,
        stream_id: int,
        *,
        live: bool = True,
        max_frames: int | None = None,
        max_bytes: int | None = None,
        skip: Callable[[LiveFrame], bool] | None = None,
    ) -> Iterator[Subscription]:
        """``skip``: frames this subscriber must never get (a live viewer's: those a
        redaction hides); after one it resumes at the next key frame not skipped."""
        sub = Subscription(
            stream_id, max_frames or self._max_frames, max_bytes or self._max_bytes, skip
        )
        self._subs.setdefault(stream_id, set()).add(sub)
        self._live[stream_id] = self._live.get(stream_id, 0) + live
        try:
            yield sub
        finally:
            subs = self._subs[stream_id]
            subs.discard(sub)
            if not subs:
                del self._subs[stream_id]
            self._live[stream_id] -= live
            if not self._live[stream_id]:
                del self._live[stream_id]

    def session_ended(self, stream_id: int, reason: str) -> None:
        """The stream's camera session ended (it failed): each viewer hears ``reason``."""
        for sub in self._subs.get(stream_id, ()):
            sub._end(reason)

    def publish(self, stream_id: int, frames: Sequence[LiveFrame]) -> None:
        for sub in self._subs.get(stream_id, ()):
            for frame in frames:
                sub._offer(frame)
