"""``GET /api/cameras/<uuid>/<stream>/thumb.jpg?time90k=&width=&keyFrame=``: a recorded
picture as a JPEG (an extension; docs/api.md, "Extensions").

The route finds the recording of the stream that covers ``time90k`` (wall time, pending
recordings included), turns the time into the recording's media time, decodes its index
and picks the frame (``nvr.thumbnail.pick``); its ETag names that frame (recording, open,
sample entry, the frame's place in the sample file), the picture's size and the renderer's
version, so ``If-None-Match`` is answered (``304``) before any sample byte is read, and
every time inside one frame (or, with ``keyFrame=true``, one group of pictures) shares
one cache entry. ``Cache-Control: private, no-cache``: the browser keeps the picture but
asks again each time, so a time a redaction hides (no recording covers it any more: the
listings leave out what a tombstone hides) is ``404`` at once, never a kept picture.
Otherwise the frames from the preceding key frame are read through
``nvr.storage``'s reader and rendered (``nvr.thumbnail.render``) in worker threads; a
frame after the key frame by a decoder an earlier request left part-way through the same
recording when one reaches it (``nvr.thumbnail.Decoders``: at most two kept), so a pointer
moving forward decodes only the frames it moved over.

Bounds: ``Thumbnails`` (one per daemon, shared by its binds) keeps the JPEGs last served
in an LRU cache bounded in bytes and entries, and lets at most ``max_renders`` renders
run at once; a request beyond that is answered ``503`` with ``Retry-After`` at once
(never queued: the CPU and memory a burst of hover previews can take stay bounded, and
recording never waits for them). A second request for a picture being rendered waits for
that render instead of starting its own. Hostile input is ``400``/``404`` with a reason.
``/metrics`` shows the cache and the slots (``ThumbnailCollector``, ``nvr_thumbnail_*``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from quart import Blueprint, Response, request

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.db.recording import VideoIndexArrays, decode_video_index
from nvr.db.types import ListedRecording, Stream
from nvr.mp4.selection import media_to_wall, wall_to_media
from nvr.thumbnail import (
    LOOKAHEAD,
    MAX_DECODE_BYTES,
    MAX_WIDTH,
    RENDER_VERSION,
    Continuation,
    Decoders,
    Pick,
    close_all,
    pick,
    picture_size,
    render,
    render_continuing,
)
from nvr.web.context import MAX_TIME, bool_arg, camera_by_uuid, ctx, int_arg, stream_of
from nvr.web.view import SampleReader, none_match

blueprint = Blueprint("thumb", __name__)

#: defaults of ``Thumbnails``
CACHE_BYTES = 32 << 20
CACHE_ENTRIES = 2048
MAX_RENDERS = 2


class Busy(errors.Unavailable):
    """Every render slot is taken: ``503`` with ``Retry-After``."""

    retry_after_sec = 1


@dataclass
class ThumbnailStats:
    """What ``/metrics`` shows (``ThumbnailCollector``)."""

    #: answered from the cache (not counting ``304``s, which need no picture)
    hits: int = 0
    renders: int = 0
    #: renders that went on with the decoder an earlier one left part-way
    continued: int = 0
    #: refused with ``503``: no render slot was free
    busy: int = 0


@dataclass
class Thumbnails:
    """The JPEG cache and the render slots (see the module docstring)."""

    max_bytes: int = CACHE_BYTES
    max_entries: int = CACHE_ENTRIES
    max_renders: int = MAX_RENDERS
    stats: ThumbnailStats = field(default_factory=ThumbnailStats)
    decoders: Decoders = field(default_factory=Decoders)
    _cache: OrderedDict[str, bytes] = field(default_factory=OrderedDict, init=False,
                                            repr=False)
    _bytes: int = field(default=0, init=False)
    #: etag -> set when its render ends (the render slots in use)
    _rendering: dict[str, trio.Event] = field(default_factory=dict, init=False, repr=False)
    #: set by ``aclose``: decoders handed back after it are closed, not kept
    _closed: bool = field(default=False, init=False)

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._cache)

    def get(self, etag: str) -> bytes | None:
        jpeg = self._cache.get(etag)
        if jpeg is not None:
            self._cache.move_to_end(etag)
        return jpeg

    def put(self, etag: str, jpeg: bytes) -> None:
        if len(jpeg) > self.max_bytes or self.max_entries <= 0:
            return
        old = self._cache.pop(etag, None)
        self._bytes -= 0 if old is None else len(old)
        self._cache[etag] = jpeg
        self._bytes += len(jpeg)
        while self._bytes > self.max_bytes or len(self._cache) > self.max_entries:
            _, dropped = self._cache.popitem(last=False)
            self._bytes -= len(dropped)

    async def keep(self, cont: Continuation) -> None:
        """Keeps a decoder a render left part-way (``decoders``); the one it evicts (or
        ``cont`` itself once closed) is closed on a worker thread, shielded: a decoder is
        never dropped on the trio thread (``nvr.thumbnail``'s docstring)."""
        dropped = [cont] if self._closed else self.decoders.put(cont)
        if dropped:
            with trio.CancelScope(shield=True):
                await run_blocking(close_all, dropped)

    async def aclose(self) -> None:
        """Closes every kept decoder (on a worker thread); those renders under way hand
        back later are closed then. At shutdown, after serving."""
        self._closed = True
        with trio.CancelScope(shield=True):
            await run_blocking(close_all, self.decoders.take_all())

    async def make(self, etag: str, render_fn: Callable[[], Awaitable[bytes]]) -> bytes:
        """The cached JPEG of ``etag``, or ``await render_fn()`` in a free render slot
        (then cached); ``Busy`` when there is none. Waits for a render of the same
        ``etag`` already under way."""
        while True:
            jpeg = self.get(etag)
            if jpeg is not None:
                self.stats.hits += 1
                return jpeg
            under_way = self._rendering.get(etag)
            if under_way is None:
                break
            await under_way.wait()  # then the cache has it, or that render failed
        if len(self._rendering) >= self.max_renders:
            self.stats.busy += 1
            raise Busy(f"{self.max_renders} thumbnails are being made; try again")
        done = self._rendering[etag] = trio.Event()
        try:
            jpeg = await render_fn()
            self.stats.renders += 1
            self.put(etag, jpeg)
            return jpeg
        finally:
            del self._rendering[etag]
            done.set()


class _Render:
    """Reads a pick's frames and renders them (a coroutine function for ``make``): a key
    frame alone on a new decoder; any other frame on the kept decoder that reaches it
    (``Decoders``), else on a new one from its key frame, fed ``LOOKAHEAD`` frames past
    it (when the recording has them) so the decoder can be kept for the next request."""

    def __init__(self, rec: ListedRecording, chosen: Pick, index: VideoIndexArrays,
                 size: tuple[int, int]) -> None:
        self._rec, self._pick, self._index, self._size = rec, chosen, index, size

    async def __call__(self) -> bytes:
        c = ctx()
        rec, chosen, index = self._rec, self._pick, self._index
        entry = c.db.video_sample_entries[rec.video_sample_entry_id]
        source = (rec.composite_id, rec.open_id, rec.video_sample_entry_id)
        assert c.thumbnails is not None
        stats, decoders = c.thumbnails.stats, c.thumbnails.decoders
        cont = decoders.take(source, chosen.key, chosen.target)
        if cont is None and chosen.is_key:
            data = await self._read(chosen.offset, chosen.length)
            return await run_blocking(render, entry, data, chosen.sizes, self._size)
        first = chosen.key if cont is None else cont.fed + 1
        last = max(first - 1, min(chosen.target + LOOKAHEAD, index.totals.frames - 1))
        offset = int(index.offsets[first]) if first <= last else 0
        end = int(index.offsets[last] + index.sizes[last]) if first <= last else 0
        if end - offset > MAX_DECODE_BYTES and last > chosen.target:  # no look-ahead then
            last, end = chosen.target, int(index.offsets[chosen.target]
                                          + index.sizes[chosen.target])
        sizes = tuple(int(n) for n in index.sizes[first : last + 1])
        try:
            data = await self._read(offset, end - offset) if sizes else b""
        except BaseException:  # cancelled, or the file is gone: the taken decoder too
            if cont is not None:
                with trio.CancelScope(shield=True):
                    await run_blocking(close_all, [cont])
            raise
        stats.continued += cont is not None
        # Shielded: a cancelled request still waits for its thread (renders are never
        # abandoned), and the decoder it hands back must be kept or closed, not dropped
        with trio.CancelScope(shield=True):
            jpeg, kept = await run_blocking(render_continuing, entry, source, cont, first,
                                            data, sizes, chosen.target, self._size)
            if kept is not None:
                await c.thumbnails.keep(kept)
        return jpeg

    async def _read(self, offset: int, length: int) -> bytes:
        c = ctx()
        reader = SampleReader(c.db, c.dirs)
        try:
            return await reader(self._rec.composite_id, offset, length)
        finally:
            reader.close()


def recording_at(stream: Stream, time_90k: int) -> ListedRecording:
    """The stream's recording (pending ones included) whose wall time covers
    ``time_90k``."""
    recs = ctx().db.list_recordings_by_time(stream.id, time_90k, time_90k + 1)
    covering = [r for r in recs if r.start_time_90k <= time_90k
                and time_90k < max(r.end_time_90k, r.start_time_90k + 1)]
    if not covering:
        cam = ctx().db.cameras[stream.camera_id].short_name
        raise errors.NotFound(
            f"no recording of {cam}'s {stream.type} stream at time90k={time_90k}")
    return max(covering, key=lambda r: r.start_time_90k)


def _pick_frame(index: bytes, media_offset: int, key_frame: bool
                ) -> tuple[Pick, VideoIndexArrays]:
    arrays = decode_video_index(index)
    return pick(arrays, media_offset, key_frame=key_frame), arrays


@blueprint.get("/api/cameras/<camera_uuid>/<stream_type>/thumb.jpg")
async def thumbnail(camera_uuid: str, stream_type: str) -> Response:
    stream = stream_of(camera_by_uuid(camera_uuid), stream_type)
    if request.args.get("time90k") is None:
        raise errors.InvalidArgument("time90k is required")
    time_90k = int_arg("time90k", 0, maximum=MAX_TIME - 1)
    width = int_arg("width", 0, minimum=1, maximum=MAX_WIDTH) or None
    key_frame = bool_arg("keyFrame")
    c = ctx()
    rec = recording_at(stream, time_90k)
    entry = c.db.video_sample_entries[rec.video_sample_entry_id]
    size = picture_size(entry, width)
    media = wall_to_media(rec, time_90k - rec.start_time_90k)
    chosen, index = await run_blocking(_pick_frame, c.db.get_video_index(rec.composite_id),
                                       media, key_frame)
    etag = (f'"t{RENDER_VERSION}.{rec.composite_id:x}.{rec.open_id}.'
            f'{rec.video_sample_entry_id}.{chosen.digest}.{size[0]}x{size[1]}"')
    headers = {
        "ETag": etag,
        # revalidated each time (a 304 reads no sample byte): a growing recording's wall
        # times still move, and a redaction committed later must turn the answer into 404
        "Cache-Control": "private, no-cache",
        "X-Recording-Id": str(rec.recording_id),
        "X-Frame-Time90k": str(rec.start_time_90k + media_to_wall(rec, chosen.start_90k)),
        "X-Key-Frame": "true" if chosen.is_key else "false",
        "X-Exact": "true" if chosen.exact else "false",
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and none_match(if_none_match, etag):
        return Response(b"", status=304, headers=headers)
    thumbnails = c.thumbnails
    assert thumbnails is not None  # create_app makes one
    jpeg = await thumbnails.make(etag, _Render(rec, chosen, index, size))
    return Response(jpeg, headers=headers, content_type="image/jpeg")


class ThumbnailCollector(Collector):
    """``nvr_thumbnail_*`` for ``/metrics``, read from ``Thumbnails`` at scrape time."""

    def __init__(self, thumbnails: Thumbnails) -> None:
        self._t = thumbnails

    def collect(self) -> Iterator[Metric]:
        t = self._t
        for name, doc, value in (
            ("hits", "thumb.jpg answered from the cache", t.stats.hits),
            ("renders", "Thumbnails decoded and encoded", t.stats.renders),
            ("continued", "Thumbnails decoded by a decoder kept from an earlier one",
             t.stats.continued),
            ("busy", "thumb.jpg refused with 503: every render slot was taken", t.stats.busy),
        ):
            counter = CounterMetricFamily(f"nvr_thumbnail_{name}", doc)
            counter.add_metric([], value)
            yield counter
        for name, doc, value in (
            ("cache_bytes", "Bytes of JPEGs in the thumbnail cache", t.cached_bytes),
            ("cache_entries", "Pictures in the thumbnail cache", len(t)),
            ("decoders", "Decoders kept part-way through a recording", len(t.decoders)),
        ):
            gauge = GaugeMetricFamily(f"nvr_thumbnail_{name}", doc)
            gauge.add_metric([], value)
            yield gauge
