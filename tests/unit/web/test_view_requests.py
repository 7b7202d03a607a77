"""Request handling of the media routes that the playback integration tests found lax:
non-ASCII digits in ``s=``, ``Range`` and init ids; ``If-None-Match`` comparison; HEAD;
``If-Range`` dates of growing recordings."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.ingest.source import OpenOptions
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from nvr.web.app import create_app
from nvr.web.context import WebContext
from nvr.web.view import SampleReader, _Unsatisfiable, parse_range, parse_s
from tests.support.determinism import T0
from tests.support.web import CLIP, SEC, VIEW, Recorded, client

pytestmark = pytest.mark.usefixtures("inline_web_threads")


@pytest.mark.parametrize("text", ["٣", "0-٢", "0@٢", "0.٤٥٠٠٠-", "١٢"])
def test_s_digits_are_ascii(text: str) -> None:
    with pytest.raises(Exception, match="bad s="):
        parse_s(text)


def test_range_digits_are_ascii() -> None:
    assert parse_range("bytes=٠-٩", 100) is None  # ignored: the whole body
    assert parse_range("bytes=0-9", 100) == (0, 10)
    with pytest.raises(_Unsatisfiable):
        parse_range("bytes=100-", 100)


async def test_unicode_digits_are_refused_over_the_app(
    recorded: Recorded, autojump_clock: object
) -> None:
    c = client(recorded)
    url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
    r = await c.get(url, query_string={"s": "٢"})
    assert r.status_code == 400
    assert "bad s=" in await r.get_data(as_text=True)
    assert (await c.get("/api/init/٢.mp4")).status_code == 404
    assert (await c.get("/api/init/2.mp4")).status_code == 200


async def test_if_none_match_is_a_weak_comparison_and_takes_a_star(
    recorded: Recorded, autojump_clock: object
) -> None:
    c = client(recorded)
    url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
    r = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=0-0"})
    etag = r.headers["ETag"]
    for header in (etag, f"W/{etag}", f'"x", W/{etag}', "*"):
        r = await c.get(url, query_string={"s": "0"}, headers={"If-None-Match": header})
        assert (r.status_code, r.headers["ETag"]) == (304, etag), header
    r = await c.get(url, query_string={"s": "0"},
                    headers={"If-None-Match": '"x"', "Range": "bytes=0-9"})
    assert r.status_code == 206
    # If-Range needs a strong match: a weak validator sends the whole body
    r = await c.get(url, query_string={"s": "0"},
                    headers={"If-Range": f"W/{etag}", "Range": "bytes=0-9"})
    assert r.status_code == 200


async def test_head_has_the_get_headers_and_reads_no_sample_file(
    recorded: Recorded, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    pread = SampleReader._pread

    def counting(self: SampleReader, cid: int, offset: int, length: int) -> bytes:
        reads.append(length)
        return pread(self, cid, offset, length)

    monkeypatch.setattr(SampleReader, "_pread", counting)
    c = client(recorded)
    url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
    head = await c.head(url, query_string={"s": "0-1"})
    assert head.status_code == 200
    assert await head.get_data() == b""
    assert reads == []
    # (the test client recomputes Content-Length from the body it got: the integration
    # tests check the real one)
    get = await c.get(url, query_string={"s": "0-1"}, headers={"Range": "bytes=0-0"})
    for name in ("ETag", "Last-Modified", "Content-Type", "Accept-Ranges"):
        assert head.headers[name] == get.headers[name]
    head = await c.head(url, query_string={"s": "0-1"}, headers={"Range": "bytes=100-"})
    assert head.status_code == 206
    size = int(get.headers["Content-Range"].split("/")[1])
    assert head.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    assert reads == []  # (the GET's byte 0 is in the header)


async def test_if_range_dates_are_not_validators_of_a_growing_recording(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A growing recording changes within the second its Last-Modified names (RFC 9110
    8.8.2.2: such a date is weak), so If-Range with it sends the whole body, and
    If-Modified-Since with it gets no 304; its ETag still validates."""
    with inline_blocking():
        create_env(tmp_path, streams=1, flush_if_sec=0)
        clocks = SimulatedClocks(T0)
        env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
        opener = ReplayOpener(clocks, {"rtsp://cam0/main": [Session(load_packets(CLIP))]})
        syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
        streamer = Streamer(db=env.db, stream_id=env.stream_ids[0], sdir=env.sdir, sink=syncer,
                            opener=opener, clocks=clocks,
                            options=StreamerOptions(jitter=0, rotate_interval=60 * SEC),
                            open_options=OpenOptions())
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(syncer.run)
                nursery.start_soon(streamer.run)
                await trio.sleep(5.05)
                cam = env.db.cameras[env.db.streams[env.stream_ids[0]].camera_id]
                c = create_app(WebContext(db=env.db, dirs={env.dir_id: env.sdir}, clocks=clocks,
                                          bind=VIEW, time_zone_name="UTC")).test_client()
                url = f"/api/cameras/{cam.uuid}/main/view.mp4"
                r = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=0-9"})
                assert (r.status_code, r.headers["Cache-Control"]) == (206, "private, no-cache")
                etag, date = r.headers["ETag"], r.headers["Last-Modified"]
                r = await c.get(url, query_string={"s": "0"},
                                headers={"Range": "bytes=0-9", "If-Range": date})
                assert r.status_code == 200
                r = await c.get(url, query_string={"s": "0"},
                                headers={"Range": "bytes=0-9", "If-Modified-Since": date})
                assert r.status_code == 206
                r = await c.get(url, query_string={"s": "0"},
                                headers={"Range": "bytes=0-9", "If-Range": etag})
                assert r.status_code == 206
                nursery.cancel_scope.cancel()
        finally:
            env.close()


async def test_if_range_dates_validate_committed_recordings(
    recorded: Recorded, autojump_clock: object
) -> None:
    c = client(recorded)
    url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
    r = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=0-9"})
    date = r.headers["Last-Modified"]
    r = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=0-9", "If-Range": date})
    assert r.status_code == 206
