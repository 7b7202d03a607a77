"""``transcode=h264`` (issue 20): an H.265 recording served as H.264 by ``view.mp4``,
``view.m4s`` and ``live.m4s``: frame for frame from the requested start, the file's
duration up front, ETags and ``304``; the limit of concurrent transcodes (``503`` with a
reason, the slot given back when the response ends); hostile values; permissions."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import trio
import trio.testing
from prometheus_client.registry import CollectorRegistry

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.config import BindConfig
from nvr.ingest.hub import FrameHub
from nvr.ingest.source import OpenOptions
from nvr.ingest.streamer import Streamer, StreamerOptions
from nvr.mp4.boxes import walk_boxes
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from nvr.testing.replay import ReplayOpener, Session, load_packets
from nvr.web.app import create_app
from nvr.web.context import WebContext
from nvr.web.transcoding import TranscodeCollector, Transcodes
from tests.support.determinism import T0
from tests.support.media import appended_at_the_end, decoded_frames, fragment_header
from tests.support.paths import FIXTURES
from tests.support.transcode import join_transcode_threads
from tests.support.web import SEC, Recorded, client, record, web_context

pytestmark = pytest.mark.usefixtures("inline_web_threads")
FRAME = 3000


@pytest.fixture
async def hevc(tmp_path: Path, autojump_clock: trio.testing.MockClock):  # type: ignore[no-untyped-def]
    r = await record(tmp_path, seconds=12, clip=str(FIXTURES / "hevc-640x360.mp4"))
    yield r
    r.env.close()


def url(r: Recorded, kind: str = "mp4") -> str:
    return f"/api/cameras/{r.camera_uuid}/main/view.{kind}"


def first_recording(r: Recorded) -> int:
    recs = r.env.db.list_recordings_by_time(r.stream_id, 0, T0 + 100 * SEC)
    return min(x.recording_id for x in recs)


def mvhd_duration(data: bytes) -> int:
    box = next(b for b in walk_boxes(data) if b.box_type == b"mvhd")
    version = data[box.offset + 8]
    if version == 1:
        return int(struct.unpack_from(">Q", data, box.offset + 8 + 4 + 16 + 4)[0])
    return int(struct.unpack_from(">I", data, box.offset + 8 + 4 + 8 + 4)[0])


async def test_view_mp4_plays_the_h265_recording_as_h264_from_the_requested_start(
    hevc: Recorded,
) -> None:
    rid = first_recording(hevc)
    plain = await client(hevc).get(url(hevc), query_string={"s": str(rid)})
    assert 'hvc1' in plain.headers["Content-Type"]
    # 1.5 s in: frame 45, mid-way between the key frames at 30 and 60
    s = f"{rid}.{45 * FRAME}-{90 * FRAME}"
    resp = await client(hevc).get(url(hevc), query_string={"s": s, "transcode": "h264"})
    data = await resp.get_data()
    assert resp.status_code == 200, data
    assert resp.headers["Content-Type"].startswith('video/mp4; codecs="avc1.')
    assert resp.headers["Accept-Ranges"] == "none"  # (the test client adds a length)
    assert resp.headers["X-Nvr-Transcoded"] == "640x360"
    assert resp.headers["Cache-Control"] == "private, no-cache"
    # the pictures of frames 45..89, from time 0, and the duration said up front
    got = decoded_frames(data, ignore_editlist=True)
    assert got == [((i - 45) * FRAME, i, 640) for i in range(45, 90)]
    assert mvhd_duration(data) == 45 * FRAME
    # the first fragment holds the first frame alone (the time to the first picture)
    moofs = [b for b in walk_boxes(data) if b.box_type == b"moof"]
    first = data[moofs[0].offset : moofs[1].offset]
    assert fragment_header(first) == (1, 0)


async def test_view_m4s_is_self_initializing_at_the_recordings_media_time(
    hevc: Recorded,
) -> None:
    rid = first_recording(hevc)
    s = f"{rid}.{30 * FRAME}-{60 * FRAME}"
    resp = await client(hevc).get(url(hevc, "m4s"), query_string={"s": s, "transcode": "h264"})
    data = await resp.get_data()
    assert resp.status_code == 200, data
    assert resp.headers["X-Prev-Media-Duration"] == "0" and resp.headers["X-Runs"] == "1"
    assert data[4:8] == b"ftyp"
    moofs = [b for b in walk_boxes(data) if b.box_type == b"moof"]
    assert fragment_header(data[moofs[0].offset : moofs[1].offset])[1] == 30 * FRAME
    got = decoded_frames(data, ignore_editlist=True)
    assert [n for _, n, _ in got] == list(range(30, 60))


async def test_etag_is_of_the_request_and_settings_and_answers_304_without_a_slot(
    hevc: Recorded,
) -> None:
    rid = first_recording(hevc)
    ctx = web_context(hevc)
    ctx.transcodes = Transcodes()
    c = create_app(ctx).test_client()
    q = {"s": f"{rid}.0-{30 * FRAME}", "transcode": "h264"}
    a = await c.get(url(hevc), query_string=q)
    body_a = await a.get_data()
    b = await c.get(url(hevc), query_string=q)
    assert a.headers["ETag"] == b.headers["ETag"] and body_a == await b.get_data()
    other = await c.get(url(hevc), query_string={**q, "s": f"{rid}.0-{31 * FRAME}"})
    assert other.headers["ETag"] != a.headers["ETag"]
    mp4 = await c.get(url(hevc), query_string={"s": q["s"]})
    assert mp4.headers["ETag"] != a.headers["ETag"]
    ctx.transcodes.max_concurrent = 0  # no slot: a cached copy is still revalidated
    cached = await c.get(url(hevc), query_string=q,
                         headers={"If-None-Match": a.headers["ETag"]})
    assert cached.status_code == 304 and await cached.get_data() == b""
    assert ctx.transcodes.active == 0 and ctx.transcodes.started == 3


async def test_over_the_limit_a_request_gets_503_with_a_reason_and_the_slot_comes_back(
    hevc: Recorded,
) -> None:
    rid = first_recording(hevc)
    ctx = web_context(hevc)
    ctx.transcodes = Transcodes(max_concurrent=1)
    c = create_app(ctx).test_client()
    q = {"s": f"{rid}.0-{30 * FRAME}", "transcode": "h264"}
    held = ctx.transcodes.take()
    resp = await c.get(url(hevc), query_string=q)
    text = await resp.get_data(as_text=True)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert "at most 1 videos at once" in text and "sub stream" in text
    assert "\n" not in text.rstrip("\n")
    # live too: Moonfire's error message, with the status
    async with c.websocket(f"/api/cameras/{hevc.camera_uuid}/main/live.m4s?transcode=h264"
                           ) as ws:
        msg = await ws.receive()
    assert '"status": 503' in str(msg)
    held.release()
    held.release()  # twice is harmless
    ok = await c.get(url(hevc), query_string=q)
    await ok.get_data()
    assert ok.status_code == 200 and ctx.transcodes.active == 0
    assert ctx.transcodes.busy == 2
    assert ctx.transcodes.refused == {("file", "limit"): 1, ("live", "limit"): 1}


@pytest.mark.parametrize("value", ["h265", "", "H264", "h264 ", "vp9", "h264\n"])
async def test_other_transcode_values_are_400_with_a_reason(hevc: Recorded, value: str) -> None:
    rid = first_recording(hevc)
    for kind in ("mp4", "m4s"):
        resp = await client(hevc).get(url(hevc, kind),
                                      query_string={"s": str(rid), "transcode": value})
        assert resp.status_code == 400
        assert await resp.get_data(as_text=True) == "transcode must be one of: h264\n"


async def test_txt_dumps_and_bad_segments_refuse_a_transcode(hevc: Recorded) -> None:
    rid = first_recording(hevc)
    resp = await client(hevc).get(url(hevc, "mp4.txt"),
                                  query_string={"s": str(rid), "transcode": "h264"})
    assert resp.status_code == 400
    for s in ("999", "x", f"{rid}.5-1"):
        bad = await client(hevc).get(url(hevc), query_string={"s": s, "transcode": "h264"})
        assert bad.status_code in (400, 404), s


async def test_transcoding_needs_view_video_like_the_route(hevc: Recorded) -> None:
    rid = first_recording(hevc)
    closed = client(hevc, BindConfig())
    resp = await closed.get(url(hevc), query_string={"s": str(rid), "transcode": "h264"})
    assert resp.status_code == 401


async def test_live_m4s_sends_h264_messages_with_the_init_segment_first(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    hub = FrameHub(max_frames=10)
    ctx = WebContext(db=env.db, dirs={env.dir_id: env.sdir}, clocks=clocks,
                     bind=BindConfig(allow_unauthenticated=("viewVideo",)), hub=hub)
    sid = env.stream_ids[0]
    cam = env.db.cameras[env.db.streams[sid].camera_id]
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    packets = load_packets(str(FIXTURES / "hevc-640x360.mp4"))
    opener = ReplayOpener(clocks, {"rtsp://cam0/main": [Session(packets, loops=None, batch=1)]})
    streamer = Streamer(db=env.db, stream_id=sid, sdir=env.sdir, sink=syncer, opener=opener,
                        clocks=clocks, hub=hub, options=StreamerOptions(),
                        open_options=OpenOptions())
    app = create_app(ctx)
    messages: list[bytes] = []
    try:
        with inline_blocking():
            async with trio.open_nursery() as nursery:
                await nursery.start(syncer.run)
                nursery.start_soon(streamer.run)
                await trio.sleep(0.45)  # join mid-GOP: the first key frame is at 1 s
                async with app.test_client().websocket(
                        f"/api/cameras/{cam.uuid}/main/live.m4s?transcode=h264") as ws:
                    while len(messages) < 40:
                        got = await ws.receive()
                        assert isinstance(got, bytes)
                        messages.append(got)
                    assert ctx.transcodes is not None and ctx.transcodes.active == 1
                nursery.cancel_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert ctx.transcodes.active == 0
    finally:
        env.close()
    parsed = []
    for m in messages:
        head, _, body = m.partition(b"\r\n\r\n")
        parsed.append((dict(line.split(": ", 1) for line in head.decode().split("\r\n")), body))
    first, body0 = parsed[0]
    assert first["Content-Type"].startswith('video/mp4; codecs="avc1.')
    assert "X-Video-Sample-Entry-Id" not in first
    init_len = int(first["X-Nvr-Init-Length"])
    assert all("X-Nvr-Init-Length" not in h for h, _ in parsed[1:])
    ranges = [tuple(int(x) for x in h["X-Media-Time-Range"].split("-")) for h, _ in parsed]
    assert ranges == [(i * FRAME, (i + 1) * FRAME) for i in range(30, 70)]
    init, segments = body0[:init_len], [body0[init_len:], *(b for _, b in parsed[1:])]
    data = appended_at_the_end(init, segments)
    assert decoded_frames(data, ignore_editlist=False) == [
        ((i - 30) * FRAME, i, 640) for i in range(30, 70)]


async def test_metrics_count_transcodes_frames_refusals_and_cpu(hevc: Recorded) -> None:
    rid = first_recording(hevc)
    ctx = web_context(hevc)
    ctx.transcodes = slots = Transcodes(max_concurrent=1)
    c = create_app(ctx).test_client()
    # 1.5 s in: frames 30 (the key frame) to 44 are decoded only, 45..89 sent
    resp = await c.get(url(hevc), query_string={"s": f"{rid}.{45 * FRAME}-{90 * FRAME}",
                                                 "transcode": "h264"})
    await resp.get_data()
    held = slots.take()
    assert (await c.get(url(hevc), query_string={"s": str(rid), "transcode": "h264"})
            ).status_code == 503
    await trio.to_thread.run_sync(join_transcode_threads)  # their last CPU report
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TranscodeCollector(slots))
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for m in registry.collect() for s in m.samples}
    cpu = values.pop(("nvr_transcode_cpu_seconds_total", ()))
    assert cpu > 0
    assert values == {
        ("nvr_transcode_active", ()): 1, ("nvr_transcode_max_concurrent", ()): 1,
        ("nvr_transcode_started_total", ()): 2,
        ("nvr_transcode_frames_in_total", ()): 60, ("nvr_transcode_frames_out_total", ()): 45,
        ("nvr_transcode_refused_total", (("kind", "file"), ("reason", "limit"))): 1,
        ("nvr_transcode_refused_total", (("kind", "live"), ("reason", "limit"))): 0,
        ("nvr_transcode_frames_dropped_total", (("reason", "damaged"),)): 0,
        ("nvr_transcode_frames_dropped_total", (("reason", "slow"),)): 0,
    }
    held.release()
