"""Bad cameras on the network beside a good one (issue 7), with the real daemon: a
"camera" that answers RTSP with garbage bytes and one that accepts the connection and
never says a word get a clear state (backoff with the reason), while the GStreamer test
camera beside them records one contiguous run. (Timestamp trouble, missing key frames,
resolution changes and rejected credentials are in ``tests/unit/test_bad_cameras.py``
and ``test_daemon.py``.)"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
import trio

from tests.integration.test_daemon import ROTATE_SEC, backoff, check_all
from tests.support.daemon import CameraSpec, by_stream, create_db, poll, running
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
        config = layout.config(rotate_interval_sec=ROTATE_SEC, read_timeout_sec=1.0)
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
    assert good.counters.sessions == 1
    recs = by_stream(check_all(layout))
    assert list(recs) == [sids["good"]]
    assert {r.prev_runs for r in recs[sids["good"]]} == {0}
