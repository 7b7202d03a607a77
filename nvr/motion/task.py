"""The motion analysis task: one per camera with motion on, in the daemon's ingest
nursery beside its streamers (``start_motion`` is what the daemon calls).

It subscribes to the analysed stream's frames in the frame hub (``nvr.ingest.hub``,
``live=False``): frames the streamer has already written, each tagged with its recording
and media time. So analysis never delays recording: the streamer's ``publish`` only
appends to a bounded queue. When analysis falls behind (a slow worker, a loaded
machine), the queue overflows, the hub drops what is queued and resumes at the next key
frame; the dropped frames are counted (``MotionCounters.skipped``, in ``/metrics``) and
memory stays bounded by ``MotionOptions.queue_frames``/``queue_bytes``.

Per batch from the hub, one worker-thread call (``run_blocking``, under the motion
limiter) decodes every frame (``nvr.motion.decode``) and analyses one picture per
``1 / fps`` of media time (``nvr.motion.detector``). Back on the trio thread each
analysed picture goes into its recording's summary (``nvr.motion.summary``) and into the
on/off logic (``nvr.motion.events``) that writes the camera's motion signal. When the
frames move on to the next recording the previous one's summary is handed to ``store``
(``Database.put_motion_summary``: kept until that recording commits).

Cancellation (shutdown, or the camera's motion turned off) stores the summary of the
recording in progress as far as it was analysed and ends a motion event at its last
still picture. A crash loses at most the summaries of recordings not yet committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.db.raw import composite_id
from nvr.db.raw_motion import MotionRow
from nvr.db.recording import VideoSampleEntry
from nvr.ingest.hub import FrameHub, LiveFrame
from nvr.motion.decode import LumaDecoder
from nvr.motion.detector import DEFAULT_SENSITIVITY, Analysis, Detector
from nvr.motion.events import EventOptions, MotionEvents, SignalWrite
from nvr.motion.summary import MotionSummary, SummaryBuilder

log = logging.getLogger(__name__)

UNITS_PER_SEC = 90_000
#: the recording a frame belongs to: (open id, recording id)
RecordingKey = tuple[int, int]


@dataclass(frozen=True, slots=True)
class MotionOptions:
    fps: float = 5.0
    sensitivity: int = DEFAULT_SENSITIVITY
    mask: frozenset[int] = frozenset()
    events: EventOptions = field(default_factory=EventOptions)
    #: the hub queue: frames (10 s at 30 fps) and bytes
    queue_frames: int = 300
    queue_bytes: int = 8 << 20


@dataclass(slots=True)
class MotionCounters:
    frames: int = 0  # decoded
    pictures: int = 0  # analysed
    skipped: int = 0  # dropped because analysis fell behind
    decode_errors: int = 0
    summaries: int = 0  # handed to ``store``
    events: int = 0  # motion events ended


@dataclass(slots=True)
class _Current:
    key: RecordingKey
    cid: int
    builder: SummaryBuilder = field(default_factory=SummaryBuilder)


class MotionAnalyzer:
    """One camera's analysis of one stream; see the module docstring."""

    def __init__(
        self,
        *,
        stream_id: int,
        hub: FrameHub,
        store: Callable[[int, MotionRow], object],
        signal: SignalWrite | None,
        options: MotionOptions,
        limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.counters = MotionCounters()
        self._hub = hub
        self._store = store
        self._opts = options
        self._limiter = limiter
        self._interval = round(UNITS_PER_SEC / options.fps)
        self._detector = Detector(options.sensitivity, options.mask)
        self._events = MotionEvents(signal or _no_signal, options.events)
        self._decoder: LumaDecoder | None = None
        self._current: _Current | None = None
        self._next_due = 0
        self._last_time = 0
        self._starts: dict[RecordingKey, int] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Runs until cancelled (see the module docstring)."""
        with self._hub.subscribe(
            self.stream_id, live=False, max_frames=self._opts.queue_frames,
            max_bytes=self._opts.queue_bytes,
        ) as sub:
            task_status.started()
            try:
                while True:
                    dropped, frames = await sub.get()
                    if dropped:
                        self.counters.skipped += dropped
                        if self._current is not None:
                            self._current.builder.skipped += dropped
                    await self._process(frames)
            finally:
                self._finish_recording()
                self._events.close(self._last_time)
                self.counters.events = len(self._events.events)

    async def _process(self, frames: list[LiveFrame]) -> None:
        while frames:
            entry = frames[0].recording.sample_entry
            n = 1
            while n < len(frames) and _same_entry(frames[n].recording.sample_entry, entry):
                n += 1
            await self._process_entry(frames[:n], entry)
            frames = frames[n:]

    async def _process_entry(self, frames: list[LiveFrame], entry: VideoSampleEntry) -> None:
        if self._decoder is None or not _same_entry(self._decoder.entry, entry):
            try:
                self._decoder = LumaDecoder(entry)
            except errors.NvrError as e:
                log.warning("stream %d: motion analysis skips frames: %s", self.stream_id, e)
                self._decoder = None
                self.counters.skipped += len(frames)
                return
        items: list[tuple[bytes, bool]] = []
        times: list[int] = []
        for f in frames:
            t = self._start_of(f) + f.media_start
            analyse = t >= self._next_due
            if analyse:
                # on a fixed grid of due times (exact pace despite timestamp jitter), unless
                # the stream jumped (a new run, dropped frames): then from this picture on
                behind = t - self._next_due < self._interval
                self._next_due = (self._next_due if behind else t) + self._interval
            items.append((bytes(f.data), analyse))
            times.append(t)
        errors_before = self._decoder.errors
        results = await run_blocking(self._work, self._decoder, items, limiter=self._limiter)
        self.counters.decode_errors += self._decoder.errors - errors_before
        self.counters.frames += len(frames)
        for f, t, analysis in zip(frames, times, results, strict=True):
            self._enter_recording(f)
            if analysis is None:
                continue
            self.counters.pictures += 1
            assert self._current is not None
            self._current.builder.add(f.media_start, analysis)
            self._events.feed(t, analysis.motion, analysis.global_change)
            self._last_time = t
        self.counters.events = len(self._events.events)

    def _work(self, decoder: LumaDecoder, items: list[tuple[bytes, bool]]) -> list[Analysis | None]:
        """In a worker thread: decode everything, analyse the pictures asked for."""
        return [
            None if luma is None else self._detector.analyse(luma)
            for luma in decoder.decode(items)
        ]

    def _start_of(self, f: LiveFrame) -> int:
        """The recording's start as its first frame seen here said (the writer may refine
        it a little while it grows; pinned, media times within a recording stay exact)."""
        key = (f.recording.open_id, f.recording.recording_id)
        start = self._starts.get(key)
        if start is None:
            while len(self._starts) >= 4:
                del self._starts[next(iter(self._starts))]
            start = self._starts[key] = f.recording.start_time_90k
        return start

    def _enter_recording(self, f: LiveFrame) -> None:
        key = (f.recording.open_id, f.recording.recording_id)
        if self._current is not None and self._current.key == key:
            return
        self._finish_recording()
        self._current = _Current(key, composite_id(self.stream_id, f.recording.recording_id))

    def _finish_recording(self) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        summary = current.builder.finish()
        self._store(current.cid, to_row(summary))
        self.counters.summaries += 1


def to_row(s: MotionSummary) -> MotionRow:
    return MotionRow(s.cells, s.entries, s.global_seconds, s.motion_seconds, s.frames, s.skipped)


def _same_entry(a: VideoSampleEntry, b: VideoSampleEntry) -> bool:
    return a is b or a == b


def _no_signal(state: int, start: int, end: int) -> None:
    pass


async def start_motion(
    nursery: trio.Nursery,
    *,
    stream_id: int,
    hub: FrameHub,
    store: Callable[[int, MotionRow], object],
    signal: SignalWrite | None,
    options: MotionOptions,
    limiter: trio.CapacityLimiter | None = None,
) -> MotionAnalyzer:
    """Starts one camera's analysis in ``nursery`` (subscribed before this returns, so
    no frame written afterwards is missed) and returns it (for metrics)."""
    analyzer = MotionAnalyzer(
        stream_id=stream_id, hub=hub, store=store, signal=signal, options=options,
        limiter=limiter,
    )
    await nursery.start(analyzer.run)
    return analyzer
