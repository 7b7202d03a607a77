"""``GET .../thumb.jpg``: the picture at a time (or its key frame) as a JPEG of the asked
width, checked against the frame PyAV decodes from ``view.mp4`` at that time; ETags and
``304``; the cache's bounds; the render slots (``503``); hostile input; H.265."""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry
from werkzeug.datastructures import Headers

from fixtures.make_fixtures import read_frame_number
from nvr.db.types import ListedRecording
from nvr.mp4.selection import wall_to_media
from nvr.thumbnail import LOOKAHEAD
from nvr.web.app import create_app
from nvr.web.thumb import Busy, ThumbnailCollector, Thumbnails
from tests.support.determinism import T0
from tests.support.paths import FIXTURES
from tests.support.web import SEC, Recorded, client, record, web_context

pytestmark = pytest.mark.usefixtures("inline_web_threads")

Gray = npt.NDArray[np.uint8]


def url(r: Recorded, stream: str = "main") -> str:
    return f"/api/cameras/{r.camera_uuid}/{stream}/thumb.jpg"


def gray(jpeg_or_mp4: bytes) -> list[tuple[int, Gray]]:
    """(pts, luma as 8-bit gray) of every picture in a JPEG or a ``.mp4``."""
    with av.open(io.BytesIO(jpeg_or_mp4), "r") as container:
        return [(int(f.pts or 0), cast(Gray, f.to_ndarray(format="gray")))
                for f in container.decode(video=0)]


def recording_at(r: Recorded, t: int) -> ListedRecording:
    (rec,) = [x for x in r.env.db.list_recordings_by_time(r.stream_id, t, t + 1)
              if x.start_time_90k <= t < x.end_time_90k]
    return rec


async def reference_frame(r: Recorded, t: int, stream: str = "main") -> tuple[int, Gray]:
    """The frame covering wall time ``t`` as PyAV decodes it from ``view.mp4`` of its
    recording, with its media offset."""
    rec = recording_at(r, t)
    resp = await client(r).get(f"/api/cameras/{r.camera_uuid}/{stream}/view.mp4",
                               query_string={"s": str(rec.recording_id)})
    assert resp.status_code == 200
    frames = gray(await resp.get_data())
    media = wall_to_media(rec, t - rec.start_time_90k)
    pts, picture = [(p, g) for p, g in frames if p <= media][-1]
    return pts, picture


async def thumb(r: Recorded, **query: str) -> tuple[bytes, Headers]:
    resp = await client(r).get(url(r), query_string=query)
    body = await resp.get_data()
    assert resp.status_code == 200, body
    assert resp.content_type == "image/jpeg"
    return body, resp.headers


def mean_abs_diff(a: Gray, b: Gray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ----------------------------------------------------------------------------- pictures


async def test_the_picture_at_a_time_is_the_frame_view_mp4_shows_there(
    recorded: Recorded, autojump_clock: object
) -> None:
    # 5.5 s into the first recording: mid-way through a group of 30 pictures
    t = recording_at(recorded, T0 + 10 * SEC).start_time_90k + 5 * SEC + SEC // 2
    jpeg, headers = await thumb(recorded, time90k=str(t))
    ((_, picture),) = gray(jpeg)
    assert picture.shape == (360, 640)
    _, expected = await reference_frame(recorded, t)
    assert mean_abs_diff(picture, expected) < 2.0
    assert read_frame_number(picture) == read_frame_number(expected)
    assert read_frame_number(picture) % 30 == 15  # not a key frame: decoded from one
    assert headers["X-Key-Frame"] == "false" and headers["X-Exact"] == "true"
    rec = recording_at(recorded, t)
    assert headers["X-Recording-Id"] == str(rec.recording_id)
    frame_at = int(headers["X-Frame-Time90k"])
    assert frame_at <= t < frame_at + 3000
    # revalidated each time: a redaction committed later must answer 404 at once
    assert headers["Cache-Control"] == "private, no-cache"


async def test_a_pointer_moving_forward_continues_the_last_decoder_with_the_same_pictures(
    recorded: Recorded, autojump_clock: object
) -> None:
    """Frames after one another in a recording (within a group of pictures and across a
    key frame) are decoded by the decoder the previous request left part-way; each
    picture is byte for byte the one a fresh decoder makes (a new app per request), and
    the frame ``view.mp4`` shows there. Going back starts a new decoder."""
    ctx = web_context(recorded)
    thumbs = ctx.thumbnails = Thumbnails()
    kept = create_app(ctx).test_client()
    start = recording_at(recorded, T0 + 10 * SEC).start_time_90k
    steps = [(5, False), (6, True), (9, True), (29, True), (30, True), (44, True),
             (12, False), (13, True), (13, True)]
    for n, (frame, continued) in enumerate(steps):
        t = start + frame * 3000 + 1500
        before = thumbs.stats.continued
        resp = await kept.get(url(recorded), query_string={"time90k": str(t)})
        assert resp.status_code == 200
        jpeg = await resp.get_data()
        fresh, _ = await thumb(recorded, time90k=str(t))
        assert jpeg == fresh, frame
        ((_, picture),) = gray(jpeg)
        if n in (0, 5):
            _, expected = await reference_frame(recorded, t)
            assert read_frame_number(picture) == read_frame_number(expected)
        # the last step asks for the same time again: the JPEG cache answers it
        assert thumbs.stats.continued - before == (continued and n != len(steps) - 1), frame
    assert len(thumbs.decoders) == 2  # the one left at 44, the one at 13


async def test_the_last_frame_of_a_recording_is_decoded_by_draining(
    recorded: Recorded, autojump_clock: object
) -> None:
    """No frame follows a recording's last one to push it out of a frame-threaded
    decoder: that one is drained, and not kept."""
    ctx = web_context(recorded)
    thumbs = ctx.thumbnails = Thumbnails()
    kept = create_app(ctx).test_client()
    rec = recording_at(recorded, T0 + 10 * SEC)
    t = rec.end_time_90k - 1
    resp = await kept.get(url(recorded), query_string={"time90k": str(t)})
    assert resp.status_code == 200
    ((_, picture),) = gray(await resp.get_data())
    _, expected = await reference_frame(recorded, t)
    assert read_frame_number(picture) == read_frame_number(expected)
    # a frame-threaded decoder had to be drained for it (then it cannot go on)
    assert len(thumbs.decoders) == (0 if LOOKAHEAD else 1)


async def test_key_frame_asks_for_the_key_frame_at_or_before_the_time(
    recorded: Recorded, autojump_clock: object
) -> None:
    start = recording_at(recorded, T0 + 10 * SEC).start_time_90k
    t = start + 5 * SEC + SEC // 2
    jpeg, headers = await thumb(recorded, time90k=str(t), keyFrame="true")
    ((_, picture),) = gray(jpeg)
    _, expected = await reference_frame(recorded, start + 5 * SEC)
    assert read_frame_number(picture) == read_frame_number(expected)
    assert read_frame_number(picture) % 30 == 0
    assert headers["X-Key-Frame"] == "true" and headers["X-Exact"] == "false"
    assert int(headers["X-Frame-Time90k"]) == start + 5 * SEC
    # the same picture asked for exactly shares its ETag (and its cache entry)
    _, exact = await thumb(recorded, time90k=str(start + 5 * SEC))
    assert exact["ETag"] == headers["ETag"] and exact["X-Exact"] == "true"


@pytest.mark.parametrize(("width", "size"), [
    (None, (640, 360)), ("320", (320, 180)), ("101", (101, 57)), ("1", (1, 1)),
    ("640", (640, 360)), ("5000", (640, 360)), ("16384", (640, 360)),
])
async def test_the_jpeg_has_the_asked_width_and_the_picture_aspect(
    recorded: Recorded, autojump_clock: object, width: str | None, size: tuple[int, int]
) -> None:
    query = {"time90k": str(T0 + 30 * SEC)} | ({} if width is None else {"width": width})
    jpeg, _ = await thumb(recorded, **query)
    ((_, picture),) = gray(jpeg)
    assert picture.shape == (size[1], size[0])


async def test_a_scaled_thumbnail_is_the_scaled_frame(
    recorded: Recorded, autojump_clock: object
) -> None:
    t = T0 + 77 * SEC
    jpeg, _ = await thumb(recorded, time90k=str(t), width="320")
    ((_, picture),) = gray(jpeg)
    _, full = await reference_frame(recorded, t)
    halved = full.reshape(180, 2, 320, 2).mean(axis=(1, 3))
    assert mean_abs_diff(picture, halved.round().astype(np.uint8)) < 3.0


async def test_h265_recordings(tmp_path: Path, autojump_clock: object) -> None:
    r = await record(tmp_path, seconds=12, clip=str(FIXTURES / "hevc-640x360.mp4"))
    try:
        t = T0 + 7 * SEC + 10 * 3000  # frame 10 after a key frame (5 s clip, GOP 30)
        start = recording_at(r, t).start_time_90k
        jpeg, headers = await thumb(r, time90k=str(t))
        ((_, picture),) = gray(jpeg)
        _, expected = await reference_frame(r, t)
        assert picture.shape == (360, 640)
        assert mean_abs_diff(picture, expected) < 2.0
        assert read_frame_number(picture) == read_frame_number(expected)
        assert headers["X-Key-Frame"] == "false"
        assert start <= int(headers["X-Frame-Time90k"]) <= t
    finally:
        r.env.close()


# ----------------------------------------------------------------------------- caching


async def test_etag_names_recording_frame_and_size_and_304s(
    recorded: Recorded, autojump_clock: object
) -> None:
    c = client(recorded)
    t = T0 + 30 * SEC

    async def etag(time: int, **q: str) -> str:
        resp = await c.get(url(recorded), query_string={"time90k": str(time), **q})
        assert resp.status_code == 200
        return str(resp.headers["ETag"])

    first = await etag(t)
    assert first.startswith('"') and first.endswith('"')
    assert await etag(t) == first
    frame_at = int((await c.get(url(recorded), query_string={"time90k": str(t)}))
                   .headers["X-Frame-Time90k"])
    assert await etag(frame_at) == first  # the same frame from its start
    assert await etag(t + 3000) != first  # the next frame
    assert await etag(t, width="320") != first
    assert await etag(t, width="640") == first  # the picture's own width
    resp = await c.get(url(recorded), query_string={"time90k": str(t)},
                       headers={"If-None-Match": f'"x", W/{first}'})
    assert resp.status_code == 304
    assert await resp.get_data() == b""
    assert resp.headers["ETag"] == first
    resp = await c.get(url(recorded), query_string={"time90k": str(t)},
                       headers={"If-None-Match": '"other"'})
    assert resp.status_code == 200


async def test_a_redacted_time_is_404_even_for_a_browser_holding_its_picture(
    recorded: Recorded, autojump_clock: object
) -> None:
    """Issue 16: a picture from a range redacted later is never shown again: the answer
    tells the browser to revalidate, and the revalidation is 404, not 304."""
    c = client(recorded)
    t = T0 + 30 * SEC
    before = await c.get(url(recorded), query_string={"time90k": str(t)})
    assert before.status_code == 200
    etag = str(before.headers["ETag"])
    assert before.headers["Cache-Control"] == "private, no-cache"
    recorded.env.db.add_redaction(recorded.stream_id, t - SEC, t + SEC, "a face",
                                  user_id=None, username=None)
    for headers in ({"If-None-Match": etag}, {}):
        resp = await c.get(url(recorded), query_string={"time90k": str(t)}, headers=headers)
        assert resp.status_code == 404, headers
        assert "no recording" in await resp.get_data(as_text=True)
    # the recording it was part of is hidden whole until its bytes are cut
    resp = await c.get(url(recorded), query_string={"time90k": str(t + 2 * SEC)})
    assert resp.status_code == 404


async def test_a_304_and_a_cached_picture_render_nothing(
    recorded: Recorded, autojump_clock: object
) -> None:
    ctx = web_context(recorded)
    c = create_app(ctx).test_client()
    assert ctx.thumbnails is not None
    stats = ctx.thumbnails.stats
    q = {"time90k": str(T0 + 30 * SEC)}
    first = await c.get(url(recorded), query_string=q)
    assert (stats.renders, stats.hits) == (1, 0)
    again = await c.get(url(recorded), query_string=q)
    assert await again.get_data() == await first.get_data()
    assert (stats.renders, stats.hits) == (1, 1)
    resp = await c.get(url(recorded), query_string=q,
                       headers={"If-None-Match": first.headers["ETag"]})
    assert resp.status_code == 304
    assert (stats.renders, stats.hits) == (1, 1)


def test_cache_keeps_the_most_recently_used_within_its_bounds() -> None:
    cache = Thumbnails(max_bytes=100, max_entries=3)
    for name in "abc":
        cache.put(name, b"x" * 10)
    assert cache.get("a") == b"x" * 10  # now the most recent
    cache.put("d", b"y" * 10)  # fourth entry: the least recently used ("b") goes
    assert cache.get("b") is None
    assert [cache.get(n) is not None for n in "acd"] == [True, True, True]
    assert (len(cache), cache.cached_bytes) == (3, 30)
    cache.put("e", b"z" * 90)  # 120 bytes: the oldest go until it fits
    assert (len(cache), cache.cached_bytes) == (2, 100)
    assert cache.get("d") is not None and cache.get("e") is not None
    cache.put("huge", b"h" * 101)  # larger than the whole cache: not kept
    assert cache.get("huge") is None and cache.cached_bytes == 100
    cache.put("e", b"z")  # replacing an entry counts its new size
    assert cache.cached_bytes == 11


async def test_cached_bytes_stay_bounded_over_many_pictures(
    recorded: Recorded, autojump_clock: object
) -> None:
    ctx = web_context(recorded)
    ctx.thumbnails = Thumbnails(max_bytes=40_000, max_entries=4)
    c = create_app(ctx).test_client()
    for i in range(10):
        resp = await c.get(url(recorded), query_string={"time90k": str(T0 + i * SEC),
                                                        "width": "160"})
        assert resp.status_code == 200
        assert ctx.thumbnails.cached_bytes <= 40_000 and len(ctx.thumbnails) <= 4
    assert ctx.thumbnails.stats.renders == 10


# ----------------------------------------------------------------------------- render slots


async def test_renders_beyond_the_slots_get_503_at_once_and_the_same_picture_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    thumbs = Thumbnails(max_renders=1)
    release = trio.Event()
    results: dict[str, object] = {}

    async def slow() -> bytes:
        await release.wait()
        return b"jpeg"

    async def make(name: str, etag: str) -> None:
        try:
            results[name] = await thumbs.make(etag, slow)
        except Busy as e:
            results[name] = e

    async with trio.open_nursery() as nursery:
        nursery.start_soon(make, "first", "a")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(make, "same", "a")
        nursery.start_soon(make, "other", "b")
        await trio.testing.wait_all_tasks_blocked()
        assert isinstance(results.pop("other"), Busy)  # refused without waiting
        assert trio.current_time() == 0
        release.set()
    assert results == {"first": b"jpeg", "same": b"jpeg"}
    assert (thumbs.stats.renders, thumbs.stats.hits, thumbs.stats.busy) == (1, 1, 1)
    assert await thumbs.make("b", slow) == b"jpeg"  # a slot is free again


async def test_a_failed_render_frees_its_slot(autojump_clock: object) -> None:
    thumbs = Thumbnails(max_renders=1)

    async def broken() -> bytes:
        raise RuntimeError("decoder")

    with pytest.raises(RuntimeError):
        await thumbs.make("a", broken)

    async def fine() -> bytes:
        return b"ok"

    assert await thumbs.make("a", fine) == b"ok"


async def test_no_free_slot_is_503_with_retry_after(
    recorded: Recorded, autojump_clock: object
) -> None:
    ctx = web_context(recorded)
    ctx.thumbnails = Thumbnails(max_renders=0)
    c = create_app(ctx).test_client()
    resp = await c.get(url(recorded), query_string={"time90k": str(T0 + 30 * SEC)})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert await resp.get_data(as_text=True) == "0 thumbnails are being made; try again\n"


# ----------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(("query", "status", "reason"), [
    ({}, 400, "time90k is required"),
    ({"time90k": ""}, 400, "time90k must be an integer"),
    ({"time90k": "abc"}, 400, "time90k must be an integer"),
    ({"time90k": "1.5"}, 400, "time90k must be an integer"),
    ({"time90k": "-1"}, 400, "time90k must be between"),
    ({"time90k": "9" * 19}, 400, "time90k must be between"),
    ({"time90k": "9" * 400}, 400, "time90k has more than 19 digits"),
    ({"time90k": "١٢"}, 400, "time90k must be an integer"),
    ({"time90k": "0"}, 404, "no recording of"),
    ({"time90k": str(T0 - 1)}, 404, "no recording of"),
    ({"time90k": str(T0 + 203 * SEC)}, 404, "no recording of"),  # the gap between runs
    ({"time90k": str(T0 + 10_000 * SEC)}, 404, "no recording of"),
    ({"time90k": str(T0 + SEC), "width": "0"}, 400, "width must be between 1 and 16384"),
    ({"time90k": str(T0 + SEC), "width": "-320"}, 400, "width must be between"),
    ({"time90k": str(T0 + SEC), "width": "16385"}, 400, "width must be between"),
    ({"time90k": str(T0 + SEC), "width": "9" * 30}, 400, "width has more than"),
    ({"time90k": str(T0 + SEC), "width": "wide"}, 400, "width must be an integer"),
    ({"time90k": str(T0 + SEC), "keyFrame": "1"}, 400, "keyFrame must be true or false"),
])
async def test_bad_requests_get_a_reason(
    recorded: Recorded, autojump_clock: object, query: dict[str, str], status: int,
    reason: str,
) -> None:
    resp = await client(recorded).get(url(recorded), query_string=query)
    text = await resp.get_data(as_text=True)
    assert resp.status_code == status, text
    assert text.startswith(reason) and text.count("\n") == 1
    assert resp.content_type == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", [
    "/api/cameras/00000000-0000-0000-0000-000000000000/main/thumb.jpg",
    "/api/cameras/not-a-uuid/main/thumb.jpg",
    "/api/cameras/{uuid}/sub/thumb.jpg",
    "/api/cameras/{uuid}/nonsense/thumb.jpg",
])
async def test_unknown_cameras_and_streams_are_404(
    recorded: Recorded, autojump_clock: object, path: str
) -> None:
    resp = await client(recorded).get(path.format(uuid=recorded.camera_uuid),
                                      query_string={"time90k": str(T0 + SEC)})
    assert resp.status_code == 404
    assert (await resp.get_data(as_text=True)).count("\n") == 1


async def test_head_is_answered(recorded: Recorded, autojump_clock: object) -> None:
    # (the server drops the body: tests/integration/test_thumbnail_daemon.py)
    resp = await client(recorded).head(url(recorded), query_string={"time90k": str(T0 + SEC)})
    assert resp.status_code == 200
    assert resp.content_type == "image/jpeg"
    assert resp.headers["ETag"].startswith('"t1.')


def test_metrics_show_the_cache_and_the_slots() -> None:
    thumbs = Thumbnails()
    thumbs.put("a", b"x" * 100)
    thumbs.stats.hits, thumbs.stats.renders, thumbs.stats.busy = 3, 2, 1
    thumbs.stats.continued = 1
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ThumbnailCollector(thumbs))
    values = {s.name: s.value for m in registry.collect() for s in m.samples}
    assert values == {
        "nvr_thumbnail_hits_total": 3, "nvr_thumbnail_renders_total": 2,
        "nvr_thumbnail_busy_total": 1, "nvr_thumbnail_continued_total": 1,
        "nvr_thumbnail_cache_bytes": 100, "nvr_thumbnail_cache_entries": 1,
        "nvr_thumbnail_decoders": 0,
    }
