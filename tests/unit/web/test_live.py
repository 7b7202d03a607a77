"""Live view (issue 6): the frame hub, live fragments and the ``live.m4s`` WebSocket.

A streamer records the fixture clip from a ``ReplayOpener`` on a MockClock and
publishes into the hub; a WebSocket viewer (Quart's test client) receives one message
per frame, which must start at a key frame, carry Moonfire's headers, and decode with
PyAV after the init segment, frame for frame, appended one after another (each message's
``tfdt`` is 0, as Moonfire's server writes it). A slow viewer gets a ``drop`` message and
resumes at a key frame; a foreign ``Origin`` or ``Host`` is refused before the upgrade,
a caller without ``viewVideo`` gets Moonfire's error message after it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError

from nvr.base import errors
from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from nvr.ingest.hub import FrameHub, LiveFrame, LiveRecording
from nvr.ingest.source import OpenOptions
from nvr.ingest.streamer import Streamer, StreamerOptions, StreamState
from nvr.mp4.boxes import walk_boxes
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from nvr.web.app import create_app
from nvr.web.auth import check_origin
from nvr.web.context import StreamStatus, WebContext
from tests.support.determinism import T0
from tests.support.media import appended_at_the_end, decoded_frames, fragment_header
from tests.support.paths import FIXTURES

SEC = UNITS_PER_SEC
FRAME = 3000
CLIP = str(FIXTURES / "h264-640x360.mp4")
VIEW = BindConfig(allow_unauthenticated=("viewVideo",))


@dataclass
class Live:
    env: RecordingEnv
    hub: FrameHub
    ctx: WebContext
    path: str
    stream_id: int


@pytest.fixture
async def live_env(tmp_path: Path) -> AsyncIterator[Live]:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    hub = FrameHub(max_frames=10)
    ctx = WebContext(
        db=env.db, dirs={env.dir_id: env.sdir}, clocks=clocks, bind=VIEW, hub=hub
    )
    sid = env.stream_ids[0]
    cam = env.db.cameras[env.db.streams[sid].camera_id]
    yield Live(env, hub, ctx, f"/api/cameras/{cam.uuid}/main/live.m4s", sid)
    env.close()


def parse(message: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
    return headers, body


def is_key(fragment: bytes) -> bool:
    """The first sample's flags in the fragment's ``trun`` say sync sample."""
    trun = next(b for b in walk_boxes(fragment) if b.box_type == b"trun")
    # header, version/flags, sample count, data offset, then duration, size, flags
    flags_at = trun.offset + 8 + 4 + 4 + 4 + 4 + 4
    return int.from_bytes(fragment[flags_at : flags_at + 4], "big") & 0x0001_0000 == 0


async def refusal(live: Live, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of a WebSocket upgrade the server must refuse."""
    client = create_app(live.ctx).test_client()
    try:
        async with client.websocket(live.path, headers=headers) as ws:
            with trio.move_on_after(5):  # accepted: no frames come (fail below, not hang)
                await ws.receive()
    except BaseExceptionGroup as group:
        found, _ = group.split(WebsocketResponseError)
        assert found is not None, group
        leaf: BaseException = found
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        assert isinstance(leaf, WebsocketResponseError)
        return leaf.response.status_code, await leaf.response.get_data(as_text=True)
    raise AssertionError("the upgrade was accepted")


async def wait_for_viewer(hub: FrameHub, stream_id: int) -> None:
    """Lets the WebSocket handler run until it waits for frames (it has subscribed)."""
    await trio.testing.wait_all_tasks_blocked()
    assert hub.viewers(stream_id) == 1


async def test_viewer_gets_one_decodable_fragment_per_frame_from_a_key_frame(
    live_env: Live, autojump_clock: trio.testing.MockClock
) -> None:
    e = live_env
    syncer = Syncer(e.env.db, e.env.dir_id, e.env.sdir, e.ctx.clocks)
    opener = ReplayOpener(
        e.ctx.clocks, {"rtsp://cam0/main": [Session(load_packets(CLIP), loops=None, batch=4)]}
    )
    streamer = Streamer(
        db=e.env.db,
        stream_id=e.stream_id,
        sdir=e.env.sdir,
        sink=syncer,
        opener=opener,
        clocks=e.ctx.clocks,
        hub=e.hub,
        options=StreamerOptions(rotate_interval=60 * SEC),
        open_options=OpenOptions(),
    )
    app = create_app(e.ctx)
    messages: list[bytes] = []
    with inline_blocking():
        async with trio.open_nursery() as nursery:
            await nursery.start(syncer.run)
            nursery.start_soon(streamer.run)
            await trio.sleep(0.45)  # join mid-GOP: the first key frame is at 1 s
            async with app.test_client().websocket(e.path) as ws:
                while len(messages) < 45:
                    got = await ws.receive()
                    assert isinstance(got, bytes)
                    messages.append(got)
            nursery.cancel_scope.cancel()
    parsed = [parse(m) for m in messages]
    headers = [h for h, _ in parsed]
    first = headers[0]
    assert first["Content-Type"] == 'video/mp4; codecs="avc1.64001e"'
    assert first["X-Runs"] == "1" and first["X-Prev-Media-Duration"] == "0"
    open_id, rec_id = (int(x) for x in first["X-Recording-Id"].split("."))
    rec = e.env.db.streams[e.stream_id].pending[0]
    assert (open_id, rec_id) == (rec.open_id, rec.recording_id)
    assert int(first["X-Recording-Start"]) == rec.start_time_90k
    # frames 30..74 of the clip (the key frame at 1 s, then every frame), back to back
    ranges = [tuple(int(x) for x in h["X-Media-Time-Range"].split("-")) for h in headers]
    assert ranges == [(i * FRAME, (i + 1) * FRAME) for i in range(30, 75)]
    assert [is_key(body) for _, body in parsed] == [i % 30 == 0 for i in range(30, 75)]

    # every fragment starts at decode time 0, as Moonfire's server writes them; their
    # sequence numbers count the connection's messages
    assert [fragment_header(body) for _, body in parsed] == [(n, 0) for n in range(1, 46)]

    # init segment + the fragments, each appended after the one before (as clients of
    # Moonfire's API do), decode as the camera's frames, back to back
    init = await app.test_client().get(f"/api/init/{first['X-Video-Sample-Entry-Id']}.mp4")
    assert init.status_code == 200
    data = appended_at_the_end(await init.get_data(), [body for _, body in parsed])
    assert decoded_frames(data, ignore_editlist=False) == [
        ((i - 30) * FRAME, i, 640) for i in range(30, 75)
    ]


async def test_viewer_hears_at_once_that_the_camera_is_offline_and_gets_it_back_on_the_same_socket(
    live_env: Live, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 17: a dead camera's tile showed a frozen frame for ~5 s. The session's end is
    a text message at the virtual time the streamer learns of it; the next session's
    frames follow on the same socket, from a key frame."""
    e = live_env
    syncer = Syncer(e.env.db, e.env.dir_id, e.env.sdir, e.ctx.clocks)
    refused = errors.Unavailable("connecting to rtsp://admin:pw@192.0.2.7/main: refused")
    opener = ReplayOpener(e.ctx.clocks, {"rtsp://cam0/main": [
        Session(load_packets(CLIP), end_after=45, batch=1),  # EOF after frame 44
        Session(open_error=refused),
        Session(load_packets(CLIP), loops=None, batch=1),
    ]})
    streamer = Streamer(
        db=e.env.db, stream_id=e.stream_id, sdir=e.env.sdir, sink=syncer, opener=opener,
        clocks=e.ctx.clocks, hub=e.hub, options=StreamerOptions(jitter=0),
        open_options=OpenOptions(),
    )
    got: list[tuple[float, object]] = []
    with inline_blocking():
        async with trio.open_nursery() as nursery:
            await nursery.start(syncer.run)
            async with create_app(e.ctx).test_client().websocket(e.path) as ws:
                await wait_for_viewer(e.hub, e.stream_id)
                nursery.start_soon(streamer.run)
                while len(got) < 45 + 2 + 1:
                    m = await ws.receive()
                    got.append((trio.current_time(), json.loads(m) if isinstance(m, str) else m))
            nursery.cancel_scope.cancel()
    texts = [(t, m) for t, m in got if isinstance(m, dict)]
    frames = [(t, parse(m)) for t, m in got if isinstance(m, bytes)]
    eof = 44 * FRAME / SEC
    # frames 0..44, then at the EOF: offline; 1 s later the refused connection: offline
    # again, its URL redacted (this caller may not read camera configurations); 2 s after
    # that the next session's first frame, a key frame
    assert [m for _, m in got[:45]] == [m for _, m in got if isinstance(m, bytes)][:45]
    assert [int(h["X-Media-Time-Range"].split("-")[0]) for _, (h, _) in frames[:45]] == [
        i * FRAME for i in range(45)]
    assert texts == [
        (eof, {"type": "offline", "message": "the camera ended the stream"}),
        (eof + 1, {"type": "offline",
                   "message": "Unavailable: connecting to <URL>: refused"}),
    ]
    back_at, (head, body) = frames[45]
    assert back_at == eof + 3 and is_key(body) and head["X-Runs"] == "2"


async def test_a_viewer_joining_while_the_camera_is_down_hears_it_at_once(
    live_env: Live, autojump_clock: trio.testing.MockClock
) -> None:
    e = live_env
    e.ctx.stream_status = lambda sid: StreamStatus(
        StreamState("backoff", T0, "open failed: Unavailable: timed out", T0 + SEC))
    async with create_app(e.ctx).test_client().websocket(e.path) as ws:
        assert json.loads(await ws.receive()) == {
            "type": "offline", "message": "open failed: Unavailable: timed out"}
        assert trio.current_time() == 0
        assert e.hub.viewers(e.stream_id) == 1  # and it stays, waiting for frames


def synthetic(count: int, keys: Sequence[int]) -> list[LiveFrame]:
    packets = load_packets(CLIP)
    rec = LiveRecording(1, 1, T0, 0, 0, 1, packets[0].sample_entry)
    return [
        LiveFrame(packets[i].data, i in keys, i * FRAME, FRAME, rec) for i in range(count)
    ]


async def test_slow_viewer_gets_drop_and_resumes_at_a_key_frame(
    live_env: Live, autojump_clock: trio.testing.MockClock
) -> None:
    e = live_env
    async with create_app(e.ctx).test_client().websocket(e.path) as ws:
        await wait_for_viewer(e.hub, e.stream_id)
        # 30 frames at once for a queue of 10: frames 0-9 fit, 10 overflows (11 dropped),
        # 11-24 are skipped waiting for the key frame at 25, which resumes the viewer
        e.hub.publish(e.stream_id, synthetic(30, keys=(0, 25)))
        drop = await ws.receive()
        assert json.loads(drop) == {"type": "drop", "frames": 25}
        resumed = [parse(await ws.receive()) for _ in range(5)]
    starts = [int(h["X-Media-Time-Range"].split("-")[0]) for h, _ in resumed]
    assert starts == [i * FRAME for i in range(25, 30)]
    assert is_key(resumed[0][1]) and not is_key(resumed[1][1])
    assert e.hub.viewers(e.stream_id) == 0


async def test_hub_starts_each_viewer_at_a_key_frame_and_counts_viewers() -> None:
    hub = FrameHub(max_frames=100)
    frames = synthetic(40, keys=(0, 30))
    with hub.subscribe(7) as early:
        hub.publish(7, frames[:5])
        with hub.subscribe(7) as late:
            assert hub.viewers(7) == 2
            hub.publish(7, frames[5:])
            assert await late.get() == (0, frames[30:])
        assert await early.get() == (0, frames)
    assert hub.viewers(7) == 0


async def test_foreign_origin_is_refused(live_env: Live) -> None:
    status, body = await refusal(live_env, {"Origin": "https://evil.example"})
    assert status == 403
    assert "does not match Host" in body


def test_origin_must_name_the_host() -> None:
    check_origin(None, "nvr.local:8080")  # not a browser
    check_origin("http://nvr.local:8080", "NVR.local:8080")
    for bad in ("http://nvr.local", "https://evil.example:8080", "null", ""):
        with pytest.raises(Exception, match="does not match Host"):
            check_origin(bad, "nvr.local:8080")


async def error_message(live: Live, path: str | None = None) -> dict[str, object]:
    """The one text message of a WebSocket the server accepts only to say why not; the
    server closes it after that message."""
    client = create_app(live.ctx).test_client()
    async with client.websocket(path or live.path) as ws:
        msg = json.loads(await ws.receive())
        with pytest.raises(WebsocketDisconnectError) as closed:
            await ws.receive()
    assert closed.value.args == (1008,)  # policy violation
    assert isinstance(msg, dict)
    return msg


async def test_without_view_video_the_error_comes_after_the_upgrade(live_env: Live) -> None:
    # as Moonfire's server does (its clients show the message); 401 before the upgrade
    # until issue 12
    live_env.ctx.bind = BindConfig()
    msg = await error_message(live_env)
    assert msg["type"] == "error" and msg["status"] == 401
    assert "viewVideo" in str(msg["message"])


async def test_an_unknown_camera_is_an_error_message(live_env: Live) -> None:
    path = live_env.path.replace("/main/", "/ext/")
    assert (await error_message(live_env, path))["status"] == 404
    unknown = "/api/cameras/00000000-0000-0000-0000-000000000000/main/live.m4s"
    assert (await error_message(live_env, unknown))["status"] == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},  # DNS rebinding: a page of evil.example, its name here
        {"Host": "evil.example", "Origin": "http://evil.example"},
        {"Host": "evil.example:8080", "Origin": "http://evil.example:8080"},
        {"Origin": "http://evil.example"},  # cross-site: Host is ours
    ],
)
async def test_foreign_host_or_origin_is_refused_before_the_upgrade(
    live_env: Live, headers: dict[str, str]
) -> None:
    status, body = await refusal(live_env, headers)
    assert status == 403, body
    assert "evil.example" in body and body.count("\n") == 1


async def test_viewer_never_gets_frames_inside_a_redaction(
    live_env: Live, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 16: a committed redaction hides its range from live viewers too, also one
    committed while the viewer watches and reaching into the future: its frames are never
    sent, and the viewer resumes at the first key frame after the range."""
    e = live_env
    frames = synthetic(60, keys=(0, 10, 20, 30, 40, 50))
    e.env.db.add_redaction(e.stream_id, T0 + 5 * FRAME, T0 + 12 * FRAME, "a face",
                           user_id=None, username=None)
    starts: list[int] = []

    async def publish(first: int, last: int, expect: int) -> None:
        e.hub.publish(e.stream_id, frames[first:last])  # at most 10 taken: the queue's size
        for _ in range(expect):
            head, _ = parse(await ws.receive())
            starts.append(int(head["X-Media-Time-Range"].split("-")[0]) // FRAME)

    async with create_app(e.ctx).test_client().websocket(e.path) as ws:
        await wait_for_viewer(e.hub, e.stream_id)
        await publish(0, 10, 5)  # 5..9 are inside
        await publish(10, 20, 0)  # 10, 11 inside; 12..19 follow no key frame the viewer got
        await publish(20, 30, 10)
        # committed while watching, its end still in the future
        e.env.db.add_redaction(e.stream_id, T0 + 33 * FRAME, T0 + 45 * FRAME, "a plate",
                               user_id=None, username=None)
        await publish(30, 40, 3)
        await publish(40, 50, 0)
        await publish(50, 60, 10)
    assert starts == [*range(5), *range(20, 33), *range(50, 60)]
