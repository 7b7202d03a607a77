"""Protected ranges over HTTP (an nvr extension; docs/api.md, "Extensions").

``POST /api/cameras/<uuid>/protect`` with ``{startTime90k, endTime90k, reason,
expiresTime90k?}`` adds a range (``protectVideo``) and answers it as JSON;
``GET /api/cameras/<uuid>/protect`` lists the camera's active ranges (``viewVideo``;
``all=true``: every row, removed and expired included, newest first, at most 1,000);
``DELETE /api/cameras/<uuid>/protect/<id>`` removes one (``protectVideo``; the row
stays with who removed it and when, and the removal is logged). The work and its rules
are ``nvr.db.protection``'s; here are only the shapes and the checks of what a client
sends (every field typed and bounded; unknown fields refused).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from nvr.base import errors
from nvr.db.types import ProtectedRange
from nvr.web import auth
from nvr.web.context import MAX_TIME, bool_arg, camera_by_uuid, ctx

blueprint = Blueprint("protect", __name__)

_FIELDS = ("startTime90k", "endTime90k", "reason", "expiresTime90k")


def range_json(r: ProtectedRange) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id,
        "startTime90k": r.start_time_90k,
        "endTime90k": r.end_time_90k,
        "reason": r.reason,
        "expiresTime90k": r.expires_time_90k,
        "createdTime90k": r.created_time_90k,
        "createdBy": r.created_by,
    }
    if r.removed_time_90k is not None:
        out["removedTime90k"] = r.removed_time_90k
        out["removedBy"] = r.removed_by
    return out


def _time(b: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
    v = b.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_TIME:
        raise errors.InvalidArgument(f"{key} must be an integer from 0 to {MAX_TIME}")
    return v


@blueprint.get("/api/cameras/<camera_uuid>/protect")
async def list_ranges(camera_uuid: str) -> dict[str, Any]:
    cam = camera_by_uuid(camera_uuid)
    rows = ctx().db.list_protected(cam.id, all_rows=bool_arg("all"))
    return {"ranges": [range_json(r) for r in rows]}


@blueprint.post("/api/cameras/<camera_uuid>/protect")
async def add_range(camera_uuid: str) -> dict[str, Any]:
    cam = camera_by_uuid(camera_uuid)
    b = auth.body()
    extra = sorted(set(b) - set(_FIELDS) - {"csrf"})
    if extra:
        raise errors.InvalidArgument(f"unknown field {extra[0]!r} (known: {', '.join(_FIELDS)})")
    start, end = _time(b, "startTime90k"), _time(b, "endTime90k")
    assert start is not None and end is not None
    if end <= start:
        raise errors.InvalidArgument("endTime90k must be after startTime90k")
    reason = b.get("reason")
    if not isinstance(reason, str):
        raise errors.InvalidArgument("reason must be a string")
    expires = _time(b, "expiresTime90k", optional=True)
    r = ctx().db.protect(cam.id, start, end, reason, expires=expires, by=auth.actor())
    return range_json(r)


@blueprint.delete("/api/cameras/<camera_uuid>/protect/<int:range_id>")
async def remove_range(camera_uuid: str, range_id: int) -> Response:
    cam = camera_by_uuid(camera_uuid)
    extra = sorted(set(auth.body()) - {"csrf"})
    if extra:
        raise errors.InvalidArgument(f"unknown field {extra[0]!r} in the request body")
    if not 0 < range_id < 1 << 63:
        raise errors.NotFound(f"no protected range {range_id}")
    ctx().db.unprotect(cam.id, range_id, by=auth.actor())
    return Response("", status=204)
