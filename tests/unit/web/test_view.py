"""view.mp4 / view.m4s / init over a recorded database: decodable bodies, ranges,
conditional requests, and one-line 4xx reasons for bad s= values."""

from __future__ import annotations

import io
import random
import re

import av
import pytest

from nvr.db.database import Database
from tests.support.web import SEC, Recorded, client

pytestmark = pytest.mark.usefixtures("inline_web_threads")


def frames_in(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as c:
        return sum(1 for _ in c.decode(video=0))


def url(r: Recorded, kind: str = "mp4") -> str:
    return f"/api/cameras/{r.camera_uuid}/main/view.{kind}"


async def test_view_mp4_of_a_whole_run_decodes(recorded: Recorded, autojump_clock: object) -> None:
    recs = recorded.env.db.list_recordings_by_time(recorded.stream_id, 0, 1 << 62)
    c = client(recorded)
    resp = await c.get(url(recorded), query_string={"s": "0-2"}, headers={"Range": "bytes=0-9"})
    assert resp.status_code == 206
    assert resp.content_type == 'video/mp4; codecs="avc1.64001e"'
    size = int(resp.headers["Content-Range"].split("/")[1])
    # Quart's test client buffers a response's chunks in a small channel it only drains
    # once the app is done, so bodies over ~8 MiB are fetched in ranges here.
    step = 4 << 20
    parts = []
    for a in range(0, size, step):
        r = await c.get(url(recorded), query_string={"s": "0-2"},
                        headers={"Range": f"bytes={a}-{min(size, a + step) - 1}"})
        parts.append(await r.get_data())
    body = b"".join(parts)
    assert len(body) == size
    assert frames_in(body) == sum(r.video_samples for r in recs[:3])
    assert re.fullmatch(r'"[0-9a-f]+"', resp.headers["ETag"])
    assert resp.headers["Content-Disposition"] == 'inline; filename="20231114221400-cam0-main.mp4"'
    assert resp.headers["Cache-Control"] == "private, no-cache"


async def test_whole_committed_recordings_are_laid_out_without_reading_an_index(
    recorded: Recorded, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layout (headers and the file's first bytes) of whole committed recordings comes
    from their rows' stored summaries: no index is read. A segment that cuts into its
    recording reads that one index; the tables, once a range covers them, read theirs."""
    reads: list[int] = []
    real = Database.get_video_index

    def counting(self: Database, cid: int) -> bytes:
        reads.append(cid)
        return real(self, cid)

    monkeypatch.setattr(Database, "get_video_index", counting)
    c = client(recorded)
    for kind, s in (("mp4", "0-2"), ("m4s", "0-1"), ("mp4.txt", "0-2")):
        r = await c.get(url(recorded, kind), query_string={"s": s},
                        headers={"Range": "bytes=0-7"})
        assert r.status_code in (200, 206)
        await r.get_data()
        assert reads == [], kind
    cid = recorded.stream_id << 32 | 1
    r = await c.get(url(recorded), query_string={"s": f"0-1.0-{150 * SEC}"},
                    headers={"Range": "bytes=0-7"})
    await r.get_data()
    assert reads == [cid]  # recording 1 is cut at 30 s of its 60
    reads.clear()
    r = await c.get(url(recorded), query_string={"s": "0-1"})
    assert len(await r.get_data()) == int(r.headers["Content-Length"])
    assert set(reads) == {cid - 1, cid}


async def test_relative_range_starts_and_ends_where_asked(recorded: Recorded,
                                                          autojump_clock: object) -> None:
    # 1.5 s to 4 s into recording 0 (30 fps, a key frame every second): frames from the
    # key frame at 1 s are sent, the edit list starts playback at 1.5 s.
    resp = await client(recorded).get(url(recorded),
                                      query_string={"s": f"0.{3 * SEC // 2}-{4 * SEC}"})
    body = await resp.get_data()
    with av.open(io.BytesIO(body)) as c:
        stream = c.streams.video[0]
        assert stream.duration == 5 * SEC // 2  # the edit: 2.5 s
        assert sum(1 for _ in c.demux(video=0) if _.size) == 90  # packets from 1 s to 4 s


async def test_ranges_reassemble_and_conditionals(recorded: Recorded,
                                                  autojump_clock: object) -> None:
    c = client(recorded)
    full_resp = await c.get(url(recorded), query_string={"s": "0-1"})
    full = await full_resp.get_data()
    etag = full_resp.headers["ETag"]
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(full)), 5))
    parts = []
    for a, b in zip([0, *cuts], [*cuts, len(full)], strict=True):
        r = await c.get(url(recorded), query_string={"s": "0-1"},
                        headers={"Range": f"bytes={a}-{b - 1}"})
        assert r.status_code == 206
        assert r.headers["Content-Range"] == f"bytes {a}-{b - 1}/{len(full)}"
        parts.append(await r.get_data())
    assert b"".join(parts) == full
    r = await c.get(url(recorded), query_string={"s": "0-1"}, headers={"Range": "bytes=-100"})
    assert await r.get_data() == full[-100:]
    r = await c.get(url(recorded), query_string={"s": "0-1"},
                    headers={"Range": f"bytes={len(full)}-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(full)}"
    r = await c.get(url(recorded), query_string={"s": "0-1"}, headers={"If-None-Match": etag})
    assert r.status_code == 304
    r = await c.get(url(recorded), query_string={"s": "0-1"},
                    headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200 and len(await r.get_data()) == len(full)


async def test_m4s_with_its_init_segment_decodes(recorded: Recorded,
                                                 autojump_clock: object) -> None:
    c = client(recorded)
    r = await c.get(url(recorded, "m4s"), query_string={"s": "1"})
    assert r.status_code == 200
    assert r.headers["X-Prev-Media-Duration"] == str(120 * SEC)
    assert r.headers["X-Runs"] == "1"
    media = await r.get_data()
    init = await c.get("/api/init/2.mp4")
    assert init.status_code == 200 and init.headers["X-Aspect"] == "16:9"
    assert frames_in(await init.get_data() + media) == 1800
    txt = await c.get("/api/init/2.mp4.txt")
    assert "moov" in await txt.get_data(as_text=True)


async def test_txt_twin_describes_the_file(recorded: Recorded, autojump_clock: object) -> None:
    r = await client(recorded).get(url(recorded, "mp4.txt"), query_string={"s": "0"})
    text = await r.get_data(as_text=True)
    assert r.status_code == 200 and "mdat" in text and "slices:" in text


@pytest.mark.parametrize(
    ("s", "status", "reason"),
    [
        ("abc", 400, "bad s="),
        ("3-1", 400, "end id before start id"),
        ("0.500-100", 400, "reversed"),
        ("99", 404, "recording 99"),
        ("0@999", 404, "written by open"),
        ("99999999999999999999", 400, "out of range"),
        ("0.999999999-", 400, "selects no video"),
    ],
)
async def test_bad_s_values(recorded: Recorded, autojump_clock: object, s: str, status: int,
                            reason: str) -> None:
    r = await client(recorded).get(url(recorded), query_string={"s": s})
    assert r.status_code == status
    text = await r.get_data(as_text=True)
    assert reason in text and text.count("\n") == 1


async def test_missing_s_and_unknown_entry(recorded: Recorded, autojump_clock: object) -> None:
    c = client(recorded)
    assert (await c.get(url(recorded))).status_code == 400
    assert (await c.get("/api/init/99.mp4")).status_code == 404
    assert (await c.get("/api/init/x.mp4")).status_code == 404
    assert (await c.get(url(recorded, "avi"), query_string={"s": "0"})).status_code == 404


@pytest.mark.parametrize("kind", ["mp4", "m4s"])
async def test_a_file_redacted_later_is_404_even_for_a_browser_holding_it(
    recorded: Recorded, autojump_clock: object, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Issue 16: video is ``no-cache`` (kept, revalidated before each use). An unchanged
    file is a 304 that reads no sample byte; once a redaction covering it commits, the
    same If-None-Match is 404, and so is a Range with If-Range."""
    from nvr.web.view import SampleReader

    c = client(recorded)
    q = {"s": "1"}
    first = await c.get(url(recorded, kind), query_string=q)
    assert first.status_code == 200
    etag = str(first.headers["ETag"])
    assert first.headers["Cache-Control"] == "private, no-cache"

    async def no_read(*args: object) -> bytes:
        raise AssertionError("a 304 read a sample byte")

    with monkeypatch.context() as m:
        m.setattr(SampleReader, "__call__", no_read)
        again = await c.get(url(recorded, kind), query_string=q,
                            headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert (again.headers["ETag"], again.headers["Cache-Control"]) == (
            etag, "private, no-cache")
        assert await again.get_data() == b""
    part = await c.get(url(recorded, kind), query_string=q,
                       headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (part.status_code, await part.get_data()) == (206, (await first.get_data())[:10])

    r1 = recorded.env.db.list_recordings_by_id(recorded.stream_id, 1, 2)[0]
    mid = (r1.start_time_90k + r1.end_time_90k) // 2
    recorded.env.db.add_redaction(recorded.stream_id, mid, mid + SEC, "a face",
                                  user_id=None, username=None)
    for headers in ({"If-None-Match": etag}, {"Range": "bytes=0-9", "If-Range": etag},
                    {"If-Modified-Since": str(first.headers["Last-Modified"])}, {}):
        resp = await c.get(url(recorded, kind), query_string=q, headers=headers)
        assert resp.status_code == 404, headers
        assert "does not exist" in await resp.get_data(as_text=True)
    # a neighbour the range does not touch is still a 304 for its own ETag
    r0 = await c.get(url(recorded, kind), query_string={"s": "0"})
    again = await c.get(url(recorded, kind), query_string={"s": "0"},
                        headers={"If-None-Match": str(r0.headers["ETag"])})
    assert again.status_code == 304


async def test_an_init_segment_is_kept_an_hour(recorded: Recorded,
                                               autojump_clock: object) -> None:
    """It shows no video and never changes: no reason to revalidate it."""
    entry_id = recorded.env.db.list_recordings_by_id(
        recorded.stream_id, 0, 1)[0].video_sample_entry_id
    resp = await client(recorded).get(f"/api/init/{entry_id}.mp4")
    assert (resp.status_code, resp.headers["Cache-Control"]) == (200, "private, max-age=3600")
