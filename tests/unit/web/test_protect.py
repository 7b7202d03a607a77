"""The protected-range routes: shapes, who is recorded, hostile input (always a 4xx with
one line, never a 500), and the ``nvrRetention`` fields of ``/api/``."""

from __future__ import annotations

from typing import Any

import pytest

from nvr.db.auth import PERMISSIONS
from tests.support.web import (
    T0,
    Recorded,
    inline_web_threads,
    recorded,
)
from tests.unit.web.test_auth import make_site

__all__ = ["inline_web_threads", "recorded"]  # fixtures

pytestmark = pytest.mark.usefixtures("inline_web_threads")


async def test_protect_list_and_remove(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded)
    site.add_user("keeper", ("viewVideo", "protectVideo"))
    c, csrf = await site.login("keeper")
    base = f"/api/cameras/{recorded.camera_uuid}/protect"
    resp = await c.post(base, json={"startTime90k": T0, "endTime90k": T0 + 90_000 * 60,
                                    "reason": "break-in", "expiresTime90k": 1 << 60,
                                    "csrf": csrf})
    assert resp.status_code == 200
    made = await resp.get_json()
    assert made["reason"] == "break-in" and made["createdBy"].startswith("user 'keeper' from")
    assert made["expiresTime90k"] == 1 << 60
    listed = await (await c.get(base)).get_json()
    assert listed == {"ranges": [made]}
    top = await (await c.get("/api/")).get_json()
    (stream,) = top["cameras"][0]["streams"].values()
    r = stream["nvrRetention"]
    assert r["state"] == "ok" and r["protectedBytes"] > 0
    assert r["protectedBytes"] + r["unprotectedBytes"] == stream["totalSampleFileBytes"]
    assert top["permissions"]["protectVideo"] is True
    resp = await c.delete(f"{base}/{made['id']}", json={"csrf": csrf})
    assert resp.status_code == 204
    assert (await (await c.get(base)).get_json()) == {"ranges": []}
    every = (await (await c.get(base + "?all=true")).get_json())["ranges"]
    assert every[0]["removedBy"].startswith("user 'keeper'") and "removedTime90k" in every[0]
    resp = await c.delete(f"{base}/{made['id']}", json={"csrf": csrf})
    assert resp.status_code == 404
    # a viewer sees ranges but cannot add or remove them
    v, vcsrf = await site.login("viewer")
    assert (await v.get(base)).status_code == 200
    resp = await v.post(base, json={"startTime90k": 1, "endTime90k": 2, "reason": "x",
                                    "csrf": vcsrf})
    assert resp.status_code == 403


HOSTILE: list[tuple[dict[str, Any], int]] = [
    ({}, 400),
    ({"startTime90k": 1, "endTime90k": 2}, 400),  # no reason
    ({"startTime90k": 2, "endTime90k": 2, "reason": "x"}, 400),
    ({"startTime90k": 3, "endTime90k": 2, "reason": "x"}, 400),
    ({"startTime90k": -1, "endTime90k": 2, "reason": "x"}, 400),
    ({"startTime90k": "1", "endTime90k": 2, "reason": "x"}, 400),
    ({"startTime90k": 1.5, "endTime90k": 2, "reason": "x"}, 400),
    ({"startTime90k": True, "endTime90k": 2, "reason": "x"}, 400),
    ({"startTime90k": 1, "endTime90k": 1 << 63, "reason": "x"}, 400),
    ({"startTime90k": 1, "endTime90k": 2, "reason": 5}, 400),
    ({"startTime90k": 1, "endTime90k": 2, "reason": ""}, 400),
    ({"startTime90k": 1, "endTime90k": 2, "reason": "x" * 1001}, 400),
    ({"startTime90k": 1, "endTime90k": 2, "reason": "a\u0000b"}, 400),
    ({"startTime90k": 1, "endTime90k": 2, "reason": "x", "expiresTime90k": 5}, 400),  # past
    ({"startTime90k": 1, "endTime90k": 2, "reason": "x", "expiresTime90k": "soon"}, 400),
    ({"startTime90k": 1, "endTime90k": 2, "reason": "x", "extra": 1}, 400),
    ({"startTime90k": 1, "endTime90k": 2, "reason": "x", "expiresTime90k": None}, 200),
]


async def test_hostile_bodies_and_paths(recorded: Recorded, autojump_clock: object) -> None:
    site = make_site(recorded)
    site.add_user("all", PERMISSIONS)
    c, csrf = await site.login("all")
    base = f"/api/cameras/{recorded.camera_uuid}/protect"
    for body, status in HOSTILE:
        resp = await c.post(base, json={**body, "csrf": csrf})
        text = await resp.get_data(as_text=True)
        assert resp.status_code == status, (body, text)
        if status >= 400:
            assert text.count("\n") == 1 and "Traceback" not in text
    for path, status in [
        (f"{base}/0", 404), (f"{base}/99999", 404), (f"{base}/{'9' * 30}", 404),
        (f"{base}/-1", 404), (f"{base}/x", 404),
        ("/api/cameras/not-a-uuid/protect/1", 404),
        ("/api/cameras/00000000-0000-0000-0000-000000000000/protect/1", 404),
    ]:
        resp = await c.delete(path, json={"csrf": csrf})
        assert resp.status_code == status, path
    resp = await c.delete(f"{base}/1", json={"csrf": csrf, "extra": True})
    assert resp.status_code == 400
    for q in ("all=yes", "all=1"):
        assert (await c.get(f"{base}?{q}")).status_code == 400
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        assert (await c.get(f"/api/cameras/{bad}/protect")).status_code == 404


async def test_user_camera_limits_over_the_api(recorded: Recorded, autojump_clock: object) -> None:
    """``nvrCameras`` in ``/api/users/``: set, read back, checked as a precondition, and
    refused in every malformed shape; a user cannot lift its own limit."""
    site = make_site(recorded)
    c, csrf = await site.login("admin")
    cam = recorded.camera_uuid
    resp = await c.post("/api/users/", json={"csrf": csrf, "user": {
        "username": "dora", "password": "pw", "permissions": {"viewVideo": True},
        "nvrCameras": [cam]}})
    assert resp.status_code == 204
    uid = int(resp.headers["Location"].rsplit("/", 1)[1])
    got = await (await c.get(f"/api/users/{uid}")).get_json()
    assert got["nvrCameras"] == [cam]
    resp = await c.patch(f"/api/users/{uid}", json={
        "csrf": csrf, "update": {"nvrCameras": None}, "precondition": {"nvrCameras": []}})
    assert resp.status_code == 412
    resp = await c.patch(f"/api/users/{uid}", json={
        "csrf": csrf, "update": {"nvrCameras": []}, "precondition": {"nvrCameras": [cam]}})
    assert resp.status_code == 204
    assert (await (await c.get(f"/api/users/{uid}")).get_json())["nvrCameras"] == []
    for bad in ("x", 5, {"a": 1}, ["not-a-uuid"], [5], [None], [cam * 3],
                ["00000000-0000-0000-0000-000000000000"] * 1001):
        resp = await c.patch(f"/api/users/{uid}", json={"csrf": csrf,
                                                        "update": {"nvrCameras": bad}})
        text = await resp.get_data(as_text=True)
        assert resp.status_code == 400, (bad, text)
        assert text.count("\n") == 1
    # dora may not lift her own limit
    site.passwords["dora"] = "pw"
    d, dcsrf = await site.login("dora")
    resp = await d.patch(f"/api/users/{uid}", json={"csrf": dcsrf,
                                                    "update": {"nvrCameras": None}})
    assert resp.status_code == 403
    assert (await (await d.get("/api/")).get_json())["cameras"] == []
