"""The web UI in Chromium against the real daemon recording the GStreamer test camera
(issue 6).

One daemon per module runs in a thread of its own (its own ``trio.run``), recording the
test camera's ``/live`` path with 2 s rotation, and serves HTTP on two loopback ports:
one bind grants ``viewVideo`` and ``readCameraConfigs`` without a session, as ``nvr demo``
does; the other grants nothing, for the login tests (a user is added with ``nvr config
user add`` before the daemon starts). The browser tests are plain synchronous functions
(Playwright's sync API).

What is checked: the recordings page lists the camera and picks up new recordings of
today without a reload; a click on the timeline plays that moment and the wall time shown
for the first frame on screen is the clicked one within a frame interval; a span selected
on the timeline downloads as one ``.mp4`` that PyAV decodes and that covers exactly that
span; the login/logout flow against the documented API shapes (answers stubbed in the
browser) and against the server (after logout the API answers 401); screenshots of the
live grid, the day timeline and the phone layout are written to ``test-artifacts/`` and
are not blank.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import av
import httpx
import numpy as np
import pytest

from nvr import cli
from nvr.base.time90k import UNITS_PER_SEC
from nvr.base.units import format_size
from nvr.config import BindConfig
from nvr.web import ui
from tests.support.daemon import CameraSpec, create_db
from tests.support.http import daemon_in_thread
from tests.support.poll import wait_until
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp

FPS = 30
FRAME_90K = UNITS_PER_SEC // FPS
TZ = "Asia/Kolkata"  # not UTC, and not a whole number of hours from it
ANONYMOUS = ("viewVideo", "readCameraConfigs")
#: the wall time the player shows, as a JavaScript expression
WALL = "Number(document.querySelector('#wall-time').dataset.time90k)"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


@dataclass
class Nvr:
    base: str
    camera: str  # uuid
    root: Path
    #: a second bind of the same daemon that grants nothing without a login
    login_base: str = ""

    def api(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.base + path, params=params, headers={"Accept": "application/json"})
        r.raise_for_status()
        return r.json()

    def recordings(self) -> list[dict[str, Any]]:
        rows = self.api(f"/api/cameras/{self.camera}/main/recordings", split90k=1)["recordings"]
        return sorted(rows, key=lambda r: r["startTime90k"])


@pytest.fixture(scope="module")
def nvr(tmp_path_factory: pytest.TempPathFactory, shared_rtsp_server: RtspServer) -> Iterator[Nvr]:
    root = tmp_path_factory.mktemp("ui")
    layout = create_db(root, {"yard": CameraSpec(shared_rtsp_server.url("live"))})
    add_user(layout.db_dir, USER, PASSWORD)
    add_user(layout.db_dir, KEEPER, PASSWORD, perms="viewVideo,protectVideo")
    add_user(layout.db_dir, ADMIN, PASSWORD,
             perms="viewVideo,protectVideo,adminUsers,redactVideo")
    config = dataclasses.replace(
        layout.config(rotate_interval_sec=2),
        time_zone=TZ,
        binds=(
            BindConfig("127.0.0.1:0", allow_unauthenticated=ANONYMOUS),
            BindConfig("127.0.0.1:0"),
        ),
    )
    with daemon_in_thread(config) as d:
        base = d.http_addresses[0]
        top = httpx.get(base + "/api/", headers={"Accept": "application/json"}).json()
        n = Nvr(base, top["cameras"][0]["uuid"], root, d.http_addresses[1])
        # a few recordings of video, so there are boundaries to click and select across
        def enough() -> bool:
            rows = n.recordings()
            span = rows[-1]["endTime90k"] - rows[0]["startTime90k"] if rows else 0
            return len(rows) >= 3 and span > 5 * UNITS_PER_SEC

        wait_until(enough, 25, "the daemon recorded less than 5 s in 25 s")
        yield n


# -- helpers --------------------------------------------------------------------------

USER, PASSWORD = "alice", "correct horse battery staple"
KEEPER = "keeper"  # may protect video
ADMIN = "boss"  # may protect video, redact (redactVideo) and manage users


def add_user(db_dir: Path, name: str, password: str, perms: str = "viewVideo") -> None:
    """``nvr config user add NAME --password-stdin --perms viewVideo``, as a person would."""
    stdin = sys.stdin
    sys.stdin = io.StringIO(password + "\n")
    try:
        args = ["--db-dir", str(db_dir), "config", "user", "add", name, "--password-stdin"]
        assert cli.main([*args, "--perms", perms]) == 0
    finally:
        sys.stdin = stdin


def not_blank(png: Path) -> float:
    """The standard deviation of the screenshot's pixels (PyAV decodes the PNG)."""
    with av.open(str(png)) as c:
        frame = next(c.decode(video=0))
    pixels = frame.to_ndarray(format="rgb24").astype(np.float32)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    return float(pixels.std())


def open_recordings(page: Any, nvr: Nvr, *, viewport: dict[str, int] = DESKTOP) -> None:
    page.set_viewport_size(viewport)
    page.on("console", lambda m: print("CONSOLE", m.type, m.text))
    page.on("pageerror", lambda e: print("PAGEERROR", e))
    page.goto(nvr.base + "/recordings")
    page.wait_for_function(
        "() => Number(document.querySelector('#timeline')?.dataset.recordings) >= 2"
    )
    page.click("label[for=zoom-fit]")
    next_animation_frame(page)


def next_animation_frame(page: Any) -> None:
    """Returns once the page has run its next animation frames: the timeline repaints in
    one (``Timeline.draw``), so a change made before this call is on the canvas after."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def pump_until(page: Any, done: Callable[[], bool], seconds: float) -> None:
    """Lets Playwright's loop run (routed sockets arrive through it) until ``done()`` or
    ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        page.wait_for_timeout(20)


def timeline_geometry(page: Any) -> dict[str, float]:
    """Where the timeline is and what it shows, as last painted: after the next frame, so
    a window set just before (a click, a key) is the one read."""
    next_animation_frame(page)
    geo: dict[str, float] = page.eval_on_selector(
        "#timeline",
        """c => {
            const r = c.getBoundingClientRect();
            const d = c.dataset;
            return {left: r.left, top: r.top, start: +d.start90k, end: +d.end90k,
                    trackLeft: +d.trackLeft, trackWidth: +d.trackWidth, rowTop: +d.rowTop,
                    rowHeight: +d.rowHeight};
        }""",
    )
    return geo


def x_of(geo: dict[str, float], t90k: int) -> float:
    frac = (t90k - geo["start"]) / (geo["end"] - geo["start"])
    return geo["left"] + geo["trackLeft"] + frac * geo["trackWidth"]


def t_of(geo: dict[str, float], x: float) -> int:
    frac = (x - geo["left"] - geo["trackLeft"]) / geo["trackWidth"]
    return round(geo["start"] + frac * (geo["end"] - geo["start"]))


def row_y(geo: dict[str, float], row: int = 0) -> float:
    return geo["top"] + geo["rowTop"] + geo["rowHeight"] / 2 + row * (geo["rowHeight"] + 6)


# -- tests ----------------------------------------------------------------------------


def test_recordings_page_lists_the_camera_and_polls_for_new_ones(page: Any, nvr: Nvr) -> None:
    open_recordings(page, nvr)
    assert page.get_attribute("#timeline", "aria-label") == "Timeline"
    # the canvas draws the camera's name; the calendar marks today (in the server's zone)
    assert page.inner_text("#day-title")
    assert page.locator(".cal-day.has-video[aria-selected=true]").count() == 1
    before = int(page.get_attribute("#timeline", "data-recordings") or 0)
    # a new recording every 2 s; the page polls every 5 s
    page.wait_for_function(
        f"() => Number(document.querySelector('#timeline').dataset.recordings) > {before}",
        timeout=15000,
    )
    top = nvr.api("/api/", days="true")
    assert [c["shortName"] for c in top["cameras"]] == ["yard"]


def test_click_on_the_timeline_plays_that_moment(page: Any, nvr: Nvr) -> None:
    open_recordings(page, nvr)
    rows = nvr.recordings()
    geo = timeline_geometry(page)
    # inside the second recording, off the frame grid and away from its key frames
    target = rows[1]["startTime90k"] + UNITS_PER_SEC // 2 + 1234
    x = x_of(geo, target)
    clicked = t_of(geo, x)  # what the pixel clicked stands for
    # the wall time on screen when the first frame is presented (the page's own frame
    # callback runs first: it was registered first)
    page.evaluate(
        """() => {
            const v = document.querySelector('#player');
            window.firstFrame = null;
            v.requestVideoFrameCallback((now, meta) => {
                window.firstFrame = {mediaTime: meta.mediaTime,
                    shown: WALL, text: document.querySelector('#wall-time').textContent};
            });
        }""".replace("WALL", WALL)
    )
    page.mouse.click(x, row_y(geo))
    page.wait_for_function("() => window.firstFrame !== null", timeout=30000)  # a loaded machine
    first = page.evaluate("() => window.firstFrame")
    assert abs(first["shown"] - clicked) <= FRAME_90K, (first, clicked)
    assert first["mediaTime"] * UNITS_PER_SEC <= FRAME_90K, first
    # the time shown is a wall-clock time in the server's zone, to the millisecond
    local = dt.datetime.fromtimestamp(first["shown"] / UNITS_PER_SEC, ZoneInfo(TZ))
    assert first["text"] == local.strftime("%H:%M:%S.%f")[:12]
    src = page.get_attribute("#player", "src") or ""
    assert f"s={rows[1]['startId']}" in src and "." in src.split("s=")[1]
    # it plays on, and the shown time follows the video
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.5")
    played = page.evaluate(
        "() => { const v = document.querySelector('#player'); v.pause(); return v.currentTime; }"
    )
    # the paused frame's callback shows its time
    expected = clicked + played * UNITS_PER_SEC
    page.wait_for_function(
        f"""() => Math.abs(document.querySelector('#wall-time').dataset.time90k - {expected})
                  <= {2 * FRAME_90K}""",
        timeout=5000,
    )
    # previous/next recording
    assert page.is_enabled("#prev-rec")
    page.click("#prev-rec")
    page.wait_for_function(f"() => {WALL} < {rows[1]['startTime90k']}")
    shown = int(page.get_attribute("#wall-time", "data-time90k") or 0)
    assert rows[0]["startTime90k"] <= shown < rows[0]["startTime90k"] + UNITS_PER_SEC
    # the keyboard plays too: Enter at the cursor
    page.focus("#timeline")
    page.keyboard.press("Home")
    page.keyboard.press("Enter")
    page.wait_for_function("() => !!document.querySelector('#player').src")


def test_selected_span_downloads_as_one_mp4(page: Any, nvr: Nvr, tmp_path: Path) -> None:
    open_recordings(page, nvr)
    rows = nvr.recordings()
    geo = timeline_geometry(page)
    # from inside the first recording to inside the third: across two boundaries
    a = rows[0]["startTime90k"] + UNITS_PER_SEC // 3
    b = rows[2]["startTime90k"] + UNITS_PER_SEC // 2
    xa, xb = x_of(geo, a), x_of(geo, b)
    ta, tb = t_of(geo, xa), t_of(geo, xb)
    y = row_y(geo)
    page.keyboard.down("Shift")
    page.mouse.move(xa, y)
    page.mouse.down()
    page.mouse.move((xa + xb) / 2, y, steps=4)
    page.mouse.move(xb, y, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    link = page.locator("#selection a[download]")
    assert link.count() == 1
    start, end = int(link.get_attribute("data-start90k")), int(link.get_attribute("data-end90k"))
    assert (start, end) == (ta, tb)
    with page.expect_download() as info:
        link.click()
    download = info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.suffix == ".mp4"
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f for f in c.decode(stream)]
        tb_s = float(stream.time_base)
        pts = [float(f.pts) * tb_s for f in frames if f.pts is not None]
    # exactly the span: the edit list starts the presentation at the selected instant and
    # the last frame ends at (within a frame of) the selected end
    want = (tb - ta) / UNITS_PER_SEC
    assert abs(len(frames) / FPS - want) <= 1.5 / FPS, (len(frames), want)
    assert min(pts) <= 1 / FPS, pts[:3]
    assert abs(max(pts) + 1 / FPS - want) <= 1.5 / FPS, (max(pts), want)
    # by keyboard: Escape clears the span, Shift+arrows make one from the cursor
    page.focus("#timeline")
    page.keyboard.press("Escape")
    assert page.is_hidden("#selection")
    for _ in range(3):  # from where the drag ended, inside the third recording
        page.keyboard.press("Shift+ArrowLeft")
    assert page.locator("#selection a[download]").count() == 1
    assert page.input_value("#sel-from") < page.input_value("#sel-to")


def test_screenshots_of_the_live_grid_timeline_and_phone(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    """Dark scheme (the look most people watch cameras in). The live tile is fed the
    daemon's recorded video through a socket answered in the browser."""
    page.emulate_media(color_scheme="dark")
    frames = live_messages(nvr, 1)[0]
    page.route_web_socket(re.compile(r".*/live\.m4s$"), lambda ws: [ws.send(f) for f in frames])
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/live")
    page.click("label[for=layout-4]")
    page.wait_for_selector(".tile[data-index='0'][data-state=playing]")
    page.wait_for_function("() => document.querySelector('.tile video').currentTime > 0.5")
    shots = {"ui-live-grid.png": page.screenshot(path=str(artifact_dir / "ui-live-grid.png"))}
    open_recordings(page, nvr)
    rows = nvr.recordings()
    geo = timeline_geometry(page)
    y = row_y(geo)
    page.mouse.click(x_of(geo, rows[1]["startTime90k"] + UNITS_PER_SEC), y)
    page.keyboard.down("Shift")
    page.mouse.move(x_of(geo, rows[0]["startTime90k"] + UNITS_PER_SEC // 2), y)
    page.mouse.down()
    page.mouse.move(x_of(geo, rows[2]["startTime90k"]), y, steps=3)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.5")
    page.evaluate("() => document.querySelector('#player').pause()")
    page.mouse.move(0, 0)
    shots["ui-recordings.png"] = page.screenshot(path=str(artifact_dir / "ui-recordings.png"))
    card = page.locator(".timeline-card")
    shots["ui-day-timeline.png"] = card.screenshot(path=str(artifact_dir / "ui-day-timeline.png"))
    page.click("label[for=zoom-day]")
    next_animation_frame(page)
    shots["ui-day-timeline-24h.png"] = card.screenshot(
        path=str(artifact_dir / "ui-day-timeline-24h.png")
    )
    open_recordings(page, nvr, viewport=PHONE)
    geo = timeline_geometry(page)
    page.mouse.click(x_of(geo, rows[1]["startTime90k"] + UNITS_PER_SEC), row_y(geo))
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.3")
    page.evaluate("() => document.querySelector('#player').pause()")
    shots["ui-phone-recordings.png"] = page.screenshot(
        path=str(artifact_dir / "ui-phone-recordings.png"), full_page=True
    )
    page.goto(nvr.base + "/status")
    page.wait_for_selector(".cam-status")
    shots["ui-phone-status.png"] = page.screenshot(
        path=str(artifact_dir / "ui-phone-status.png"), full_page=True
    )
    # the phone layout fits the width: nothing scrolls sideways
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert len(set(shots.values())) == len(shots)
    for name in shots:
        assert not_blank(artifact_dir / name) > 10, name


def test_status_page_shows_the_stream_and_its_directory(page: Any, nvr: Nvr) -> None:
    """Issue 17: a directory by its path (this bind grants ``readCameraConfigs``), with its
    disk's free space and size; no warning while the budgets fit."""
    page.goto(nvr.base + "/status")
    page.wait_for_selector(".cam-status .badge.recording")
    assert "yard" in page.inner_text(".cam-status h2")
    (d,) = nvr.api("/api/")["nvrSampleFileDirs"]
    row = page.inner_text(".dirs tbody tr")
    assert row.startswith(d["path"]) and "directory 1" not in row
    assert "yard/main" in row
    assert f" free of {format_size(d['totalBytes'])}" in row
    assert page.query_selector(".dirs .budget-warning") is None


def test_status_page_warns_when_budgets_exceed_the_disk(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    """The server's warning (``nvrSampleFileDirs``; the API's test makes it) is shown next
    to its directory: here ``/api/`` is answered in the browser with the daemon's own
    answer, its budget raised to twice the disk."""
    real = nvr.api("/api/", days="true")
    d = real["nvrSampleFileDirs"][0]
    d["retainBytes"] = 2 * d["totalBytes"]
    d["warning"] = "the streams' budgets (...) are more than the disk holds (...)"
    page.route(
        lambda url: urlsplit(url).path == "/api/",
        lambda route: route.fulfill(status=200, content_type="application/json",
                                    body=json.dumps(real)),
    )
    page.goto(nvr.base + "/status")
    warning = page.wait_for_selector(".dirs .budget-warning")
    assert warning.inner_text() == "Warning: " + d["warning"]
    page.locator(".dirs").screenshot(path=str(artifact_dir / "ui-status-budget-warning.png"))


def test_status_page_shows_each_archive_state_backlog_and_alarm(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    """Issue 18: each archive (the ``archives`` extension; its API test makes the fields)
    with its uploader's state, last error, the skipped-file alarm, the backlog with its
    oldest recording, and what it uploaded. ``/api/`` is the daemon's own answer with two
    archives added in the browser: one uploading, one retrying with an alarm."""
    real = nvr.api("/api/", days="true")
    t0 = real["cameras"][0]["streams"]["main"]["minStartTime90k"]
    base = {"streams": [{"cameraUuid": nvr.camera, "type": "main"}], "requireArchived": False,
            "retainDays": None, "retainBytes": None, "maxRate": None}
    real["archives"] = [
        {**base, "uuid": "00000000-0000-4000-8000-000000000001", "shortName": "offsite",
         "backlog": {"recordings": 0, "bytes": 0, "oldestStartTime90k": None},
         "neverArchivedRecordings": 0,
         "status": {"state": "ok", "failingSince90k": None, "lastError": None, "attempts": 0,
                    "uploadedRecordings": 42, "uploadedBytes": 44_000_000,
                    "skippedRecordings": 0, "lastSkip": None}},
        {**base, "uuid": "00000000-0000-4000-8000-000000000002", "shortName": "cloud",
         "backlog": {"recordings": 7, "bytes": 7_340_032, "oldestStartTime90k": t0},
         "neverArchivedRecordings": 2,
         "status": {"state": "retrying", "failingSince90k": t0, "lastError":
                    "upload: PUT s3://b/k: Unavailable", "attempts": 5,
                    "uploadedRecordings": 3, "uploadedBytes": 3_000_000,
                    "skippedRecordings": 1, "lastSkip":
                    "sample file 0000000100000002 no longer has the SHA-256 recorded"}},
    ]
    page.route(
        lambda url: urlsplit(url).path == "/api/",
        lambda route: route.fulfill(status=200, content_type="application/json",
                                    body=json.dumps(real)),
    )
    page.goto(nvr.base + "/status")
    page.wait_for_selector(".archives tbody tr")
    ok = page.inner_text(".archives tr[data-archive$='1']")
    assert ok.startswith("offsite") and "up to date" in ok
    assert "everything is archived" in ok and "(42 recordings)" in ok
    assert page.query_selector(".archives tr[data-archive$='1'] .archive-alarm") is None
    bad = page.inner_text(".archives tr[data-archive$='2']")
    assert "retrying" in bad and "5 attempts" in bad
    assert "Last error: upload: PUT s3://b/k: Unavailable" in bad
    assert "7 recordings, " in bad and "oldest not archived: " in bad
    assert "2 deleted locally before they were archived" in bad
    alarm = page.inner_text(".archives tr[data-archive$='2'] .archive-alarm")
    assert alarm.startswith("1 recordings not archived: sample file 0000000100000002")
    page.locator(".archives").screenshot(path=str(artifact_dir / "ui-status-archives.png"))


def test_the_browser_loads_every_ui_file_under_one_content_hash(page: Any, nvr: Nvr) -> None:
    """Cache-busting as Chromium sees it: the shell is never cached, and every script and
    stylesheet the page loads (``app.js`` and each module it imports, by relative
    specifiers) comes from ``/static/<version>/``, cacheable for good."""
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r))
    page.goto(nvr.base + "/recordings")
    page.wait_for_function(
        "() => Number(document.querySelector('#timeline')?.dataset.recordings) >= 1"
    )
    paths = {urlsplit(r.url).path: r for r in responses}
    assert paths["/recordings"].headers["cache-control"] == "no-cache"
    static = {path: r for path, r in paths.items() if path.startswith("/static/")}
    prefixes = {path.rsplit("/", 1)[0] for path in static}
    assert len(prefixes) == 1 and re.fullmatch(r"/static/[0-9a-f]{16}", prefixes.pop()), static
    for r in static.values():
        assert r.status == 200 and r.headers["cache-control"] == ui.IMMUTABLE, r.url
    names = {path.rsplit("/", 1)[1] for path in static}
    assert names == {p.name for p in ui.STATIC_DIR.iterdir() if p.suffix in (".js", ".css")}


def test_login_and_logout_use_the_documented_api(page: Any, nvr: Nvr) -> None:
    """The session flow, with ``/api/``, ``/api/login`` and ``/api/logout`` answered in the
    browser by the shapes of Moonfire's API (the server side is the auth issue's)."""
    real = nvr.api("/api/", days="true")
    state: dict[str, Any] = {"logged_in": False, "posts": []}

    def top_level(route: Any) -> None:
        if not state["logged_in"]:
            route.fulfill(status=401, content_type="text/plain", body="log in first\n")
            return
        body = dict(real, user={"id": 1, "name": "alice", "session": {"csrf": "tok123"}})
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def login(route: Any) -> None:
        req = route.request
        state["posts"].append(("login", req.headers.get("content-type"), req.post_data_json))
        if req.post_data_json == {"username": "alice", "password": "secret"}:
            state["logged_in"] = True
            route.fulfill(status=204, body="")
        else:
            route.fulfill(status=403, content_type="text/plain", body="bad credentials\n")

    def logout(route: Any) -> None:
        state["posts"].append(("logout", None, route.request.post_data_json))
        state["logged_in"] = False
        route.fulfill(status=204, body="")

    page.route(lambda url: urlsplit(url).path == "/api/", top_level)
    page.route(lambda url: urlsplit(url).path == "/api/login", login)
    page.route(lambda url: urlsplit(url).path == "/api/logout", logout)
    page.goto(nvr.base + "/recordings")
    page.wait_for_url("**/login?next=%2Frecordings")
    page.fill("#login-user", "alice")
    page.fill("#login-pass", "wrong")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-form .error:not([hidden])")
    page.fill("#login-pass", "secret")
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/recordings")
    page.wait_for_selector("#timeline")
    assert page.inner_text("#who-name") == "alice"
    page.click("#logout")
    page.wait_for_url("**/login*")
    page.wait_for_selector("#login-form")
    assert state["posts"] == [
        ("login", "application/json", {"username": "alice", "password": "wrong"}),
        ("login", "application/json", {"username": "alice", "password": "secret"}),
        ("logout", None, {"csrf": "tok123"}),
    ]


def test_login_and_logout_against_the_server(page: Any, nvr: Nvr) -> None:
    """On a bind that grants nothing: the UI sends the visitor to the login page, a wrong
    password is refused, the right one opens the recordings with the user's name shown,
    and after logging out the API answers 401 again."""
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.login_base + "/recordings")
    page.wait_for_url("**/login?next=%2Frecordings")
    page.fill("#login-user", USER)
    page.fill("#login-pass", "wrong")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-form .error:not([hidden])")
    page.fill("#login-pass", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/recordings")
    page.wait_for_selector("#timeline")
    assert page.inner_text("#who-name") == USER
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["s"]["httpOnly"] and cookies["s"]["sameSite"] == "Lax"
    assert page.evaluate("fetch('/api/').then(r => r.status)") == 200
    page.click("#logout")
    page.wait_for_url("**/login*")
    page.wait_for_selector("#login-form")
    assert page.evaluate("fetch('/api/').then(r => r.status)") == 401


def test_protect_a_span_from_the_recordings_page(page: Any, nvr: Nvr,
                                                artifact_dir: Path) -> None:
    """A user with protectVideo selects a span, protects it with a reason; the span is
    listed (and in the API) and can be removed again. The status page shows the
    forecast."""
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.login_base + "/login?next=%2Frecordings")
    page.fill("#login-user", KEEPER)
    page.fill("#login-pass", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/recordings")
    page.wait_for_function(
        "() => Number(document.querySelector('#timeline')?.dataset.recordings) >= 2"
    )
    page.focus("#timeline")
    for _ in range(3):
        page.keyboard.press("Shift+ArrowRight")
    page.wait_for_selector("#protect")
    page.click("#protect")  # no reason yet: refused in the page
    page.fill("#protect-reason", "delivery van hit the gate")
    page.click("#protect")
    item = page.wait_for_selector("#protected li")
    assert "delivery van hit the gate" in item.inner_text()
    assert f"user '{KEEPER}'" in item.inner_text()
    ranges = nvr.api(f"/api/cameras/{nvr.camera}/protect")["ranges"]
    assert [r["reason"] for r in ranges] == ["delivery van hit the gate"]
    assert ranges[0]["startTime90k"] == int(item.get_attribute("data-start90k"))
    page.screenshot(path=str(artifact_dir / "recordings-protected.png"), full_page=True)
    page.click("#protected li button")
    page.wait_for_selector("#protected li", state="detached")
    assert nvr.api(f"/api/cameras/{nvr.camera}/protect")["ranges"] == []
    page.goto(nvr.login_base + "/status")
    page.wait_for_selector(".cam-status .forecast")
    assert "Mbit/s" in page.inner_text(".cam-status .forecast")
    assert "Mbit/s" in page.inner_text(".dirs .forecast")
    page.screenshot(path=str(artifact_dir / "status-forecast.png"), full_page=True)


def test_export_the_selected_span_as_a_signed_zip(page: Any, nvr: Nvr, tmp_path: Path) -> None:
    """The export form of the selection panel: the camera shown is ticked; its link
    downloads the span as one zip whose manifest and signature verify and whose .mp4
    decodes; with no camera ticked there is no link."""
    import zipfile

    from nvr.offline.verify_export import verify_export

    open_recordings(page, nvr)
    rows = nvr.recordings()
    geo = timeline_geometry(page)
    # a span with committed video: from inside the first recording to inside the third
    xa = x_of(geo, rows[0]["startTime90k"] + UNITS_PER_SEC // 3)
    xb = x_of(geo, rows[2]["startTime90k"] + UNITS_PER_SEC // 2)
    y = row_y(geo)
    page.keyboard.down("Shift")
    page.mouse.move(xa, y)
    page.mouse.down()
    page.mouse.move(xb, y, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_selector("#export-zip")
    boxes = page.locator("#export input[type=checkbox]")
    assert boxes.count() == 1 and boxes.first.is_checked()
    href = page.get_attribute("#export-zip", "href")
    assert href.startswith("/api/export?") and f"camera={nvr.camera}" in href
    with page.expect_download() as info:
        page.click("#export-zip")
    download = info.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.suffix == ".zip"
    report = verify_export(path)
    assert report.ok, report.problems
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
        (member,) = manifest["files"]
        with av.open(io.BytesIO(z.read(member["name"]))) as c:
            assert sum(1 for _ in c.decode(c.streams.video[0])) > 0
    assert manifest["cameras"] == [nvr.camera] or nvr.camera in json.dumps(manifest["cameras"])
    boxes.first.uncheck()
    assert page.locator("#export-zip").is_hidden()


def test_export_several_spans_in_one_zip(page: Any, nvr: Nvr, tmp_path: Path) -> None:
    """Issue 16: each selected span can be added to the export form's list (and removed
    from it); the zip then holds every listed span, its manifest naming each."""
    import zipfile

    from nvr.offline.verify_export import verify_export

    open_recordings(page, nvr)
    rows = nvr.recordings()

    def select(a90k: int, b90k: int) -> None:
        geo = timeline_geometry(page)  # the panel above may have moved it
        y = row_y(geo)
        page.keyboard.down("Shift")
        page.mouse.move(x_of(geo, a90k), y)
        page.mouse.down()
        page.mouse.move(x_of(geo, b90k), y, steps=4)
        page.mouse.up()
        page.keyboard.up("Shift")
        page.wait_for_selector("#export-add:not([disabled])")

    sec = UNITS_PER_SEC
    spans = [(rows[i]["startTime90k"] + sec // 3, rows[i]["startTime90k"] + sec // 3 + sec)
             for i in (0, 2, 1)]
    for a, b in spans:
        select(a, b)
        page.click("#export-add")
        assert page.locator("#export-add").is_disabled()  # this span is listed already
    items = page.locator("#export-spans li")
    assert items.count() == 3
    starts = [int(items.nth(k).get_attribute("data-start90k")) for k in range(3)]
    assert starts == sorted(starts)  # listed in time order
    items.nth(1).locator("button").click()  # remove the span of the second recording
    assert items.count() == 2
    kept = [(int(items.nth(k).get_attribute("data-start90k")),
             int(items.nth(k).get_attribute("data-end90k"))) for k in range(2)]
    href = page.get_attribute("#export-zip", "href")
    assert href.count("range=") == 2 and "2 spans" in page.inner_text("#export-zip")
    with page.expect_download() as info:
        page.click("#export-zip")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    report = verify_export(path)
    assert report.ok, report.problems
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert [(r["startTime90k"], r["endTime90k"]) for r in manifest["ranges"]] == kept
    assert sorted({f["range"] for f in manifest["files"]}) == [0, 1]


def test_live_tile_plays(page: Any, nvr: Nvr) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/live")
    page.click("label[for=layout-1]")
    page.wait_for_function(
        """() => { const v = document.querySelector('.tile video');
                   return v && v.readyState >= 3 && v.currentTime > 0; }""",
        timeout=3000,
    )
    t0 = page.evaluate("() => document.querySelector('.tile video').currentTime")
    # it keeps playing
    page.wait_for_function(
        f"() => document.querySelector('.tile video').currentTime > {t0}", timeout=3000
    )
    assert page.get_attribute(".tile", "data-state") == "playing"


#: A live.m4s player written the way Moonfire NVR's UI plays it (its API reference and UI
#: behaviour, not its code): a SourceBuffer in "segments" mode; each binary message's
#: segment appended with timestampOffset = the end of what is buffered; the init segment
#: fetched by X-Video-Sample-Entry-Id whenever that changes. It runs for `seconds`.
MOONFIRE_STYLE_PLAYER = """async ([url, seconds]) => {
    const v = document.getElementById('v');
    const ms = new MediaSource();
    v.src = URL.createObjectURL(ms);
    await new Promise((ok) => ms.addEventListener('sourceopen', ok, {once: true}));
    let sb = null, entry = null, appended = 0, failure = null, chain = Promise.resolve();
    const append = (data) => new Promise((ok, fail) => {
        sb.addEventListener('updateend', ok, {once: true});
        sb.addEventListener('error', () => fail(new Error('append failed')), {once: true});
        sb.appendBuffer(data);
    });
    const handle = async (buf) => {
        const bytes = new Uint8Array(buf);
        let end = 0;
        while (!(bytes[end] === 13 && bytes[end + 1] === 10 && bytes[end + 2] === 13 &&
                 bytes[end + 3] === 10)) end++;
        const headers = {};
        for (const line of new TextDecoder().decode(bytes.subarray(0, end)).split('\\r\\n')) {
            const colon = line.indexOf(':');
            headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        if (sb === null) {
            sb = ms.addSourceBuffer(headers['content-type']);
            sb.mode = 'segments';
        }
        const id = headers['x-video-sample-entry-id'];
        if (id !== entry) {
            const init = await fetch('/api/init/' + id + '.mp4');
            await append(await init.arrayBuffer());
            entry = id;
        }
        const b = sb.buffered;
        sb.timestampOffset = b.length > 0 ? b.end(b.length - 1) : 0;
        await append(bytes.subarray(end + 4));
        appended++;
    };
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (e) => {
        if (typeof e.data !== 'string') {
            chain = chain.then(() => handle(e.data)).catch((err) => { failure = String(err); });
        }
    };
    v.play().catch(() => {});
    await new Promise((ok) => setTimeout(ok, seconds * 1000));
    ws.close();
    const b = sb ? sb.buffered : {length: 0};
    return {failure, appended, currentTime: v.currentTime, readyState: v.readyState,
            ranges: Array.from({length: b.length}, (_, i) => [b.start(i), b.end(i)]),
            frames: v.getVideoPlaybackQuality().totalVideoFrames};
}"""


def test_a_player_written_for_moonfire_plays_live_view(page: Any, nvr: Nvr) -> None:
    """Issue 12: clients written for Moonfire's API append each ``live.m4s`` message at
    the end of what they have buffered. With every message's ``tfdt`` 0 (as Moonfire's
    server writes it) the frames form one stretch from 0 that plays at the camera's
    pace; with the frame's media time there, each message landed after a gap the size of
    its time in the recording, and the tile stayed black at 0."""
    page.goto(nvr.base + "/api/")
    page.set_content("<!doctype html><video id=v muted></video>")
    url = nvr.base.replace("http://", "ws://") + f"/api/cameras/{nvr.camera}/main/live.m4s"
    result = page.evaluate(MOONFIRE_STYLE_PLAYER, [url, 4])
    assert result["failure"] is None, result
    assert result["appended"] >= 90, result  # 4 s of a 30 fps camera, less the first GOP
    # one stretch from 0, as long as the frames appended (the last one's duration is an
    # estimate), and the playhead in it, moving
    assert len(result["ranges"]) == 1 and result["ranges"][0][0] == 0, result
    assert abs(result["ranges"][0][1] - result["appended"] / FPS) < 0.1, result
    assert result["currentTime"] > 1.0 and result["readyState"] >= 2, result
    assert result["frames"] >= 30, result


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version << 24 | flags) + payload)


def _children(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    out = {}
    while start < end:
        size, kind = struct.unpack_from(">I4s", data, start)
        out[kind] = (start + 8, start + size)
        start += size
    return out


def split_frames(m4s: bytes) -> list[tuple[int, int, bytes]]:
    """A ``view.m4s`` (one ``moof`` with one ``trun``, then its ``mdat``, as nvr.mp4 writes
    it) as one media segment per frame, each of decode time 0 as ``live.m4s`` sends them:
    ``(media start, media end, segment)`` with times relative to the ``view.m4s``'s
    ``tfdt``."""
    top = _children(m4s, 0, len(m4s))
    moof_start = top[b"moof"][0] - 8
    traf = _children(m4s, *top[b"moof"])[b"traf"]
    boxes = _children(m4s, *traf)
    tfhd = m4s[boxes[b"tfhd"][0] - 8 : boxes[b"tfhd"][1]]
    trun_at = boxes[b"trun"][0]
    flags, count, data_offset = struct.unpack_from(">IIi", m4s, trun_at)
    assert flags & 0xFFFFFF == 0x000701, hex(flags)  # data offset; duration, size, flags
    pos = moof_start + data_offset
    t = 0
    out = []
    for i in range(count):
        duration, size, sample_flags = struct.unpack_from(">III", m4s, trun_at + 12 + 12 * i)
        sample = m4s[pos : pos + size]
        pos += size

        traf_head = tfhd + _full_box(b"tfdt", 1, 0, struct.pack(">Q", 0))
        mfhd = _full_box(b"mfhd", 0, 0, struct.pack(">I", i + 1))
        entry = struct.pack(">III", duration, size, sample_flags)

        def moof(
            offset: int, mfhd: bytes = mfhd, head: bytes = traf_head, e: bytes = entry
        ) -> bytes:
            trun = _full_box(b"trun", 0, 0x000701, struct.pack(">Ii", 1, offset) + e)
            return _box(b"moof", mfhd + _box(b"traf", head + trun))

        head = moof(len(moof(0)) + 8)
        out.append((t, t + duration, head + _box(b"mdat", sample)))
        t += duration
    return out


def live_messages(nvr: Nvr, count: int) -> list[list[bytes]]:
    """Binary ``live.m4s`` messages as documented (header block, blank line, one frame's
    media segment) for each of the first ``count`` finished recordings, made from the
    daemon's own ``view.m4s`` split into frames; each recording's first is a key frame."""
    def finished() -> list[dict[str, Any]] | None:
        d = [r for r in nvr.recordings() if not r.get("growing")]
        return d if len(d) >= count else None

    rows = wait_until(finished, 10, "too few finished recordings")
    out = []
    for r in rows[:count]:
        resp = httpx.get(
            f"{nvr.base}/api/cameras/{nvr.camera}/main/view.m4s", params={"s": r["startId"]}
        )
        resp.raise_for_status()
        frames = []
        for start, end, segment in split_frames(resp.content):
            headers = {
                "Content-Type": resp.headers["Content-Type"],
                "X-Recording-Id": f"{r['openId']}.{r['startId']}",
                "X-Recording-Start": str(r["startTime90k"]),
                "X-Prev-Media-Duration": resp.headers["X-Prev-Media-Duration"],
                "X-Runs": resp.headers["X-Runs"],
                "X-Media-Time-Range": f"{start}-{end}",
                "X-Video-Sample-Entry-Id": str(r["videoSampleEntryId"]),
            }
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            frames.append(head.encode() + segment)
        out.append(frames)
    return out


def send_frames(page: Any, ws: Any, frames: list[bytes], *, fps: float = FPS) -> None:
    """Sends frames at the camera's rate (Playwright's loop runs while we wait)."""
    t0 = time.monotonic()
    for i, frame in enumerate(frames):
        ws.send(frame)
        page.wait_for_timeout(max(0, (t0 + (i + 1) / fps - time.monotonic()) * 1000))


def test_live_tile_plays_the_documented_messages(page: Any, nvr: Nvr) -> None:
    """The live player against the documented message format, one frame per message at
    30 fps, with the socket answered in the browser (the server route is the lead's): it
    plays within 3 s and stays near the newest frame, skips the gap after a ``drop``,
    shows an interruption when the socket closes, reconnects by itself, and fetches a new
    init segment when the sample entry changes."""
    recs = live_messages(nvr, 3)
    sockets: list[Any] = []
    page.route_web_socket(re.compile(r".*/live\.m4s$"), lambda ws: sockets.append(ws))
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/live")
    page.click("label[for=layout-1]")
    pump_until(page, lambda: bool(sockets), 5)
    ws = sockets[-1]
    assert ws.url.endswith(f"/api/cameras/{nvr.camera}/main/live.m4s")
    video = "document.querySelector('.tile video')"
    # frames keep coming at 30 fps; within 3 s of the first the video plays
    playing = f"() => {video}.readyState >= 3 && {video}.currentTime > 0"
    t0 = time.monotonic()
    for i, frame in enumerate(recs[0][:45]):
        ws.send(frame)
        if page.evaluate(playing):
            break
        page.wait_for_timeout(max(0, (t0 + (i + 1) / FPS - time.monotonic()) * 1000))
    assert page.evaluate(playing), "not playing after 1.5 s of frames"
    assert time.monotonic() - t0 < 3
    assert page.get_attribute(".tile", "data-state") == "playing"
    send_frames(page, ws, recs[0][i + 1 :] + recs[1][:10])
    behind = page.evaluate(
        f"() => {{ const v = {video}; const b = v.buffered; "
        "return b.end(b.length - 1) - v.currentTime; }"
    )
    assert behind < 1.0, behind
    # fell behind: the server skips to the next key frame (30 frames on) and says so
    ws.send('{"type": "drop", "frames": 25}')
    t0 = page.evaluate(f"() => {video}.currentTime")
    send_frames(page, ws, recs[1][30:])
    assert page.evaluate(f"() => {video}.currentTime") > t0 + 0.5
    assert page.get_attribute(".tile", "data-state") == "playing"
    assert page.inner_text(".tile-clock")  # the wall time of the newest frame
    ws.close()
    page.wait_for_selector(".tile[data-state=reconnecting]")
    assert "interrupted" in page.inner_text(".tile .overlay")
    pump_until(page, lambda: len(sockets) >= 2, 5)
    assert len(sockets) == 2, "the tile did not reconnect"
    send_frames(page, sockets[-1], recs[2][:15])
    page.wait_for_selector(".tile[data-state=playing]", timeout=3000)
    # a new sample entry (the camera changed its parameters): the next frames need their
    # own init segment, fetched by id (answered here with the same one)
    entry = recs[2][0].split(b"X-Video-Sample-Entry-Id: ")[1].split(b"\r\n")[0].decode()
    init = httpx.get(f"{nvr.base}/api/init/{entry}.mp4").content
    inits: list[str] = []

    def serve_init(route: Any) -> None:
        inits.append(route.request.url)
        route.fulfill(status=200, content_type="video/mp4", body=init)

    page.route("**/api/init/999.mp4", serve_init)
    switched = [
        m.replace(b"X-Video-Sample-Entry-Id: " + entry.encode(), b"X-Video-Sample-Entry-Id: 999")
        for m in recs[2][30:]  # from the next key frame
    ]
    t0 = page.evaluate(f"() => {video}.currentTime")
    send_frames(page, sockets[-1], switched)
    assert len(inits) == 1
    assert page.evaluate(f"() => {video}.currentTime") > t0 + 0.4
    assert page.get_attribute(".tile", "data-state") == "playing"


def test_an_empty_day_says_no_video_and_time_labels_leave_the_axis_readable(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    """Issue 17: an empty day showed an empty timeline with no word; the playhead's and
    the pointer's time labels were drawn over the axis's labels."""
    open_recordings(page, nvr)
    assert page.is_hidden(".no-video")
    assert page.query_selector("input[name=rec-stream]") is None  # no camera has a sub stream
    geo = timeline_geometry(page)
    rows = nvr.recordings()
    page.mouse.move(x_of(geo, rows[1]["startTime90k"]), row_y(geo))
    next_animation_frame(page)  # repainted in it
    badges = json.loads(page.get_attribute("#timeline", "data-badges"))
    axis = float(page.get_attribute("#timeline", "data-axis-height"))
    height = page.eval_on_selector("#timeline", "c => c.clientHeight")
    assert badges, "no time label drawn"
    for _x, y, _w, h in badges:
        assert axis <= y and y + h <= height  # in the lane under the tracks
    page.locator(".timeline-card").screenshot(path=str(artifact_dir / "ui-timeline-labels.png"))
    page.goto(nvr.base + "/recordings?day=2001-01-01")
    page.wait_for_function("() => document.querySelector('#timeline')?.dataset.loaded")
    assert page.is_visible(".no-video")
    assert page.inner_text(".no-video") == "No video on this day."


def test_what_a_new_user_sees_first_fits_the_install(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    """Issue 17: the demo (two cameras, no users) opened on 2x2 with two empty tiles, showed
    a "Log in" link that could not work, and a main/sub choice for cameras without a sub
    stream. Here ``/api/`` is the daemon's answer with a second camera that has a sub
    stream, on an install where no one can log in."""
    real = nvr.api("/api/", days="true")
    yard = real["cameras"][0]
    assert list(yard["streams"]) == ["main"]
    gate = json.loads(json.dumps(yard))
    gate.update(uuid="00000000-0000-4000-8000-000000000002", id=2, shortName="gate")
    gate["streams"]["sub"] = gate["streams"]["main"]
    real["cameras"].append(gate)
    real["nvrLoginAvailable"] = False
    page.route(
        lambda url: urlsplit(url).path == "/api/",
        lambda route: route.fulfill(status=200, content_type="application/json",
                                    body=json.dumps(real)),
    )
    page.route_web_socket(re.compile(r".*/live\.m4s$"), lambda ws: None)
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/live")
    page.wait_for_selector(".tile[data-index='1']")
    assert page.is_checked("#layout-2")
    assert page.eval_on_selector_all(".tile", "ts => ts.length") == 2
    assert page.inner_text("#who-name") == ""
    stream_choice = "figcaption select[aria-label$=stream]"
    assert page.is_hidden(f".tile[data-index='0'] {stream_choice}")  # yard: main only
    assert page.is_visible(f".tile[data-index='1'] {stream_choice}")  # gate: main and sub
    page.screenshot(path=str(artifact_dir / "ui-live-two-cameras.png"))
    page.goto(nvr.base + "/recordings")
    page.wait_for_selector("label[for=rec-stream-sub]")  # a camera has a sub stream
    # with a user who can log in, the link is there
    real["nvrLoginAvailable"] = True
    page.reload()
    page.wait_for_selector("#who-name a[href='/login']")


def test_a_tile_says_offline_when_the_server_does_and_plays_again_on_the_same_socket(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    """Issue 17: a dead camera's tile showed its frozen last frame for ~5 s. The server's
    ``offline`` message turns the tile to "Camera offline" at once; the camera's next
    frames, on the same socket, play again without a reconnect."""
    recs = live_messages(nvr, 2)
    sockets: list[Any] = []
    page.route_web_socket(re.compile(r".*/live\.m4s$"), lambda ws: sockets.append(ws))
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/live")
    page.click("label[for=layout-1]")
    deadline = time.monotonic() + 5
    while not sockets and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    ws = sockets[-1]
    send_frames(page, ws, recs[0][:45])
    page.wait_for_selector(".tile[data-state=playing]", timeout=3000)
    ws.send(json.dumps({"type": "offline", "message": "the camera ended the stream"}))
    # (the stall rule alone would take 2 s; the poll, up to 10 s)
    page.wait_for_selector(".tile[data-state=down]", timeout=1000)
    assert page.inner_text(".tile .overlay strong") == "Camera offline"
    assert page.inner_text(".tile .overlay .detail").startswith("the camera ended the stream.")
    page.screenshot(path=str(artifact_dir / "ui-live-offline.png"))
    send_frames(page, ws, recs[1][:30])
    page.wait_for_selector(".tile[data-state=playing]", timeout=3000)
    assert len(sockets) == 1


def test_a_camera_that_is_down_says_so(page: Any, nvr: Nvr, artifact_dir: Path) -> None:
    """The stream's ``nvrStatus`` (answered in the browser) says the camera is in backoff:
    its live tile and the status page say it is offline, with the last error."""
    error = "Unavailable: rtsp://192.0.2.7/main: Connection refused"

    def top_level(route: Any) -> None:
        body = route.fetch().json()
        for cam in body["cameras"]:
            st = cam["streams"]["main"]["nvrStatus"]
            st.update(state="backoff", lastError=error, nextTry90k=st["since90k"] + 10**9)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(lambda url: urlsplit(url).path == "/api/", top_level)
    # and the camera sends nothing: the live socket opens but no frame ever comes
    page.route_web_socket(re.compile(r".*/live\.m4s$"), lambda ws: None)
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size(DESKTOP)
    page.goto(nvr.base + "/live")
    page.click("label[for=layout-1]")
    page.wait_for_selector(".tile[data-state=down]")
    assert page.inner_text(".tile .overlay strong") == "Camera offline"
    assert page.inner_text(".tile .overlay .detail").startswith(f"{error}. Next try at ")
    png = artifact_dir / "ui-live-down.png"
    page.screenshot(path=str(png))
    assert not_blank(png) > 10
    page.goto(nvr.base + "/status")
    page.wait_for_selector(".badge.backoff")
    assert page.inner_text(".badge.backoff") == "reconnecting"
    assert error in page.inner_text(".last-error")
