"""The PyAV demuxer: RTSP cameras and local files read synchronously, as ``Packet`` batches.

This is the only module in nvr that imports ``av`` for input. ``Demuxer`` runs in a worker
thread (``nvr.ingest.pyav_source`` drives it from trio) or the caller's (``read_file_packets``):
it opens the container, reads packets and turns each into a ``Packet`` through the stream's
framing rules (``nvr.ingest.framing``: length-prefixed NAL units without parameter sets or
access unit delimiters, key flag from the NAL unit types, a ``VideoSampleEntry`` from the
codec extradata and in-band parameter sets), with its pts in 90k units. One ``read_batch``
call returns the packets up to the next key frame (a GOP) or ``max_batch`` of media time, so
the thread hop is paid once per batch, not per packet. It also applies the start-of-run
rules (``RunStart``) and, for files, looping.

A camera's reader (RTSP over TCP) that has caught up pauses briefly so the next frames
gather in the socket buffer and are read back to back (``nvr.ingest.pacing``): this saves
most of the per-frame wake-ups, which are most of what recording costs. Live viewers
(``cut_early``) and shutdown end and forbid the pauses (``set_pausing``); at shutdown the
reader reads on to the live edge (``caught_up``), so frames waiting in the socket are
recorded too.

Frames stay in decode order and carry their pts; a stream with B-frames (pts out of
order) is passed through as is and left to the streamer's timestamp checks.

Errors leave this module as ``NvrError`` kinds whose message starts with the URL without
credentials; the password given in ``OpenOptions`` is put only into the URL handed to
FFmpeg, and any userinfo is scrubbed from error text.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import av
import av.error

from nvr.base.clock import instrumentation_stamp, io_monotonic
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
from nvr.ingest.framing import CODECS, PendingFrame, RunStart, StreamFraming
from nvr.ingest.pacing import ReadCoalescer
from nvr.ingest.source import OpenOptions, Packet

T = TypeVar("T")

_MICROSECONDS_PER_90K_NUM, _MICROSECONDS_PER_90K_DEN = 100, 9  # 1 tick = 100/9 µs


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


def is_network_url(url: str) -> bool:
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
    if is_network_url(url):
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
        self._framing = StreamFraming(CODECS["h264"])
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
        pacing = is_network_url(url) and options.rtsp_transport == "tcp"
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
            rules = CODECS.get(stream.codec_context.name)
            if rules is None:
                raise InvalidArgument(f"unsupported codec {stream.codec_context.name!r}")
            self._framing = StreamFraming(rules, bytes(stream.codec_context.extradata or b""))
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
        if is_network_url(self._source_url):
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
        framed = self._framing.frame(raw)
        if framed is None:
            return None
        num, den = self._to_90k
        pts = None if raw.pts is None else (raw.pts * num * 2 + den) // (2 * den)
        duration = (raw.duration or 0) * num // den
        if pts is not None:
            pts = self._track_loop(pts, duration)
        return PendingFrame(framed.payload, pts, duration, framed.is_key, framed.sample_entry,
                            instrumentation_stamp())

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
