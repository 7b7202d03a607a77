"""The settings pages (issue 17) in Chromium against the real daemon recording GStreamer
test cameras.

One daemon per module runs in a thread of its own (its own ``trio.run``) with two cameras
("yard" and "gate", each on a path of its own of the test camera) on a bind that grants
nothing without a login; an administrator (every permission) is added with ``nvr config
user add`` before it starts.

What is checked: a camera added through the page records, and its "test" button shows
the snapshot and codec the server read from the camera; a bad URL shows the server's own
error, and a URL the API refuses shows the refusal under its field; a budget larger than
the disk warns (as it is typed, and the server's warning once saved); a directory added
and removed through the storage page; a user added through the users page with a camera
limit sees only that camera and no Settings tab. Screenshots of each section at 1920x1080
and 390x844 go to ``test-artifacts/``.
"""

from __future__ import annotations

import dataclasses
import io
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nvr import cli
from nvr.config import BindConfig
from nvr.db.auth import PERMISSIONS
from tests.support.daemon import CameraSpec, create_db
from tests.support.http import daemon_in_thread
from tests.support.poll import wait_until
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp

DESKTOP = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
ADMIN, PASSWORD = "root", "a long admin password"
#: each camera reads a path of its own (a new client of a path makes its timestamps jump)
PATHS = {"yard": "file/h264-640x360", "gate": "file/h264-res-change"}
ADDED = "file/h264-1920x1080"


@dataclass
class Nvr:
    base: str
    root: Path
    server: RtspServer
    db_dir: Path

    def api(self, path: str, **params: Any) -> Any:
        with httpx.Client(base_url=self.base) as c:
            r = c.post("/api/login", json={"username": ADMIN, "password": PASSWORD})
            r.raise_for_status()
            r = c.get(path, params=params, headers={"Accept": "application/json"})
            r.raise_for_status()
            return r.json()


def add_user(db_dir: Path, name: str, password: str, perms: str) -> None:
    stdin = sys.stdin
    sys.stdin = io.StringIO(password + "\n")
    try:
        args = ["--db-dir", str(db_dir), "config", "user", "add", name, "--password-stdin"]
        assert cli.main([*args, "--perms", perms]) == 0
    finally:
        sys.stdin = stdin


@pytest.fixture(scope="module")
def nvr(tmp_path_factory: pytest.TempPathFactory, shared_rtsp_server: RtspServer) -> Iterator[Nvr]:
    root = tmp_path_factory.mktemp("settings")
    layout = create_db(root, {n: CameraSpec(shared_rtsp_server.url(p)) for n, p in PATHS.items()})
    add_user(layout.db_dir, ADMIN, PASSWORD, ",".join(PERMISSIONS))
    config = dataclasses.replace(
        layout.config(rotate_interval_sec=2), binds=(BindConfig("127.0.0.1:0"),)
    )
    with daemon_in_thread(config) as d:
        yield Nvr(d.http_addresses[0], root, shared_rtsp_server, layout.db_dir)


def log_in(page: Any, nvr: Nvr, user: str = ADMIN, password: str = PASSWORD,
           then: str = "/settings") -> None:
    page.goto(nvr.base + "/login?next=" + then)
    page.fill("#login-user", user)
    page.fill("#login-pass", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**" + then + "*")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def state_of(nvr: Nvr, camera: str) -> str | None:
    top = nvr.api("/api/")
    cam = next(c for c in top["cameras"] if c["shortName"] == camera)
    state: str | None = (cam["streams"]["main"].get("nvrStatus") or {}).get("state")
    return state


def shoot(page: Any, artifact_dir: Path, name: str) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(100)  # a layout pass at the new size
        page.screenshot(path=str(artifact_dir / f"ui-settings-{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_add_a_camera_through_the_page_after_testing_it(
    page: Any, nvr: Nvr, artifact_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page.set_viewport_size(DESKTOP)
    log_in(page, nvr)
    page.wait_for_url("**/settings/cameras")
    assert page.is_visible("#settings-tab")
    page.wait_for_selector(".cam-setting[data-camera]")
    shoot(page, artifact_dir, "cameras")
    page.click("#add-camera")
    page.fill("input[name=shortName]", "porch")
    page.fill("input[name=main-url]", nvr.server.url(ADDED))
    page.fill("input[name=main-retainBytes]", "1G")
    page.click(".test-button[data-stream=main]")
    page.wait_for_selector(".stream-fields[data-stream=main] img.snapshot", timeout=20_000)
    info = page.inner_text(".stream-fields[data-stream=main] .test-info")
    assert info.startswith("H.264 (avc1.") and "1920×1080" in info, info
    assert "fps" in info and "unknown" not in info, info
    natural = page.evaluate("document.querySelector('img.snapshot').naturalWidth")
    assert natural == 640  # the server's snapshot, scaled to the test's width
    shoot(page, artifact_dir, "camera-test")
    page.click("#camera-form button[type=submit]")
    page.wait_for_selector(".cam-setting:has(h2:text-is('porch'))")
    top = nvr.api("/api/", cameraConfigs="true")
    porch = next(c for c in top["cameras"] if c["shortName"] == "porch")
    main = porch["streams"]["main"]
    assert main["config"]["url"] == nvr.server.url(ADDED)
    assert main["retainBytes"] == 1_000_000_000
    # ... and it records, while the page says nothing of a warning
    wait_until(lambda: state_of(nvr, "porch") == "recording", 30,
               "the camera added through the page never recorded")
    assert page.query_selector(".budget-warning:not([hidden])") is None
    # how long a test takes (for the report): connect, a key frame, a second of frames
    with httpx.Client(base_url=nvr.base, timeout=30) as c:
        c.post("/api/login", json={"username": ADMIN, "password": PASSWORD}).raise_for_status()
        csrf = c.get("/api/").json()["user"]["session"]["csrf"]
        took = []
        # paths no camera here records (a new client of a path disturbs its others)
        for path in ("live", "file/hevc-640x360"):
            started = time.monotonic()
            got = c.post("/api/nvr/cameras/test", json={"csrf": csrf, "url": nvr.server.url(path)})
            took.append(f"{path} {got.json().get('codecName')} {time.monotonic() - started:.2f} s")
    with capsys.disabled():
        print(f"\ncamera test answered: {'; '.join(took)}")


def test_a_bad_url_shows_the_servers_error(page: Any, nvr: Nvr, artifact_dir: Path) -> None:
    page.set_viewport_size(DESKTOP)
    log_in(page, nvr, then="/settings/cameras")
    page.click("#add-camera")
    port = closed_port()
    url = f"rtsp://127.0.0.1:{port}/nothing"
    page.fill("input[name=shortName]", "broken")
    page.fill("input[name=main-url]", url)
    page.click(".test-button[data-stream=main]")
    error = page.wait_for_selector(".stream-fields[data-stream=main] .test-error", timeout=20_000)
    text = error.inner_text()
    # the server's exact words: what the API answers for the same URL
    with httpx.Client(base_url=nvr.base) as c:
        c.post("/api/login", json={"username": ADMIN, "password": PASSWORD}).raise_for_status()
        csrf = c.get("/api/").json()["user"]["session"]["csrf"]
        direct = c.post("/api/nvr/cameras/test", json={"csrf": csrf, "url": url}).json()
    assert text == direct["error"] and text.startswith(url), (text, direct)
    shoot(page, artifact_dir, "camera-test-error")
    # a URL the API refuses: its reason under the field it names, nothing added
    page.fill("input[name=main-url]", "http://example.com/stream")
    page.click("#camera-form button[type=submit]")
    field_error = page.wait_for_selector("input[name=main-url] ~ .field-error:not([hidden])")
    assert field_error.inner_text().startswith("camera.streams.main.url 'http://example.com/stream'")
    assert page.get_attribute("input[name=main-url]", "aria-invalid") == "true"
    # a name already taken: under the name
    page.fill("input[name=main-url]", url)
    page.fill("input[name=shortName]", "yard")
    page.click("#camera-form button[type=submit]")
    name_error = page.wait_for_selector("input[name=shortName] ~ .field-error:not([hidden])")
    assert "yard" in name_error.inner_text()
    assert "broken" not in [c["shortName"] for c in nvr.api("/api/")["cameras"]]


def test_a_budget_larger_than_the_disk_warns(page: Any, nvr: Nvr, artifact_dir: Path) -> None:
    page.set_viewport_size(DESKTOP)
    log_in(page, nvr, then="/settings/cameras")
    total = nvr.api("/api/")["nvrSampleFileDirs"][0]["totalBytes"]
    card = ".cam-setting:has(h2:text-is('gate'))"
    page.click(f"{card} button:text-is('Edit')")
    budget = "input[name=main-retainBytes]"
    old = page.input_value(budget)
    page.fill(budget, str(2 * total))
    hint = page.wait_for_selector(".stream-fields[data-stream=main] .budget-warning:not([hidden])")
    assert "more than the disk holds" in hint.inner_text()
    page.click("#camera-form button[type=submit]")
    warning = page.wait_for_selector(".settings .dir-warning")
    assert warning.inner_text() == "Warning: " + nvr.api("/api/")["nvrSampleFileDirs"][0]["warning"]
    shoot(page, artifact_dir, "budget-warning")
    # the storage page says it next to the directory
    page.click(".subtabs a:text-is('Storage')")
    page.wait_for_selector("tr[data-dir] .budget-warning")
    # put the budget back
    page.click(".subtabs a:text-is('Cameras')")
    page.click(f"{card} button:text-is('Edit')")
    page.fill(budget, old)
    page.click("#camera-form button[type=submit]")
    page.wait_for_selector("#add-camera")
    assert nvr.api("/api/")["nvrSampleFileDirs"][0]["warning"] is None


def test_storage_page_adds_and_removes_a_directory(page: Any, nvr: Nvr,
                                                   artifact_dir: Path) -> None:
    page.set_viewport_size(DESKTOP)
    log_in(page, nvr, then="/settings/storage")
    row = page.wait_for_selector("tr[data-dir]")
    (d,) = nvr.api("/api/")["nvrSampleFileDirs"]
    assert row.inner_text().startswith(d["path"]) and " free of " in row.inner_text()
    assert page.is_disabled("tr[data-dir] button:text-is('Remove')")  # streams record there
    second = nvr.root / "second"
    page.fill("input[name=path]", str(second))
    page.click("#dir-form button[type=submit]")
    page.wait_for_selector(f"tr[data-dir]:has(th:text-is('{second}'))")
    assert (second / "meta").exists()
    shoot(page, artifact_dir, "storage")
    # a path that cannot be one: the server's reason under the field
    page.fill("input[name=path]", "relative/path")
    page.click("#dir-form button[type=submit]")
    err = page.wait_for_selector("input[name=path] ~ .field-error:not([hidden])")
    assert "must be absolute" in err.inner_text()
    page.click(f"tr[data-dir]:has(th:text-is('{second}')) button:text-is('Remove')")
    page.wait_for_selector(f"tr[data-dir]:has(th:text-is('{second}'))", state="detached")


def test_a_user_limited_to_one_camera_sees_only_it(browser: Any, page: Any, nvr: Nvr,
                                                   artifact_dir: Path) -> None:
    page.set_viewport_size(DESKTOP)
    log_in(page, nvr, then="/settings/users")
    page.wait_for_selector(f"tr[data-user='{ADMIN}']")
    page.click("#add-user")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "carol's password")
    page.uncheck("input[name=all-cameras]")
    page.check("label.check:has-text('gate') input[name=camera]")
    shoot(page, artifact_dir, "user-form")
    page.click("#user-form button[type=submit]")
    row = page.wait_for_selector("tr[data-user=carol]")
    assert "viewVideo" in row.inner_text() and "gate" in row.inner_text()
    shoot(page, artifact_dir, "users")
    # a name the server refuses: its reason under the name
    page.click("#add-user")
    page.fill("input[name=username]", " padded ")
    page.click("#user-form button[type=submit]")
    err = page.wait_for_selector("input[name=username] ~ .field-error:not([hidden])")
    assert "printable" in err.inner_text()
    page.click("#user-form button:text-is('Cancel')")

    context = browser.new_context()
    try:
        carol = context.new_page()
        carol.set_viewport_size(DESKTOP)
        log_in(carol, nvr, "carol", "carol's password", then="/status")
        carol.wait_for_selector(".cam-status h2")
        names = carol.eval_on_selector_all(".cam-status h2", "hs => hs.map(h => h.textContent)")
        assert names == ["gate"]
        assert carol.is_hidden("#settings-tab")
        carol.goto(nvr.base + "/settings")
        carol.wait_for_selector("text=Settings need the adminConfig or adminUsers permission")
    finally:
        context.close()
    # disable, then reset the password: both through the page
    page.click("tr[data-user=carol] button:text-is('Disable')")
    page.wait_for_selector("tr[data-user=carol] button:text-is('Enable')")
    page.click("tr[data-user=carol] button:text-is('Reset password')")
    page.fill("tr[data-user=carol] input[name=new-password]", "another password")
    page.click("tr[data-user=carol] .reset-form button[type=submit]")
    page.wait_for_selector("tr[data-user=carol] .reset-form", state="detached")
    users = {u["user"]["username"]: u["user"] for u in nvr.api("/api/users/")["users"]}
    assert users["carol"]["disabled"] is True
    page.click("tr[data-user=carol] button:text-is('Enable')")
    page.wait_for_selector("tr[data-user=carol] button:text-is('Disable')")
    with httpx.Client(base_url=nvr.base) as c:
        login = {"username": "carol", "password": "another password"}
        assert c.post("/api/login", json=login).status_code == 204
