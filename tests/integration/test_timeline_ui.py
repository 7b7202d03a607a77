"""The recordings page's timeline in Chromium (issue 15): zoom, pan, keyboard, list view,
against the real daemon recording the GStreamer camera (the ``nvr`` fixture of
``test_ui``); and against a month of synthetic history answered in the browser (the
API's documented shapes, stubbed with ``page.route``), for panning across midnight and
days, the per-day overview, screenshots at 1920x1080 and 390x844 and the frame times of
a zoom and pan from Chromium's performance trace (written to
``test-artifacts/timeline-month-frames.json``; printed, not asserted: the machine is
shared).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from fixtures.make_fixtures import motion_clip
from nvr.base.clock import RealClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.config import BindConfig
from nvr.db.database import Database
from tests.integration import test_ui
from tests.integration.test_ui import (
    ADMIN,
    ANONYMOUS,
    FRAME_90K,
    PASSWORD,
    TZ,
    WALL,
    Nvr,
    next_animation_frame,
    not_blank,
    open_recordings,
    pump_until,
    row_y,
    t_of,
    timeline_geometry,
    x_of,
)
from tests.support.daemon import CameraSpec, create_db
from tests.support.history import record_month
from tests.support.http import daemon_in_thread
from tests.support.poll import wait_until
from tests.support.rtsp import ServerFactory

pytestmark = pytest.mark.rtsp

#: this module's own daemon recording the test camera, as test_ui's
nvr = test_ui.nvr

U = UNITS_PER_SEC
WIN = "document.querySelector('#timeline').timeline.win"


def window(page: Any) -> tuple[int, int]:
    a, b = page.evaluate(f"() => {WIN}")
    return int(a), int(b)


def wait_loaded(page: Any) -> None:
    """Until the page has no load due or in flight (the timeline is not ``aria-busy``)
    and has drawn what it loaded."""
    page.wait_for_function(
        "() => document.querySelector('#timeline').getAttribute('aria-busy') === 'false'"
    )
    next_animation_frame(page)


def drawn_spans(page: Any) -> list[list[int]]:
    spans: list[list[int]] = page.evaluate(
        "() => document.querySelector('#timeline').timeline.visibleSpans(0)"
    )
    return spans


def assert_drawn_as_api(page: Any, nvr: Nvr) -> None:
    """The spans drawn are the recordings `.../recordings` answers for the window: all
    of them up to the last one drawn (which may have grown since the page's last poll,
    and more may have followed it), which starts where one of the API's does."""
    a, b = window(page)
    drawn = sorted(drawn_spans(page))
    rows = nvr.api(
        f"/api/cameras/{nvr.camera}/main/recordings", startTime90k=a, endTime90k=b, split90k=1
    )["recordings"]
    api = sorted([r["startTime90k"], r["endTime90k"]] for r in rows)
    assert drawn, api
    last = drawn[-1][0]
    assert [s for s in api if s[0] < last] == drawn[:-1], (drawn, api)
    assert last in [s for s, _ in api], (drawn, api)


def test_zoom_from_a_day_to_10_s_and_back_draws_the_api_spans(page: Any, nvr: Nvr) -> None:
    open_recordings(page, nvr)
    page.click("label[for=zoom-day]")
    a, b = window(page)
    assert b - a in (86400 * U, 86400 * U - 1)
    day_title = page.inner_text("#day-title")
    # the keyboard zooms around the cursor, down to 10 s and no further
    rows = nvr.recordings()
    page.focus("#timeline")
    page.evaluate(f"() => {{ {WIN.removesuffix('.win')}.cursor = {rows[1]['startTime90k']}; }}")
    for _ in range(16):
        page.keyboard.press("+")
    a, b = window(page)
    assert b - a == 10 * U
    assert a <= rows[1]["startTime90k"] <= b
    wait_loaded(page)
    assert drawn_spans(page)
    assert_drawn_as_api(page, nvr)
    # and the zoom-out button back to (at least) the whole day
    for _ in range(14):
        page.click("#zoom-out")
    a, b = window(page)
    assert b - a >= 86400 * U
    assert page.inner_text("#day-title").startswith(day_title) or "–" in page.inner_text(
        "#day-title"
    )
    # the wheel zooms too, around the pointer
    page.click("label[for=zoom-1h]")
    geo = timeline_geometry(page)
    page.mouse.move(x_of(geo, rows[1]["startTime90k"]), row_y(geo))
    before = window(page)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"() => {WIN}[1] - {WIN}[0] < {before[1] - before[0]}")
    after = window(page)
    assert after[1] - after[0] < before[1] - before[0]
    wait_loaded(page)
    assert_drawn_as_api(page, nvr)


def test_hover_shows_the_frame_at_the_pointer_and_a_strip(page: Any, nvr: Nvr) -> None:
    open_recordings(page, nvr)
    rows = nvr.recordings()
    geo = timeline_geometry(page)
    x = x_of(geo, rows[1]["startTime90k"] + 7 * U // 10 + 777)
    page.mouse.move(x - 20, row_y(geo))
    page.mouse.move(x, row_y(geo))
    pointer = t_of(geo, x)
    page.wait_for_function(
        f"() => document.querySelector('#tl-preview').dataset.time90k == '{pointer}'"
        " && !!document.querySelector('#tl-preview').dataset.frameTime90k"
        " && document.querySelector('#tl-preview img').naturalWidth > 0"
    )
    frame = int(page.get_attribute("#tl-preview", "data-frame-time90k") or 0)
    assert 0 <= pointer - frame < FRAME_90K + 1, (pointer, frame)
    local = dt.datetime.fromtimestamp(pointer / U, ZoneInfo(TZ))
    assert page.inner_text(".tl-preview-time") == local.strftime("%H:%M:%S.%f")[:12]
    assert page.is_visible("#tl-preview")
    page.mouse.move(0, 0)
    assert page.is_hidden("#tl-preview")
    # the strip: key frames along the window, one plays on click
    page.wait_for_function(
        "() => [...document.querySelectorAll('#tl-strip img')].some(i => i.naturalWidth > 0)"
    )
    img = page.locator("#tl-strip img").first
    t = int(img.get_attribute("data-time90k") or 0)
    img.click()
    page.wait_for_function(f"() => Math.abs({WALL} - {t}) < {U}")


def test_touch_pinch_zooms_and_a_finger_pans(page: Any, nvr: Nvr) -> None:
    open_recordings(page, nvr, viewport={"width": 390, "height": 844})
    page.click("label[for=zoom-1h]")
    geo = timeline_geometry(page)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 2})
    y = row_y(geo)
    mid = geo["left"] + geo["trackLeft"] + geo["trackWidth"] / 2

    def touch(kind: str, *xs: float) -> None:
        points = [{"x": x, "y": y, "id": i} for i, x in enumerate(xs)]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    a, b = window(page)
    # two fingers apart: the window narrows to about a third, around their middle
    touch("touchStart", mid - 20, mid + 20)
    for k in range(1, 6):
        touch("touchMove", mid - 20 - 8 * k, mid + 20 + 8 * k)
    touch("touchEnd")
    a2, b2 = window(page)
    assert abs((b2 - a2) / (b - a) - 40 / 120) < 0.05, (b2 - a2) / (b - a)
    center = a + (b - a) / 2
    assert abs((a2 + b2) / 2 - center) < (b - a) / 50
    # one finger to the right: earlier times come into view, nothing plays
    touch("touchStart", mid)
    for k in range(1, 6):
        touch("touchMove", mid + 10 * k)
    touch("touchEnd")
    a3, b3 = window(page)
    assert b3 - a3 == b2 - a2
    assert abs((a2 - a3) - 50 / geo["trackWidth"] * (b2 - a2)) < (b2 - a2) / 100
    assert not page.get_attribute("#player", "src")


def test_keyboard_only_from_the_header_to_playing(page: Any, nvr: Nvr) -> None:
    # enough video that L's 10 s step stays inside the file played (at its end the player
    # goes on with the next file or live, and the step could not be read back)
    def span() -> int:
        rows = nvr.recordings()
        return int(rows[-1]["endTime90k"] - rows[0]["startTime90k"]) if rows else 0

    pump_until(page, lambda: span() >= 25 * U, 60)
    open_recordings(page, nvr)
    # one Tab from the header's last control reaches the timeline
    page.focus("header.topbar a:last-of-type")
    page.evaluate(
        """() => { const f = [...document.querySelectorAll('header a, header button')]
                    .filter(e => e.offsetParent !== null); f.at(-1).focus(); }"""
    )
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "timeline"
    before = window(page)
    page.keyboard.press("-")
    a, b = window(page)
    assert b - a == 2 * (before[1] - before[0])
    page.keyboard.press("+")
    assert window(page) == before or window(page)[1] - window(page)[0] == before[1] - before[0]
    page.keyboard.press("Home")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    cursor = int(page.get_attribute("#timeline", "aria-valuenow") or 0)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.3")
    # Space pauses, and resumes
    page.keyboard.press(" ")
    assert page.evaluate("() => document.querySelector('#player').paused")
    page.keyboard.press(" ")
    page.wait_for_function("() => !document.querySelector('#player').paused")
    # L and J step 10 s forward and back (within the file), K toggles
    video = "document.querySelector('#player')"
    t0, duration = page.evaluate(f"() => [{video}.currentTime, {video}.duration]")
    page.keyboard.press("l")
    t1 = page.evaluate(f"() => {video}.currentTime")
    assert t1 >= min(t0 + 9.9, duration - 0.1), (t0, t1, duration)
    page.keyboard.press("j")
    t2 = page.evaluate(f"() => {video}.currentTime")
    assert t2 <= max(0, t1 - 9.9) + 0.5, (t1, t2)
    was = page.evaluate(f"() => {video}.paused")
    page.keyboard.press("k")  # pauses or resumes, as Space does
    assert page.evaluate(f"() => {video}.paused") is not was
    assert int(page.evaluate(f"() => {WALL}")) >= min(cursor, nvr.recordings()[0]["startTime90k"])
    # the calendar is one tab stop; arrows move within it
    stops = page.evaluate("() => document.querySelectorAll('.cal-day[tabindex=\"0\"]').length")
    assert stops == 1
    page.focus('.cal-day[tabindex="0"]')
    first = page.evaluate("() => document.activeElement.dataset.day")
    page.keyboard.press("ArrowLeft")
    moved = page.evaluate("() => document.activeElement.dataset.day")
    assert moved < first
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.dataset.day") == first
    assert page.get_attribute("[role=grid]", "aria-label")


def test_list_view_rows_play_and_download(page: Any, nvr: Nvr) -> None:
    open_recordings(page, nvr)
    page.click("label[for=rec-view-list]")
    page.wait_for_selector("#rec-list tbody tr")
    assert page.is_hidden("#timeline")
    rows = nvr.recordings()
    first = page.locator("#rec-list tbody tr").last  # newest first
    assert int(first.get_attribute("data-start90k") or 0) == rows[0]["startTime90k"]
    cells = first.locator("td").all_inner_texts()
    assert re.fullmatch(r"\d+×\d+", cells[3]), cells
    href = first.locator("a[download]").get_attribute("href") or ""
    assert href.startswith(f"/api/cameras/{nvr.camera}/main/view.mp4?s=")
    first.locator("button").click()
    page.wait_for_function(f"() => {WALL} >= {rows[0]['startTime90k']}")
    shown = int(page.evaluate(f"() => {WALL}"))
    assert abs(shown - rows[0]["startTime90k"]) <= U


def test_playback_crosses_a_recording_boundary_without_stalling(page: Any, nvr: Nvr) -> None:
    """The recordings of a run are one file, so the boundary is inside it: the file loaded
    at the click plays on across it (no other load), its media is buffered in one range
    across it, and no `waiting` happens at it. A machine so loaded that the video also
    waits away from the boundary says nothing about the boundary: then the stalls are
    printed, not asserted."""
    # a boundary with a whole recording after it (not the growing one, whose file ends)
    pump_until(page, lambda: len(nvr.recordings()) >= 4, 30)
    assert len(nvr.recordings()) >= 4
    open_recordings(page, nvr)
    rows = nvr.recordings()
    boundary = rows[-3]["endTime90k"]
    geo = timeline_geometry(page)
    page.evaluate(
        """() => {
            window.stalls = [];
            window.loads = 0;
            const v = document.querySelector('#player');
            v.addEventListener('waiting', () => window.stalls.push(WALL));
            v.addEventListener('loadstart', () => window.loads++);
        }""".replace("WALL", WALL)
    )
    page.mouse.click(x_of(geo, boundary - U // 2), row_y(geo))
    page.wait_for_function(f"() => {WALL} > {boundary + U // 2}", timeout=10000)
    assert page.evaluate("() => window.loads") == 1
    base = int(page.get_attribute("#player", "data-base90k") or 0)
    at = (boundary - base) / U  # the boundary's media time in the file
    ranges = page.evaluate(
        """() => { const b = document.querySelector('#player').buffered;
                   return [...Array(b.length).keys()].map(i => [b.start(i), b.end(i)]); }"""
    )
    assert any(s0 <= at - 0.25 and at + 0.25 <= s1 for s0, s1 in ranges), (ranges, at)
    stalls = page.evaluate("() => window.stalls")
    here = [t for t in stalls if abs(t - boundary) < U // 4]
    if len(here) == len(stalls):
        assert not here, (stalls, boundary)
    else:
        print("STALLS (a starved machine: not asserted)", stalls, "boundary", boundary)
    src = page.get_attribute("#player", "src") or ""
    # one file from the clicked recording through the one after the boundary
    m = re.search(r"s=(\d+)-(\d+)", src)
    assert m and int(m[1]) <= rows[-3]["startId"] and int(m[2]) >= rows[-2]["startId"], src


def test_playback_at_the_end_of_recorded_video_goes_on_live(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    """A click just before the end of the recording being made plays it; when that file
    runs out, the same player goes on with the camera's live stream and says so; a click
    on the timeline plays recorded video again."""

    def recorded_sec() -> float:
        rows = nvr.recordings()
        return (rows[-1]["endTime90k"] - rows[0]["startTime90k"]) / U if rows else 0

    # J goes back 10 s: there must be more than that to go back into (run alone or on a
    # worker of its own, this test gets the module's daemon only seconds after it started)
    wait_until(lambda: recorded_sec() > 15, 30, "less than 15 s recorded in 30 s")
    open_recordings(page, nvr, viewport={"width": 1920, "height": 1080})
    wait_loaded(page)
    last = page.evaluate("() => document.querySelector('#timeline').timeline.rows[0].spans.at(-1)")
    assert last["growing"], last
    geo = timeline_geometry(page)
    clicked = t_of(geo, x_of(geo, last["end"] - U // 2))
    page.mouse.click(x_of(geo, clicked), row_y(geo))
    page.wait_for_function("() => document.querySelector('#player').dataset.mode === 'live'")
    status = page.inner_text("#player-status")
    assert status.startswith("● Live") and "now showing yard live" in status, status
    # live frames: the wall time shown goes on past where the recorded video ended
    ended = int(page.evaluate(f"() => {WALL}"))
    assert ended >= clicked
    page.wait_for_function(f"() => {WALL} > {ended + U}")
    page.wait_for_function(
        "() => { const v = document.querySelector('#player'); "
        "return !v.paused && v.currentTime > 0.5; }"
    )
    # the window follows the live playhead past its right edge (it was fitted to the
    # recorded video, which ended where live began): the playhead a quarter in
    a0, b0 = int(geo["start"]), int(geo["end"])
    page.wait_for_function(
        f"() => {{ const [a, b] = {WIN}, t = {WALL}; return a > {a0} && a < t && t < b; }}"
    )
    a1, b1 = window(page)
    assert b1 - a1 == b0 - a0
    assert page.evaluate("() => document.querySelector('#player').src").startswith("blob:")
    # J goes back 10 s into the recorded video: from the live frame shown at the key
    live_wall = page.evaluate(
        f"""() => {{ const w = {WALL};
            document.querySelector('#timeline').dispatchEvent(
                new KeyboardEvent('keydown', {{key: 'j', bubbles: true}}));
            return w; }}"""
    )
    page.wait_for_function("() => !document.querySelector('#player').dataset.mode")
    assert int(page.get_attribute("#player", "data-base90k") or 0) == live_wall - 10 * U
    page.mouse.move(0, 0)
    page.screenshot(path=str(artifact_dir / "timeline-live-1920.png"))
    assert overflow(page) <= 0
    # the timeline plays recorded video again
    rows = nvr.recordings()
    page.click("label[for=zoom-fit]")
    geo = timeline_geometry(page)
    page.mouse.click(x_of(geo, rows[0]["startTime90k"] + U // 2), row_y(geo))
    page.wait_for_function("() => !document.querySelector('#player').dataset.mode")
    assert "/view.mp4?" in (page.get_attribute("#player", "src") or "")
    assert page.is_hidden("#player-status")


# -- a month of synthetic history ------------------------------------------------------

CAM = "0d3bd1d8-6d57-4b36-8c37-0c0c4c5a1a11"
SIG_TYPE = "9c1c9ad5-53c2-4c3a-9e7b-6d0c2b6f3a11"
REC_SEC = 300  # one recording per 5 min
REASONS = ["camera disconnected", "shutdown", "disk full"]


def month_history(now90k: int) -> dict[str, Any]:
    """30 days of 5-minute recordings, with a gap every 3 h (the recording before it
    ended for one of REASONS), and a motion signal moving 2 minutes every 11."""
    tz = ZoneInfo(TZ)
    now = dt.datetime.fromtimestamp(now90k / U, tz)
    first_day = (now - dt.timedelta(days=30)).date()
    start = int(dt.datetime(first_day.year, first_day.month, first_day.day, tzinfo=tz).timestamp())
    rows: list[dict[str, Any]] = []
    t = start
    i = 0
    open_id = 1
    while (t + REC_SEC) * U < now90k:
        gap = i % 36 == 35
        row: dict[str, Any] = {
            "startId": i,
            "openId": open_id,
            "runStartId": i,
            "startTime90k": t * U,
            "endTime90k": (t + REC_SEC) * U,
            "videoSampleEntryId": 1,
            "videoSamples": REC_SEC * 10,
            "sampleFileBytes": REC_SEC * 60_000,
        }
        if gap:
            row["hasTrailingZero"] = True
            row["endReason"] = REASONS[(i // 36) % len(REASONS)]
            open_id += 1
        rows.append(row)
        t += REC_SEC + (600 if gap else 0)
        i += 1
    days: dict[str, dict[str, int]] = {}
    d = first_day
    while d <= now.date():
        a = int(dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()) * U
        nd = d + dt.timedelta(days=1)
        b = int(dt.datetime(nd.year, nd.month, nd.day, tzinfo=tz).timestamp()) * U
        total = sum(
            min(r["endTime90k"], b) - max(r["startTime90k"], a)
            for r in rows
            if r["endTime90k"] > a and r["startTime90k"] < b
        )
        if total:
            days[d.isoformat()] = {"startTime90k": a, "endTime90k": b, "totalDuration90k": total}
        d = nd
    changes = []
    for k in range(start // 660, now90k // U // 660):
        changes += [(k * 660 * U, 2), ((k * 660 + 120) * U, 1)]
    motion: dict[str, Any] = {}
    for t90k, st in changes:
        if st != 2:
            continue
        local = dt.datetime.fromtimestamp(t90k / U, tz)
        day_info = motion.setdefault(local.date().isoformat(), {"motion90k": 0, "hours": {}})
        day_info["motion90k"] += 120 * U
        hour = str(local.hour)
        day_info["hours"][hour] = day_info["hours"].get(hour, 0) + 120 * U
    return {"rows": rows, "days": days, "changes": changes, "motion": motion}


def top_level(h: dict[str, Any]) -> dict[str, Any]:
    rows = h["rows"]
    return {
        "timeZoneName": TZ,
        "serverVersion": "0.1.0",
        "cameras": [
            {
                "uuid": CAM,
                "id": 1,
                "shortName": "month",
                "description": "",
                "motion": {"stream": "main", "sensitivity": 5, "days": h["motion"]},
                "streams": {
                    "main": {
                        "id": 1,
                        "retainBytes": 10**12,
                        "minStartTime90k": rows[0]["startTime90k"],
                        "maxEndTime90k": rows[-1]["endTime90k"],
                        "totalDuration90k": sum(r["endTime90k"] - r["startTime90k"] for r in rows),
                        "totalSampleFileBytes": sum(r["sampleFileBytes"] for r in rows),
                        "fsBytes": 0,
                        "record": True,
                        "days": h["days"],
                        "nvrSampleFileDir": {"id": 1},
                        "nvrStatus": {
                            "state": "recording",
                            "since90k": rows[0]["startTime90k"],
                            "lastError": None,
                            "nextTry90k": None,
                            "syncer": {
                                "failingStep": None,
                                "failingSince90k": None,
                                "lastError": None,
                                "freeBytes": None,
                            },
                        },
                    }
                },
            }
        ],
        "signals": [
            {
                "id": 1,
                "uuid": "5be9cc19-3e2d-4f8a-9b38-1b0f8e0a3c1d",
                "shortName": "month motion",
                "cameras": {CAM: "direct"},
                "type": SIG_TYPE,
                "days": {},
            }
        ],
        "signalTypes": [
            {
                "uuid": SIG_TYPE,
                "states": [
                    {"value": 1, "name": "still"},
                    {"value": 2, "name": "moving", "motion": True, "color": "#ff8888"},
                ],
            }
        ],
        "permissions": {
            "viewVideo": True,
            "readCameraConfigs": False,
            "updateSignals": False,
            "adminUsers": False,
        },
    }


#: where the synthetic month's motion is: the left half of the picture
BALL_CELLS = {r * 16 + c for r in range(16) for c in range(8)}


def region_cells(hex_cells: str) -> set[int]:
    """The cells of a `cells` parameter (the whole picture when absent)."""
    if not hex_cells:
        return set(range(256))
    data = bytes.fromhex(hex_cells)
    return {i for i in range(256) if data[i // 8] >> (i % 8) & 1}


motion_asked: list[int] = []


def stub_month(page: Any, h: dict[str, Any], seen: list[tuple[int, int]], nvr: Nvr) -> None:
    """Answers the API from `h`; any view.mp4 with the real camera's first recording."""
    top = top_level(h)
    first = nvr.recordings()[0]
    clip = httpx.get(
        f"{nvr.base}/api/cameras/{nvr.camera}/main/view.mp4",
        params={"s": f"{first['startId']}@{first['openId']}"},
    ).content

    def answer(route: Any) -> None:
        u = urlsplit(route.request.url)
        q = {k: int(v[0]) for k, v in parse_qs(u.query).items() if v[0].isdigit()}
        if u.path == "/api/":
            body: Any = top
        elif u.path == f"/api/cameras/{CAM}/main/recordings":
            a, b = q["startTime90k"], q["endTime90k"]
            seen.append((a, b))
            recs = [r for r in h["rows"] if r["endTime90k"] > a and r["startTime90k"] < b]
            body = {
                "recordings": recs,
                "videoSampleEntries": {
                    "1": {
                        "width": 1920,
                        "height": 1080,
                        "pixelHSpacing": 1,
                        "pixelVSpacing": 1,
                        "aspectWidth": 16,
                        "aspectHeight": 9,
                    }
                },
            }
        elif u.path == f"/api/cameras/{CAM}/motion":
            a, b = q["startTime90k"], q["endTime90k"]
            region = region_cells(parse_qs(u.query).get("cells", [""])[0])
            moved = region & BALL_CELLS
            spans = [
                {"startTime90k": t, "endTime90k": t + 120 * U, "recordingIds": [0], "peak": 0.06}
                for t, st in reversed(h["changes"])
                if st == 2 and a - 120 * U < t < b and moved
            ]
            motion_asked.append(len(spans))
            body = {"stream": "main", "spans": spans[: q.get("limit", 100)]}
        elif u.path.endswith("/view.mp4"):
            route.fulfill(status=200, content_type="video/mp4", body=clip)
            return
        elif u.path == "/api/signals":
            a, b = q["startTime90k"], q["endTime90k"]
            before = [c for c in h["changes"] if c[0] < a][-1:]
            inside = [c for c in h["changes"] if a <= c[0] < b]
            cs = before + inside
            body = {
                "signalIds": [1] * len(cs),
                "states": [s for _, s in cs],
                "times90k": [t for t, _ in cs],
            }
        else:
            route.fulfill(status=404, body="not stubbed")
            return
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(re.compile(r".*/api/.*"), answer)


def stub_thumbs(page: Any, nvr: Nvr) -> None:
    """Every thumb.jpg of the stubbed month: a picture of the real camera, as wide as
    asked (the daemon makes it)."""
    first = nvr.recordings()[0]
    pics: dict[str, bytes] = {}

    def answer(route: Any) -> None:
        q = parse_qs(urlsplit(route.request.url).query)
        width = q.get("width", ["640"])[0]
        if width not in pics:
            pics[width] = httpx.get(
                f"{nvr.base}/api/cameras/{nvr.camera}/main/thumb.jpg",
                params={"time90k": first["startTime90k"], "width": width, "keyFrame": "true"},
            ).content
        headers = {"X-Frame-Time90k": q["time90k"][0]}
        route.fulfill(status=200, content_type="image/jpeg", body=pics[width], headers=headers)

    page.route(re.compile(r".*/thumb\.jpg.*"), answer)


def overflow(page: Any) -> int:
    overflowing: int = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    return overflowing


def test_just_after_midnight_today_opens_on_the_last_hour_and_stays_today(
    page: Any, nvr: Nvr
) -> None:
    """The browser's clock is set to three minutes past the server's midnight (this test
    once passed or failed with the hour CI ran at): the last hour is centred on
    yesterday, but the page opens and stays on today; with no video for two days, it
    opens the newest day with video, fitted to it."""
    tz = ZoneInfo(TZ)
    today = dt.datetime.now(tz).date()
    midnight = dt.datetime(today.year, today.month, today.day, tzinfo=tz)
    now = int((midnight + dt.timedelta(minutes=3)).timestamp()) * U
    assert now < time.time() * U
    page.clock.set_fixed_time(now / U)
    seen: list[tuple[int, int]] = []
    h = month_history(now)
    stub_month(page, h, seen, nvr)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(nvr.base + "/recordings")
    page.wait_for_function("() => document.querySelector('#timeline')?.timeline")
    wait_loaded(page)
    assert window(page) == (now - 3600 * U, now + 60 * U)
    day = today.isoformat()
    assert page.evaluate("() => new URLSearchParams(location.search).get('day')") == day
    assert page.locator(f".cal-day[data-day='{day}'][aria-selected=true]").count() == 1
    assert (today - dt.timedelta(days=1)).isoformat() in h["days"]

    # the newest video two days old: its day, fitted
    page.unroute_all()
    old = month_history(now - 2 * 86400 * U)
    stub_month(page, old, seen, nvr)
    page.goto(nvr.base + "/recordings")
    page.wait_for_function("() => document.querySelector('#timeline')?.timeline")
    wait_loaded(page)
    newest = max(old["days"])
    assert page.evaluate("() => new URLSearchParams(location.search).get('day')") == newest
    a, b = window(page)
    last = old["rows"][-1]["endTime90k"]
    assert a < last <= b < now - 86400 * U


def test_a_month_pans_across_midnight_and_stays_smooth(
    page: Any, browser: Any, nvr: Nvr, artifact_dir: Path
) -> None:

    h = month_history(int(time.time() * U))
    seen: list[tuple[int, int]] = []
    stub_month(page, h, seen, nvr)
    stub_thumbs(page, nvr)
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(nvr.base + "/recordings")
    page.wait_for_function(
        "() => Number(document.querySelector('#timeline')?.dataset.recordings) > 100"
    )
    page.evaluate("() => { window.noReload = true; }")
    shots = {}
    # today opens on the last hour
    a, b = window(page)
    assert b - a == 3660 * U
    # a day in the middle of the month, zoomed to its recorded span, across midnight
    day = sorted(h["days"])[10]
    if not page.locator(f".cal-day[data-day='{day}']").count():
        page.click("button[aria-label='Previous month']")
    page.click(f".cal-day[data-day='{day}']")
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('day') === '{day}'")
    wait_loaded(page)
    a0, b0 = window(page)
    day_a = h["days"][day]["startTime90k"]
    assert a0 <= day_a + 10 * 60 * U and b0 >= h["days"][day]["endTime90k"] - 10 * 60 * U
    page.click("label[for=zoom-1h]")
    page.fill("#goto-time", f"{day} 00:10:00")
    page.press("#goto-time", "Enter")
    wait_loaded(page)
    a, b = window(page)
    assert a < day_a < b  # the window holds the midnight the day starts with
    spans = [list(s) for s in drawn_spans(page)]
    want = [
        [r["startTime90k"], r["endTime90k"]]
        for r in h["rows"]
        if r["endTime90k"] > a and r["startTime90k"] < b
    ]
    assert spans == want and spans[0][0] < day_a
    page.mouse.move(0, 0)
    card = page.locator(".timeline-card")
    shots["timeline-midnight-1920.png"] = card.screenshot(
        path=str(artifact_dir / "timeline-midnight-1920.png")
    )
    # pan left past midnight with the button: the URL's day follows, without a reload
    for _ in range(3):
        page.click("button[aria-label=Earlier]")
    wait_loaded(page)
    assert page.evaluate("() => window.noReload") is True
    prev_day = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    assert f"day={prev_day}" in page.url
    a, b = window(page)
    assert [list(s) for s in drawn_spans(page)] == [
        [r["startTime90k"], r["endTime90k"]]
        for r in h["rows"]
        if r["endTime90k"] > a and r["startTime90k"] < b
    ]
    shots["timeline-pan-1920.png"] = card.screenshot(
        path=str(artifact_dir / "timeline-pan-1920.png")
    )
    # only what the window needs was asked for: never more than a few days at once
    assert seen and max(b - a for a, b in seen) <= 86400 * U + 3600 * U
    # the week overview: per-day totals, no recordings fetched
    n = len(seen)
    page.click("label[for=zoom-week]")
    wait_loaded(page)
    assert len(seen) == n
    shots["timeline-week-1920.png"] = page.screenshot(
        path=str(artifact_dir / "timeline-week-1920.png")
    )
    page.click("label[for=rec-view-list]")
    page.click("label[for=zoom-day]")
    page.wait_for_selector("#rec-list tbody tr")
    shots["timeline-list-1920.png"] = page.screenshot(
        path=str(artifact_dir / "timeline-list-1920.png"), full_page=True
    )
    assert overflow(page) <= 0
    page.click("label[for=rec-view-timeline]")

    # frame times of a zoom from the week to minutes and a pan across days
    page.click("label[for=zoom-week]")
    page.wait_for_function(f"() => {WIN}[1] - {WIN}[0] === {7 * 86400 * U}")
    wait_loaded(page)
    geo = timeline_geometry(page)
    y = row_y(geo)
    browser.start_tracing(
        page=page,
        categories=[
            "toplevel",
            "devtools.timeline",
            "disabled-by-default-devtools.timeline",
            "disabled-by-default-devtools.timeline.frame",
        ],
    )
    page.evaluate(
        """() => {
            window.frames_ = [];
            let last = performance.now();
            const f = (t) => {
                window.frames_.push(t - last);
                last = t;
                if (window.frames_.length < 100000) requestAnimationFrame(f);
            };
            requestAnimationFrame(f);
        }"""
    )
    page.mouse.move(geo["left"] + geo["trackLeft"] + geo["trackWidth"] * 0.6, y)
    # one input per frame drawn (as a person's wheel or drag arrives), not per fixed delay
    for _ in range(40):
        page.mouse.wheel(0, -120)
        next_animation_frame(page)
    for _ in range(20):
        page.mouse.wheel(0, 120)
        next_animation_frame(page)
    x0 = geo["left"] + geo["trackLeft"] + geo["trackWidth"] * 0.8
    page.mouse.move(x0, geo["top"] + 8)  # the axis pans
    page.mouse.down()
    for k in range(60):
        page.mouse.move(x0 - 10 * k, geo["top"] + 8)
        next_animation_frame(page)
    page.mouse.up()
    wait_loaded(page)
    raf = page.evaluate("() => window.frames_")
    raw = browser.stop_tracing()
    (artifact_dir / "timeline-month-trace.json").write_bytes(raw)  # for chrome://tracing
    trace = json.loads(raw)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mains = {
        e["tid"]
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    tasks = [
        e["dur"] / 1000
        for e in events
        if str(e.get("name")).endswith("RunTask") and e.get("tid") in mains and "dur" in e
    ]
    if not tasks:
        print("TRACE NAMES", sorted({str(e.get("name")) for e in events})[:80], mains)
    figures = {
        "rows": len(h["rows"]),
        "raf_frames": len(raf),
        "raf_max_ms": round(max(raf[1:]), 1),
        "raf_p95_ms": round(sorted(raf[1:])[int(0.95 * (len(raf) - 1))], 1),
        "main_tasks": len(tasks),
        "main_task_max_ms": round(max(tasks), 1) if tasks else None,
        "main_tasks_over_50ms": sum(1 for t in tasks if t > 50),
    }
    (artifact_dir / "timeline-month-frames.json").write_text(json.dumps(figures, indent=1))
    print("FRAMES", figures)
    assert figures["raf_frames"] > 30 and tasks

    # the phone: the same month, panned by a finger, nothing overflows
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("label[for=zoom-6h]")
    wait_loaded(page)
    shots["timeline-phone-390.png"] = page.screenshot(
        path=str(artifact_dir / "timeline-phone-390.png"), full_page=True
    )
    assert overflow(page) <= 0
    page.click("label[for=rec-view-list]")
    page.wait_for_selector("#rec-list tbody tr")
    shots["timeline-phone-list-390.png"] = page.screenshot(
        path=str(artifact_dir / "timeline-phone-list-390.png"), full_page=True
    )
    assert overflow(page) <= 0
    for name in shots:
        assert not_blank(artifact_dir / name) > 10, name


def test_events_and_region_search_on_a_stubbed_month(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    """The motion routes are answered in the browser in the shapes of nvr's motion
    extension (the synthetic month moves in the left half of the picture); the picture
    searched is the real camera's (thumb.jpg of the daemon)."""

    h = month_history(int(time.time() * U))
    stub_month(page, h, [], nvr)
    stub_thumbs(page, nvr)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(nvr.base + "/recordings")
    page.wait_for_function(
        "() => Number(document.querySelector('#timeline')?.dataset.recordings) > 100"
    )
    page.click("label[for=zoom-6h]")
    wait_loaded(page)
    # the events list: the window's motion, newest first, each plays
    page.click("#events summary")
    page.wait_for_selector("#events button.event")
    starts = [
        int(x)
        for x in page.eval_on_selector_all(
            "#events button.event", "bs => bs.map(b => b.dataset.start90k)"
        )
    ]
    a, b = window(page)
    # the spans overlapping the window
    want = sorted((t for t, st in h["changes"] if st == 2 and a - 120 * U < t < b), reverse=True)
    assert starts == want[:100]
    # the motion band is drawn from the loaded spans
    band = page.evaluate("() => document.querySelector('#timeline').timeline.rows[0].motion.length")
    assert band >= len(want)
    # search where the motion is, then where nothing moves
    page.click("#region-search summary")
    page.wait_for_function("() => document.querySelector('#region-search img').naturalWidth > 0")

    def drag(c0: float, r0: float, c1: float, r1: float) -> None:
        page.locator("#region-grid").scroll_into_view_if_needed()
        box = page.locator("#region-grid").bounding_box()
        assert box
        x, y, w, h = box["x"], box["y"], box["width"], box["height"]
        page.mouse.move(x + w * c0, y + h * r0)
        page.mouse.down()
        page.mouse.move(x + w * c1, y + h * r1, steps=4)
        page.mouse.up()

    drag(0.1, 0.3, 0.4, 0.7)
    cells = page.get_attribute("#region-grid", "data-cells") or ""
    assert region_cells(cells) <= BALL_CELLS and region_cells(cells)
    page.click("#region-go")
    page.wait_for_function("() => document.querySelector('#region-status').dataset.count > 0")
    assert int(page.get_attribute("#region-status", "data-count") or 0) == len(want)
    assert page.locator("#search-results button.event").count() == len(want)
    marks = page.evaluate("() => document.querySelector('#timeline').timeline.rows[0].marks.length")
    assert marks == len(want)
    page.mouse.move(0, 0)
    page.screenshot(path=str(artifact_dir / "timeline-search-1920.png"), full_page=True)
    drag(0.6, 0.2, 0.9, 0.8)
    assert not region_cells(page.get_attribute("#region-grid", "data-cells") or "") & BALL_CELLS
    page.click("#region-go")
    page.wait_for_function("() => document.querySelector('#region-status').dataset.count === '0'")
    assert "No motion" in page.inner_text("#region-status")
    assert overflow(page) <= 0
    # a result plays
    page.click("#events button.event >> nth=0")
    page.wait_for_function(f"() => {WALL} >= {want[0]}")


# -- a month recorded through the real writer, served by the real daemon ---------------


@pytest.fixture
def month_nvr(tmp_path: Path) -> Iterator[Nvr]:
    """30 days of history (runs of 20 min every 2 h, 5-minute recordings, each run ended
    by a disconnect) written by the real writer and syncer on a simulated clock up to
    now, then served by the real daemon (the camera's stream is off)."""
    layout = record_month(tmp_path, end90k=int(time.time()) * U - 60 * U)
    config = dataclasses.replace(
        layout.config(),
        time_zone=TZ,
        binds=(BindConfig("127.0.0.1:0", allow_unauthenticated=ANONYMOUS),),
    )
    with daemon_in_thread(config) as d:
        base = d.http_addresses[0]
        top = httpx.get(base + "/api/", headers={"Accept": "application/json"}).json()
        yield Nvr(base, top["cameras"][0]["uuid"], tmp_path)


def test_a_recorded_month_served_by_the_daemon_opens_zooms_and_pans_by_the_day(
    page: Any, month_nvr: Nvr, artifact_dir: Path
) -> None:
    nvr = month_nvr
    asked: list[tuple[int, int]] = []

    def on_request(request: Any) -> None:
        u = urlsplit(request.url)
        if u.path.startswith("/api/") and u.path.endswith("/recordings"):
            q = parse_qs(u.query)
            # a request without a bound asks for everything: as wide as it gets
            a = int(q.get("startTime90k", ["0"])[0])
            b = int(q.get("endTime90k", [str(1 << 62)])[0])
            asked.append((a, b))

    page.on("request", on_request)

    def api_spans(a: int, b: int) -> list[list[int]]:
        rows = nvr.api(
            f"/api/cameras/{nvr.camera}/main/recordings",
            startTime90k=a,
            endTime90k=b,
            split90k=1,
        )["recordings"]
        return sorted([r["startTime90k"], r["endTime90k"]] for r in rows)

    def drawn_is_api() -> None:
        a, b = window(page)
        assert sorted(drawn_spans(page)) == api_spans(a, b), (a, b)

    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(nvr.base + "/recordings")
    page.wait_for_function("() => document.querySelector('#timeline')?.timeline")
    wait_loaded(page)
    a, b = window(page)
    assert b - a == 3660 * U  # today: the last hour
    drawn_is_api()
    # a day in the middle of the month: zoomed to its recorded span
    days = nvr.api("/api/", days="true")["cameras"][0]["streams"]["main"]["days"]
    day = sorted(days)[15]
    if not page.locator(f".cal-day[data-day='{day}']").count():
        page.click("button[aria-label='Previous month']")
    page.click(f".cal-day[data-day='{day}']")
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('day') === '{day}'")
    wait_loaded(page)
    a, b = window(page)
    spans = api_spans(days[day]["startTime90k"], days[day]["endTime90k"])
    # (the day's recorded span, clipped to the day, and 5 % each side)
    assert a <= spans[0][0] and spans[-1][1] <= b and b - a <= 1.1 * 86400 * U
    drawn_is_api()
    # across midnight, an hour at a time
    page.click("label[for=zoom-1h]")
    page.fill("#goto-time", f"{day} 00:20:00")
    page.press("#goto-time", "Enter")
    wait_loaded(page)
    for _ in range(3):
        page.click("button[aria-label=Earlier]")
    wait_loaded(page)
    prev_day = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    assert f"day={prev_day}" in page.url
    drawn_is_api()
    # the week: per-day totals of /api/, no recordings asked for
    n = len(asked)
    page.click("label[for=zoom-week]")
    wait_loaded(page)
    assert len(asked) == n and not drawn_spans(page)
    page.mouse.move(0, 0)
    page.locator(".timeline-card").screenshot(
        path=str(artifact_dir / "timeline-month-real-week-1920.png")
    )
    # and the wheel back in to hours, then a drag of the axis across days
    geo = timeline_geometry(page)
    page.mouse.move(geo["left"] + geo["trackLeft"] + geo["trackWidth"] * 0.4, row_y(geo))
    for _ in range(14):
        page.mouse.wheel(0, -120)
        next_animation_frame(page)
    wait_loaded(page)
    assert window(page)[1] - window(page)[0] < 86400 * U
    drawn_is_api()
    x0 = geo["left"] + geo["trackLeft"] + geo["trackWidth"] * 0.8
    page.mouse.move(x0, geo["top"] + 8)
    page.mouse.down()
    for k in range(1, 31):
        page.mouse.move(x0 - 20 * k, geo["top"] + 8)
        next_animation_frame(page)
    page.mouse.up()
    wait_loaded(page)
    drawn_is_api()
    page.mouse.move(0, 0)
    page.locator(".timeline-card").screenshot(
        path=str(artifact_dir / "timeline-month-real-1920.png")
    )
    # only what the windows needed: one local day per request, each past day once
    assert asked and max(b - a for a, b in asked) <= 86400 * U + 3600 * U, asked
    today = max(asked)
    past = [q for q in asked if q != today]
    assert len(past) == len(set(past)), sorted(past)
    for name in ("timeline-month-real-week-1920.png", "timeline-month-real-1920.png"):
        assert not_blank(artifact_dir / name) > 10


# -- region search against the real daemon ---------------------------------------------


@pytest.fixture
def square_nvr(tmp_path: Path, rtsp_server_factory: ServerFactory) -> Iterator[Nvr]:
    """A daemon of its own recording (and analysing for motion) the test camera's
    ``square`` scene: a dark square crossing grid rows 8 and 9 for 3 s of every 6 s loop,
    nothing moving elsewhere; once the motion search has found it."""
    server = rtsp_server_factory(files={"square": motion_clip("square")}, fixtures=False)
    layout = create_db(tmp_path, {"square": CameraSpec(server.url("file/square"))})
    with Database.open(layout.db_dir, tz=dt.UTC, now=RealClocks().realtime) as db:
        for cam in list(db.cameras.values()):
            db.update_camera(cam.id, config=dataclasses.replace(cam.config, motion="main"))
    config = dataclasses.replace(
        layout.config(rotate_interval_sec=4),
        time_zone=TZ,
        binds=(BindConfig("127.0.0.1:0", allow_unauthenticated=ANONYMOUS),),
    )
    with daemon_in_thread(config) as d:
        base = d.http_addresses[0]
        top = httpx.get(base + "/api/", headers={"Accept": "application/json"}).json()
        n = Nvr(base, top["cameras"][0]["uuid"], tmp_path)

        def spans() -> list[Any]:
            now = int(time.time() * U)
            got: list[Any] = n.api(
                f"/api/cameras/{n.camera}/motion", startTime90k=now - 3600 * U, endTime90k=now
            )["spans"]
            return got

        wait_until(spans, 120, "no motion found in 120 s")  # a loaded machine analyses slowly
        yield n


def test_region_search_finds_the_moving_square_and_nothing_where_all_is_still(
    page: Any, square_nvr: Nvr, artifact_dir: Path
) -> None:
    nvr = square_nvr
    open_recordings(page, nvr, viewport={"width": 1920, "height": 1080})
    wait_loaded(page)
    page.click("#region-search summary")
    page.wait_for_function("() => document.querySelector('#region-search img').naturalWidth > 0")

    def search(r0: int, r1: int) -> tuple[int, list[Any]]:
        """Drags rows r0..r1 (every column) on the picture's grid, searches; the count
        shown and the API's answer for the same cells and window."""
        grid = page.locator("#region-grid")
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        assert box
        x, y, w, h = box["x"], box["y"], box["width"], box["height"]
        page.mouse.move(x + w * 0.5 / 16, y + h * (r0 + 0.5) / 16)
        page.mouse.down()
        page.mouse.move(x + w * 15.5 / 16, y + h * (r1 + 0.5) / 16, steps=4)
        page.mouse.up()
        cells = page.get_attribute("#region-grid", "data-cells") or ""
        assert region_cells(cells) == {r * 16 + c for r in range(r0, r1 + 1) for c in range(16)}
        page.evaluate("() => delete document.querySelector('#region-status').dataset.count")
        page.click("#region-go")
        page.wait_for_function("() => document.querySelector('#region-status').dataset.count")
        a, b = window(page)
        api = nvr.api(
            f"/api/cameras/{nvr.camera}/motion",
            startTime90k=a,
            endTime90k=b,
            cells=cells,
            limit=200,
        )["spans"]
        return int(page.get_attribute("#region-status", "data-count") or 0), api

    found, api = search(8, 9)  # where the square moves
    assert found > 0 and found == len(api), (found, api)
    marks = page.evaluate("() => document.querySelector('#timeline').timeline.rows[0].marks")
    assert [[m["start"], m["end"]] for m in marks] == [
        [s["startTime90k"], s["endTime90k"]] for s in api
    ]
    assert page.locator("#search-results button.event").count() == found
    page.mouse.move(0, 0)
    page.screenshot(path=str(artifact_dir / "timeline-search-real-1920.png"), full_page=True)
    found, api = search(1, 5)  # the still top of the picture
    assert found == 0 and api == []
    assert "No motion" in page.inner_text("#region-status")


# -- evidence: protected and redacted spans (last in the module: it hides a recording) --


def login_client(nvr: Nvr, user: str) -> tuple[httpx.Client, str]:
    """An HTTP client logged in on the bind that grants nothing, and its CSRF token."""
    c = httpx.Client(base_url=nvr.login_base, headers={"Accept": "application/json"})
    c.post("/api/login", json={"username": user, "password": PASSWORD}).raise_for_status()
    csrf: str = c.get("/api/").json()["user"]["session"]["csrf"]
    return c, csrf


PIXEL = """([x, y]) => {
    const c = document.querySelector('#timeline');
    const d = window.devicePixelRatio || 1;
    return [...c.getContext('2d').getImageData(Math.round(x * d), Math.round(y * d), 1, 1).data]
        .slice(0, 3);
}"""


def css_rgb(page: Any, var: str) -> list[int]:
    hexa = page.evaluate(
        f"() => getComputedStyle(document.documentElement).getPropertyValue('{var}').trim()"
    )
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", hexa), hexa
    return [int(hexa[i : i + 2], 16) for i in (1, 3, 5)]


def test_protected_and_redacted_spans_are_drawn_where_the_api_says(
    page: Any, nvr: Nvr, artifact_dir: Path
) -> None:
    pump_until(page, lambda: len(nvr.recordings()) >= 5, 30)
    rows = nvr.recordings()
    assert len(rows) >= 5
    c, csrf = login_client(nvr, ADMIN)
    base = f"/api/cameras/{nvr.camera}"
    kept = (rows[-3]["startTime90k"] + U // 5, rows[-2]["endTime90k"] - U // 5)
    c.post(
        f"{base}/protect",
        json={"csrf": csrf, "startTime90k": kept[0], "endTime90k": kept[1], "reason": "van"},
    ).raise_for_status()
    hidden = (rows[1]["startTime90k"] + U // 10, rows[1]["endTime90k"] - U // 10)
    c.post(
        f"{base}/redact",
        json={"csrf": csrf, "startTime90k": hidden[0], "endTime90k": hidden[1], "reason": "face"},
    ).raise_for_status()
    protected = [
        [r["startTime90k"], r["endTime90k"], "protected"]
        for r in c.get(f"{base}/protect").json()["ranges"]
    ]
    redacted = [
        [r["startTime90k"], r["endTime90k"], "redacted"]
        for r in c.get(f"{base}/redactions").json()["redactions"]
        if r["stream"] == "main"
    ]
    assert protected == [[*kept, "protected"]] and redacted == [[*hidden, "redacted"]]

    def drawn() -> list[list[Any]]:
        got: list[list[Any]] = page.evaluate(
            "() => document.querySelector('#timeline').timeline.visibleEvidence(0)"
        )
        return got

    # anonymous (viewVideo): the protected span; redactions are for redactVideo only
    open_recordings(page, nvr)
    page.wait_for_function(
        "() => document.querySelector('#timeline').timeline.rows[0]?.evidence.length > 0"
    )
    wait_loaded(page)
    assert drawn() == protected
    # the administrator sees both, each where the API says
    page.goto(nvr.login_base + "/login?next=%2Frecordings")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.fill("#login-user", ADMIN)
    page.fill("#login-pass", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/recordings")
    page.wait_for_function(
        "() => document.querySelector('#timeline')?.timeline.rows[0]?.evidence.length === 2"
    )
    page.click("label[for=zoom-fit]")
    wait_loaded(page)
    a, b = window(page)
    assert a < hidden[0] and kept[1] < b, (a, b, hidden, kept)
    assert sorted(drawn()) == sorted(protected + redacted)
    # on the canvas: the protected line along the track's bottom inside the span, not
    # outside it; the redacted span hatched, with no recording under it
    geo = timeline_geometry(page)
    bottom = geo["rowTop"] + geo["rowHeight"] - 1.5
    blue = css_rgb(page, "--tl-protect")
    green = css_rgb(page, "--tl-span")

    def at(t: float, y: float) -> list[int]:
        rgb: list[int] = page.evaluate(PIXEL, [x_of(geo, round(t)) - geo["left"], y])
        return rgb

    def near(p: list[int], q: list[int]) -> bool:
        return max(abs(u - v) for u, v in zip(p, q, strict=True)) <= 12

    assert near(at((kept[0] + kept[1]) / 2, bottom), blue)
    assert not near(at(rows[0]["startTime90k"] + U // 2, bottom), blue)
    mid_y = geo["rowTop"] + geo["rowHeight"] / 2
    strip = [at(hidden[0] + (hidden[1] - hidden[0]) * k / 12, mid_y) for k in range(1, 12)]
    assert not any(near(p, green) for p in strip), strip
    legend = page.inner_text(".legend")
    assert "protected" in legend and "redacted" in legend
    page.mouse.move(0, 0)
    page.locator(".timeline-card").screenshot(path=str(artifact_dir / "timeline-evidence-1920.png"))
    assert not_blank(artifact_dir / "timeline-evidence-1920.png") > 10
