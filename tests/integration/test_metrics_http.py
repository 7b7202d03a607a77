"""``/metrics`` of the real daemon over real HTTP while it records the GStreamer test
camera: served only on the bind with ``metrics = true``, parsed with
``prometheus_client.parser``, and in agreement with what the streamers counted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import trio
import trio_util
from prometheus_client.parser import text_string_to_metric_families

from nvr import daemon
from nvr.config import BindConfig
from tests.support.daemon import CameraSpec, create_db
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp


async def test_metrics_of_a_recording_daemon(
    tmp_path: Path, shared_rtsp_server: RtspServer
) -> None:
    layout = create_db(tmp_path, {"live": CameraSpec(shared_rtsp_server.url("live"))})
    sid = layout.stream_ids["live"]
    config = replace(
        layout.config(rotate_interval_sec=2),
        binds=(BindConfig("127.0.0.1:0"), BindConfig("127.0.0.1:0", metrics=True)),
    )
    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(
            lambda task_status: daemon.run(config, handle_signals=False, task_status=task_status)
        )
        try:
            public, scrape = d.http_addresses
            streamer = d.streamers[sid]
            with trio.fail_after(20):  # 2 recordings committed
                async for _ in trio_util.periodic(0.1):
                    if d.db.streams[sid].cum_recordings >= 2:
                        break
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{public}/metrics")).status_code == 404
                assert (await client.get(f"{public}/api/")).status_code == 401
                resp = await client.get(f"{scrape}/metrics")
            frames = streamer.counters.frames
        finally:
            d.shutdown.set()
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    cam = {"camera": "live", "stream": "main"}
    assert value("nvr_stream_state", **cam, state="recording") == 1
    assert 0 < value("nvr_stream_frames_total", **cam) <= frames
    assert value("nvr_stream_recordings_committed_total", **cam) >= 2
    assert value("nvr_syncer_ok", dir="1") == 1
    assert value("nvr_syncer_commit_seconds_count", dir="1") >= 2
    assert value("nvr_dir_fs_free_bytes", dir="1") > 0
    assert value("nvr_healthy") == 1
    assert value("nvr_event_loop_max_lag_seconds") < 1
    # both requests are counted by route, on either bind
    assert value("nvr_http_requests_total", method="GET", route="/api/", status="401") == 1
    assert value("nvr_http_requests_total", method="GET", route="/metrics", status="404") == 1
