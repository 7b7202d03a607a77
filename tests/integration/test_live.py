"""Live view over a real socket (issue 6): the daemon records the GStreamer test camera
and serves ``live.m4s``; a real WebSocket client (trio-websocket) receives one message
per frame from a key frame on, the fragments (each of decode time 0) decode after the init
segment with PyAV when appended one after another, a foreign ``Origin`` is refused at the
upgrade, and an unknown stream gets the error as a text message after it."""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import replace
from pathlib import Path

import av
import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from nvr.config import BindConfig
from tests.integration.test_daemon import FRAME_90K, ROTATE_SEC
from tests.support.daemon import CameraSpec, create_db, poll, running
from tests.support.media import appended_at_the_end, fragment_header
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp

VIEW = BindConfig(address="127.0.0.1:0", allow_unauthenticated=("viewVideo",))


def parse(message: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    return dict(line.split(": ", 1) for line in head.decode().split("\r\n")), body


async def test_live_frames_over_a_real_websocket_decode(
    tmp_path: Path, shared_rtsp_server: RtspServer
) -> None:
    layout = create_db(tmp_path, {"live": CameraSpec(shared_rtsp_server.url("live"))})
    sid = layout.stream_ids["live"]
    config = replace(layout.config(rotate_interval_sec=ROTATE_SEC), binds=(VIEW,))
    async with running(config) as d:
        cam = d.db.cameras[d.db.streams[sid].camera_id]
        base = d.http_addresses[0]
        url = base.replace("http://", "ws://") + f"/api/cameras/{cam.uuid}/main/live.m4s"
        with trio.fail_after(15):  # past the run's first (long) recording
            await poll(lambda: d.streamers[sid].counters.recordings >= 1)
        origin = [("Origin", base)]
        messages: list[bytes] = []
        with trio.fail_after(20):
            async with open_websocket_url(url, extra_headers=origin) as ws:
                # at least 90 frames (3 s at 30 fps) and a rotation (every 2 s; a recording
                # the viewer joins may last a GOP longer: while nobody watched, frames
                # were handled a GOP at a time, so later than they now are)
                recordings: set[str] = set()
                while len(messages) < 90 or len(recordings) < 2:
                    got = await ws.get_message()
                    assert isinstance(got, bytes), got
                    messages.append(got)
                    recordings.add(parse(got)[0]["X-Recording-Id"])
            assert d.hub.viewers(sid) == 0
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(url, extra_headers=[("Origin", "http://evil")]):
                    pass
            assert info.value.status_code == 403
            # a stream that does not exist: Moonfire's error message after the upgrade
            async with open_websocket_url(url.replace("/main/", "/sub/"),
                                          extra_headers=origin) as ws:
                error = json.loads(await ws.get_message())
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
            assert error["type"] == "error" and error["status"] == 404
            assert closed.value.reason.code == 1008
            entry_id = parse(messages[0])[0]["X-Video-Sample-Entry-Id"]
            async with httpx.AsyncClient(base_url=base) as http:
                init = (await http.get(f"/api/init/{entry_id}.mp4")).content

    parsed = [parse(m) for m in messages]
    # frames follow each other within each recording; a new recording starts at 0
    ranges = [
        (h["X-Recording-Id"], *(int(x) for x in h["X-Media-Time-Range"].split("-")))
        for h, _ in parsed
    ]
    for (rec_a, _, end_a), (rec_b, start_b, _) in itertools.pairwise(ranges):
        assert start_b == (end_a if rec_b == rec_a else 0), (rec_a, rec_b)
    assert len({r for r, _, _ in ranges}) >= 2
    assert all(end - start == FRAME_90K for _, start, end in ranges[1:])
    # every fragment starts at decode time 0 (as Moonfire's server writes them), numbered
    # from 1 on the connection
    assert [fragment_header(body) for _, body in parsed] == [
        (n, 0) for n in range(1, len(parsed) + 1)
    ]
    # init + the fragments appended one after another, as clients written for Moonfire's
    # API append them: every frame decodes, from a key frame on, back to back
    data = appended_at_the_end(init, [body for _, body in parsed])
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(container.streams.video[0]))
    assert frames[0].key_frame
    assert [round(f.time * 90_000) for f in frames] == list(
        itertools.accumulate((end - start for _, start, end in ranges[:-1]), initial=0)
    )


async def test_a_camera_that_dies_is_offline_at_once_and_back_on_the_same_socket(
    tmp_path: Path, rtsp_server: RtspServer
) -> None:
    """Issue 17: a dead camera's tile showed a frozen frame for seconds, and a camera back
    online took up to ~30 s to reappear. The viewer hears ``offline`` the moment the
    streamer sees the camera end the stream; after the restart, frames come again on the
    same socket within the backoff (1 s: the session before had recorded) plus the
    camera's connect time and first key frame."""
    layout = create_db(tmp_path, {"cam": CameraSpec(rtsp_server.url("live"))})
    sid = layout.stream_ids["cam"]
    config = replace(layout.config(rotate_interval_sec=ROTATE_SEC), binds=(VIEW,))
    async with running(config) as d:
        cam = d.db.cameras[d.db.streams[sid].camera_id]
        base = d.http_addresses[0]
        url = base.replace("http://", "ws://") + f"/api/cameras/{cam.uuid}/main/live.m4s"
        with trio.fail_after(30):
            async with open_websocket_url(url, extra_headers=[("Origin", base)]) as ws:
                for _ in range(30):
                    assert isinstance(await ws.get_message(), bytes)
                rtsp_server.kill()
                killed = trio.current_time()
                while isinstance(got := await ws.get_message(), bytes):
                    pass  # the frames received before the kill
                offline_after = trio.current_time() - killed
                assert json.loads(got) == {
                    "type": "offline", "message": "the camera ended the stream"}
                await trio.to_thread.run_sync(rtsp_server.restart)
                restarted = trio.current_time()
                while not isinstance(got := await ws.get_message(), bytes):
                    assert json.loads(got)["type"] == "offline"  # a try before it listened
                back_after = trio.current_time() - restarted
                headers = parse(got)[0]
                assert headers["X-Runs"] == "2"
    print(f"offline {offline_after:.3f} s after the kill; frames {back_after:.3f} s "
          "after the restart")
    assert offline_after < 2
    assert back_after < 10
