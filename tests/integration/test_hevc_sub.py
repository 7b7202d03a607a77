"""The recordings player's sub-stream path (issue 20): a camera whose main stream is
H.265 (the GStreamer test camera's ``/file/hevc-640x360``) and whose sub stream is H.264
(``/file/h264-640x360``), recorded by the real daemon; Debian's Chromium, which cannot
decode H.265.

What is checked: a clicked moment plays the sub stream's recordings (no transcode) and
the player says "sub stream" and why; with the sub stream not allowed (the live page's
choice, kept in localStorage) the same moment plays converted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from tests.support.daemon import CameraSpec, create_db
from tests.support.http import daemon_in_thread
from tests.support.poll import wait_until
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp

DESKTOP = {"width": 1280, "height": 860}


@dataclasses.dataclass
class Nvr:
    base: str
    camera: str

    def recordings(self, stream: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.base}/api/cameras/{self.camera}/{stream}/recordings",
                      params={"split90k": 1}, headers={"Accept": "application/json"})
        r.raise_for_status()
        return sorted(r.json()["recordings"], key=lambda x: x["startTime90k"])


@pytest.fixture(scope="module")
def nvr(tmp_path_factory: pytest.TempPathFactory, shared_rtsp_server: RtspServer) -> Iterator[Nvr]:
    root = tmp_path_factory.mktemp("hevc-sub")
    layout = create_db(root, {"porch": CameraSpec(
        shared_rtsp_server.url("file/hevc-640x360"),
        sub_url=shared_rtsp_server.url("file/h264-640x360"))})
    config = dataclasses.replace(
        layout.config(rotate_interval_sec=2),
        binds=(BindConfig("127.0.0.1:0",
                          allow_unauthenticated=("viewVideo", "readCameraConfigs")),),
    )
    with daemon_in_thread(config) as d:
        base = d.http_addresses[0]
        top = httpx.get(base + "/api/", headers={"Accept": "application/json"}).json()
        n = Nvr(base, top["cameras"][0]["uuid"])
        wait_until(
            lambda: all(len([r for r in n.recordings(s) if "growing" not in r]) >= 3
                        for s in ("main", "sub")),
            30, "the daemon recorded less than 3 recordings of each stream in 30 s")
        yield n


def click_moment(page: Any, nvr: Nvr) -> None:
    """Opens the recordings page and clicks a moment both streams recorded (half a second
    into the main stream's second recording, or into the sub stream's first if later)."""
    page.set_viewport_size(DESKTOP)
    page.on("console", lambda m: print("CONSOLE", m.type, m.text))
    page.goto(nvr.base + "/recordings")
    page.wait_for_function(
        "() => Number(document.querySelector('#timeline')?.dataset.recordings) >= 2")
    page.click("label[for=zoom-fit]")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    geo = page.eval_on_selector(
        "#timeline",
        """c => { const r = c.getBoundingClientRect(); const d = c.dataset;
                  return {left: r.left, top: r.top, start: +d.start90k, end: +d.end90k,
                          trackLeft: +d.trackLeft, trackWidth: +d.trackWidth,
                          rowTop: +d.rowTop, rowHeight: +d.rowHeight}; }""",
    )
    target = max(nvr.recordings("main")[1]["startTime90k"],
                 nvr.recordings("sub")[0]["startTime90k"]) + UNITS_PER_SEC // 2
    x = geo["left"] + geo["trackLeft"] + (target - geo["start"]) / (
        geo["end"] - geo["start"]) * geo["trackWidth"]
    page.mouse.click(x, geo["top"] + geo["rowTop"] + geo["rowHeight"] / 2)


def test_the_recordings_player_plays_the_h264_sub_stream_and_says_why(
    page: Any, nvr: Nvr
) -> None:
    click_moment(page, nvr)
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.3",
                           timeout=15000)
    src = page.get_attribute("#player", "src") or ""
    assert "/sub/view.mp4?" in src and "transcode" not in src, src
    assert page.text_content("#play-path") == "sub stream"
    assert page.get_attribute("#play-path", "data-path") == "sub"
    why = page.get_attribute("#play-path", "title") or ""
    assert "cannot play H.265 (hvc1." in why, why
    assert "sub stream is H.264" in why and "has recordings of this span" in why, why


def test_with_the_sub_stream_not_allowed_the_player_converts(page: Any, nvr: Nvr) -> None:
    page.add_init_script(
        "localStorage.setItem('nvr.playback', JSON.stringify({allowSub: false}))")
    click_moment(page, nvr)
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.3",
                           timeout=15000)
    src = page.get_attribute("#player", "src") or ""
    assert "/main/view.mp4?" in src and "transcode=h264" in src, src
    assert page.get_attribute("#play-path", "data-path") == "converted"
