"""The configuration routes (``nvr.web.config_api``): what they change, and that a change
that cannot apply (hostile, wrong or conflicting input) is a one-line 4xx that changes
nothing. Who may call them is in ``test_auth.py``'s table test."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from nvr.config import BindConfig
from nvr.db.database import Database
from nvr.web.app import create_app
from tests.support.web import Recorded, inline_web_threads, recorded, web_context

__all__ = ["inline_web_threads", "recorded"]  # fixtures

pytestmark = pytest.mark.usefixtures("inline_web_threads")

ADMIN = BindConfig(allow_unauthenticated=("adminConfig", "readCameraConfigs", "viewVideo",
                                          "adminUsers"))


def client(r: Recorded) -> Client:
    return create_app(web_context(r, ADMIN)).test_client()


def state(db: Database) -> str:
    """Everything a configuration change may touch, as text."""
    return json.dumps({
        "cameras": sorted((c.id, str(c.uuid), c.short_name, c.description, c.config.to_json(),
                           sorted(c.streams.items())) for c in db.cameras.values()),
        "streams": sorted((s.id, s.sample_file_dir_id, s.config.to_json())
                          for s in db.streams.values()),
        "dirs": sorted((d.id, d.path) for d in db.dirs.values()),
        "recordings": sorted((s.id, s.committed.num_recordings) for s in db.streams.values()),
        "signals": sorted((s.id, s.short_name, s.type_id, sorted(s.cameras.items()))
                          for s in db.signals.values()),
        "types": sorted((t.id, t.short_name, [repr(s) for s in t.states])
                        for t in db.signal_types.values()),
    })  # fmt: skip


def new_camera(r: Recorded, **over: Any) -> dict[str, Any]:
    cam: dict[str, Any] = {"shortName": "garden", "streams": {"main": {
        "url": "rtsp://garden/main", "sampleFileDirId": r.env.dir_id, "retainBytes": 1 << 30}}}
    cam.update(over)
    return cam


async def test_add_edit_remove_a_camera(recorded: Recorded, autojump_clock: object) -> None:
    c, db = client(recorded), recorded.env.db
    resp = await c.post("/api/nvr/cameras", json={"camera": new_camera(
        recorded, description="by the shed", config={"username": "u", "password": "p"})})
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    made = await resp.get_json()
    cam = db.camera_by_name("garden")
    assert made == {"uuid": str(cam.uuid), "id": cam.id}
    assert (cam.config.username, cam.config.password, cam.description) == ("u", "p", "by the shed")
    top = await (await c.get("/api/?cameraConfigs=true")).get_json()
    listed = next(x for x in top["cameras"] if x["shortName"] == "garden")
    assert listed["streams"]["main"]["config"]["url"] == "rtsp://garden/main"

    resp = await c.patch(f"/api/nvr/cameras/{cam.uuid}", json={"update": {
        "streams": {"main": {"flushIfSec": 5, "retainDays": 7},
                    "sub": {"url": "rtsp://garden/sub", "retainBytes": 1 << 20}}}})
    assert resp.status_code == 204, await resp.get_data(as_text=True)
    main, sub = (db.streams[cam.streams[t]] for t in ("main", "sub"))
    assert (main.config.flush_if_sec, main.config.retain_days) == (5, 7)
    assert main.config.url == "rtsp://garden/main" and main.config.retain_bytes == 1 << 30
    assert sub.sample_file_dir_id == recorded.env.dir_id  # the camera's directory
    assert cam.config.password == "p"  # untouched
    resp = await c.patch(f"/api/nvr/cameras/{cam.uuid}", json={"update": {
        "config": {"motionSignal": "garden motion", "username": ""}}})
    assert resp.status_code == 204, await resp.get_data(as_text=True)
    assert (cam.config.motion_signal, cam.config.username, cam.config.password) == (
        "garden motion", None, "p")
    resp = await c.patch(f"/api/nvr/cameras/{cam.uuid}", json={"update": {
        "config": {"motion": "sub", "motionSensitivity": 7, "motionMask": [17, 0, 17]}}})
    assert resp.status_code == 204, await resp.get_data(as_text=True)
    cfg = db.cameras[cam.id].config
    assert (cfg.motion, cfg.motion_sensitivity, cfg.motion_mask) == ("sub", 7, [0, 17])

    resp = await c.delete(f"/api/nvr/cameras/{cam.uuid}", json={})
    assert resp.status_code == 200 and await resp.get_json() == {"recordings": 0}
    assert "garden" not in {x.short_name for x in db.cameras.values()}


async def test_a_camera_with_recordings_is_removed_only_when_told(
    recorded: Recorded, autojump_clock: object
) -> None:
    c, db = client(recorded), recorded.env.db
    before = state(db)
    url = f"/api/nvr/cameras/{recorded.camera_uuid}"
    resp = await c.delete(url, json={})
    assert resp.status_code == 412
    assert "has 4 recordings" in await resp.get_data(as_text=True)
    assert state(db) == before
    resp = await c.delete(url, json={"deleteRecordings": True})
    assert resp.status_code == 200 and await resp.get_json() == {"recordings": 4}
    assert not db.cameras and not db.streams
    assert sorted(db.dirs[recorded.env.dir_id].garbage_needs_unlink)  # the syncer's to unlink


async def test_directories(recorded: Recorded, autojump_clock: object, tmp_path: Path) -> None:
    c, db = client(recorded), recorded.env.db
    resp = await c.post("/api/nvr/dirs", json={"path": str(tmp_path / "more")})
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    dir_id = (await resp.get_json())["id"]
    assert (tmp_path / "more" / "meta").exists()
    listed = (await (await c.get("/api/nvr/dirs")).get_json())["dirs"]
    assert [(d["id"], d["path"]) for d in listed] == [
        (recorded.env.dir_id, str(recorded.env.sample_dir)), (dir_id, str(tmp_path / "more"))]
    assert listed[0]["streams"] == [recorded.stream_id]
    resp = await c.delete(f"/api/nvr/dirs/{recorded.env.dir_id}", json={})
    assert resp.status_code == 412  # in use
    resp = await c.delete(f"/api/nvr/dirs/{dir_id}", json={})
    assert resp.status_code == 204 and dir_id not in db.dirs


def hostile(r: Recorded, tmp_path: Path) -> list[tuple[str, str, Any, int, str]]:
    """(method, path, body, status, part of the reason) of changes that must not apply."""
    cam = f"/api/nvr/cameras/{r.camera_uuid}"
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_bytes(b"")
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    main = {"url": "rtsp://x/main", "sampleFileDirId": r.env.dir_id}
    return [
        ("POST", "/api/nvr/cameras", {}, 400, "camera must be a JSON object"),
        ("PATCH", cam, {"update": {"config": {"motion": "both"}}}, 400, "config.motion"),
        ("PATCH", cam, {"update": {"config": {"motionSensitivity": 11}}}, 400,
         "motionSensitivity"),
        ("PATCH", cam, {"update": {"config": {"motionMask": [256]}}}, 400, "motionMask"),
        ("PATCH", cam, {"update": {"config": {"motionMask": "0-3"}}}, 400, "motionMask"),
        ("POST", "/api/nvr/cameras", {"camera": []}, 400, "must be a JSON object"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, shortName="cam0")}, 409,
         "already exists"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, shortName="")}, 400, "non-empty"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, shortName="x" * 65)}, 400, "64"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={})}, 400, "at least one"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "url": "http://x/"}})}, 400, "must be rtsp://"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "url": "rtsp://x/\r\nHost: y"}})}, 400, "one line"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "sampleFileDirId": 99}})}, 404, "no sample file directory 99"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "sampleFileDirId": "1"}})}, 400, "sampleFileDirId must be an integer"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "retainBytes": -1}})}, 400, "retainBytes"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "retainBytes": True}})}, 400, "retainBytes"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "flushIfSec": 1e9}})}, 400, "flushIfSec"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "mode": "loud"}})}, 400, "mode"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {**main,
         "rtspTransport": "http"}})}, 400, "rtspTransport"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"main": {
         "url": "rtsp://x/"}})}, 400, "names no sampleFileDirId"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, streams={"fourth": main})}, 400,
         "stream type"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, extra=1)}, 400, "unknown field"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, config={"token": "x"})}, 400,
         "unknown field camera.config.token"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, config={"password": 5})}, 400,
         "password"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r, description="d" * 5000)}, 400,
         "description"),
        ("POST", "/api/nvr/cameras", {"camera": new_camera(r), "more": 1}, 400, "unknown field"),
        ("PATCH", cam, {"update": {"shortName": "x", "streams": {"main": {
         "sampleFileDirId": 99}}}}, 404, "no sample file directory"),
        ("PATCH", cam, {"update": {"streams": {"sub": {"retainBytes": 5}}}}, 400,
         "url is required"),
        ("PATCH", cam, {"update": "x"}, 400, "update must be a JSON object"),
        ("PATCH", cam, {"update": {"streams": []}}, 400, "camera.streams"),
        ("PATCH", cam, {"update": {"shortName": 5}}, 400, "camera.shortName"),
        ("PATCH", "/api/nvr/cameras/not-a-uuid", {"update": {}}, 404, "no camera"),
        ("DELETE", cam, {"deleteRecordings": "yes"}, 400, "true or false"),
        ("DELETE", "/api/nvr/cameras/00000000-0000-0000-0000-000000000000", {}, 404, "no camera"),
        ("POST", "/api/nvr/dirs", {}, 400, "path"),
        ("POST", "/api/nvr/dirs", {"path": "relative/dir"}, 400, "absolute"),
        ("POST", "/api/nvr/dirs", {"path": str(r.env.sample_dir)}, 409, "already"),
        ("POST", "/api/nvr/dirs", {"path": str(full)}, 412, "not empty"),
        ("POST", "/api/nvr/dirs", {"path": str(blocker / "sub")}, 412, "file"),
        ("POST", "/api/nvr/dirs", {"path": "/a\0b"}, 400, "absolute"),
        ("DELETE", "/api/nvr/dirs/99", {}, 404, "no sample file directory 99"),
        ("DELETE", "/api/nvr/dirs/" + "9" * 40, {}, 404, "no sample file directory"),
        ("DELETE", "/api/nvr/dirs/1", {"force": True}, 400, "unknown field"),
        ("POST", "/api/nvr/signal-types", {}, 400, "signalType must be a JSON object"),
        ("POST", "/api/nvr/signal-types", {"signalType": {"shortName": "t"}}, 400,
         "signalType.states must be a list"),
        ("POST", "/api/nvr/signal-types", {"signalType": {"shortName": "t", "states": [
            {"value": 0, "name": "zero"}]}}, 400, "signalType.states[0].value"),
        ("POST", "/api/nvr/signal-types", {"signalType": {"shortName": "t", "states": [
            {"value": 1, "name": "a"}, {"value": 1, "name": "b"}]}}, 400, "must differ"),
        ("POST", "/api/nvr/signal-types", {"signalType": {"shortName": "t", "states": [
            {"value": 1, "name": "a", "color": "url(x)"}]}}, 400, "color"),
        ("POST", "/api/nvr/signal-types", {"signalType": {"shortName": "t", "states": [
            {"value": 1, "name": "a", "motion": "yes"}]}}, 400, "motion must be true"),
        ("POST", "/api/nvr/signal-types", {"signalType": {"shortName": "t", "states": [
            {"value": 1, "name": "a", "x": 1}]}}, 400, "unknown field"),
        ("POST", "/api/nvr/signal-types", {"signalType": {"shortName": "t", "states": [
            {"value": 1, "name": "a"}] * 300}}, 400, "1 to 255 states"),
        ("DELETE", "/api/nvr/signal-types/no-such-type", {}, 404, "no signal type named"),
        ("POST", "/api/nvr/signals", {"signal": {"shortName": ""}}, 400, "signal.shortName"),
        ("POST", "/api/nvr/signals", {"signal": {"shortName": "s", "type": "nope"}}, 404,
         "no signal type named 'nope'"),
        ("POST", "/api/nvr/signals", {"signal": {"shortName": "s", "type": 5}}, 400,
         "signal.type"),
        ("POST", "/api/nvr/signals", {"signal": {"shortName": "s", "cameras": {
            r.camera_uuid: "sideways"}}}, 400, "direct, indirect"),
        ("POST", "/api/nvr/signals", {"signal": {"shortName": "s", "cameras": {
            "not-a-uuid": "direct"}}}, 404, "no camera"),
        ("POST", "/api/nvr/signals", {"signal": {"shortName": "s", "cameras": ["x"]}}, 400,
         "signal.cameras"),
        ("POST", "/api/nvr/signals", {"signal": {"shortName": "s"}, "x": 1}, 400,
         "unknown field"),
        ("DELETE", "/api/nvr/signals/99", {}, 404, "no signal with id 99"),
        ("DELETE", "/api/nvr/signals/" + "9" * 40, {}, 404, "no signal"),
        ("POST", "/api/nvr/sessions", {}, 400, "username"),
        ("POST", "/api/nvr/sessions", {"username": "nobody"}, 404, "no user"),
        ("POST", "/api/nvr/sessions", {"username": "x", "permissions": "all"}, 400,
         "permissions"),
        ("POST", "/api/nvr/sessions", {"username": "x", "description": 5}, 400, "description"),
    ]


async def test_a_change_that_cannot_apply_changes_nothing(
    recorded: Recorded, autojump_clock: object, tmp_path: Path
) -> None:
    c, db = client(recorded), recorded.env.db
    before = state(db)
    for method, path, body, status, reason in hostile(recorded, tmp_path):
        resp = await c.open(path, method=method, json=body)
        text = await resp.get_data(as_text=True)
        where = (method, path, body)
        assert (resp.status_code, text.count("\n")) == (status, 1), (where, text)
        assert reason in text, (where, text)
        assert state(db) == before, where


async def test_signals_signal_types_and_script_sessions(recorded: Recorded,
                                                         autojump_clock: object) -> None:
    c, db = client(recorded), recorded.env.db
    resp = await c.post("/api/nvr/signal-types", json={"signalType": {"shortName": "door",
        "states": [{"value": 1, "name": "closed", "color": "#00ff00"},
                   {"value": 2, "name": "open", "motion": True}]}})  # fmt: skip
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    door = db.signal_type_by_name("door")
    assert await resp.get_json() == {"id": door.id, "uuid": str(door.uuid)}
    assert [(s.value, s.name, s.motion, s.color) for s in door.states] == [
        (1, "closed", False, "#00ff00"), (2, "open", True, None)]
    resp = await c.post("/api/nvr/signals", json={"signal": {
        "shortName": "front door", "type": "door", "cameras": {recorded.camera_uuid: "indirect"}}})
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    sig = db.signal_by_name("front door")
    assert await resp.get_json() == {"id": sig.id, "uuid": str(sig.uuid), "type": str(door.uuid)}
    cam = db.camera_by_uuid(uuid.UUID(recorded.camera_uuid))
    assert sig.cameras == {cam.id: "indirect"}
    # without a type: nvr's motion type; a type named by its uuid works too
    resp = await c.post("/api/nvr/signals", json={"signal": {"shortName": "m"}})
    assert (await resp.get_json())["type"] == str(db.motion_signal_type().uuid)
    resp = await c.post("/api/nvr/signals", json={"signal": {"shortName": "d2",
                                                             "type": str(door.uuid)}})
    assert resp.status_code == 200
    # a type in use stays
    resp = await c.delete(f"/api/nvr/signal-types/{door.uuid}", json={})
    assert resp.status_code == 412 and "used by signals" in await resp.get_data(as_text=True)
    for name in ("front door", "d2"):
        resp = await c.delete(f"/api/nvr/signals/{db.signal_by_name(name).id}", json={})
        assert resp.status_code == 204
    resp = await c.delete(f"/api/nvr/signal-types/{door.uuid}", json={})
    assert resp.status_code == 204
    assert [s.short_name for s in db.signals.values()] == ["m"]

    # a session for a script: limited to what is asked, and it works
    a = c.app.config["nvr"].auth  # type: ignore[attr-defined]
    a.add_user("script", password_hash=None, permissions=frozenset({"viewVideo", "adminUsers"}))
    resp = await c.post("/api/nvr/sessions", json={"username": "script",
                                                   "permissions": ["viewVideo"]})
    assert resp.status_code == 200, await resp.get_data(as_text=True)
    got = await resp.get_json()
    other = create_app(web_context(recorded, BindConfig())).test_client()
    top = await (await other.get("/api/", headers={"Cookie": f"s={got['session']}"})).get_json()
    assert top["user"]["name"] == "script"
    assert top["permissions"]["viewVideo"] and not top["permissions"]["adminUsers"]
    resp = await c.post("/api/nvr/sessions", json={"username": "script",
                                                   "permissions": ["adminConfig"]})
    assert resp.status_code == 403 and "does not have adminConfig" in await resp.get_data(
        as_text=True)
