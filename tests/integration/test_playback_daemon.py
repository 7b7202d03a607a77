"""Playback from the real, recording daemon (issue 4): a growing recording served while the
GStreamer test camera is still being recorded into it, and ETags across a restart of
``nvr run``.

The camera plays the 640x360 fixture clip (``/file/h264-640x360``, looped, 30 fps, a key
frame every second, each picture showing its frame number), so a served file must hold
frames 3000 ticks apart showing consecutive frame numbers.
"""

from __future__ import annotations

import io
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import trio

from tests.support.daemon import (
    CameraSpec,
    Layout,
    committed_recordings,
    create_db,
    running,
)
from tests.support.http import view_config
from tests.support.media import decoded_frames, ffprobe
from tests.support.process import NvrProcess
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp

CLIP_PATH = "file/h264-640x360"
CLIP_FRAMES = 600
FRAME_90K = 3000


def check_consecutive(frames: list[tuple[int, int, int]]) -> None:
    """Frames (pts, number, width) as the camera sent them: 1/30 s apart from 0, showing
    consecutive frame numbers of the looped clip."""
    assert [pts for pts, _, _ in frames] == [i * FRAME_90K for i in range(len(frames))]
    first = frames[0][1]
    assert [n for _, n, _ in frames] == [(first + i) % CLIP_FRAMES for i in range(len(frames))]
    assert {w for _, _, w in frames} == {640}


def recordings_url(camera_uuid: str) -> str:
    # split90k=1: one row per recording (no coalescing)
    return f"/api/cameras/{camera_uuid}/main/recordings?split90k=1"


def view_url(camera_uuid: str, query: str) -> str:
    """``query``: an ``s=`` value, or a whole query string when it holds ``=``."""
    return f"/api/cameras/{camera_uuid}/main/view.mp4?{query if '=' in query else 's=' + query}"


#: views of a committed recording whose ETags must survive a restart: the whole
#: recording, from mid-GOP (an edit list), and with the timestamp subtitle track
SAME = ["0", "0.45000-", "s=0.45000-60000&ts=true"]


# -- a growing recording, in-process ---------------------------------------------------------




async def poll_json(
    client: httpx.AsyncClient, url: str, pred: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """GETs ``url`` every 50 ms until ``pred`` holds for its JSON (bound it with fail_after)."""
    while True:
        resp = await client.get(url)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if pred(body):
            return body
        await trio.sleep(0.05)


def growing_row(body: dict[str, Any], min_samples: int = 1) -> dict[str, Any] | None:
    rows = [r for r in body["recordings"] if r.get("growing")]
    assert len(rows) <= 1
    return rows[0] if rows and rows[0]["videoSamples"] >= min_samples else None


async def test_a_growing_recording_is_served_and_decodes(
    tmp_path: Path, shared_rtsp_server: RtspServer
) -> None:
    layout = create_db(tmp_path, {"cam": CameraSpec(shared_rtsp_server.url(CLIP_PATH))})
    # a long rotation: the first recording keeps growing during the whole test
    config = view_config(layout.config(rotate_interval_sec=60))
    async with running(config) as d:
        cam = str(next(iter(d.db.cameras.values())).uuid)
        async with httpx.AsyncClient(base_url=d.http_addresses[0], timeout=10) as client:
            with trio.fail_after(15):
                body = await poll_json(
                    client, recordings_url(cam), lambda b: growing_row(b, 45) is not None
                )
            row = growing_row(body)
            assert row is not None
            assert row["startId"] == 0 and row["firstUncommitted"] == 0
            assert "endId" not in row and "hasTrailingZero" not in row
            assert str(row["videoSampleEntryId"]) in body["videoSampleEntries"]
            assert body["videoSampleEntries"][str(row["videoSampleEntryId"])]["width"] == 640
            s = f"{row['startId']}@{row['openId']}"
            first = await client.get(view_url(cam, s))
            assert first.status_code == 200, first.text
            assert first.headers["Cache-Control"] == "private, no-cache"
            # its Last-Modified is no validator: the content changes within that second
            resumed = await client.get(view_url(cam, s), headers={
                "Range": "bytes=0-9", "If-Range": first.headers["Last-Modified"]})
            assert resumed.status_code == 200
            frames = await trio.to_thread.run_sync(
                lambda: decoded_frames(first.content, ignore_editlist=True)
            )
            # at least the frames listed before the request, all decodable, in order
            assert len(frames) >= row["videoSamples"]
            check_consecutive(frames)
            with av.open(io.BytesIO(first.content)) as container:
                assert container.streams.video[0].frames == len(frames)
            probe = await trio.to_thread.run_sync(ffprobe, first.content)
            assert float(probe["format"]["duration"]) == pytest.approx(  # type: ignore[index]
                len(frames) * FRAME_90K / 90_000, abs=1e-6
            )
            # it keeps growing: the same s= later is a longer file with another ETag
            with trio.fail_after(10):
                await poll_json(
                    client,
                    recordings_url(cam),
                    lambda b: (g := growing_row(b)) is not None
                    and g["videoSamples"] > len(frames) + 30,
                )
            later = await client.get(view_url(cam, s))
            assert later.status_code == 200
            assert later.headers["ETag"] != first.headers["ETag"]
            assert len(later.content) > len(first.content)
            later_frames = await trio.to_thread.run_sync(
                lambda: decoded_frames(later.content, ignore_editlist=True)
            )
            assert later_frames[: len(frames)] == frames
            check_consecutive(later_frames)
            # an open id that did not write it
            other = await client.get(view_url(cam, f"0@{row['openId'] + 1}"))
            assert other.status_code == 404


# -- ETags across a restart of nvr run -------------------------------------------------------


class NvrRun(NvrProcess):
    """``nvr run`` of ``layout`` with a port-0 bind granting ``viewVideo``."""

    def __init__(self, layout: Layout, tmp_path: Path, name: str, rotate_sec: int) -> None:
        config = tmp_path / f"{name}.toml"
        config.write_text(
            f'rotate_interval_sec = {rotate_sec}\ntime_zone = "UTC"\n'
            '[[binds]]\naddress = "127.0.0.1:0"\nallow_unauthenticated = ["viewVideo"]\n'
        )
        super().__init__(layout.db_dir, config, tmp_path / f"{name}.log")
        self.url = ""

    def wait_serving(self) -> str:
        self.url = super().wait_serving()
        return self.url


def get_json(url: str) -> dict[str, Any]:
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_etag_survives_a_restart_and_follows_the_content(
    tmp_path: Path, shared_rtsp_server: RtspServer
) -> None:
    layout = create_db(tmp_path, {"cam": CameraSpec(shared_rtsp_server.url(CLIP_PATH))})
    first = NvrRun(layout, tmp_path, "first", rotate_sec=3)
    try:
        base = first.wait_serving()
        cam = get_json(base + "/api/")["cameras"][0]["uuid"]

        def committed_and_growing() -> tuple[dict[str, Any], dict[str, Any]] | None:
            rows = get_json(base + recordings_url(cam))["recordings"]
            done = [r for r in rows if not r.get("growing") and "firstUncommitted" not in r]
            growing = [r for r in rows if r.get("growing") and r["videoSamples"] > 0]
            return (done[0], growing[0]) if done and growing else None

        # recording 0 committed at rotation, recording 1 just started growing
        done, growing = first.wait_until(committed_and_growing, 20, "a committed recording")
        assert (done["startId"], growing["startId"]) == (0, 1)
        committed_before = [httpx.get(base + view_url(cam, q), timeout=10) for q in SAME]
        growing_before = httpx.get(base + view_url(cam, "1"), timeout=10)
        # a crash: recording 1 is never committed, so the next start reuses its id
        first.stop(signal.SIGKILL)
    finally:
        first.close()
    assert [r.status_code for r in [*committed_before, growing_before]] == [200] * 4
    assert [r.recording_id for r in committed_recordings(layout.db_dir)] == [0]

    second = NvrRun(layout, tmp_path, "second", rotate_sec=3)
    try:
        base = second.wait_serving()
        # the committed recording: the same ETag and bytes from a new process (another
        # port, another hash seed)
        for query, before in zip(SAME, committed_before, strict=True):
            after = httpx.get(base + view_url(cam, query), timeout=10)
            assert after.status_code == 200
            assert after.headers["ETag"] == before.headers["ETag"], query
            assert after.headers["Last-Modified"] == before.headers["Last-Modified"]
            assert after.content == before.content
            cached = httpx.get(base + view_url(cam, query), timeout=10,
                               headers={"If-None-Match": before.headers["ETag"]})
            assert cached.status_code == 304
        assert len({r.headers["ETag"] for r in committed_before}) == len(SAME)
        check_consecutive(decoded_frames(committed_before[0].content, ignore_editlist=True))
        # recording 1 is now another open's: the same s= names other content
        old_etag = growing_before.headers["ETag"]
        row = second.wait_until(
            lambda: next((r for r in get_json(base + recordings_url(cam))["recordings"]
                          if r["startId"] == 1 and r["videoSamples"] > 0), None),
            timeout=15,
            what="recording 1 of the new open",
        )
        assert row["openId"] != growing["openId"]
        gone = httpx.get(base + view_url(cam, f"1@{growing['openId']}"), timeout=10)
        assert gone.status_code == 404, gone.text
        reused = httpx.get(base + view_url(cam, "1"), timeout=10)
        assert reused.status_code == 200
        assert reused.headers["ETag"] != old_etag
        check_consecutive(decoded_frames(reused.content, ignore_editlist=True))
        stale = httpx.get(base + view_url(cam, "1"), timeout=10,
                          headers={"If-None-Match": old_etag})
        assert stale.status_code == 200
        assert second.stop(signal.SIGTERM) == 0, second.log
    finally:
        second.close()
