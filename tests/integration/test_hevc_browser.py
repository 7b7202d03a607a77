"""H.265 in a browser that cannot decode it (issue 20): Debian's Chromium (no HEVC
decoder) against the real daemon recording an H.265 camera (the GStreamer test camera's
``/file/hevc-640x360``, the fixture clip looped).

What is checked: Chromium says it cannot play the recorded codec; a transcoded
``view.mp4`` plays in a plain ``<video>`` with the recording's duration known from the
first bytes and ``currentTime`` advancing; the live tile chooses "converted" (and says
why), plays through Media Source Extensions with ``currentTime`` advancing; with
``MediaSource.isTypeSupported`` stubbed to say yes, the tile takes the native path (the
socket asks for no transcode); the choice of the sub stream when allowed; the recordings
page plays a clicked moment converted and says so; with the transcode limit taken, a
request gets 503 with its reason while recording goes on without losing a frame.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from nvr import daemon
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from tests.support.daemon import CameraSpec, create_db
from tests.support.http import daemon_in_thread
from tests.support.poll import wait_until
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp

DESKTOP = {"width": 1280, "height": 860}


@dataclass
class Nvr:
    base: str
    camera: str
    daemon: daemon.Daemon

    def api(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.base + path, params=params, headers={"Accept": "application/json"})
        r.raise_for_status()
        return r.json()

    def recordings(self) -> list[dict[str, Any]]:
        rows = self.api(f"/api/cameras/{self.camera}/main/recordings", split90k=1)["recordings"]
        return sorted(rows, key=lambda r: r["startTime90k"])


@pytest.fixture(scope="module")
def nvr(tmp_path_factory: pytest.TempPathFactory, shared_rtsp_server: RtspServer) -> Iterator[Nvr]:
    root = tmp_path_factory.mktemp("hevc")
    layout = create_db(root, {"door": CameraSpec(shared_rtsp_server.url("file/hevc-640x360"))})
    config = dataclasses.replace(
        layout.config(rotate_interval_sec=2),
        binds=(BindConfig("127.0.0.1:0",
                          allow_unauthenticated=("viewVideo", "readCameraConfigs")),),
    )
    with daemon_in_thread(config) as d:
        base = d.http_addresses[0]
        top = httpx.get(base + "/api/", headers={"Accept": "application/json"}).json()
        n = Nvr(base, top["cameras"][0]["uuid"], d)
        wait_until(lambda: len([r for r in n.recordings() if "growing" not in r]) >= 3,
                   30, "the daemon recorded less than 3 recordings in 30 s")
        yield n


def blank(page: Any, nvr: Nvr) -> None:
    """A page of the server's origin (for same-origin requests) with nothing else on it."""
    page.set_viewport_size(DESKTOP)
    page.on("console", lambda m: print("CONSOLE", m.type, m.text))
    page.on("pageerror", lambda e: print("PAGEERROR", e))
    page.goto(nvr.base + "/api/")


def test_chromium_cannot_play_the_recorded_h265_and_the_api_says_its_codec(
    page: Any, nvr: Nvr
) -> None:
    codec = nvr.api("/api/")["cameras"][0]["streams"]["main"]["nvrCodec"]
    assert codec.startswith("hvc1.")
    blank(page, nvr)
    answers = page.evaluate(
        """async (codec) => ({
            mse: MediaSource.isTypeSupported(`video/mp4; codecs="${codec}"`),
            h264: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f"'),
            webcodecs: window.VideoDecoder
                ? (await VideoDecoder.isConfigSupported({codec})).supported : null,
        })""",
        codec,
    )
    print("Debian's Chromium:", codec, answers)
    assert answers["mse"] is False and answers["h264"] is True


def test_a_transcoded_view_mp4_plays_in_a_video_element_with_its_duration(
    page: Any, nvr: Nvr
) -> None:
    rec = next(r for r in nvr.recordings() if "growing" not in r)
    blank(page, nvr)
    url = f"/api/cameras/{nvr.camera}/main/view.mp4?s={rec['startId']}&transcode=h264"
    got = page.evaluate(
        """async (url) => {
            const v = document.createElement('video');
            v.muted = true;
            document.body.append(v);
            v.src = url;
            await new Promise((ok, fail) => {
                v.addEventListener('loadedmetadata', ok, {once: true});
                v.addEventListener('error', () => fail(new Error('error ' + v.error?.code)));
            });
            const duration = v.duration;
            await v.play();
            const t0 = v.currentTime;
            await new Promise((ok) => setTimeout(ok, 1000));
            return {duration, t0, t1: v.currentTime, width: v.videoWidth, height: v.videoHeight};
        }""",
        url,
    )
    media = (rec["endTime90k"] - rec["startTime90k"]) / UNITS_PER_SEC
    # the recording's media duration, from the init segment (a 90 kHz wall/media
    # difference of a few ppm at most)
    assert abs(got["duration"] - media) < 0.05, (got, media)
    assert got["t1"] > got["t0"] + 0.2, got
    assert (got["width"], got["height"]) == (640, 360)


def test_the_live_tile_plays_converted_and_says_why(page: Any, nvr: Nvr) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/live")
    page.click("label[for=layout-1]")
    page.wait_for_function(
        """() => { const v = document.querySelector('.tile video');
                   return v && v.readyState >= 3 && v.currentTime > 0; }""",
        timeout=15000,
    )
    t0 = page.evaluate("() => document.querySelector('.tile video').currentTime")
    page.wait_for_function(
        f"() => document.querySelector('.tile video').currentTime > {t0} + 0.5", timeout=5000)
    assert page.get_attribute(".tile", "data-path") == "converted"
    badge = page.locator(".tile .path-badge")
    page.wait_for_function(
        "() => document.querySelector('.tile .path-badge').textContent === 'converted 360p'")
    why = badge.get_attribute("title") or ""
    assert "cannot play H.265 (hvc1." in why and "converts it to H.264" in why, why
    assert any(u.endswith("/main/live.m4s?transcode=h264") for u in sockets), sockets


def test_with_h265_reported_playable_the_tile_takes_the_native_path(
    page: Any, nvr: Nvr
) -> None:
    page.add_init_script(
        """(() => {
            const real = MediaSource.isTypeSupported.bind(MediaSource);
            MediaSource.isTypeSupported = (t) => /hvc1|hev1/.test(t) || real(t);
        })()"""
    )
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/live")
    page.click("label[for=layout-1]")
    page.wait_for_function("() => document.querySelector('.tile')?.dataset.path === 'native'")
    why = page.get_attribute(".tile .path-badge", "title") or ""
    assert "this browser plays H.265" in why, why
    deadline = time.monotonic() + 5
    while not sockets and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert sockets and sockets[0].endswith("/main/live.m4s"), sockets


def test_the_sub_stream_is_chosen_when_it_plays_and_the_user_allows_it(
    page: Any, nvr: Nvr
) -> None:
    page.goto(nvr.base + "/live")
    got = page.evaluate(
        """async () => {
            const app = [...document.scripts].find((s) => s.src.includes('/static/')).src;
            const p = await import(app.replace(/[^/]*$/, 'playability.js'));
            const cam = {streams: {main: {nvrCodec: 'hvc1.1.6.L93.B0'},
                                   sub: {nvrCodec: 'avc1.4d401e'}}};
            return {allowed: p.choose(cam, 'main', {subAllowed: true}),
                    refused: p.choose(cam, 'main', {subAllowed: false}),
                    h264: p.choose({streams: {main: {nvrCodec: 'avc1.64001f'}}}, 'main')};
        }"""
    )
    assert (got["allowed"]["path"], got["allowed"]["stream"]) == ("sub", "sub")
    assert not got["allowed"]["transcode"] and "sub stream is H.264" in got["allowed"]["why"]
    assert (got["refused"]["path"], got["refused"]["transcode"]) == ("converted", True)
    assert got["h264"]["path"] == "native"


def test_the_recordings_page_plays_a_clicked_moment_converted(page: Any, nvr: Nvr) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/recordings")
    page.wait_for_function(
        "() => Number(document.querySelector('#timeline')?.dataset.recordings) >= 2")
    page.click("label[for=zoom-fit]")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    rows = nvr.recordings()
    geo = page.eval_on_selector(
        "#timeline",
        """c => { const r = c.getBoundingClientRect(); const d = c.dataset;
                  return {left: r.left, top: r.top, start: +d.start90k, end: +d.end90k,
                          trackLeft: +d.trackLeft, trackWidth: +d.trackWidth,
                          rowTop: +d.rowTop, rowHeight: +d.rowHeight}; }""",
    )
    target = rows[1]["startTime90k"] + UNITS_PER_SEC // 2
    x = geo["left"] + geo["trackLeft"] + (target - geo["start"]) / (
        geo["end"] - geo["start"]) * geo["trackWidth"]
    page.mouse.click(x, geo["top"] + geo["rowTop"] + geo["rowHeight"] / 2)
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.3",
                           timeout=15000)
    assert "transcode=h264" in (page.get_attribute("#player", "src") or "")
    page.wait_for_function(
        "() => document.querySelector('#play-path').textContent === 'converted 360p'")
    assert page.get_attribute("#play-path", "data-path") == "converted"


def test_over_the_limit_503_with_a_reason_and_recording_loses_no_frame(
    page: Any, nvr: Nvr
) -> None:
    rec = next(r for r in nvr.recordings() if "growing" not in r)
    url = f"{nvr.base}/api/cameras/{nvr.camera}/main/view.mp4?s={rec['startId']}&transcode=h264"
    # the pages of the tests before have closed: their transcodes end as the server
    # notices the closed connections
    wait_until(lambda: httpx.get(url, timeout=30).status_code == 200, 10,
               "the transcodes of closed pages were not freed in 10 s")
    before = nvr.recordings()[-1]["startId"]
    blank(page, nvr)
    # two live transcodes held open (the default limit); then a file and a third socket
    got = page.evaluate(
        """async ([cam, url]) => {
            const live = `ws://${location.host}/api/cameras/${cam}/main/live.m4s?transcode=h264`;
            const open = () => new Promise((ok) => {
                const ws = new WebSocket(live);
                ws.binaryType = 'arraybuffer';
                ws.onmessage = (e) => { if (typeof e.data !== 'string') ok(ws); };
            });
            window.held = [await open(), await open()];
            const file = await fetch(url);
            const third = await new Promise((ok) => {
                const ws = new WebSocket(live);
                ws.onmessage = (e) => ok(e.data);
            });
            return {status: file.status, retry: file.headers.get('Retry-After'),
                    text: await file.text(), third};
        }""",
        [nvr.camera, url],
    )
    assert got["status"] == 503 and got["retry"] == "5", got
    assert "converts at most 2 videos at once" in got["text"]
    assert '"status": 503' in got["third"] and "sub stream" in got["third"]
    # two live transcodes for a few seconds more while the camera records
    page.wait_for_timeout(4000)
    page.evaluate("() => window.held.forEach((ws) => ws.close())")
    # every recording made meanwhile has the camera's 30 frames a second: the streamer
    # dropped none (a dropped frame leaves its time in the recording without a sample)
    def finished() -> list[dict[str, Any]] | None:
        d = [r for r in nvr.recordings() if r["startId"] > before and "growing" not in r]
        return d if len(d) >= 2 else None

    done = wait_until(finished, 10, "fewer than 2 recordings finished in 10 s")
    for r in done:
        seconds = (r["endTime90k"] - r["startTime90k"]) / UNITS_PER_SEC
        assert abs(r["videoSamples"] - seconds * 30) <= 1, r
    status = nvr.api("/api/")["cameras"][0]["streams"]["main"]["nvrStatus"]
    assert status["state"] == "recording"
