"""Who may call what: every route against the permission table, sessions, cookies, CSRF,
expiry on a mock clock, the login rate limit, and the user-management routes."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json as json_module
import logging
import re
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import pytest
import trio
import trio.testing
from quart import Quart
from quart.testing import QuartClient, WebsocketResponseError

from nvr import reconfig
from nvr.base import errors
from nvr.config import BindConfig
from nvr.db.auth import PERMISSIONS, SessionPolicy
from nvr.db.signals import SignalState
from nvr.db.types import StreamConfig
from nvr.web import auth
from nvr.web.app import create_app
from nvr.web.context import WebContext
from tests.support.determinism import T0
from tests.support.web import SEC, VIEW, Recorded, web_context

NOBODY = BindConfig()


pytestmark = pytest.mark.usefixtures("inline_web_threads")


@dataclass
class Site:
    """One app over the recorded database, with users and a way to log them in."""

    r: Recorded
    ctx: WebContext
    app: Quart
    passwords: dict[str, str] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=itertools.count)
    #: a camera and a directory made to be removed (the delete routes' success)
    victims: dict[str, str] = field(default_factory=dict)

    def victim(self, kind: str) -> str:
        """A fresh camera uuid or directory id to remove, once each deletion succeeded."""
        db = self.r.env.db
        current = self.victims.get(kind)
        if kind == "camera" and (current is None or not any(
                str(c.uuid) == current for c in db.cameras.values())):
            n = next(self.counter)
            cam = reconfig.add_camera(db, {"shortName": f"victim{n}", "streams": {"main": {
                "url": "rtsp://victim/main", "sampleFileDirId": self.r.env.dir_id}}})
            current = self.victims[kind] = str(cam.uuid)
        if kind == "dir" and (current is None or int(current) not in db.dirs):
            new = reconfig.check_new_dir(db, str(self.r.env.sample_dir.parent /
                                                 f"victim{next(self.counter)}"))
            reconfig.create_dir(db.uuid, new)
            current = self.victims[kind] = str(reconfig.commit_dir(db, new))
        if kind == "signal-type" and (current is None or not any(
                str(t.uuid) == current for t in db.signal_types.values())):
            t = db.add_signal_type(f"victim{next(self.counter)}", [SignalState(1, "on")])
            current = self.victims[kind] = str(t.uuid)
        if kind == "archive" and (current is None or not any(
                str(a.uuid) == current for a in db.archives.values())):
            a = reconfig.add_archive(db, archive_body(f"victim{next(self.counter)}"))
            current = self.victims[kind] = str(a.uuid)
        if kind == "signal" and (current is None or int(current) not in db.signals):
            # tied to the recorded camera: a caller limited to another one cannot see it
            cam = db.camera_by_uuid(uuid.UUID(self.r.camera_uuid))
            sig = db.add_signal(f"victim{next(self.counter)}", db.motion_signal_type().id,
                                {cam.id: "direct"})
            current = self.victims[kind] = str(sig.id)
        assert current is not None
        return current

    def add_user(self, name: str, perms: tuple[str, ...] = ()) -> int:
        a = self.ctx.auth
        assert a is not None
        existing = a.find_user(name)
        if existing is not None:
            return existing.id
        pw = f"pw-{name}"
        self.passwords[name] = pw
        return a.add_user(name, password_hash=a.hash_password(pw), permissions=frozenset(perms)).id

    async def login(self, name: str, **headers: str) -> tuple[QuartClient, str]:
        """A client with a fresh session of ``name``, and its CSRF token."""
        c = self.app.test_client()
        resp = await c.post("/api/login", json={"username": name, "password": self.passwords[name]},
                            headers=headers)
        assert resp.status_code == 204, await resp.get_data(as_text=True)
        top = await (await c.get("/api/")).get_json()
        return c, top["user"]["session"]["csrf"]


def archive_body(name: str) -> dict[str, Any]:
    return {"shortName": name, "endpoint": "http://127.0.0.1:9", "bucket": "bkt",
            "accessKey": "ak", "secretKey": "sk"}


def make_site(r: Recorded, bind: BindConfig = NOBODY, **kw: Any) -> Site:
    ctx = web_context(r, bind, **kw)
    site = Site(r, ctx, create_app(ctx))
    site.add_user("admin", PERMISSIONS)
    site.add_user("viewer", ("viewVideo",))
    site.add_user("nobody")
    return site


# ----------------------------------------------------------------------------- the table

#: sample values for path variables, by name (a new variable name needs one here)
def path_values(site: Site, camera_uuid: str | None = None) -> dict[str, str]:
    victim = site.add_user("victim", ("viewVideo",))
    camera_uuid = camera_uuid or site.r.camera_uuid
    cam = site.ctx.db.camera_by_uuid(uuid.UUID(camera_uuid))
    # a fresh range each time: a successful DELETE removes it
    pr = site.ctx.db.protect(cam.id, T0, T0 + 90_000, "test", expires=None, by="test")
    return {
        "camera_uuid": camera_uuid,
        "range_id": str(pr.id),
        "stream_type": "main",
        "kind": "mp4",
        "name": "2.mp4",
        "user_id": str(victim),
        "version": "0123456789abcdef",
        "filename": "no-such-file.js",
    }


#: query values may name path values (``{camera_uuid}``)
QUERIES: dict[str, dict[str, str]] = {
    "view.view": {"s": "0"},
    "export.export": {"camera": "{camera_uuid}", "range": f"{T0}-{T0 + SEC}"},
    "motion.motion_search": {"startTime90k": "0", "endTime90k": "90000"},
    "motion.motion_txt": {"startTime90k": "0", "endTime90k": "90000"},
    "thumb.thumbnail": {"time90k": str(T0 + 10 * SEC), "width": "64"},
}


def body_for(site: Site, endpoint: str) -> dict[str, Any]:
    n = next(site.counter)
    if endpoint == "signals.update_signals":
        sig = site.r.env.db.motion_signal(1)
        return {"signalIds": [sig.id], "states": [2], "start": {"base": "now", "rel90k": 0},
                "end": {"base": "now", "rel90k": 90000}}
    return {
        "api.login": {"username": "viewer", "password": "pw-viewer"},
        "api.add_user": {"user": {"username": f"new{n}", "password": "x"}},
        "api.update_user": {"update": {"preferences": {"n": n}}},
        "config.add_camera": {"camera": {"shortName": f"cam{n}", "streams": {"main": {
            "url": f"rtsp://cam{n}/main", "sampleFileDirId": site.r.env.dir_id}}}},
        "config.update_camera": {"update": {"description": f"changed {n}"}},
        "config.add_dir": {"path": str(site.r.env.sample_dir.parent / f"added{n}")},
        "config.add_signal_type": {"signalType": {"shortName": f"type{n}",
                                                  "states": [{"value": 1, "name": "on"}]}},
        "config.add_signal": {"signal": {"shortName": f"signal{n}"}},
        "config.add_session": {"username": "viewer"},
        "config.add_archive": {"archive": archive_body(f"arch{n}")},
        "config.update_archive": {"update": {"maxRate": 1000 + n}},
        # no camera answers there: a test that worked, saying so (200 with "error")
        "camera_test.test_camera": {"url": f"rtsp://cam{n}/probe"},
        "redact.redact": {"startTime90k": 0, "endTime90k": 1, "reason": "test"},
        "protect.add_range": {"startTime90k": T0, "endTime90k": T0 + n + 1, "reason": "r"},
    }.get(endpoint, {})


#: what a permitted caller gets, when not the method's usual (GET 200, others 204)
SUCCESS: dict[str, int] = {
    "ui.static": 404,  # no UI file at this name and version
    "live.live": 101,  # the WebSocket upgrade was accepted (and no error sent)
    "metrics.metrics": 404,  # served only on binds with metrics = true (not these)
    "config.add_camera": 200,  # the new camera's uuid and id
    "config.add_dir": 200,  # the new directory's id
    "config.delete_camera": 200,  # how many recordings were deleted
    "camera_test.test_camera": 200,  # what the camera sent, or why it could not be opened
    "config.add_signal_type": 200,  # its id and uuid
    "config.add_signal": 200,  # its id, uuid and type
    "config.add_session": 200,  # the session id
    "config.add_archive": 200,  # its uuid, id and how many streams it copies
    "redact.redact": 200,  # answers with the tombstones it committed
    "protect.add_range": 200,  # answers the new range
    "signals.update_signals": 200,  # answers {"time90k": now}
}


def success_status(endpoint: str, method: str) -> int:
    return SUCCESS.get(endpoint, 200 if method == "GET" else 204)


def routes(app: Quart) -> list[tuple[str, str, str, bool]]:
    """(endpoint, method, rule, is_websocket) of every route of the app."""
    out = []
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or {"GET"}) - {"HEAD", "OPTIONS"})
        for m in methods:
            out.append((rule.endpoint, m, rule.rule, bool(rule.websocket)))
    return out


async def call(c: QuartClient, site: Site, endpoint: str, method: str, rule: str, ws: bool,
               *, csrf: str | None = None, json: bool = True,
               headers: dict[str, str] | None = None, camera_uuid: str | None = None) -> int:
    values = path_values(site, camera_uuid)
    if endpoint == "config.delete_camera":
        values["camera_uuid"] = site.victim("camera")
    if endpoint == "config.delete_dir":
        values["dir_id"] = site.victim("dir")
    if endpoint == "config.delete_signal_type":
        values["type_ref"] = site.victim("signal-type")
    if endpoint == "config.delete_signal":
        values["signal_id"] = site.victim("signal")
    if endpoint in ("config.update_archive", "config.delete_archive"):
        values["archive_ref"] = site.victim("archive")

    def fill(m: re.Match[str]) -> str:
        assert m[1] in values, f"add a sample value for <{m[1]}> of {rule} to path_values"
        return values[m[1]]

    path = re.sub(r"<(?:[a-z]+:)?([A-Za-z_]+)>", fill, rule)
    if ws:
        status = 101
        try:
            async with c.websocket(path, headers=headers) as sock:
                # the route's first message, or (live.m4s: no frames here) a wait with no
                # refusal: either way it was accepted, unless that message is an error
                # (Moonfire refuses a caller that way, after the upgrade)
                with trio.move_on_after(1):
                    first = await sock.receive()
                    if isinstance(first, str) and first.startswith("{"):
                        msg = json_module.loads(first)
                        if msg["type"] == "error":
                            status = msg["status"]
        except* WebsocketResponseError as group:  # quart-trio wraps it in a group
            (e,) = group.exceptions
            assert isinstance(e, WebsocketResponseError)
            status = e.response.status_code
        return status
    query = {k: v.format(**values) for k, v in QUERIES.get(endpoint, {}).items()}
    kw: dict[str, Any] = {"query_string": query, "headers": headers or {}}
    if method != "GET":
        b = body_for(site, endpoint)
        if csrf is not None:
            b["csrf"] = csrf
        if json:
            kw["json"] = b
        else:
            kw["data"] = "csrf=" + (csrf or "")
            kw["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
    resp = await c.open(path, method=method, **kw)
    text = await resp.get_data(as_text=True) if resp.status_code >= 400 else ""
    if resp.status_code >= 400:
        assert resp.content_type == "text/plain; charset=utf-8", (endpoint, method, text)
        assert text.count("\n") == 1 and "Traceback" not in text
    return resp.status_code


async def test_the_app_refuses_a_route_missing_from_the_table(
        recorded: Recorded, autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    table = dict(auth.ROUTE_PERMISSIONS)
    del table["api.recordings"]
    monkeypatch.setattr(auth, "ROUTE_PERMISSIONS", table)
    with pytest.raises(errors.Internal, match=r"recordings \(api.recordings\)"):
        create_app(web_context(recorded))


async def test_a_route_added_after_the_check_fails_closed(recorded: Recorded,
                                                          autojump_clock: object) -> None:
    app = create_app(web_context(recorded, VIEW))

    async def sneaky() -> str:
        return "leaked"

    app.add_url_rule("/api/sneaky", "sneaky", sneaky)
    resp = await app.test_client().get("/api/sneaky")
    assert resp.status_code == 500
    assert "no entry in the permission table" in await resp.get_data(as_text=True)


async def test_every_route_against_the_table(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded)
    anon_view = make_site(recorded, VIEW)
    all_routes = routes(site.app)
    endpoints = {ep for ep, *_ in all_routes}
    assert endpoints <= set(auth.ROUTE_PERMISSIONS), "every route needs a table entry"
    assert {"api.login", "api.list_users", "view.view"} <= endpoints
    for endpoint, method, rule, ws in all_routes:
        need = auth.ROUTE_PERMISSIONS[endpoint]
        where = f"{method} {rule} ({endpoint}, needs {need})"
        ok = success_status(endpoint, method)
        mutation = method not in ("GET", "HEAD", "OPTIONS")

        # No session, nothing granted: 401 unless public.
        got = await call(site.app.test_client(), site, endpoint, method, rule, ws)
        assert got == (ok if need == auth.PUBLIC else 401), where

        # No session, the bind grants viewVideo to everyone.
        got = await call(anon_view.app.test_client(), anon_view, endpoint, method, rule, ws)
        allowed = need in (auth.PUBLIC, auth.CALLER, "viewVideo")
        assert got == (ok if allowed else 401), where

        if need != auth.PUBLIC:
            # A session without the permission: 403 (a session is enough for some).
            c, csrf = await site.login("nobody")
            got = await call(c, site, endpoint, method, rule, ws, csrf=csrf)
            enough = need in (auth.CALLER, auth.SESSION)
            assert got == (ok if enough else 403), where

        if mutation:
            # With the permission but without or with a wrong CSRF token: 403.
            for bad in (None, "", "x" * 24):
                c, csrf = await site.login("admin")
                got = await call(c, site, endpoint, method, rule, ws, csrf=bad)
                assert got == (ok if need == auth.PUBLIC else 403), (where, bad)
            # The right token in a form body: refused (415), a form cannot send JSON.
            c, csrf = await site.login("admin")
            got = await call(c, site, endpoint, method, rule, ws, csrf=csrf, json=False)
            assert got == 415, where

        # With the permission and the token: success.
        c, csrf = await site.login("admin")
        got = await call(c, site, endpoint, method, rule, ws, csrf=csrf)
        assert got == ok, where


#: (route x method, user) pairs the per-camera walk checked, for the report
PER_CAMERA_WALK: list[tuple[str, str]] = []


async def test_every_route_per_camera(recorded: Recorded, autojump_clock: object) -> None:
    """Per-camera rights over the whole permission table: users holding every permission
    but limited to one camera. Limited to the recorded camera, every route succeeds as
    for an unlimited admin. Limited to another camera and asked about the recorded one,
    every route that names a camera (in its path or query) answers 404, the answer for
    a camera that does not exist (a 403 would confirm that the uuid is a camera),
    WebSockets included (the error message's status); routes that name no camera
    succeed, and the listing shows only the allowed camera."""
    site = make_site(recorded)
    db = site.ctx.db
    other = db.add_camera("other", streams={"main": (site.r.env.dir_id,
                                                     StreamConfig(url="rtsp://other/"))})
    mine = uuid.UUID(site.r.camera_uuid)
    a = site.ctx.auth
    assert a is not None
    for name, cams in (("only-mine", {mine}), ("only-other", {other.uuid})):
        site.add_user(name, PERMISSIONS)
        a.update_user(a.user_by_name(name).id, cameras=frozenset(cams))
    PER_CAMERA_WALK.clear()
    for endpoint, method, rule, ws in routes(site.app):
        where = f"{method} {rule} ({endpoint})"
        ok = success_status(endpoint, method)
        names_camera = "<camera_uuid>" in rule or any(
            "{camera_uuid}" in v for v in QUERIES.get(endpoint, {}).values()
        ) or endpoint in (
            "signals.update_signals",  # its body names the camera's signal
            "config.delete_signal",  # its victim is the recorded camera's signal
        )
        c, csrf = await site.login("only-mine")
        # config.delete_camera's victim is a fresh camera: outside "only-mine"'s limit too
        mine_ok = 404 if endpoint == "config.delete_camera" else ok
        assert await call(c, site, endpoint, method, rule, ws, csrf=csrf) == mine_ok, where
        c, csrf = await site.login("only-other")
        got = await call(c, site, endpoint, method, rule, ws, csrf=csrf)
        assert got == (404 if names_camera else ok), where
        PER_CAMERA_WALK.extend([(where, "only-mine"), (where, "only-other")])
    assert len({w for w, _ in PER_CAMERA_WALK}) >= 17
    # signals follow their cameras: "only-other" neither sees nor sets the recorded
    # camera's signal, "only-mine" does both
    t = db.add_signal_type("onoff", [SignalState(1, "off"), SignalState(2, "on")])
    sig = db.add_signal("mine motion", t.id, {db.camera_by_uuid(mine).id: "direct"})
    db.update_signals([sig.id], [2], T0, T0 + 90_000)
    for name, visible in (("only-mine", True), ("only-other", False)):
        c, csrf = await site.login(name)
        listed = await (await c.get(f"/api/signals?startTime90k={T0 - 1}")).get_json()
        assert (sig.id in listed["signalIds"]) == visible, name
        top = await (await c.get("/api/")).get_json()
        assert (sig.id in [s["id"] for s in top["signals"]]) == visible, name
        assert visible or top["signals"] == [], name  # the walk's motion signal is mine too
        resp = await c.post("/api/signals", json={
            "csrf": csrf, "signalIds": [sig.id], "states": [1],
            "start": {"base": "epoch", "rel90k": T0}, "end": {"base": "epoch", "rel90k": T0 + 1}})
        assert resp.status_code == (200 if visible else 404), name
    # the listing shows only the allowed camera; the user object says the limit
    c, _ = await site.login("only-other")
    top = await (await c.get("/api/")).get_json()
    assert [cam["shortName"] for cam in top["cameras"]] == ["other"]
    assert top["user"]["nvrCameras"] == [str(other.uuid)]
    # a bind that grants viewVideo to everyone grants it on every camera, limit or not
    anon_view = make_site(recorded, VIEW)  # the same database: the same users
    anon_view.passwords.update(site.passwords)
    c, _ = await anon_view.login("only-other")
    resp = await c.get(f"/api/cameras/{mine}/main/recordings")
    assert resp.status_code == 200
    resp = await c.get(f"/api/cameras/{mine}/protect")
    assert resp.status_code == 200
    # ...but not protectVideo, which that bind does not grant
    top = await (await c.get("/api/")).get_json()
    resp = await c.post(f"/api/cameras/{mine}/protect", json={
        "startTime90k": T0, "endTime90k": T0 + 1, "reason": "x",
        "csrf": top["user"]["session"]["csrf"]})
    assert resp.status_code == 404


async def test_self_or_admin_routes_allow_the_user_itself(recorded: Recorded,
                                                          autojump_clock: object) -> None:
    site = make_site(recorded)
    c, csrf = await site.login("nobody")
    me = site.add_user("nobody")
    other = site.add_user("viewer")
    assert (await c.get(f"/api/users/{me}")).status_code == 200
    assert (await c.get(f"/api/users/{other}")).status_code == 403
    resp = await c.patch(f"/api/users/{me}", json={"csrf": csrf, "update": {"preferences": {
        "theme": "dark"}}})
    assert resp.status_code == 204
    for field_, value in (("permissions", {"adminUsers": True}), ("disabled", True),
                          ("username", "root")):
        resp = await c.patch(f"/api/users/{me}", json={"csrf": csrf, "update": {field_: value}})
        assert resp.status_code == 403, field_
    top = await (await c.get("/api/")).get_json()
    assert top["user"]["preferences"] == {"theme": "dark"}
    assert top["permissions"] == {p: False for p in PERMISSIONS}


async def test_websocket_routes_are_checked(recorded: Recorded, autojump_clock: object,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "ROUTE_PERMISSIONS",
                        {**auth.ROUTE_PERMISSIONS, "ws_probe": "viewVideo"})
    site = make_site(recorded)

    async def ws_probe() -> None:
        from quart import websocket

        await websocket.accept()
        await websocket.send("hello")

    site.app.add_websocket("/api/ws-probe", "ws_probe", ws_probe)
    rule = ("ws_probe", "GET", "/api/ws-probe", True)
    assert await call(site.app.test_client(), site, *rule) == 401
    c, _ = await site.login("nobody")
    assert await call(c, site, *rule) == 403
    c, _ = await site.login("viewer")
    assert await call(c, site, *rule) == 101
    assert await call(c, site, *rule, headers={"Origin": "http://localhost"}) == 101
    assert await call(c, site, *rule, headers={"Origin": "https://evil.example"}) == 403


# ----------------------------------------------------------------------------- sessions


def parse_set_cookie(header: str) -> dict[str, str | bool]:
    parts = [p.strip() for p in header.split(";")]
    name, _, value = parts[0].partition("=")
    out: dict[str, str | bool] = {"name": name, "value": value}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        out[k.lower()] = v if eq else True
    return out


@pytest.mark.parametrize(
    ("bind", "headers", "secure"),
    [
        (NOBODY, {}, False),
        (NOBODY, {"X-Forwarded-Proto": "https"}, False),  # untrusted header: ignored
        (BindConfig(trust_forward_headers=True), {"X-Forwarded-Proto": "https"}, True),
        (BindConfig(trust_forward_headers=True), {"X-Forwarded-Proto": "http"}, False),
    ],
)
async def test_login_cookie_attributes(recorded: Recorded, autojump_clock: object,
                                       bind: BindConfig, headers: dict[str, str],
                                       secure: bool) -> None:
    site = make_site(recorded, bind)
    c = site.app.test_client()
    resp = await c.post("/api/login", json={"username": "viewer", "password": "pw-viewer"},
                        headers=headers)
    assert resp.status_code == 204
    (header,) = resp.headers.getlist("Set-Cookie")
    cookie = parse_set_cookie(header)
    assert cookie["name"] == "s" and len(str(cookie["value"])) == 43
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"  # as Moonfire's reference says
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(90 * 86400)
    assert cookie.get("secure", False) is secure


async def test_session_id_is_stored_only_as_a_hash(recorded: Recorded,
                                                   autojump_clock: object) -> None:
    site = make_site(recorded)
    c = site.app.test_client()
    resp = await c.post("/api/login", json={"username": "viewer", "password": "pw-viewer"})
    sid = SimpleCookie(resp.headers["Set-Cookie"])["s"].value
    raw_id = base64.urlsafe_b64decode(sid + "=")
    digest = hashlib.sha256(raw_id).digest()
    db_dir = recorded.env.db.db_dir
    stored = b"".join(p.read_bytes() for p in db_dir.iterdir() if p.name.startswith("db"))
    assert digest in stored  # the right files were read
    assert sid.encode() not in stored and raw_id not in stored
    conn = sqlite3.connect(f"file:{db_dir / 'db'}?mode=ro", uri=True)
    (row,) = conn.execute("select session_id_hash, seed from user_session").fetchall()
    conn.close()
    assert bytes(row[0]) == digest
    csrf = (await (await c.get("/api/")).get_json())["user"]["session"]["csrf"]
    assert csrf.encode() not in stored


async def test_logout_revokes(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded)
    c, csrf = await site.login("viewer")
    assert (await c.post("/api/logout", json={})).status_code == 403  # no csrf
    resp = await c.post("/api/logout", json={"csrf": csrf})
    assert resp.status_code == 204
    assert parse_set_cookie(resp.headers["Set-Cookie"])["value"] == ""
    # The browser dropped the cookie; a copy of it is no longer any good either.
    resp = await c.get("/api/")
    assert resp.status_code == 401


async def test_sessions_expire_when_idle_and_at_their_age(recorded: Recorded,
                                                          autojump_clock: object) -> None:
    hour = 3600
    site = make_site(recorded, policy=SessionPolicy(idle_timeout_sec=hour,
                                                    max_age_sec=4 * hour))
    c, _ = await site.login("viewer")
    await trio.sleep(hour - 1)
    assert (await c.get("/api/")).status_code == 200  # used just in time: idle again from now
    await trio.sleep(hour - 1)
    assert (await c.get("/api/")).status_code == 200
    await trio.sleep(hour)
    resp = await c.get("/api/")
    assert resp.status_code == 401
    assert "expired or was revoked" in await resp.get_data(as_text=True)
    cleared = parse_set_cookie(resp.headers["Set-Cookie"])  # the browser may forget it
    assert (cleared["name"], cleared["value"], cleared["max-age"]) == ("s", "", "0")
    assert "Set-Cookie" not in (await site.app.test_client().get("/api/")).headers

    # In use every half hour, it still ends 4 h after the login.
    c, _ = await site.login("viewer")
    start = trio.current_time()
    while trio.current_time() - start < 4 * hour - 1:
        assert (await c.get("/api/")).status_code == 200
        await trio.sleep(min(hour / 2, 4 * hour - 1 - (trio.current_time() - start)))
    assert (await c.get("/api/")).status_code == 200
    await trio.sleep(1)
    assert (await c.get("/api/")).status_code == 401
    conn = sqlite3.connect(f"file:{recorded.env.db.db_dir / 'db'}?mode=ro", uri=True)
    reasons = sorted(r for (r,) in conn.execute("select revocation_reason from user_session"))
    conn.close()
    assert reasons == [4, 4]  # both expired, both recorded as such


async def test_a_disabled_user_or_a_withdrawn_permission_takes_effect_at_once(
        recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded)
    c, _ = await site.login("viewer")
    url = f"/api/cameras/{recorded.camera_uuid}/main/recordings"
    assert (await c.get(url)).status_code == 200
    a = site.ctx.auth
    assert a is not None
    uid = site.add_user("viewer")
    a.update_user(uid, permissions=frozenset())
    assert (await c.get(url)).status_code == 403
    a.update_user(uid, permissions=frozenset({"viewVideo"}))
    assert (await c.get(url)).status_code == 200
    a.update_user(uid, disabled=True)
    assert (await c.get(url)).status_code == 401
    a.update_user(uid, disabled=False)
    assert (await c.get(url)).status_code == 401  # disabling revoked the session


async def test_top_level_user_object(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded, VIEW)
    anon = await (await site.app.test_client().get("/api/")).get_json()
    assert "user" not in anon
    assert anon["permissions"] == {p: p == "viewVideo" for p in PERMISSIONS}
    c, csrf = await site.login("admin")
    top = await (await c.get("/api/?cameraConfigs=true")).get_json()
    assert top["user"] == {"name": "admin", "id": site.add_user("admin"), "preferences": {},
                           "session": {"csrf": csrf}, "nvrCameras": None}
    assert len(csrf) == 24
    assert top["permissions"] == {p: True for p in PERMISSIONS}
    assert "config" in top["cameras"][0]


# ----------------------------------------------------------------------------- rate limit


async def test_login_rate_limit_per_name_kicks_in_and_recovers(
        recorded: Recorded, autojump_clock: object, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    site = make_site(recorded)
    c = site.app.test_client()

    async def attempt(password: str, name: str = "viewer", **headers: str) -> Any:
        return await c.post("/api/login", json={"username": name, "password": password},
                            headers=headers)

    for i in range(5):
        resp = await attempt(f"guess-{i}")
        assert resp.status_code == 401
        await trio.sleep(1)
    resp = await attempt("pw-viewer")  # even the right password: the name is locked
    assert resp.status_code == 429
    # The oldest failure was 5 s ago; it ages out of the 60 s window 55 s from now.
    assert resp.headers["Retry-After"] == "55"
    await trio.sleep(54)
    resp = await attempt("pw-viewer")
    assert (resp.status_code, resp.headers["Retry-After"]) == (429, "1")
    # Another name from the same address is not locked.
    assert (await attempt("pw-admin", "admin")).status_code == 204
    await trio.sleep(1)
    assert (await attempt("pw-viewer")).status_code == 204
    a = site.ctx.auth
    assert a is not None
    assert a.user_by_name("viewer").password_failure_count == 5
    # (not the slow-operation warning "counting a failed login took N ms" of a loaded run)
    failures = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith("failed login")]
    assert len(failures) == 5
    assert all("guess" not in m for m in failures) and "'viewer'" in failures[0]
    assert "guess" not in caplog.text


async def test_login_rate_limit_per_address(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded, BindConfig(trust_forward_headers=True))
    c = site.app.test_client()

    async def attempt(name: str, password: str, addr: str) -> int:
        resp = await c.post("/api/login", json={"username": name, "password": password},
                            headers={"X-Forwarded-For": f"10.0.0.9, {addr}"})
        return resp.status_code

    for i in range(20):
        assert await attempt(f"user{i}", "x", "192.0.2.1") == 401
    assert await attempt("viewer", "pw-viewer", "192.0.2.1") == 429
    assert await attempt("viewer", "pw-viewer", "192.0.2.2") == 204
    await trio.sleep(600)
    assert await attempt("viewer", "pw-viewer", "192.0.2.1") == 204


# ----------------------------------------------------------------------------- users


async def test_user_management(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded)
    c, csrf = await site.login("admin")
    resp = await c.post("/api/users/", json={"csrf": csrf, "user": {
        "username": "carol", "password": "s3cret", "permissions": {"viewVideo": True}}})
    assert resp.status_code == 204
    location = resp.headers["Location"]
    assert (await c.post("/api/users/", json={"csrf": csrf, "user": {
        "username": "carol"}})).status_code == 409
    carol = await (await c.get(location)).get_json()
    assert carol == {"username": "carol", "disabled": False, "password": "(censored)",
                     "permissions": {p: p == "viewVideo" for p in PERMISSIONS},
                     "preferences": {}, "nvrCameras": None}
    listed = await (await c.get("/api/users/")).get_json()
    assert [u["user"]["username"] for u in listed["users"]] == [
        "admin", "viewer", "nobody", "carol"]
    assert all(set(u) == {"id", "user"} for u in listed["users"])

    # Preconditions: 412 on mismatch, nothing changed.
    resp = await c.patch(location, json={"csrf": csrf, "precondition": {"disabled": True},
                                         "update": {"username": "caroline"}})
    assert resp.status_code == 412
    resp = await c.patch(location, json={"csrf": csrf, "precondition": {"password": "wrong"},
                                         "update": {"password": "new"}})
    assert resp.status_code == 412
    resp = await c.patch(location, json={"csrf": csrf, "precondition": {
        "username": "carol", "password": "s3cret", "permissions": {"viewVideo": True}},
        "update": {"username": "caroline"}})
    assert resp.status_code == 204
    site.passwords["caroline"] = "s3cret"

    # Carol changes her own password: needs the old one; her other sessions end.
    mine, my_csrf = await site.login("caroline")
    other, _ = await site.login("caroline")
    user_url = location
    resp = await mine.patch(user_url, json={"csrf": my_csrf, "update": {"password": "n3w"}})
    assert resp.status_code == 403
    resp = await mine.patch(user_url, json={"csrf": my_csrf, "precondition": {
        "password": "s3cret"}, "update": {"password": "n3w"}})
    assert resp.status_code == 204
    assert (await mine.get("/api/")).status_code == 200
    assert (await other.get("/api/")).status_code == 401
    site.passwords["caroline"] = "n3w"
    await site.login("caroline")

    # Bad shapes are 400 with a reason.
    for bad in ({"update": {"permissions": {"fly": True}}}, {"update": {"disabled": "yes"}},
                {"update": {"colour": 1}}, {"update": []}, {"extra": 1}):
        resp = await c.patch(user_url, json={"csrf": csrf, **bad})
        assert resp.status_code == 400, bad

    assert (await c.delete(user_url, json={"csrf": csrf})).status_code == 204
    assert (await c.get(user_url)).status_code == 404
    assert (await mine.get("/api/")).status_code == 401


async def test_mutations_need_json(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded)
    c = site.app.test_client()
    resp = await c.post("/api/login", form={"username": "viewer", "password": "pw-viewer"})
    assert resp.status_code == 415
    resp = await c.post("/api/login", data=b"{", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    resp = await c.post("/api/login", json=["viewer"])
    assert resp.status_code == 400
    resp = await c.post("/api/login", json={"username": "viewer", "password": "pw-viewer"})
    assert resp.status_code == 204


def test_session_policy_is_configurable() -> None:
    from nvr.config import parse_config

    cfg = parse_config({"session_idle_timeout_sec": 3600, "session_max_age_sec": 86400})
    assert (cfg.session_idle_timeout_sec, cfg.session_max_age_sec) == (3600, 86400)
    with pytest.raises(errors.InvalidArgument, match="session_max_age_sec"):
        parse_config({"session_max_age_sec": 1})



async def test_user_ids_beyond_sqlite_integers_are_not_found(recorded: Recorded,
                                                             autojump_clock: object) -> None:
    # Found by test_web_fuzz.py: SQLite overflowed on the id (500).
    site = make_site(recorded)
    c, csrf = await site.login("admin")
    for uid in (1 << 63, 1 << 70, 0):
        assert (await c.get(f"/api/users/{uid}")).status_code == 404
        assert (await c.delete(f"/api/users/{uid}", json={"csrf": csrf})).status_code == 404
        resp = await c.patch(f"/api/users/{uid}", json={"csrf": csrf, "update": {}})
        assert resp.status_code == 404


async def test_error_reasons_stay_one_line(recorded: Recorded, autojump_clock: object) -> None:
    # Found by test_web_fuzz.py: a line break in the path was echoed into the reason.
    site = make_site(recorded, VIEW)
    resp = await site.app.test_client().get(
        f"/api/cameras/{recorded.camera_uuid}/main/view.%0A0")
    assert resp.status_code == 404
    assert await resp.get_data(as_text=True) == "no view.\\n0\n"


# ----------------------------------------------------------------------------- issue 12


async def test_wrong_password_is_401_as_moonfire_answers(recorded: Recorded,
                                                        autojump_clock: object) -> None:
    site = make_site(recorded)
    c = site.app.test_client()
    for name, password in (("viewer", "wrong"), ("no-such-user", "pw-viewer")):
        resp = await c.post("/api/login", json={"username": name, "password": password})
        assert resp.status_code == 401
        assert await resp.get_data(as_text=True) == "incorrect username or password\n"


async def test_session_cookie_is_lax_and_every_mutation_still_needs_the_csrf_token(
        recorded: Recorded, autojump_clock: object) -> None:
    # SameSite=Lax lets a cross-site top-level navigation carry the cookie: what keeps a
    # state change from another site out is the token (and the JSON content type)
    site = make_site(recorded)
    c = site.app.test_client()
    resp = await c.post("/api/login", json={"username": "admin", "password": "pw-admin"})
    assert parse_set_cookie(resp.headers["Set-Cookie"])["samesite"] == "Lax"
    csrf = (await (await c.get("/api/")).get_json())["user"]["session"]["csrf"]
    me, victim = site.add_user("admin"), site.add_user("viewer")
    mutations = [
        ("POST", "/api/users/", {"user": {"username": "mallory"}}),
        ("PATCH", f"/api/users/{victim}", {"update": {"disabled": True}}),
        ("DELETE", f"/api/users/{victim}", {}),
        ("PATCH", f"/api/users/{me}", {"update": {"preferences": {"x": 1}}}),
        ("POST", "/api/logout", {}),
    ]
    for method, path, body in mutations:
        resp = await c.open(path, method=method, json=body)
        assert resp.status_code == 403, (method, path)
        assert "csrf" in await resp.get_data(as_text=True)
    a = site.ctx.auth
    assert a is not None
    assert a.find_user("mallory") is None and not a.get_user(victim).disabled
    for method, path, body in mutations:
        resp = await c.open(path, method=method, json={**body, "csrf": csrf})
        assert resp.status_code == 204, (method, path)


# -- password guesses (nvr.web.login_limit) ----------------------------------------------


@dataclass
class SlowHashes:
    """Stands in for the worker thread of argon2id: each hash takes ``seconds`` of mock
    time; counts them and the most running at once."""

    seconds: float
    running: int = 0
    peak: int = 0
    hashed: int = 0

    async def __call__(self, fn: Any, *args: Any, **_kw: Any) -> Any:
        self.running += 1
        self.hashed += 1
        self.peak = max(self.peak, self.running)
        try:
            await trio.sleep(self.seconds)
            return fn(*args)
        finally:
            self.running -= 1


async def concurrent_logins(c: QuartClient, n: int, *, address: Any = None,
                            name: Any = None) -> list[tuple[int, str]]:
    """``n`` failed logins at once: (status, body) of each, in order of the answers."""
    answers: list[tuple[int, str]] = []

    async def one(i: int) -> None:
        headers = {} if address is None else {"X-Forwarded-For": address(i)}
        username = f"user{i}" if name is None else name
        resp = await c.post("/api/login", json={"username": username, "password": f"g{i}"},
                            headers=headers)
        answers.append((resp.status_code, await resp.get_data(as_text=True)))

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(one, i)
    return answers


async def test_concurrent_failed_logins_are_counted_before_the_hash(
        recorded: Recorded, autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 at once from one address used to have 110 hashed (64 MiB each) against a limit
    # of 20: the attempts were counted only after their hash
    hashes = SlowHashes(0.1)
    monkeypatch.setattr("nvr.web.api.run_blocking", hashes)
    site = make_site(recorded)
    start = trio.current_time()
    answers = await concurrent_logins(site.app.test_client(), 300)
    statuses = [s for s, _ in answers]
    assert statuses.count(401) == 20 and statuses.count(429) == 280
    assert statuses[:280] == [429] * 280  # refused at once, before any hash
    assert hashes.hashed == 20
    assert hashes.peak == 2  # LoginLimits.concurrent_hashes
    assert trio.current_time() - start == pytest.approx(20 * 0.1 / 2)
    assert site.ctx.login_limiter is not None and site.ctx.login_limiter.hashes_running == 0


async def test_logins_beyond_the_hash_slots_wait_then_get_429(
        recorded: Recorded, autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 addresses at once (each within its own limit): 2 hashes of 0.15 s at a time, a
    # request waits at most 10 s for a slot, so the first 134 are checked and the others
    # are told to come back
    hashes = SlowHashes(0.15)
    monkeypatch.setattr("nvr.web.api.run_blocking", hashes)
    site = make_site(recorded, BindConfig(trust_forward_headers=True))
    start = trio.current_time()
    answers = await concurrent_logins(site.app.test_client(), 300,
                                      address=lambda i: f"10.0.{i // 200}.{i % 200}")
    assert hashes.peak == 2 and hashes.hashed == 134
    assert [s for s, _ in answers].count(401) == 134
    busy = [text for s, text in answers if s == 429]
    assert len(busy) == 166 and set(busy) == {
        "busy checking other passwords: try again in 10 s\n"}
    assert trio.current_time() - start == pytest.approx(67 * 0.15)


async def test_a_name_under_attack_still_logs_in_from_a_clean_address(
        recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded, BindConfig(trust_forward_headers=True))
    c = site.app.test_client()

    async def attempt(password: str, address: str) -> int:
        resp = await c.post("/api/login", json={"username": "viewer", "password": password},
                            headers={"X-Forwarded-For": address})
        return resp.status_code

    # one attacker's address: 5 guesses lock the name for it
    assert [await attempt("guess", "198.51.100.1") for _ in range(6)] == [401] * 5 + [429]
    # more addresses get one guess each, then the lock applies to them too
    for i in range(2, 12):
        assert [await attempt("guess", f"198.51.100.{i}") for _ in range(2)] == [401, 429]
    # the owner, from an address that has not failed: logs in
    assert await attempt("pw-viewer", "192.0.2.7") == 204
    # ... which clears the name's count; the attackers start over, with their addresses'
    # own limits (20 per 10 minutes) running
    assert [await attempt("guess", "198.51.100.1") for _ in range(6)] == [401] * 5 + [429]
    # an owner who mistypes on a clean address is then locked out like the others...
    assert await attempt("typo", "192.0.2.8") == 401
    assert await attempt("pw-viewer", "192.0.2.8") == 429
    # ... until the name's window (60 s) has passed
    await trio.sleep(60)
    assert await attempt("pw-viewer", "192.0.2.8") == 204


# -- DNS rebinding: Host --------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "host", "status"),
    [
        (VIEW, "evil.example", 403),
        (VIEW, "evil.example:8080", 403),
        (VIEW, "EVIL.example.", 403),
        (VIEW, "localhost:8080", 200),
        (VIEW, "127.0.0.1:8080", 200),  # an IP address cannot be another site's name
        (VIEW, "[::1]:8080", 200),
        (VIEW, "192.0.2.9", 200),
        (VIEW, socket.gethostname(), 200),
        (VIEW, socket.gethostname().split(".")[0] + ".local:8080", 200),
        (BindConfig(address="nvr.example.org:8080", allow_unauthenticated=("viewVideo",)),
         "nvr.example.org:8080", 200),
        (BindConfig(allow_unauthenticated=("viewVideo",), allowed_hosts=("nvr.example.com",)),
         "NVR.example.com", 200),
        # the list replaces the default names
        (BindConfig(allow_unauthenticated=("viewVideo",), allowed_hosts=("nvr.example.com",)),
         "localhost", 403),
        # a bind that needs a login: the cookie stays with this server's name, no check
        (NOBODY, "evil.example", 401),
    ],
)
async def test_host_must_name_this_server_on_binds_without_a_login(
        recorded: Recorded, autojump_clock: object, bind: BindConfig, host: str,
        status: int) -> None:
    site = make_site(recorded, bind)
    resp = await site.app.test_client().get("/api/", headers={"Host": host})
    assert resp.status_code == status, await resp.get_data(as_text=True)
    if status == 403:
        text = await resp.get_data(as_text=True)
        assert text.startswith(f"Host {host!r} is not a name of this server") and \
            text.count("\n") == 1


async def test_host_is_checked_on_every_route_of_such_a_bind(recorded: Recorded,
                                                             autojump_clock: object) -> None:
    site = make_site(recorded, BindConfig(allow_unauthenticated=("viewVideo",), metrics=True))
    c = site.app.test_client()
    evil = {"Host": "evil.example"}
    for path in ("/", "/static/app.js", "/metrics", "/api/request", "/api/nothing",
                 f"/api/cameras/{recorded.camera_uuid}/main/view.mp4?s=0",
                 f"/api/cameras/{recorded.camera_uuid}/main/recordings"):
        assert (await c.get(path, headers=evil)).status_code == 403, path
    resp = await c.post("/api/login", json={"username": "viewer", "password": "pw-viewer"},
                        headers=evil)
    assert resp.status_code == 403


# -- GET /api/request -------------------------------------------------------------------


async def test_request_debugging_route(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded, BindConfig(trust_forward_headers=True,
                                          allow_unauthenticated=("viewVideo",)))
    c = site.app.test_client()
    headers = {"X-Forwarded-For": "10.1.2.3, 198.51.100.4", "X-Forwarded-Proto": "https",
               "User-Agent": "probe/1.0", "Host": "localhost:8080"}
    resp = await c.get("/api/request", headers=headers)
    assert resp.status_code == 200
    assert resp.content_type == "text/plain; charset=utf-8"
    assert resp.headers["Cache-Control"] == "private, no-cache"
    assert await resp.get_data(as_text=True) == (
        "when: 2023-11-14T22:14:00+00:00\n"  # T0, in the database's zone (UTC)
        "host: 'localhost:8080'\n"
        "addr: '198.51.100.4'\n"
        "user_agent: 'probe/1.0'\n"
        "secure: true\n"
        "caller: no session; permissions: viewVideo\n"
    )
    await c.post("/api/login", json={"username": "admin", "password": "pw-admin"},
                 headers=headers)
    text = await (await c.get("/api/request", headers=headers)).get_data(as_text=True)
    assert text.splitlines()[-1] == (
        "caller: user 'admin' (session); permissions: " + ", ".join(PERMISSIONS))
