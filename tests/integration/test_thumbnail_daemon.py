"""``thumb.jpg`` from the real daemon recording the GStreamer test camera, over HTTP: the
picture at a time is the frame ``view.mp4`` shows there (H.264 and H.265 cameras), of a
growing recording (``no-cache``) and of a committed one, with ETag/``304``, scaling and a
``404`` outside any recording.

The camera plays a fixture clip (looped, 30 fps, a key frame every 30 frames, each picture
showing its frame number), so the test can tell which frame a thumbnail shows.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
import trio

from fixtures.make_fixtures import read_frame_number
from tests.support.daemon import CameraSpec, create_db, running
from tests.support.http import view_config
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp

SEC = 90_000
FRAME = 3000


def pictures(data: bytes) -> list[tuple[int, np.ndarray[Any, Any]]]:
    """(pts, gray picture) of every frame of a JPEG or ``.mp4``."""
    with av.open(io.BytesIO(data), "r") as container:
        return [(int(f.pts or 0), f.to_ndarray(format="gray"))
                for f in container.decode(video=0)]


async def rows(client: httpx.AsyncClient, cam: str,
               until: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """The stream's recordings, once ``until`` holds for them (polled; bound it)."""
    while True:
        resp = await client.get(f"/api/cameras/{cam}/main/recordings?split90k=1")
        assert resp.status_code == 200
        recs: list[dict[str, Any]] = resp.json()["recordings"]
        if recs and until(recs):
            return recs
        await trio.sleep(0.05)


async def check_picture(client: httpx.AsyncClient, cam: str, row: dict[str, Any],
                        offset: int) -> httpx.Response:
    """Asks for the picture ``offset`` (wall) into recording ``row`` and checks it is the
    frame ``view.mp4`` of that recording shows there."""
    t = row["startTime90k"] + offset
    resp = await client.get(f"/api/cameras/{cam}/main/thumb.jpg", params={"time90k": t})
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["X-Recording-Id"] == str(row["startId"])
    view = await client.get(f"/api/cameras/{cam}/main/view.mp4",
                            params={"s": f"{row['startId']}@{row['openId']}"})
    assert view.status_code == 200
    frames, ((_, picture),) = await trio.to_thread.run_sync(
        lambda: (pictures(view.content), pictures(resp.content)))
    frame_at = int(resp.headers["X-Frame-Time90k"]) - row["startTime90k"]
    # the wall and media clocks of a recording differ by at most 500 ppm
    expected = [g for pts, g in frames if abs(pts - frame_at) < FRAME // 2]
    assert len(expected) == 1
    assert picture.shape == expected[0].shape == (360, 640)
    assert read_frame_number(picture) == read_frame_number(expected[0])
    diff = np.abs(picture.astype(np.int16) - expected[0].astype(np.int16)).mean()
    assert diff < 2.0
    return resp


@pytest.mark.parametrize("clip", ["h264-640x360", "hevc-640x360"])
async def test_thumbnails_of_growing_and_committed_recordings(
    tmp_path: Path, shared_rtsp_server: RtspServer, clip: str
) -> None:
    layout = create_db(tmp_path, {"cam": CameraSpec(shared_rtsp_server.url(f"file/{clip}"))})
    async with running(view_config(layout.config(rotate_interval_sec=2))) as d:
        cam = str(next(iter(d.db.cameras.values())).uuid)
        async with httpx.AsyncClient(base_url=d.http_addresses[0], timeout=10) as client:
            with trio.fail_after(30):
                growing = (await rows(client, cam, lambda r: r[-1]["videoSamples"] >= 45))[-1]
            # mid-way through the second group of pictures of a growing recording
            resp = await check_picture(client, cam, growing, SEC + SEC // 2)
            assert resp.headers["Cache-Control"] == "private, no-cache"
            assert resp.headers["X-Key-Frame"] == "false"

            with trio.fail_after(30):
                first = (await rows(client, cam, lambda r: "firstUncommitted" not in r[0]))[0]
            resp = await check_picture(client, cam, first, SEC // 3)
            # committed too: a redaction committed later must turn the answer into 404
            assert resp.headers["Cache-Control"] == "private, no-cache"
            url = f"/api/cameras/{cam}/main/thumb.jpg"
            t = first["startTime90k"] + SEC // 3
            again = await client.get(url, params={"time90k": t},
                                     headers={"If-None-Match": resp.headers["ETag"]})
            assert again.status_code == 304 and again.content == b""
            small = await client.get(url, params={"time90k": t, "width": 160})
            assert small.status_code == 200 and small.headers["ETag"] != resp.headers["ETag"]
            ((_, thumb),) = await trio.to_thread.run_sync(pictures, small.content)
            assert thumb.shape == (90, 160)
            key = await client.get(url, params={"time90k": t, "keyFrame": "true"})
            assert key.headers["X-Key-Frame"] == "true"
            assert int(key.headers["X-Frame-Time90k"]) <= t
            head = await client.head(url, params={"time90k": t})
            assert head.status_code == 200 and head.content == b""
            assert head.headers["ETag"] == resp.headers["ETag"]
            missing = await client.get(url, params={"time90k": first["startTime90k"] - SEC})
            assert missing.status_code == 404
            assert missing.text.startswith("no recording of cam's main stream")
