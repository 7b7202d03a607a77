"""``transcode=h264`` on ``view.mp4``, ``view.m4s`` and ``live.m4s``: recorded video as
H.264 for browsers that cannot decode what the camera sent (an extension; docs/api.md,
"Extensions", Transcoding).

Here belong the HTTP side of a transcode and its bounds: ``Transcodes`` (one per daemon,
shared by its binds) lets at most ``max_concurrent`` transcodes run (a request over it is
``503`` with ``Retry-After`` and a reason the UI shows, never queued); ``view_response``
serves a transcoded file; ``live_transcoded`` a transcoded live socket. The picture work
(decode, scale, encode, priority, damaged frames) is ``nvr.transcode``'s, on a
``nvr.transcode.Worker`` thread reached through ``run_blocking``.

**A transcoded ``view.mp4``** is a *fragmented* MP4 sent as it is made: an init segment
(``ftyp`` + ``moov`` with the file's whole duration in ``mvhd``/``mehd``, so a player
knows it at once) then one ``moof`` + ``mdat`` per batch of frames, their ``tfdt`` the
track time from 0. Its size is not known before the last frame is encoded, so it has no
``Content-Length`` and no byte ranges (``Accept-Ranges: none``; a ``Range`` is ignored
and the whole file sent: seek by asking for a new ``s=`` start). It starts exactly at the
requested start (frames from the key frame before it are decoded, not sent); the first
frame sent is a key frame. Frames keep their recorded media times and durations.
``view.m4s`` is the same bytes (init segment included: append the body as it comes), its
``tfdt`` the first frame's media time in its recording as for any ``.m4s``, with the
``X-Prev-Media-Duration``/``X-Runs`` headers of a plain one.

**ETag**: of what was asked (recordings, their opens, the selected frames' digest) and the
transcode settings (``nvr.transcode.Settings.describe``): ``If-None-Match`` is answered
``304`` before any transcode slot is taken; ``Cache-Control: private, no-cache`` as for a
plain file (``nvr.web.view.REVALIDATE``: a later redaction is a ``404`` at once).

**A transcoded ``live.m4s``** sends the messages of a plain one (``nvr.web.live``) but
each segment is H.264; instead of ``X-Video-Sample-Entry-Id`` (whose init segment is the
camera's codec) a message whose body starts with an init segment says so with
``X-Nvr-Init-Length`` (its byte length): the first message, and the first after the
camera's codec parameters changed. The frames come from a frame-hub subscription holding
at most ``LIVE_QUEUE_FRAMES``: a transcode slower than the camera drops frames there
(``drop`` message) and resumes at the next key frame, so recording never waits for it.
"""

from __future__ import annotations

import hashlib
import json
import queue
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from quart import Response, request, websocket

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.ingest.hub import LiveFrame, Subscription
from nvr.mp4.fragment import build_fragment
from nvr.mp4.movie import build_init
from nvr.mp4.selection import Segment, decoded, index_of, select
from nvr.transcode import OutFrame, Settings, Transcoder, Worker
from nvr.web.context import ctx

T = TypeVar("T")

#: the values ``transcode=`` takes
TARGETS = ("h264",)
#: the default of ``Transcodes.max_concurrent``: two 1080p-to-720p transcodes take about
#: one core of a small machine (tests/bench/bench_transcode.py); recording keeps the rest
MAX_CONCURRENT = 2
#: frames per worker call (and per fragment) of a transcoded file, after the first
BATCH_FRAMES = 15
#: a live transcode's frame-hub queue: 2 s at 30 fps; past it frames are dropped
LIVE_QUEUE_FRAMES = 60


class Busy(errors.Unavailable):
    """Every transcode slot is taken: ``503`` with ``Retry-After``."""

    retry_after_sec = 5


@dataclass
class Transcodes:
    """The transcode slots and settings (see the module docstring), and the counters
    ``/metrics`` shows (``TranscodeCollector``)."""

    settings: Settings = field(default_factory=Settings)
    max_concurrent: int = MAX_CONCURRENT
    active: int = 0
    #: transcodes started, and requests refused for want of a slot
    started: int = 0
    busy: int = 0
    #: requests refused with 503, by (``file`` or ``live``, reason)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: frames fed to transcoders (decoded only or transcoded) and frames they made
    frames_in: int = 0
    frames_out: int = 0
    #: frames a transcode never saw (``slow``: dropped at the frame hub) or left out
    #: (``damaged``: undecodable before any good picture)
    dropped: Counter[str] = field(default_factory=Counter)
    #: CPU time of the transcode threads reported but not yet added to ``_cpu``
    #: (``nvr.transcode.Worker`` reports from its thread)
    _cpu_reports: queue.SimpleQueue[float] = field(default_factory=queue.SimpleQueue,
                                                    repr=False)
    _cpu: float = 0.0

    def take(self, kind: str = "file") -> Slot:
        if self.active >= self.max_concurrent:
            self.busy += 1
            self.refused[kind, "limit"] += 1
            raise Busy(
                f"the server converts at most {self.max_concurrent} videos at once for "
                "browsers that cannot play them, and is at that limit; try again later "
                "or play the camera's sub stream"
            )
        self.active += 1
        self.started += 1
        return Slot(self)

    @property
    def cpu_seconds(self) -> float:
        """The CPU time of the transcode threads (decode, scale, encode) so far."""
        while True:
            try:
                self._cpu += self._cpu_reports.get_nowait()
            except queue.Empty:
                return self._cpu

    def worker(self) -> Worker:
        return Worker(self.settings.nice, self._cpu_reports.put)


class _Tally:
    """Counts one transcode's frames into ``Transcodes``."""

    def __init__(self, slots: Transcodes) -> None:
        self._slots = slots
        self._skipped = 0

    def new_transcoder(self) -> None:
        self._skipped = 0

    def frames(self, t: Transcoder, fed: int, made: int) -> None:
        s = self._slots
        s.frames_in += fed
        s.frames_out += made
        if t.skipped != self._skipped:
            s.dropped["damaged"] += t.skipped - self._skipped
            self._skipped = t.skipped


class Slot:
    """One taken slot; ``release`` may be called more than once."""

    def __init__(self, owner: Transcodes) -> None:
        self._owner: Transcodes | None = owner

    def release(self) -> None:
        if self._owner is not None:
            self._owner.active -= 1
            self._owner = None


def wants_transcode(value: str | None) -> bool:
    """Whether a request's ``transcode`` value asks for H.264 (None: no value); ``400``
    for another value."""
    if value is None:
        return False
    if value not in TARGETS:
        raise errors.InvalidArgument(f"transcode must be one of: {', '.join(TARGETS)}")
    return True


def transcodes() -> Transcodes:
    t = ctx().transcodes
    if t is None:  # pragma: no cover - create_app always sets one
        raise errors.Internal("no transcode slots")
    return t


# --- files ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """The frames of one segment to read and feed: ``[0, len)`` of the arrays, from the
    selection's key frame; frames before ``first_emit`` are decoded only."""

    cid: int
    entry_id: int
    offsets: np.ndarray
    sizes: np.ndarray
    is_key: np.ndarray
    starts: np.ndarray
    durations: np.ndarray
    first_emit: int
    digest: bytes

    @property
    def emitted_duration(self) -> int:
        return int(self.durations[self.first_emit :].sum())


def plan_parts(segments: Sequence[Segment], indexes: Sequence[object]) -> list[Part]:
    """Each segment's frames (blocking: decodes the indexes)."""
    parts = []
    for seg, raw in zip(segments, indexes, strict=True):
        index = decoded(raw)  # type: ignore[arg-type]
        sel = select(seg, index)
        b, e = sel.begin, sel.end
        starts = index.starts[b:e]
        first = max(0, int(np.searchsorted(starts, sel.edit_start, side="right")) - 1)
        parts.append(Part(seg.recording.composite_id, seg.recording.video_sample_entry_id,
                          index.offsets[b:e], index.sizes[b:e], index.is_key[b:e], starts,
                          index.durations[b:e], first, sel.digest))
    return parts


async def on_worker(worker: Worker, fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` on the transcode's thread. A cancelled caller (the viewer left) does
    not wait for it: its ``finally`` closes the worker, and the thread, which finishes the
    frame it is on, stops there (``Worker.stopping``)."""
    return await run_blocking(worker.call, fn, *args, abandon_on_cancel=True)


def _feed_batch(t: Transcoder, worker: Worker, data: bytes, part: Part, lo: int,
                hi: int) -> list[OutFrame]:
    out: list[OutFrame] = []
    pos = 0
    for i in range(lo, hi):
        if worker.stopping:
            return []
        n = int(part.sizes[i])
        out += t.feed(data[pos : pos + n], bool(part.is_key[i]), int(part.starts[i]),
                      int(part.durations[i]), emit=i >= part.first_emit)
        pos += n
    return out


async def view_response(segments: Sequence[Segment], kind: str) -> Response:
    """The transcoded ``view.mp4`` or ``view.m4s`` of ``segments`` (module docstring)."""
    from nvr.web.view import REVALIDATE, SampleReader, none_match

    c = ctx()
    slots = transcodes()
    settings = slots.settings
    remote = [s.recording.composite_id for s in segments if s.recording.archive_only]
    if remote:
        raise errors.FailedPrecondition(
            f"recording {remote[0]:016x} is only in an archive: transcode=h264 reads "
            "recordings kept on this server's disks")
    raw = [index_of(s, c.db.get_video_index) for s in segments]
    parts = await run_blocking(plan_parts, segments, raw)
    entry_ids = {p.entry_id for p in parts}
    if len(entry_ids) != 1:
        raise errors.InvalidArgument(
            f"a transcoded file needs one sample entry; these recordings use {sorted(entry_ids)}")
    entry = c.db.video_sample_entries[parts[0].entry_id]
    h = hashlib.sha256(f"{kind} {settings.describe()}".encode())
    for p, seg in zip(parts, segments, strict=True):
        h.update(f"{p.cid} {seg.recording.open_id} {p.first_emit} {len(p.sizes)} ".encode())
        h.update(p.digest)
    etag = f'"t{h.hexdigest()[:40]}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "none",
        "Cache-Control": REVALIDATE,
    }
    if kind == "m4s":  # as a plain .m4s's (nvr.web.view)
        first = segments[0].recording
        headers["X-Prev-Media-Duration"] = str(first.prev_media_duration_90k)
        headers["X-Runs"] = str(first.prev_runs + 1)
    inm = request.headers.get("If-None-Match")
    if inm is not None and none_match(inm, etag):
        return Response(b"", status=304, headers=headers)
    total = sum(p.emitted_duration for p in parts)
    base = 0 if kind == "mp4" else int(parts[0].starts[parts[0].first_emit])
    slot = slots.take()
    worker = slots.worker()
    try:
        transcoder = await on_worker(worker, worker.transcoder, entry, settings)
        init = build_init(0, transcoder.entry, duration=total).header
    except BaseException:
        worker.close()
        slot.release()
        raise
    headers["X-Nvr-Transcoded"] = f"{transcoder.size[0]}x{transcoder.size[1]}"
    reader = SampleReader(c.db, c.dirs)
    tally = _Tally(slots)
    head = request.method == "HEAD"

    def end() -> None:  # idempotent: each part may run twice
        reader.close()
        worker.close()
        slot.release()

    async def body() -> AsyncIterator[bytes]:
        try:
            if head:
                return
            yield init
            pos, sequence = base, 0
            for part in parts:
                lo = 0
                while lo < len(part.sizes):
                    # the first fragment as soon as the first frame is out
                    hi = min(len(part.sizes),
                             part.first_emit + 1 if sequence == 0 and lo <= part.first_emit
                             else lo + BATCH_FRAMES)
                    start = int(part.offsets[lo])
                    length = int(part.offsets[hi - 1] + part.sizes[hi - 1]) - start
                    data = await reader(part.cid, start, length)
                    frames = await on_worker(worker, _feed_batch, transcoder,
                                             worker, data, part, lo, hi)
                    tally.frames(transcoder, hi - lo, len(frames))
                    lo = hi
                    if frames:
                        sequence += 1
                        yield build_fragment(frames, sequence, pos)
                        pos += sum(f.duration for f in frames)
        finally:
            end()

    stream = body()
    # A client gone before the body started (browsers cancel media requests freely):
    # the generator never runs, so its ``finally`` never does; the slot comes back when
    # the response is dropped.
    weakref.finalize(stream, end)
    resp = Response(stream, status=200, headers=headers,
                    content_type=f'video/mp4; codecs="{transcoder.entry.rfc6381_codec}"')
    resp.timeout = None
    return resp


# --- live ----------------------------------------------------------------------------------


def live_message(frame: LiveFrame, out: OutFrame, sequence: int, t: Transcoder,
                 init: bytes | None) -> bytes:
    rec = frame.recording
    headers = (
        f'Content-Type: video/mp4; codecs="{t.entry.rfc6381_codec}"\r\n'
        f"X-Nvr-Transcoded: {t.size[0]}x{t.size[1]}\r\n"
        f"X-Recording-Id: {rec.open_id}.{rec.recording_id}\r\n"
        f"X-Recording-Start: {rec.start_time_90k}\r\n"
        f"X-Prev-Media-Duration: {rec.prev_media_duration_90k}\r\n"
        f"X-Runs: {rec.prev_runs + 1}\r\n"
        f"X-Media-Time-Range: {out.start}-{out.start + out.duration}\r\n"
        + (f"X-Nvr-Init-Length: {len(init)}\r\n" if init is not None else "")
        + "\r\n"
    )
    return b"".join([headers.encode(), init or b"", build_fragment([out], sequence)])


async def live_transcoded(subscription: Subscription, slots: Transcodes,
                          offline: Callable[[str], Awaitable[None]]) -> None:
    """Sends the subscription's frames transcoded on the current WebSocket until it
    closes (the caller holds the slot); ``offline`` tells the viewer a session ended."""
    worker = slots.worker()
    tally = _Tally(slots)
    transcoder: Transcoder | None = None
    entry_id = -1
    sequence = 0
    init: bytes | None = None  # to send with the next message
    try:
        while True:
            dropped, frames = await subscription.get()
            if dropped:
                slots.dropped["slow"] += dropped
                await websocket.send(json.dumps({"type": "drop", "frames": dropped}))
            for frame in frames:
                rec = frame.recording
                if transcoder is None or rec.video_sample_entry_id != entry_id:
                    transcoder = await on_worker(worker, worker.transcoder, rec.sample_entry,
                                                 slots.settings)
                    tally.new_transcoder()
                    entry_id = rec.video_sample_entry_id
                    init = build_init(0, transcoder.entry).header
                outs = await on_worker(worker, transcoder.feed, bytes(frame.data),
                                       frame.is_key, frame.media_start, frame.duration)
                tally.frames(transcoder, 1, len(outs))
                for out in outs:
                    sequence += 1
                    await websocket.send(live_message(frame, out, sequence, transcoder, init))
                    init = None
            ended = subscription.take_ended()
            if ended is not None:
                await offline(ended)
    finally:
        worker.close()


# --- /metrics ------------------------------------------------------------------------------


class TranscodeCollector(Collector):
    """``nvr_transcode_*`` for ``/metrics``, read from ``Transcodes`` at scrape time."""

    def __init__(self, slots: Transcodes) -> None:
        self._t = slots

    def collect(self) -> Iterator[Metric]:
        t = self._t
        for name, doc, value in (
            ("active", "Transcodes running now", t.active),
            ("max_concurrent", "Transcodes allowed at once", t.max_concurrent),
        ):
            gauge = GaugeMetricFamily(f"nvr_transcode_{name}", doc)
            gauge.add_metric([], value)
            yield gauge
        for name, doc, total in (
            ("started", "Transcodes started (transcode=h264 files and live sockets)",
             t.started),
            ("frames_in", "Frames fed to transcoders", t.frames_in),
            ("frames_out", "H.264 frames transcoders made", t.frames_out),
            ("cpu_seconds", "CPU time of the transcode threads (decode, scale, encode)",
             t.cpu_seconds),
        ):
            counter = CounterMetricFamily(f"nvr_transcode_{name}", doc)
            counter.add_metric([], total)
            yield counter
        refused = CounterMetricFamily(
            "nvr_transcode_refused", "Transcode requests refused with 503, by kind and reason",
            labels=["kind", "reason"])
        for kind in ("file", "live"):
            refused.add_metric([kind, "limit"], t.refused[kind, "limit"])
        for (kind, reason), n in sorted(t.refused.items()):
            if reason != "limit":
                refused.add_metric([kind, reason], n)
        yield refused
        dropped = CounterMetricFamily(
            "nvr_transcode_frames_dropped",
            "Frames not transcoded: slow (dropped at the frame hub for a live transcode "
            "behind the camera) or damaged (undecodable, before any good picture)",
            labels=["reason"])
        for reason in ("slow", "damaged"):
            dropped.add_metric([reason], t.dropped[reason])
        yield dropped
