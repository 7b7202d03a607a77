"""The PyAV source: RTSP cameras and local files as ``Packet`` batches.

This is the only module in nvr that imports ``av`` for input. It has two halves:

- ``Demuxer`` is synchronous and runs in a worker thread: it opens the container, reads
  packets and turns each into a ``Packet`` (length-prefixed NAL units without parameter
  sets or access unit delimiters, pts in 90k units, key flag from the NAL unit types, and a
  ``VideoSampleEntry`` built from the codec extradata and in-band parameter sets). One
  ``read_batch`` call returns the packets up to the next key frame (a GOP) or ``max_batch``
  of media time, so the thread hop is paid once per batch, not per packet. It also applies
  the start-of-run rules of DESIGN.md §7 (``RunStart``) and, for files, looping.
- ``PyAvSource``/``PyAvOpener`` are the trio side. Connecting is one ``run_blocking``
  call under the daemon's limiter with ``abandon_on_cancel=True`` (an abandoned connect
  closes the container itself when FFmpeg returns). After that each source has a reader
  thread of its own that queues batches and wakes trio once per batch; nothing is ever in
  flight between the two, so cancelling ``next_batch`` loses nothing, and ``drain`` hands
  over the partial batch at shutdown (every frame received up to the signal is
  recorded). For ``OpenOptions.realtime`` the trio side paces packets at their
  timestamps with ``clocks.sleep_until``.
- A camera's reader (RTSP over TCP) that has caught up pauses briefly so the next frames
  gather in the socket buffer and are read back to back (``nvr.ingest.pacing``): this
  saves most of the per-frame wake-ups, which are most of what recording costs. Live
  viewers (``low_latency``) and shutdown end and forbid the pauses; at shutdown the reader
  reads on to the live edge, so frames waiting in the socket are recorded too.

Frames stay in decode order and carry their pts; a stream with B-frames (pts out of
order) is passed through as is and left to the streamer's timestamp checks.

Errors leave this module as ``NvrError`` kinds whose message starts with the URL without
credentials; the password given in ``OpenOptions`` is put only into the URL handed to
FFmpeg, and any userinfo is scrubbed from error text.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import av
import av.error
import trio

from nvr.base.blocking import run_blocking
from nvr.base.clock import Clocks, instrumentation_stamp, io_monotonic
from nvr.base.errors import (
    DataLoss,
    InvalidArgument,
    NotFound,
    NvrError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    from_os_error,
)
from nvr.base.time90k import UNITS_PER_SEC, Duration
from nvr.codec import decoder_config, h264, h265, nal
from nvr.codec.nal import FrameBytes
from nvr.db.recording import VideoSampleEntry
from nvr.ingest.pacing import DEFAULT_PAUSE, ReadCoalescer
from nvr.ingest.source import OpenOptions, Packet

T = TypeVar("T")

_MICROSECONDS_PER_90K_NUM, _MICROSECONDS_PER_90K_DEN = 100, 9  # 1 tick = 100/9 µs


@dataclass(frozen=True, slots=True)
class _CodecRules:
    """What differs between H.264 and H.265 when turning packets into ``Packet``s."""

    nal_type: Callable[[FrameBytes], int]
    dropped_types: frozenset[int]
    key_types: frozenset[int]
    #: the parameter set NAL types, in the order ``sample_entry`` takes them
    parameter_types: tuple[int, ...]
    sample_entry: Callable[..., VideoSampleEntry]
    #: the type of the box whose payload is an ``.mp4`` stream's codec extradata
    config_box_type: bytes


_CODECS = {
    "h264": _CodecRules(
        h264.nal_type,
        h264.PARAMETER_AND_DELIMITER_TYPES,
        frozenset({h264.NAL_IDR}),
        (h264.NAL_SPS, h264.NAL_PPS),
        h264.sample_entry,
        b"avcC",
    ),
    "hevc": _CodecRules(
        h265.nal_type,
        h265.PARAMETER_AND_DELIMITER_TYPES,
        h265.KEY_TYPES,
        (h265.NAL_VPS, h265.NAL_SPS, h265.NAL_PPS),
        h265.sample_entry,
        b"hvcC",
    ),
}


def scrub_userinfo(text: str, password: str | None = None) -> str:
    """``text`` with the userinfo of any URL removed, and ``password`` (plain or
    percent-encoded) masked wherever else it appears."""
    text = re.sub(r"(?<=//)[^/@\s'\"]*@", "", text)
    if password:
        for form in {password, quote(password, safe="")}:
            text = text.replace(form, "***")
    return text


def _url_with_credentials(url: str, options: OpenOptions) -> str:
    """The URL handed to FFmpeg: ``options``' credentials (if any) as its userinfo."""
    if options.username is None:
        return url
    parts = urlsplit(url)
    userinfo = quote(options.username, safe="")
    if options.password is not None:
        userinfo += ":" + quote(options.password, safe="")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def _is_network_url(url: str) -> bool:
    return url.lower().startswith(("rtsp://", "rtsps://"))


def _local_path(url: str) -> str:
    return urlsplit(url).path if url.lower().startswith("file:") else url


def _map_error(err: Exception, url: str, password: str | None) -> NvrError:
    """The ``NvrError`` kind for an exception raised while reading ``url``."""
    if isinstance(err, NvrError):
        return type(err)(f"{url}: {scrub_userinfo(str(err), password)}")
    # FFmpeg errors carry the bare reason in ``strerror``; their str() adds the URL
    reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
    msg = f"{url}: {scrub_userinfo(reason, password)}"
    if isinstance(err, av.error.HTTPUnauthorizedError):
        return Unauthenticated(msg)
    if isinstance(err, av.error.HTTPForbiddenError):
        return PermissionDenied(msg)
    if isinstance(err, av.error.HTTPNotFoundError):
        return NotFound(msg)
    if _is_network_url(url):
        # From a camera, "invalid data" means it answered nonsense or not at all (FFmpeg
        # reports a silent server that way while connecting): retry, like a network error.
        return Unavailable(msg)
    if isinstance(err, av.error.InvalidDataError):
        return DataLoss(msg)
    if isinstance(err, OSError) and not isinstance(err, av.error.FFmpegError):
        return from_os_error(err, url)
    if isinstance(err, FileNotFoundError):
        return NotFound(msg)
    return DataLoss(msg)


def _to_90k_factor(time_base: Any) -> tuple[int, int]:
    """(numerator, denominator) turning ``time_base`` units into 90k units."""
    return time_base.numerator * UNITS_PER_SEC, time_base.denominator


@dataclass(slots=True)
class PendingFrame:
    """A packet on its way to becoming a ``Packet``: pts may still be unknown."""

    data: FrameBytes
    pts: int | None
    duration: int  # 90k units, 0 when unknown
    is_key: bool
    sample_entry: VideoSampleEntry
    received: float = 0.0  # instrumentation_stamp() when read

    def to_packet(self, pts: int) -> Packet:
        return Packet(self.data, pts, self.is_key, self.sample_entry, self.received)


class RunStart:
    """The start-of-run rules (DESIGN.md §7), applied to frames in order.

    A run starts with a key frame that has a pts. A key frame without pts (PyAV's first
    packet after connecting) gets the next frame's pts minus its own duration (or
    ``frame_interval``); if neither is known it is dropped. Non-key frames before the
    start are dropped. After the start a frame without pts is ``DataLoss``.
    """

    def __init__(self, frame_interval: Duration) -> None:
        self._frame_interval = frame_interval
        self._held: PendingFrame | None = None
        self.started = False

    def admit(self, frame: PendingFrame) -> list[Packet]:
        """The packets ready to emit now that ``frame`` arrived (zero, one or two)."""
        if self.started:
            if frame.pts is None:
                raise DataLoss("packet without a timestamp in the middle of the stream")
            return [frame.to_packet(frame.pts)]
        if frame.pts is None:
            self._held = frame if frame.is_key else None
            return []
        out = []
        held, self._held = self._held, None
        if held is not None:
            duration = held.duration or frame.duration or self._frame_interval
            if duration > 0:
                out.append(held.to_packet(frame.pts - duration))
        if out or frame.is_key:
            out.append(frame.to_packet(frame.pts))
            self.started = True
        return out


class _ParameterSets:
    """The stream's current parameter sets and the sample entry made from them.

    The entry object changes only when the parameter sets change to different values, so
    consecutive packets share it by identity.
    """

    def __init__(self, rules: _CodecRules) -> None:
        self._rules = rules
        self._sets: dict[int, bytes] = {}
        self.entry: VideoSampleEntry | None = None

    def update(self, nals: Iterable[bytes]) -> None:
        changed = False
        for unit in nals:
            kind = self._rules.nal_type(unit)
            if kind in self._rules.parameter_types and self._sets.get(kind) != unit:
                self._sets[kind] = unit
                changed = True
        if changed and all(t in self._sets for t in self._rules.parameter_types):
            entry = self._rules.sample_entry(*(self._sets[t] for t in self._rules.parameter_types))
            if entry != self.entry:
                self.entry = entry


class Demuxer:
    """One open container, read synchronously (in a worker thread, or the caller's).

    ``url`` is what the caller named (logged, in error messages); credentials from
    ``options`` are added only to the URL given to FFmpeg. Callers run ``connect``,
    ``read_batch`` and ``read_all`` through ``run_in_worker`` or ``mapping_errors``, which
    turn every exception into an ``NvrError`` kind naming the URL. The ``busy``/``closing``
    handshake lets the trio side abandon a blocked call: whoever finishes last closes the
    container.
    """

    def __init__(
        self, url: str, options: OpenOptions, max_batch: Duration, read_pause: float = 0.0
    ) -> None:
        self.url = scrub_userinfo(url, options.password)
        self._source_url = url
        self._options = options
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._busy = False
        self._closing = False
        self._container: Any = None
        self._packets: Iterator[Any] = iter(())
        self._rules = _CODECS["h264"]
        self._params = _ParameterSets(self._rules)
        self._length_size = 0  # 0: Annex B
        self._to_90k = (UNITS_PER_SEC, 1)
        self._run_start = RunStart(0)
        self._ready: deque[Packet] = deque()
        self._loop_offset = 0
        self._loop_first_pts: int | None = None
        self._last_pts = 0
        self._last_duration = 0
        self._eof = False
        self._held_error: Exception | None = None
        #: set from another thread: end batches after every packet (shutdown, live view)
        self.cut_early = False
        # A camera's reader pauses once caught up, so frames gather (``nvr.ingest.pacing``).
        # Not over UDP, where a full socket buffer loses packets (TCP makes the camera
        # wait); a file has no live edge to wait for.
        pacing = _is_network_url(url) and options.rtsp_transport == "tcp"
        self._coalescer = ReadCoalescer(read_pause) if pacing and read_pause > 0 else None
        self._pause_over = threading.Event()  # set: no pausing (live viewers, shutdown)

    # -- the busy/closing handshake between a worker thread and the trio side --

    def run_in_worker(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` (in a worker thread) with errors mapped. If the trio side asked to
        close while ``fn`` ran (it abandoned the call), closes the container afterwards."""
        with self._lock:
            if self._closing:
                raise Unavailable(f"{self.url}: source is closed")
            self._busy = True
        try:
            return self.mapping_errors(fn)
        finally:
            with self._lock:
                self._busy = False
                must_close = self._closing
            if must_close:
                self.close()

    def request_close(self) -> bool:
        """Marks the demuxer closing; True when the caller must close it now (no call in
        flight), False when the in-flight call will close it when it returns."""
        with self._lock:
            self._closing = True
            return not self._busy

    def mapping_errors(self, fn: Callable[[], T]) -> T:
        """Runs ``fn``; any exception leaves as an ``NvrError`` kind naming the URL."""
        try:
            return fn()
        except Exception as e:
            raise _map_error(e, self.url, self._options.password) from None

    # -- the reading itself --

    def connect(self) -> None:
        """Opens the container and reads the stream's codec parameters."""
        try:
            self._open_container()
            stream = self._container.streams.video[0]
            rules = _CODECS.get(stream.codec_context.name)
            if rules is None:
                raise InvalidArgument(f"unsupported codec {stream.codec_context.name!r}")
            self._rules = rules
            self._params = _ParameterSets(rules)
            self._read_extradata(bytes(stream.codec_context.extradata or b""))
            self._to_90k = _to_90k_factor(stream.time_base)
            rate = stream.average_rate or stream.guessed_rate
            self._run_start = RunStart(round(UNITS_PER_SEC / rate) if rate else 0)
        except BaseException:
            self.close()
            raise

    def read_all(self) -> list[Packet]:
        """Connects and reads every packet to the end (for local files)."""
        self.connect()
        packets: list[Packet] = []
        while batch := self.read_batch():
            packets.extend(batch)
        return packets

    def _open_container(self) -> None:
        if _is_network_url(self._source_url):
            timeout_us = (
                self._options.read_timeout * _MICROSECONDS_PER_90K_NUM // _MICROSECONDS_PER_90K_DEN
            )
            av_options = {
                "rtsp_transport": self._options.rtsp_transport,
                "timeout": str(timeout_us),
                "probesize": "32",
                "analyzeduration": "0",
                "allowed_media_types": "video",
            }
            target = _url_with_credentials(self._source_url, self._options)
            self._container = av.open(target, options=av_options)
        else:
            self._container = av.open(_local_path(self._source_url))
        if not self._container.streams.video:
            raise InvalidArgument("no video stream")
        self._packets = self._container.demux(self._container.streams.video[0])

    def _read_extradata(self, extradata: bytes) -> None:
        if not extradata:
            return
        if extradata[0] != 1:  # Annex B (RTSP's sprop-parameter-sets, raw streams)
            self._params.update(nal.split_annex_b(extradata))
        else:
            nals, self._length_size = decoder_config.parameter_sets(
                self._rules.config_box_type, extradata
            )
            self._params.update(nals)

    def read_batch(self) -> list[Packet]:
        """The next packets: up to (not including) the next key frame, or ``max_batch`` of
        media time, or just one when ``cut_early`` is set; ``[]`` at the end of the
        stream. A read error after some packets of the batch were gathered is held back
        until the next call, so those packets are delivered (and recorded) first."""
        if self._held_error is not None:
            error, self._held_error = self._held_error, None
            raise error
        batch: list[Packet] = []
        while not self._eof:
            try:
                more = bool(self._ready) or self._fill_ready()
            except Exception as e:
                if not batch:
                    raise
                self._held_error = e
                break
            if not more:
                self._eof = True
                break
            packet = self._ready[0]
            if batch and (packet.is_key or packet.pts - batch[0].pts >= self._max_batch):
                break
            batch.append(self._ready.popleft())
            if self.cut_early:
                break
        return batch

    def take_ready(self) -> list[Packet]:
        """The packets already read and converted but not yet part of a batch."""
        ready = list(self._ready)
        self._ready.clear()
        return ready

    def _fill_ready(self) -> bool:
        """Reads until at least one packet is ready; False at the (final) end of stream."""
        while not self._ready:
            raw = next(self._packets, None)
            if raw is None:
                if not (self._options.loop and self._restart_loop()):
                    return False
                continue
            if raw.size == 0:
                continue
            frame = self._convert(raw)
            if frame is not None:
                self._ready.extend(self._run_start.admit(frame))
                if self._coalescer is not None and frame.pts is not None:
                    pause = self._coalescer.pause_after(io_monotonic(), frame.pts / UNITS_PER_SEC)
                    if pause and not self.cut_early:
                        self._pause_over.wait(pause)
                        self._coalescer.at_edge = False  # frames arrived meanwhile
        return True

    @property
    def caught_up(self) -> bool:
        """Whether the last frame was read at the camera's live edge: nothing waits to be
        read but what arrived since (always, for a reader that does not pause)."""
        return self._coalescer is None or self._coalescer.at_edge

    def set_pausing(self, allowed: bool) -> None:
        """Allows or forbids (and ends at once) the reader's coalescing pauses; called from
        the trio side when live viewers come and go, and at shutdown."""
        if allowed:
            self._pause_over.clear()
        else:
            self._pause_over.set()

    def _convert(self, raw: Any) -> PendingFrame | None:
        """A demuxed packet as a ``PendingFrame``, or None if it carries no picture (or no sample
        entry is known yet)."""
        rules = self._rules
        if self._length_size:
            frame = nal.split_length_prefixed_frame(
                bytes(raw), self._length_size, rules.nal_type, rules.dropped_types
            )
        else:
            frame = nal.split_annex_b_frame(raw, rules.nal_type, rules.dropped_types)
        if frame.dropped:
            self._params.update(frame.dropped)
        entry = self._params.entry
        if not frame.kept_types or entry is None:
            return None
        is_key = not rules.key_types.isdisjoint(frame.kept_types)
        num, den = self._to_90k
        pts = None if raw.pts is None else (raw.pts * num * 2 + den) // (2 * den)
        duration = (raw.duration or 0) * num // den
        if pts is not None:
            pts = self._track_loop(pts, duration)
        return PendingFrame(frame.payload, pts, duration, is_key, entry, instrumentation_stamp())

    def _track_loop(self, pts: int, duration: Duration) -> int:
        """Adds the loop offset and remembers what the next loop's offset needs."""
        if self._loop_first_pts is None:
            self._loop_first_pts = pts
        pts += self._loop_offset
        self._last_duration = duration or (pts - self._last_pts)
        self._last_pts = pts
        return pts

    def _restart_loop(self) -> bool:
        """Reopens the file so timestamps continue after the last frame; False if the file
        yielded no frames (looping it would spin)."""
        if self._loop_first_pts is None:
            return False
        self._loop_offset = self._last_pts + self._last_duration - self._loop_first_pts
        self._loop_first_pts = None
        self._container.close()
        self._open_container()
        return True

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def read_file_packets(path: str) -> list[Packet]:
    """Every packet of a local file, read synchronously in the calling thread."""
    demuxer = Demuxer(path, OpenOptions(), max_batch=60 * UNITS_PER_SEC)
    try:
        return demuxer.mapping_errors(demuxer.read_all)
    finally:
        demuxer.close()


class PyAvSource:
    """One open session (see ``nvr.ingest.source.Source``) with a reader thread of its own.

    The thread reads batches (``Demuxer.read_batch``) into a short queue and wakes the
    trio side with one ``run_sync_soon`` per batch; when the queue is full it waits, so a
    slow consumer holds at most ``max_queued`` batches. Nothing is ever in flight between
    the thread and trio: a cancelled ``next_batch`` loses nothing, and ``drain`` (at
    shutdown) makes the thread cut its current batch after the packet being read, hand
    over everything it has and then, a frame at a time, whatever still waits in the
    socket up to the camera's live edge.
    """

    def __init__(
        self, demuxer: Demuxer, clocks: Clocks, realtime: bool, *, max_queued: int = 4
    ) -> None:
        self._demuxer = demuxer
        self._clocks = clocks
        self._realtime = realtime
        self._token = trio.lowlevel.current_trio_token()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._batches: deque[list[Packet]] = deque()  # [] marks the end of the stream
        self._max_queued = max_queued
        self._error: NvrError | None = None
        self._finished = False  # the reader thread has queued all it will and exited
        self._stopping = False
        self._draining = False
        self._wakeup: trio.Event | None = None
        self._pending: deque[Packet] = deque()  # realtime: read but not yet due
        self._origin: Duration | None = None
        self._thread = threading.Thread(
            target=self._read_loop, name=f"nvr read {demuxer.url}", daemon=True
        )
        self._thread.start()

    # -- the reader thread --

    def _read_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    while len(self._batches) >= self._max_queued and not (
                        self._stopping or self._draining
                    ):
                        self._room.wait()
                    if self._stopping:
                        return
                try:
                    batch = self._demuxer.mapping_errors(self._demuxer.read_batch)
                except NvrError as e:
                    with self._lock:
                        self._error = e
                    return
                with self._lock:
                    if self._draining:
                        batch += self._demuxer.take_ready()
                    self._batches.append(batch)
                    self._wake_locked()
                    # Draining: read on, a frame at a time, what already waits in the
                    # socket (a paced reader may be a pause behind), then stop.
                    if not batch or (self._draining and self._demuxer.caught_up):
                        return
        finally:
            self._demuxer.close()
            with self._lock:
                self._finished = True
                self._wake_locked()

    def _wake_locked(self) -> None:
        event, self._wakeup = self._wakeup, None
        if event is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(event.set)

    # -- the trio side --

    async def _wait_for_reader(self, *, until_finished: bool = False) -> None:
        """Waits until the reader queues something or exits (``until_finished``: until it
        exits). Call without the lock, after finding nothing to take under it."""
        with self._lock:
            if self._finished or (self._batches and not until_finished):
                return
            event = self._wakeup = trio.Event()
        await event.wait()

    async def _read(self) -> list[Packet]:
        while True:
            with self._lock:
                if self._stopping:
                    raise Unavailable(f"{self._demuxer.url}: source is closed")
                if self._batches:
                    batch = self._batches.popleft()
                    self._room.notify()
                    return batch
                if self._error is not None:
                    raise self._error
                if self._finished:
                    raise Unavailable(f"{self._demuxer.url}: source is closed")
            await self._wait_for_reader()

    async def next_batch(self) -> list[Packet]:
        if not self._realtime:
            return await self._read()
        return await self._next_paced_batch()

    async def _next_paced_batch(self) -> list[Packet]:
        """The packets due by now (at least one), sleeping until the first is due."""
        if not self._pending:
            batch = await self._read()
            if not batch:
                return []
            self._pending.extend(batch)
        if self._origin is None:
            self._origin = self._clocks.monotonic() - self._pending[0].pts
        await self._clocks.sleep_until(self._origin + self._pending[0].pts)
        now = self._clocks.monotonic()
        due = [self._pending.popleft()]
        while self._pending and self._origin + self._pending[0].pts <= now:
            due.append(self._pending.popleft())
        return due

    @property
    def low_latency(self) -> bool:
        return self._demuxer.cut_early and not self._draining

    @low_latency.setter
    def low_latency(self, on: bool) -> None:
        if not (self._draining or self._stopping) and on != self._demuxer.cut_early:
            self._demuxer.cut_early = on
            self._demuxer.set_pausing(not on)

    async def drain(self, grace: float) -> list[Packet]:
        """See ``Source.drain``. A realtime (paced file) source has nothing that arrived
        early, so it returns nothing."""
        if self._realtime:
            return []
        self._demuxer.cut_early = True
        self._demuxer.set_pausing(False)
        with self._lock:
            self._draining = True
            self._room.notify()
        with trio.move_on_after(grace):
            while not self._finished:
                await self._wait_for_reader(until_finished=True)
        with self._lock:
            packets = [p for batch in self._batches for p in batch]
            self._batches.clear()
        return packets

    async def aclose(self) -> None:
        """Stops the reader; it closes the container once its current read returns (a
        stalled camera's read returns within the read timeout)."""
        self._demuxer.cut_early = True
        self._demuxer.set_pausing(False)
        with self._lock:
            self._stopping = True
            self._room.notify()
        await trio.lowlevel.checkpoint()


async def _in_thread(demuxer: Demuxer, fn: Callable[[], T], limiter: trio.CapacityLimiter) -> T:
    """Runs ``fn`` in a worker thread. On cancellation the thread is abandoned and closes
    the container when its blocked call returns (or, if it never started, we close now)."""
    try:
        return await run_blocking(
            demuxer.run_in_worker, fn, limiter=limiter, abandon_on_cancel=True
        )
    except trio.Cancelled:
        if demuxer.request_close():
            await _close_in_thread(demuxer, limiter)
        raise


async def _close_in_thread(demuxer: Demuxer, limiter: trio.CapacityLimiter) -> None:
    """Closes the container in a worker thread, shielded: closing is short and must happen."""
    with trio.CancelScope(shield=True):
        await run_blocking(demuxer.close, limiter=limiter)


class PyAvOpener:
    """Opens RTSP URLs and local files (paths or ``file:`` URLs) with PyAV.

    ``limiter`` bounds the threads that connect (each open source then has its own reader
    thread); the daemon sizes it for its number of streams.
    ``max_batch`` caps the media time of one batch when key frames are far apart;
    ``read_pause`` is how long a caught-up camera reader pauses (``nvr.ingest.pacing``;
    0: never).
    """

    def __init__(
        self,
        clocks: Clocks,
        limiter: trio.CapacityLimiter,
        *,
        max_batch: Duration = UNITS_PER_SEC,
        read_pause: float = DEFAULT_PAUSE,
    ) -> None:
        self._clocks = clocks
        self._limiter = limiter
        self._max_batch = max_batch
        self._read_pause = read_pause

    async def open(self, url: str, options: OpenOptions) -> PyAvSource:
        demuxer = Demuxer(url, options, self._max_batch, self._read_pause)
        await _in_thread(demuxer, demuxer.connect, self._limiter)
        realtime = options.realtime and not _is_network_url(url)
        return PyAvSource(demuxer, self._clocks, realtime)
