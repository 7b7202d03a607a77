"""Redaction routes: ``POST /api/cameras/<uuid>/redact`` and ``GET .../redactions``.

``POST`` takes ``{"startTime90k", "endTime90k", "reason"}`` (plus the session's ``csrf``)
and commits one tombstone per stream of the camera (main and sub record the same scene)
before answering ``200`` with the tombstones as ``GET`` lists them; from then on every
route treats the range as never recorded (``nvr.db.redactions`` says how, and what is
not done yet). Permission ``redactVideo``. ``GET`` lists the camera's redactions (who,
when, why), for ``redactVideo`` too: the reasons may name people.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from nvr.base import errors
from nvr.db.redactions import Redaction
from nvr.web import auth
from nvr.web.context import MAX_TIME, camera_by_uuid, ctx

blueprint = Blueprint("redact", __name__)


def redaction_json(r: Redaction, stream_type: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "stream": stream_type,
        "startTime90k": r.start_time_90k,
        "endTime90k": r.end_time_90k,
        "reason": r.reason,
        "user": r.username,
        "userId": r.user_id,
        "creationTime90k": r.creation_time_90k,
    }


def _time(b: dict[str, Any], key: str) -> int:
    v = b.get(key)
    if type(v) is not int or not 0 <= v <= MAX_TIME:
        raise errors.InvalidArgument(f"{key} must be an integer in [0, 2^62]")
    return v


@blueprint.post("/api/cameras/<camera_uuid>/redact")
async def redact(camera_uuid: str) -> dict[str, Any]:
    cam = camera_by_uuid(camera_uuid)
    b = auth.body()
    extra = sorted(set(b) - {"startTime90k", "endTime90k", "reason", "csrf"})
    if extra:
        raise errors.InvalidArgument(f"unknown field {extra[0]!r} in the request body")
    start, end = _time(b, "startTime90k"), _time(b, "endTime90k")
    if end <= start:
        raise errors.InvalidArgument("endTime90k must be after startTime90k")
    reason = b.get("reason")
    if not isinstance(reason, str):
        raise errors.InvalidArgument("reason must be a string")
    session = auth.caller().session
    user = None if session is None else session.user
    db = ctx().db
    out = []
    for stream_type, sid in sorted(cam.streams.items()):
        r = db.add_redaction(sid, start, end, reason,
                             user_id=None if user is None else user.id,
                             username=None if user is None else user.username)
        out.append(redaction_json(r, stream_type))
    return {"redactions": out}


@blueprint.get("/api/cameras/<camera_uuid>/redactions")
async def redactions(camera_uuid: str) -> dict[str, Any]:
    cam = camera_by_uuid(camera_uuid)
    db = ctx().db
    out = [redaction_json(r, t) for t, sid in sorted(cam.streams.items())
           for r in db.list_redactions(sid)]
    out.sort(key=lambda x: (x["id"]))
    return {"redactions": out}
