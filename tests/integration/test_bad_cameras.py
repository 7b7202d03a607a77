"""Bad cameras on the network beside a good one (issues 7 and 12), with the real daemon: a
"camera" that answers RTSP with garbage bytes, one that accepts the connection and never
says a word, one that trickles its handshake a byte at a time, and one whose RTP packets
carry random bytes get a clear state (backoff with the reason), while the GStreamer test
camera beside them records one contiguous run, nothing of the bad ones is stored, and
the daemon stays healthy. (Timestamp trouble, missing key frames, resolution changes and
rejected credentials are in ``tests/unit/test_bad_cameras.py`` and ``test_daemon.py``.)"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from nvr.codec import decoder_config
from nvr.daemon import Daemon
from nvr.testing.replay import load_packets
from tests.integration.test_daemon import ROTATE_SEC, backoff, check_all
from tests.support.daemon import CameraSpec, Layout, by_stream, create_db, poll, running
from tests.support.fake_rtsp import FakeCamera
from tests.support.paths import FIXTURES
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp


async def garbage(stream: trio.SocketStream) -> None:
    """Answers anything with random bytes, then hangs up."""
    async with stream:
        await stream.receive_some()
        await stream.send_all(os.urandom(4096))


async def silent(stream: trio.SocketStream) -> None:
    """Accepts and never answers."""
    async with stream:
        await trio.sleep_forever()


async def test_garbage_and_silent_cameras_beside_a_good_one(
    tmp_path: Path, shared_rtsp_server: RtspServer
) -> None:
    async with trio.open_nursery() as servers:
        ports = {}
        for name, handler in (("garbage", garbage), ("silent", silent)):
            listeners = await servers.start(
                functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
            )
            ports[name] = listeners[0].socket.getsockname()[1]
        layout = create_db(
            tmp_path,
            {
                "good": CameraSpec(shared_rtsp_server.url("live")),
                "garbage": CameraSpec(f"rtsp://127.0.0.1:{ports['garbage']}/x"),
                "silent": CameraSpec(f"rtsp://127.0.0.1:{ports['silent']}/x"),
            },
        )
        sids = layout.stream_ids
        config = layout.config(
            rotate_interval_sec=ROTATE_SEC, read_timeout_sec=1.0, connect_timeout_sec=5.0
        )
        async with running(config) as d:
            states = {}
            with trio.fail_after(15):
                for name in ("garbage", "silent"):
                    states[name] = await d.streamers[sids[name]].state.wait_value(backoff)
                await poll(lambda: d.streamers[sids["good"]].counters.recordings >= 2)
            good = d.streamers[sids["good"]]
            assert good.state.value.kind == "recording"
        servers.cancel_scope.cancel()
    for name, port in ports.items():
        error = states[name].last_error
        assert error is not None
        assert error.startswith(f"Unavailable: rtsp://127.0.0.1:{port}/x: "), (name, error)
    # the silent camera's error is the timeout it is (issue 12, point 9: FFmpeg says
    # "Invalid data found when processing input")
    assert states["silent"].last_error == (
        f"Unavailable: rtsp://127.0.0.1:{ports['silent']}/x: timed out: no answer for 1.000s "
        "while connecting"
    )
    assert good.counters.sessions == 1
    recs = by_stream(check_all(layout))
    assert list(recs) == [sids["good"]]
    assert {r.prev_runs for r in recs[sids["good"]]} == {0}


@asynccontextmanager
async def beside_a_good_camera(
    tmp_path: Path, good: RtspServer, bad: FakeCamera, **config: float
) -> AsyncIterator[tuple[Daemon, Layout]]:
    """Serves ``bad`` and runs the daemon recording it (camera "bad") beside the good
    test camera (camera "good"), with read and connect timeouts of 1 s and ``config``."""
    async with trio.open_nursery() as servers:
        await servers.start(bad.serve)
        layout = create_db(
            tmp_path, {"good": CameraSpec(good.url("live")), "bad": CameraSpec(bad.url)}
        )
        settings = layout.config(
            rotate_interval_sec=ROTATE_SEC, read_timeout_sec=1.0, connect_timeout_sec=1.0
        )
        async with running(replace(settings, **config)) as d:  # type: ignore[arg-type]
            yield d, layout
        servers.cancel_scope.cancel()


async def test_a_trickled_handshake_times_out_and_the_daemon_stays_healthy(
    tmp_path: Path, shared_rtsp_server: RtspServer
) -> None:
    """Issue 12, point 6: a camera answering RTSP a byte at a time (there: one every 2 s)
    stayed "connecting" until the streamer-stuck limit made the whole daemon unhealthy.
    Now each attempt ends at the connect deadline as that camera's timeout, and liveness
    finds no problem for longer than the limit."""
    camera = FakeCamera(byte_delay=0.2)
    stuck_limit = 12.0  # the smallest allowed: twice read_timeout_sec + 5 s
    async with beside_a_good_camera(
        tmp_path, shared_rtsp_server, camera, watchdog_streamer_stuck_sec=stuck_limit
    ) as (d, layout):
        problems, abandoned = [], set[str]()
        started = trio.current_time()
        while trio.current_time() < started + stuck_limit + 2:
            problems += d.liveness.problems()
            abandoned.update(t.name for t in d.liveness.threads.running())
            await trio.sleep(0.25)
        slow, good = d.streamers[layout.stream_ids["bad"]], d.streamers[layout.stream_ids["good"]]
        assert good.state.value.kind == "recording"
    assert problems == []
    # each abandoned connect was watched until FFmpeg's interrupt ended it
    assert abandoned == {f"nvr connect {camera.url}"}
    # connect 1 s, backoff 1 s, connect 1 s, backoff 2 s, 1 s, 4 s, 1 s...: 4 attempts
    assert slow.counters.disconnects["connect timeout"] >= 4, slow.counters
    assert set(slow.counters.disconnects) == {"connect timeout"}
    assert slow.state.value.last_error == (
        f"Unavailable: {camera.url}: timed out: no complete answer within 1.000s of connecting"
    )
    assert set(camera.requests) == {"OPTIONS"}  # never further
    assert good.counters.sessions == 1
    assert list(by_stream(check_all(layout))) == [layout.stream_ids["good"]]


def random_payloads(seed: int) -> FakeCamera:
    """A camera whose SDP carries valid parameter sets (the 1080p clip's) and whose RTP
    packets carry random bytes, different in each session."""
    clip = load_packets(str(FIXTURES / "h264-1920x1080.mp4"))
    units, _ = decoder_config.parameter_sets(b"avcC", clip[0].sample_entry.data[8:])
    rng = random.Random(seed)
    return FakeCamera(
        parameter_sets=b"".join(b"\x00\x00\x00\x01" + unit for unit in units),
        payload=lambda _i: rng.randbytes(rng.randrange(1, 1400)),
        packet_interval=0.005,
    )


async def test_a_camera_sending_random_rtp_stores_nothing(
    tmp_path: Path, shared_rtsp_server: RtspServer
) -> None:
    """Issue 12, point 7: random RTP payloads made undecodable recordings and sample
    entries of sizes like 8x10. Now every session ends at the first unit that cannot be
    video, before a run starts: no recording, no sample entry (not even the SDP's
    1920x1080, which no run ever used), and the reason in the camera's state."""
    camera = random_payloads(seed=12)
    async with beside_a_good_camera(tmp_path, shared_rtsp_server, camera) as (d, layout):
        sids = layout.stream_ids
        noise, good = d.streamers[sids["bad"]], d.streamers[sids["good"]]
        with trio.fail_after(20):
            # sessions 1 s, 2 s and 4 s apart
            await poll(lambda: noise.counters.sessions >= 4)
            await poll(lambda: good.counters.recordings >= 2)
        entries = {(e.width, e.height) for e in d.db.video_sample_entries.values()}
    assert camera.requests.count("PLAY") >= 3
    assert set(noise.counters.disconnects) == {"DataLoss"}, noise.counters
    error = noise.state.value.last_error
    assert error is not None and error.startswith(f"DataLoss: {camera.url}: "), error
    assert noise.counters.recordings == 0 and noise.counters.frames == 0
    assert entries == {(640, 360)}  # the good camera's
    assert list(by_stream(check_all(layout))) == [sids["good"]]
