"""The settings page's camera test (``nvr.web.camera_test``, ``nvr.ingest.probe``): what it
answers for a camera that works, one that fails, one that never answers (at the exact
virtual time), its bounds (one test per caller, ``MAX_TESTS`` in all) and hostile bodies
(one-line 4xx, never a 500). Who may call it is in ``test_auth.py``'s table test."""

from __future__ import annotations

import base64
import json
from typing import Any

import av
import pytest
import trio
import trio.testing
from quart.typing import TestClientProtocol as Client

from nvr.base.errors import Unauthenticated
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from nvr.ingest.source import OpenOptions
from nvr.testing.replay import ReplayOpener, ReplaySource, Session, load_packets
from nvr.web import camera_test
from nvr.web.app import create_app
from nvr.web.context import WebContext
from tests.support.paths import FIXTURES
from tests.support.web import Recorded, inline_web_threads, recorded, web_context

__all__ = ["inline_web_threads", "recorded"]  # fixtures

pytestmark = pytest.mark.usefixtures("inline_web_threads")

ADMIN = BindConfig(allow_unauthenticated=("adminConfig", "readCameraConfigs", "viewVideo"))
H264 = str(FIXTURES / "h264-640x360.mp4")
HEVC = str(FIXTURES / "hevc-640x360.mp4")


class Recording(ReplayOpener):
    """A replay opener that also keeps the options of each open."""

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.options: list[OpenOptions] = []

    async def open(self, url: str, options: OpenOptions) -> ReplaySource:
        self.options.append(options)
        return await super().open(url, options)


def setup(r: Recorded, scripts: dict[str, list[Session]]) -> tuple[Client, WebContext, Recording]:
    ctx = web_context(r, ADMIN)
    opener = ctx.opener = Recording(ctx.clocks, scripts)
    return create_app(ctx).test_client(), ctx, opener


def decodes_as_jpeg(snapshot: str) -> tuple[int, int]:
    prefix = "data:image/jpeg;base64,"
    assert snapshot.startswith(prefix)
    data = base64.b64decode(snapshot[len(prefix):])
    codec = av.CodecContext.create("mjpeg", "r")
    (frame,) = codec.decode(av.Packet(data))
    return frame.width, frame.height


async def test_a_camera_that_works(recorded: Recorded, autojump_clock: object) -> None:
    scripts = {
        "rtsp://cam/h264": [Session(load_packets(H264), loops=None)],
        "rtsp://cam/hevc": [Session(load_packets(HEVC), loops=None)],
    }
    c, ctx, opener = setup(recorded, scripts)
    resp = await c.post("/api/nvr/cameras/test", json={"url": "rtsp://cam/h264"})
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    got = await resp.get_json()
    assert (got["codecName"], got["width"], got["height"]) == ("H.264", 640, 360)
    assert got["codec"].startswith("avc1.")
    assert got["frameRate"] == pytest.approx(30, abs=0.5)
    assert decodes_as_jpeg(got["snapshot"]) == (640, 360)
    # replayed at its pace in batches of 10 frames: the first batch that ends a second
    # or more after the key frame (frame 39, at 1.3 s) is the last one read
    packets = scripts["rtsp://cam/h264"][0].packets
    assert packets[39].pts - packets[0].pts >= UNITS_PER_SEC > packets[29].pts - packets[0].pts
    assert ctx.clocks.monotonic() == (
        opener.open_times("rtsp://cam/h264")[0] + packets[39].pts - packets[0].pts)
    resp = await c.post("/api/nvr/cameras/test", json={"url": "rtsp://cam/hevc"})
    got = await resp.get_json()
    assert (got["codecName"], got["width"], got["height"]) == ("H.265", 640, 360)
    assert got["codec"].startswith(("hvc1.", "hev1."))
    assert decodes_as_jpeg(got["snapshot"]) == (640, 360)
    assert not camera_test_slots(c).running  # every slot given back


def camera_test_slots(c: Client) -> camera_test.Slots:
    slots: camera_test.Slots = c.app.extensions["nvr-camera-test"]  # type: ignore[attr-defined]
    return slots


async def test_a_camera_that_fails_says_why_without_the_password(
    recorded: Recorded, autojump_clock: object
) -> None:
    scripts = {"rtsp://cam/x": [Session(open_error=Unauthenticated(
        "rtsp://cam/x: 401 Unauthorized (password s3cret refused)"))]}
    c, _, opener = setup(recorded, scripts)
    resp = await c.post("/api/nvr/cameras/test", json={
        "url": "rtsp://cam/x", "username": "admin", "password": "s3cret", "rtspTransport": "udp"})
    assert resp.status_code == 200
    assert await resp.get_json() == {
        "error": "rtsp://cam/x: 401 Unauthorized (password *** refused)"}
    (o,) = opener.options
    assert (o.username, o.password, o.rtsp_transport) == ("admin", "s3cret", "udp")
    resp = await c.post("/api/nvr/cameras/test", json={"url": "rtsp://nobody/"})
    assert (await resp.get_json())["error"] == "rtsp://nobody/: no replay script"


async def test_a_stored_camera_lends_its_credentials(recorded: Recorded,
                                                     autojump_clock: object) -> None:
    c, ctx, opener = setup(recorded, {})
    cam = ctx.db.camera_by_uuid(__import__("uuid").UUID(recorded.camera_uuid))
    ctx.db.update_camera(cam.id, config=type(cam.config)(username="u", password="p"))
    await c.post("/api/nvr/cameras/test", json={"url": "rtsp://a/", "camera": recorded.camera_uuid})
    await c.post("/api/nvr/cameras/test", json={"url": "rtsp://a/", "camera": recorded.camera_uuid,
                                                "password": "typed"})
    assert [(o.username, o.password) for o in opener.options] == [("u", "p"), ("u", "typed")]


async def test_a_silent_camera_ends_at_the_timeout(recorded: Recorded,
                                                   autojump_clock: object) -> None:
    packets = load_packets(H264)
    non_key = [p for p in packets if not p.is_key]
    scripts = {
        "rtsp://cam/slow": [Session(open_delay=60 * UNITS_PER_SEC)],
        "rtsp://cam/stalls": [Session(packets, stall_after=0)],
        "rtsp://cam/nokey": [Session(non_key, loops=None)],
        "rtsp://cam/hangs-up": [Session(non_key[:5])],
    }
    c, ctx, _ = setup(recorded, scripts)
    for url, why in [
        ("rtsp://cam/slow", "rtsp://cam/slow: not connected within 15.000s"),
        ("rtsp://cam/stalls", "rtsp://cam/stalls: no key frame within 15.000s"),
        ("rtsp://cam/nokey", "rtsp://cam/nokey: no key frame within 15.000s"),
    ]:
        start = ctx.clocks.monotonic()
        resp = await c.post("/api/nvr/cameras/test", json={"url": url})
        assert await resp.get_json() == {"error": why}
        assert ctx.clocks.monotonic() - start == camera_test.TEST_TIMEOUT
    resp = await c.post("/api/nvr/cameras/test", json={"url": "rtsp://cam/hangs-up"})
    assert await resp.get_json() == {
        "error": "rtsp://cam/hangs-up: the stream ended before its first key frame"}


async def test_one_test_per_caller_and_a_few_in_all(recorded: Recorded,
                                                    autojump_clock: object) -> None:
    scripts = {"rtsp://cam/slow": [Session(open_delay=60 * UNITS_PER_SEC)]}
    c, _, _ = setup(recorded, scripts)
    slots = camera_test_slots(c)
    statuses: list[int] = []

    async def one() -> None:
        resp = await c.post("/api/nvr/cameras/test", json={"url": "rtsp://cam/slow"})
        statuses.append(resp.status_code)

    async with trio.open_nursery() as n:
        n.start_soon(one)
        await trio.testing.wait_all_tasks_blocked()
        assert len(slots.running) == 1
        # the same caller (here: the same address, no session) again: refused at once
        resp = await c.post("/api/nvr/cameras/test", json={"url": "rtsp://cam/slow"})
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "5"
        assert "still running" in await resp.get_data(as_text=True)
        # others fill the server's slots; one more is refused
        for i in range(camera_test.MAX_TESTS - 1):
            slots.running.add(f"someone {i}")
        resp = await c.post("/api/nvr/cameras/test", json={"url": "rtsp://cam/slow"})
        assert resp.status_code == 429
    assert statuses == [200] and slots.running == {
        f"someone {i}" for i in range(camera_test.MAX_TESTS - 1)}


HOSTILE: list[Any] = [
    {},
    {"url": None},
    {"url": ""},
    {"url": 7},
    {"url": ["rtsp://x/"]},
    {"url": "http://x/"},
    {"url": "rtsp://x/\r\nInjected: 1"},
    {"url": "rtsp://" + "x" * 5000},
    {"url": "rtsp://x/", "rtspTransport": "quic"},
    {"url": "rtsp://x/", "username": 1},
    {"url": "rtsp://x/", "password": {"a": 1}},
    {"url": "rtsp://x/", "password": "p" * 5000},
    {"url": "rtsp://x/", "camera": 5},
    {"url": "rtsp://x/", "camera": "not-a-uuid"},
    {"url": "rtsp://x/", "camera": "00000000-0000-0000-0000-000000000000"},
    {"url": "rtsp://x/", "extra": True},
    {"url": "rtsp://x/", "streams": {}},
]


async def test_hostile_bodies_are_one_line_4xx(recorded: Recorded,
                                               autojump_clock: object) -> None:
    c, _, opener = setup(recorded, {})
    for body in HOSTILE:
        resp = await c.post("/api/nvr/cameras/test", json=body)
        text = await resp.get_data(as_text=True)
        assert 400 <= resp.status_code < 500, (body, resp.status_code, text)
        assert text.count("\n") == 1 and "Traceback" not in text, (body, text)
    for raw in [b"[]", b"\"x\"", b"{\"url\": ", json.dumps({"url": "\ud800"}).encode()]:
        resp = await c.post("/api/nvr/cameras/test", data=raw,
                            headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500, raw
    assert opener.opens == []  # none of them reached a camera
