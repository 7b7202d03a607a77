"""Edges of the media routes that independent checks found (issue 12, point 14):
``If-Modified-Since``, and the ``Content-Type`` of a file with the timestamp subtitle
track."""

from __future__ import annotations

import email.utils

import pytest
import trio.testing

from tests.support.web import Recorded, client, inline_web_threads, recorded

__all__ = ["inline_web_threads", "recorded"]  # fixtures

pytestmark = pytest.mark.usefixtures("inline_web_threads")

async def test_if_modified_since_answers_304_from_last_modified_on(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    c = client(recorded)
    url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
    first = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=0-0"})
    last_modified = first.headers["Last-Modified"]
    stamp = email.utils.parsedate_to_datetime(last_modified).timestamp()

    def date(delta: int) -> str:
        return email.utils.formatdate(stamp + delta, usegmt=True)

    for since, status in [(last_modified, 304), (date(1), 304), (date(-1), 200),
                          ("yesterday", 200), ("", 200)]:
        r = await c.get(url, query_string={"s": "0"}, headers={"If-Modified-Since": since})
        assert r.status_code == status, since
        if status == 304:
            assert await r.get_data() == b""
            assert r.headers["ETag"] == first.headers["ETag"]
    # If-None-Match, when present, decides instead (RFC 9110 13.1.3)
    r = await c.get(url, query_string={"s": "0"},
                    headers={"If-Modified-Since": last_modified, "If-None-Match": '"other"'})
    assert r.status_code == 200
    # a file without Last-Modified (an init segment) ignores it
    entry_id = next(iter(recorded.env.db.video_sample_entries))
    r = await c.get(f"/api/init/{entry_id}.mp4", headers={"If-Modified-Since": date(10**6)})
    assert r.status_code == 200


async def test_timestamp_subtitles_are_in_the_content_type(
    recorded: Recorded, autojump_clock: trio.testing.MockClock
) -> None:
    c = client(recorded)
    url = f"/api/cameras/{recorded.camera_uuid}/main/view.mp4"
    plain = await c.get(url, query_string={"s": "0"}, headers={"Range": "bytes=0-0"})
    assert plain.content_type == 'video/mp4; codecs="avc1.64001e"'
    ts = await c.get(url, query_string={"s": "0", "ts": "true"}, headers={"Range": "bytes=0-0"})
    assert ts.content_type == 'video/mp4; codecs="avc1.64001e, tx3g"'
    assert ts.headers["ETag"] != plain.headers["ETag"]
