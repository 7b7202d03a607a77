"""The streamer: one task per recorded stream (docs/design.md, "Recording, syncing and retention").

Loop: connect (``Opener.open``), read batches of frames, write them into recordings,
and when the session ends, back off (exponential from 1 s, capped at 10 s, with jitter)
and connect again. A session that recorded frames resets the backoff: a camera that drops
is retried after a second, and one that comes back after a long outage is found within
about ``max_backoff``.

Within a session:
- a run starts at a key frame; frames before it are dropped (counted);
- a recording rotates at the first key frame at or after its rotation boundary.
  Boundaries are on the local wall clock every ``rotate_interval``, offset per stream so
  streams do not all rotate (and flush) at once. A run's first recording skips the
  boundary closer than ``rotate_interval`` to its start (so it lasts up to twice the
  interval); later recordings end at the next boundary;
- a changed sample entry (new resolution or parameters) starts a new recording of the
  same run at that frame (it is a key frame; if not, frames are dropped until one is);
- timestamps that go backwards, repeat, or jump ahead by more than ``max_pts_jump``
  end the run (last frame: trailing zero) and start a new one on the same session;
- a recording that would reach 5 minutes (no key frame to rotate at) is closed at the
  limit and the session is dropped and retried;
- end of stream, a stall (no batch for ``read_timeout`` plus a margin), or an error from
  the source or the writer ends the session.

Connecting has a deadline too (``OpenOptions.connect_timeout``): a camera that trickles its
handshake (or says nothing) gets a timeout as its session's end, like any other, and the
streamer backs off and retries; it never stays ``connecting`` longer than that (the
liveness rule relies on it: docs/design.md,
"Recording, syncing and retention", Liveness).

Logging names the stream by its camera and type (``driveway main``, ``Streamer.name``),
never by its URL. The first failed session after recording (or at start) is a WARNING,
the ones that follow while the stream keeps failing at most once a minute (with a count);
the first frames recorded after a failure log a WARNING that the stream records again. A
write failure (the disk: full, failing) is the recorder's own problem, logged as a
WARNING at most once a minute per stream.

When a session ends its open recording is closed (trailing zero) and handed to the
syncer in a shielded ``finally``, time-bounded on cancellation (shutdown); on shutdown
the frames the source received but had not yet handed over (``Source.drain``) are
written first, so every frame received up to the signal is recorded. ``state`` (a
trio-util ``AsyncValue``) says what the stream is doing; ``counters`` count frames,
bytes, recordings, drops and reconnects.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Literal

import trio
import trio_util

from nvr.base import errors
from nvr.base.clock import Clocks
from nvr.base.log_limit import RateLimitedLog
from nvr.base.time90k import UNITS_PER_SEC, Duration, Time, format_duration
from nvr.db.database import Database
from nvr.db.recording import VideoSampleEntry
from nvr.ingest.hub import FrameHub, LiveFrame, LiveRecording
from nvr.ingest.source import Opener, OpenOptions, Packet, Source, scrub_userinfo
from nvr.storage.dir import SampleFileDir
from nvr.storage.writer import RecordingSink, RecordingTooLong, RecordingWriter, Run

log = logging.getLogger(__name__)

StateKind = Literal["idle", "connecting", "recording", "backoff"]


@dataclass(frozen=True, slots=True)
class StreamState:
    kind: StateKind
    since: Time  # wall time this state began
    last_error: str | None = None  # why the last session ended (None: never failed)
    next_try: Time | None = None  # in backoff: when the next connection attempt is due


@dataclass(slots=True)
class StreamCounters:
    frames: int = 0
    bytes: int = 0
    recordings: int = 0
    frames_dropped: int = 0  # before a run's first key frame or while waiting for one
    sessions: int = 0
    disconnects: dict[str, int] = field(default_factory=dict)  # reason kind -> count

    def count_disconnect(self, reason: str) -> None:
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class StreamerOptions:
    rotate_interval: Duration = 60 * UNITS_PER_SEC
    #: where this stream's boundaries fall within the interval (see ``rotate_offset_for``)
    rotate_offset: Duration = 0
    initial_backoff: Duration = UNITS_PER_SEC
    #: a camera that is down is retried this often at least (a connection attempt is
    #: cheap; a camera back online should reappear within seconds)
    max_backoff: Duration = 10 * UNITS_PER_SEC
    #: backoff is multiplied by a random factor in [1 - jitter, 1 + jitter]
    jitter: float = 0.2
    max_pts_jump: Duration = 5 * UNITS_PER_SEC
    #: a camera silent this long is disconnected (the source's timeout; the streamer
    #: adds a margin of its own on top)
    read_timeout: Duration = 10 * UNITS_PER_SEC
    #: connecting may take this long (the default ``OpenOptions``' ``connect_timeout``)
    connect_timeout: Duration = 20 * UNITS_PER_SEC
    #: the open recording is closed within this long of cancellation
    close_timeout: Duration = 5 * UNITS_PER_SEC
    #: on cancellation, how long to wait for the frame being received (``Source.drain``)
    drain_timeout: Duration = UNITS_PER_SEC // 4


#: how much longer than the source's read timeout the streamer waits for a batch before it
#: ends the session as stalled (the source should have given up first)
STALL_MARGIN: Duration = 5 * UNITS_PER_SEC


def rotate_offset_for(stream_id: int, interval: Duration) -> Duration:
    """Spreads streams' rotation boundaries over the interval (golden-ratio steps), at
    whole-second positions."""
    seconds = interval // UNITS_PER_SEC
    if seconds <= 1:
        return 0
    return (stream_id * 37) % seconds * UNITS_PER_SEC


class SessionEnded(Exception):
    """The session is over for a reason worth a reconnect (carried in ``reason``);
    ``by_recorder``: the recorder's own failure (a write), not the camera's."""

    def __init__(self, kind: str, reason: str, *, by_recorder: bool = False) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.by_recorder = by_recorder


class Streamer:
    """Records one stream until cancelled. See the module docstring."""

    def __init__(
        self,
        *,
        db: Database,
        stream_id: int,
        sdir: SampleFileDir,
        sink: RecordingSink,
        opener: Opener,
        clocks: Clocks,
        options: StreamerOptions | None = None,
        open_options: OpenOptions | None = None,
        hub: FrameHub | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self.stream_id = stream_id
        self._sdir = sdir
        self._sink = sink
        self._opener = opener
        self._clocks = clocks
        self._opts = options or StreamerOptions()
        self._open_opts = open_options or self._default_open_options()
        self._hub = hub
        self._live_prev_pts: int | None = None  # the run's last frame written (live durations)
        self._rng = rng or random.Random(stream_id)
        self.state = trio_util.AsyncValue(StreamState("idle", clocks.realtime()))
        self.counters = StreamCounters()
        self._writer: RecordingWriter | None = None
        self._entry: VideoSampleEntry | None = None
        self._entry_id = 0
        self._run = Run()
        self._prev_pts: int | None = None
        self._rotate_at: Time = 0
        self._log_write_failure = RateLimitedLog(clocks, log)
        #: the end reason of the recording open when the streamer is cancelled: the
        #: daemon sets ``"reconfigured"`` before it cancels a camera whose settings changed
        self.stop_reason = "shutdown"
        #: while failing: the failures' log (one line a minute) and when they began
        self._log_failure = RateLimitedLog(clocks, log)
        self._failing_since: Time | None = None
        self._failed_sessions = 0
        self._session_recorded = False  # the current session wrote frames

    def _default_open_options(self) -> OpenOptions:
        stream = self._db.streams[self.stream_id]
        cam = self._db.cameras[stream.camera_id].config
        # A file "camera" (the demo, replays) plays in real time, over and over.
        is_file = not stream.config.url.lower().startswith(("rtsp://", "rtsps://"))
        return OpenOptions(
            username=cam.username,
            password=cam.password,
            rtsp_transport=stream.config.rtsp_transport,
            read_timeout=self._opts.read_timeout,
            connect_timeout=self._opts.connect_timeout,
            realtime=is_file,
            loop=is_file,
        )

    @property
    def url(self) -> str:
        return self._db.streams[self.stream_id].config.url

    @property
    def name(self) -> str:
        """The stream in logs: its camera's short name and its type (``driveway main``)."""
        stream = self._db.streams[self.stream_id]
        return f"{self._db.cameras[stream.camera_id].short_name} {stream.type}"

    @property
    def _log_url(self) -> str:
        """The URL without credentials, for logs and errors."""
        return scrub_userinfo(self.url, self._open_opts.password)

    def _set_state(self, kind: StateKind, *, next_try: Time | None = None) -> None:
        prev = self.state.value
        self.state.value = StreamState(kind, self._clocks.realtime(), prev.last_error, next_try)

    # -- the session loop ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Records the stream until cancelled; never returns. Each session connects and
        records until it ends, then the streamer backs off and connects again.

        ``task_status.started()`` comes once the first connection attempt has begun (state
        ``connecting``): a caller that starts streamers with ``nursery.start`` knows each
        one is then connecting or further.

        Cancellation (shutdown, or the daemon restarting the camera: end reason
        ``stop_reason``) while recording writes the frames the source received but
        had not handed over, closes the open recording (trailing zero) and hands it to the
        syncer, within ``close_timeout``; while connecting or backing off it just stops.
        Either way the state ends ``idle``."""
        failures = 0
        try:
            self._set_state("connecting")
            task_status.started()
            while True:
                self._session_recorded = False
                error = await self._one_session()
                if self._session_recorded:
                    failures = 0
                failures += 1
                prev = self.state.value
                self.state.value = StreamState(prev.kind, prev.since, error, prev.next_try)
                await self._backoff(failures)
                self._set_state("connecting")
        finally:
            self._set_state("idle")

    async def _backoff(self, failures: int) -> None:
        o = self._opts
        base = min(o.initial_backoff << min(failures - 1, 30), o.max_backoff)
        delay = round(base * (1 + o.jitter * (2 * self._rng.random() - 1)))
        self._set_state("backoff", next_try=self._clocks.realtime() + delay)
        await self._clocks.sleep(delay)

    async def _one_session(self) -> str:
        """Connects and records until the session ends; returns why it ended."""
        self.counters.sessions += 1
        timeout = self._open_opts.connect_timeout
        source: Source | None = None
        try:
            with trio.move_on_at(self._clocks.deadline_after(timeout)):
                source = await self._opener.open(self.url, self._open_opts)
        except errors.NvrError as e:
            return self._ended("open failed", f"{type(e).__name__}: {e}")
        if source is None:
            return self._ended(
                "connect timeout",
                f"Unavailable: {self._log_url}: timed out: no complete answer within "
                f"{format_duration(timeout)} of connecting",
            )
        cancelled, reason = True, "shutdown"
        try:
            self._set_state("recording")
            await self._read_session(source)
        except SessionEnded as e:
            cancelled, reason = False, e.reason
            return self._ended(e.kind, e.reason, by_recorder=e.by_recorder)
        except errors.NvrError as e:
            cancelled, reason = False, f"{type(e).__name__}: {e}"
            return self._ended(type(e).__name__, reason)
        finally:
            # Shielded: the open recording must reach the syncer. On shutdown only for a
            # bounded time; otherwise (e.g. a full syncer queue) for as long as it takes.
            with trio.CancelScope(shield=True) as scope:
                if cancelled:
                    reason = self.stop_reason
                    scope.deadline = self._clocks.deadline_after(self._opts.close_timeout)
                    await self._write_drained(source)
                await self._end_run(None, reason)
                await source.aclose()
            if scope.cancelled_caught:
                log.error("%s: could not close its recording in time", self.name)
        raise AssertionError("unreachable: _read_session only returns by raising")

    async def _write_drained(self, source: Source) -> None:
        """On shutdown: records the frames the source received but had not handed over."""
        try:
            tail = await source.drain(self._opts.drain_timeout)
            if tail:
                await self._handle_batch(tail, self._clocks.realtime())
        except (SessionEnded, errors.NvrError) as e:
            log.warning("%s: frames received at shutdown lost: %s", self.name, e)

    def _ended(self, kind: str, reason: str, *, by_recorder: bool = False) -> str:
        self.counters.count_disconnect(kind)
        if self._hub is not None:
            self._hub.session_ended(self.stream_id, reason)
        line = f"{self.name}: {reason}"
        self._failed_sessions += 1
        if self._failing_since is None:
            self._failing_since = self._clocks.realtime()
            self._log_failure = RateLimitedLog(self._clocks, log)
        if by_recorder:
            self._log_write_failure(line)
        else:
            self._log_failure(line)
        return reason

    def _recorded(self) -> None:
        """A batch was written: the session is a success (see the module docstring)."""
        self._session_recorded = True
        if self._failing_since is None:
            return
        down = format_duration(self._clocks.realtime() - self._failing_since)
        n = self._failed_sessions
        log.warning(
            "%s: recording again, after %d failed session%s over %s",
            self.name, n, "" if n == 1 else "s", down,
        )
        self._failing_since, self._failed_sessions = None, 0

    async def _read_session(self, source: Source) -> None:
        timeout = self._open_opts.read_timeout + STALL_MARGIN
        self._run = Run()
        self._prev_pts = None
        while True:
            if self._hub is not None:
                source.low_latency = self._hub.viewers(self.stream_id) > 0
            with trio.move_on_at(self._clocks.deadline_after(timeout)) as scope:
                batch = await source.next_batch()
            if scope.cancelled_caught:
                raise SessionEnded("stall", f"no data for {format_duration(timeout)}")
            if not batch:
                raise SessionEnded("eof", "the camera ended the stream")
            await self._handle_batch(batch, self._clocks.realtime())
            if not self._session_recorded and self._writer is not None:
                self._recorded()

    # -- frames ------------------------------------------------------------------------

    async def _handle_batch(self, batch: list[Packet], local: Time) -> None:
        pending: list[Packet] = []  # frames for the current writer, written together
        for pkt in batch:
            self.counters.frames += 1
            self.counters.bytes += len(pkt.data)
            if self._prev_pts is not None and not self._pts_follows(pkt.pts):
                await self._flush_frames(pending, local)
                pending = []
                await self._end_run(None, self._pts_problem(pkt.pts))
            if self._needs_new_recording(pkt, local):
                await self._flush_frames(pending, local)
                pending = []
                await self._rotate(pkt, local)
            if self._writer is None:
                self.counters.frames_dropped += 1
                continue
            pending.append(pkt)
            self._prev_pts = pkt.pts
        await self._flush_frames(pending, local)

    def _pts_follows(self, pts: int) -> bool:
        assert self._prev_pts is not None
        return 0 < pts - self._prev_pts <= self._opts.max_pts_jump

    def _pts_problem(self, pts: int) -> str:
        assert self._prev_pts is not None
        delta = pts - self._prev_pts
        if delta < 0:
            return f"timestamps went backwards by {format_duration(-delta)}"
        if delta == 0:
            return "timestamp repeated"
        return f"timestamps jumped ahead by {format_duration(delta)}"

    def _needs_new_recording(self, pkt: Packet, local: Time) -> bool:
        if self._writer is None:
            return pkt.is_key
        if self._entry_changed(pkt.sample_entry):
            return True  # a key frame or not: the old recording cannot hold it
        return pkt.is_key and local >= self._rotate_at

    def _entry_changed(self, entry: VideoSampleEntry) -> bool:
        if entry is self._entry:
            return False
        if entry == self._entry:
            self._entry = entry  # the same parameters in a new object: adopt it
            return False
        return True

    async def _rotate(self, pkt: Packet, local: Time) -> None:
        """Closes the current recording (at ``pkt``) and, if ``pkt`` is a key frame, opens
        the next one with it."""
        if self._writer is not None:
            await self._close_writer(pkt.pts, None)
        if not pkt.is_key:
            return  # a new sample entry without a key frame: wait for one
        if self._entry_changed(pkt.sample_entry):
            self._entry_id = self._db.insert_video_sample_entry(pkt.sample_entry)
            self._entry = pkt.sample_entry
        first_of_run = self._run.recordings == 0
        self._rotate_at = self._next_boundary(local, skip_close=first_of_run)
        self._writer = RecordingWriter(
            db=self._db,
            sdir=self._sdir,
            sink=self._sink,
            stream_id=self.stream_id,
            run=self._run,
            video_sample_entry_id=self._entry_id,
        )

    def _next_boundary(self, local: Time, *, skip_close: bool) -> Time:
        interval, offset = self._opts.rotate_interval, self._opts.rotate_offset
        earliest = local + interval if skip_close else local + 1
        k = -(-(earliest - offset) // interval)  # ceiling division
        return offset + k * interval

    async def _flush_frames(self, frames: list[Packet], local: Time) -> None:
        if not frames:
            return
        assert self._writer is not None
        try:
            await self._writer.write(frames, local)
        except RecordingTooLong as e:
            await self._close_writer(e.next_pts, str(e))
            raise SessionEnded("too long", str(e)) from None
        except errors.NvrError as e:
            await self._close_writer(None, f"write failed: {e}")
            kind = type(e).__name__
            raise SessionEnded(kind, f"{kind}: {e}", by_recorder=True) from None
        prev, self._live_prev_pts = self._live_prev_pts, frames[-1].pts
        if self._hub is not None and self._hub.subscribers(self.stream_id):
            self._publish_live(self._writer, frames, prev)

    def _publish_live(
        self, writer: RecordingWriter, frames: list[Packet], prev: int | None
    ) -> None:
        """Hands frames just written to live viewers (see ``nvr.ingest.hub``); ``prev``
        is the pts of the frame written before them in this run, if any."""
        assert self._hub is not None and writer.rec is not None
        rec = writer.rec
        info = LiveRecording(
            open_id=rec.open_id,
            recording_id=rec.recording_id,
            start_time_90k=rec.start_time_90k,
            prev_media_duration_90k=rec.prev_media_duration_90k,
            prev_runs=rec.prev_runs,
            video_sample_entry_id=self._entry_id,
            sample_entry=frames[0].sample_entry,
        )
        estimate = frames[0].pts - prev if prev is not None and prev < frames[0].pts else 0
        live = []
        for i, f in enumerate(frames):
            if i + 1 < len(frames):
                estimate = frames[i + 1].pts - f.pts
            start = f.pts - writer.first_pts
            live.append(LiveFrame(f.data, f.is_key, start, estimate, info, f.received))
        self._hub.publish(self.stream_id, live)

    async def _close_writer(self, next_pts: int | None, end_reason: str | None) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        await writer.close(next_pts, end_reason)
        if writer.rec is not None:
            self.counters.recordings += 1

    async def _end_run(self, next_pts: int | None, reason: str) -> None:
        """Ends the current run (closing its recording) so the next frame starts afresh."""
        await self._close_writer(next_pts, reason)
        self._run = Run()
        self._prev_pts = self._live_prev_pts = None
