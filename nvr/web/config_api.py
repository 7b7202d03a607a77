"""The configuration routes, applied while the daemon records (docs/api.md,
"Configuration (extensions)"): cameras and their streams, sample-file directories,
signals, archives. All need ``adminConfig`` but the last.

``POST /api/nvr/cameras`` (``{"camera": {...}}`` -> ``{"uuid", "id"}``), ``PATCH
/api/nvr/cameras/<uuid>`` (``{"update": {...}}``), ``DELETE /api/nvr/cameras/<uuid>``
(``{"deleteRecordings": bool, "unprotect": bool}`` -> ``{"recordings": n}``, how many
were deleted),
``GET /api/nvr/dirs``, ``POST /api/nvr/dirs`` (``{"path"}`` -> ``{"id"}``), ``DELETE
/api/nvr/dirs/<id>``; ``POST /api/nvr/signals`` (``{"signal": {...}}`` -> ``{"id",
"uuid", "type"}``), ``DELETE /api/nvr/signals/<id>``, ``POST /api/nvr/signal-types``
(``{"signalType": {...}}`` -> ``{"id", "uuid"}``), ``DELETE
/api/nvr/signal-types/<uuid>``. ``POST /api/nvr/archives`` (``{"archive": {...}}`` ->
``{"uuid", "id", "streams"}``), ``PATCH /api/nvr/archives/<uuid or name>`` (``{"update": {...}}``),
``DELETE /api/nvr/archives/<uuid or name>``. ``POST /api/nvr/sessions`` (``adminUsers``:
a session for a script, ``nvr login``).

Each handler holds the daemon's reconfiguration lock (changes apply one at a time),
validates and commits through ``nvr.reconfig`` (a change that cannot apply changes
nothing), then has the daemon apply it (``WebContext.reconfigure``): exactly the
affected cameras' tasks restart. The daemon's control socket serves these same routes to
``nvr config``. Users and permissions keep Moonfire's ``/api/users/`` routes (``api.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, Response

from nvr import reconfig
from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.db.auth import parse_permissions
from nvr.web import auth
from nvr.web.context import camera_by_uuid, ctx
from nvr.web.signals import signal_visible

log = logging.getLogger(__name__)

blueprint = Blueprint("config", __name__)


def _body(allowed: set[str]) -> dict[str, Any]:
    b = auth.body()
    extra = sorted(set(b) - allowed - {"csrf"})
    if extra:
        raise errors.InvalidArgument(f"unknown field {extra[0]!r} in the request body")
    return b


def _actor() -> str:
    who = auth.caller()
    name = repr(who.user.username) if who.user else "the control socket"
    return name if who.user is None else f"{name} from {who.address}"


@blueprint.post("/api/nvr/cameras")
async def add_camera() -> dict[str, Any]:
    b = _body({"camera"})
    c = ctx()
    async with c.reconfigure.lock:
        cam = reconfig.add_camera(c.db, b.get("camera"))
        log.info("camera %r added by %s", cam.short_name, _actor())
        await c.reconfigure.apply()
    return {"uuid": str(cam.uuid), "id": cam.id}


@blueprint.patch("/api/nvr/cameras/<camera_uuid>")
async def update_camera(camera_uuid: str) -> Response:
    b = _body({"update"})
    c = ctx()
    async with c.reconfigure.lock:
        cam = camera_by_uuid(camera_uuid)
        name = cam.short_name
        update = b.get("update")
        reconfig.update_camera(c.db, cam, update)  # checks that it is an object
        fields = ", ".join(sorted(update or ()))
        log.info("camera %r changed (%s) by %s", name, fields, _actor())
        await c.reconfigure.apply()
    return Response("", status=204)


@blueprint.delete("/api/nvr/cameras/<camera_uuid>")
async def delete_camera(camera_uuid: str) -> dict[str, Any]:
    b = _body({"deleteRecordings", "unprotect"})
    delete, unprotect = b.get("deleteRecordings", False), b.get("unprotect", False)
    if not isinstance(delete, bool):
        raise errors.InvalidArgument("deleteRecordings must be true or false")
    if not isinstance(unprotect, bool):
        raise errors.InvalidArgument("unprotect must be true or false")
    c = ctx()
    async with c.reconfigure.lock:
        cam = camera_by_uuid(camera_uuid)
        n = reconfig.check_removable(c.db, cam, delete_recordings=delete, unprotect=unprotect)
        if n:
            await c.reconfigure.settle(cam.id)
            reconfig.unprotect_all(c.db, cam, by=f"camera removed by {_actor()}")
        reconfig.delete_recordings_and_camera(c.db, cam)
        log.info("camera %r removed with %d recordings by %s", cam.short_name, n, _actor())
        await c.reconfigure.apply()
    return {"recordings": n}


@blueprint.get("/api/nvr/dirs")
async def list_dirs() -> dict[str, Any]:
    db = ctx().db
    out = []
    for d in db.dirs.values():
        streams = db.streams_in_dir(d.id)
        out.append({
            "id": d.id,
            "path": d.path,
            "uuid": str(d.uuid),
            "streams": [s.id for s in streams],
            "totalSampleFileBytes": sum(s.committed.sample_file_bytes for s in streams),
        })  # fmt: skip
    return {"dirs": out}


@blueprint.post("/api/nvr/dirs")
async def add_dir() -> dict[str, Any]:
    b = _body({"path"})
    c = ctx()
    async with c.reconfigure.lock:
        new = reconfig.check_new_dir(c.db, b.get("path"))
        await run_blocking(reconfig.create_dir, c.db.uuid, new)
        dir_id = reconfig.commit_dir(c.db, new)
        try:
            await c.reconfigure.dir_added(dir_id)
        except BaseException:
            c.db.remove_sample_file_dir(dir_id)  # it could not be opened: undo
            raise
        log.info("sample file directory %s added by %s", new.path, _actor())
    return {"id": dir_id}


@blueprint.delete("/api/nvr/dirs/<int:dir_id>")
async def delete_dir(dir_id: int) -> Response:
    _body(set())
    c = ctx()
    async with c.reconfigure.lock:
        reconfig.check_dir_removable(c.db, dir_id)
        path = c.db.dirs[dir_id].path
        await c.reconfigure.stop_syncer(dir_id)
        c.db.remove_sample_file_dir(dir_id)
        log.info("sample file directory %s removed by %s", path, _actor())
    return Response("", status=204)


@blueprint.post("/api/nvr/archives")
async def add_archive() -> dict[str, Any]:
    b = _body({"archive"})
    c = ctx()
    async with c.reconfigure.lock:
        a = reconfig.add_archive(c.db, b.get("archive"), camera=camera_by_uuid)
        log.info("archive %s added (%d streams) by %s", a.short_name, len(a.streams), _actor())
        await c.reconfigure.apply()
    return {"uuid": str(a.uuid), "id": a.id, "streams": len(a.streams)}


@blueprint.patch("/api/nvr/archives/<archive_ref>")
async def update_archive(archive_ref: str) -> Response:
    """Validates, stops the archive's uploader (what it completed is recorded), commits,
    starts it again with the new settings."""
    b = _body({"update"})
    c = ctx()
    async with c.reconfigure.lock:
        a = reconfig.archive_by_ref(c.db, archive_ref)
        update = b.get("update")
        change = reconfig.archive_change(c.db, update, a, camera=camera_by_uuid)
        await c.reconfigure.stop_uploader(a.id)
        try:
            c.db.update_archive(a.id, change.config, change.stream_ids)
        finally:
            await c.reconfigure.apply()
        log.info("archive %s changed (%s) by %s", a.short_name, ", ".join(sorted(update or ())),
                 _actor())
    return Response("", status=204)


@blueprint.delete("/api/nvr/archives/<archive_ref>")
async def delete_archive(archive_ref: str) -> Response:
    """As ``nvr config archive remove``: the archive and what the database knows it
    holds are forgotten; its objects stay in the bucket."""
    _body(set())
    c = ctx()
    async with c.reconfigure.lock:
        a = reconfig.archive_by_ref(c.db, archive_ref)
        await c.reconfigure.stop_uploader(a.id)
        try:
            c.db.delete_archive(a.id)
        finally:
            await c.reconfigure.apply()
        log.info("archive %s removed by %s", a.short_name, _actor())
    return Response("", status=204)


@blueprint.post("/api/nvr/signal-types")
async def add_signal_type() -> dict[str, Any]:
    b = _body({"signalType"})
    c = ctx()
    async with c.reconfigure.lock:
        t = reconfig.add_signal_type(c.db, b.get("signalType"))
        log.info("signal type %r added by %s", t.short_name, _actor())
    return {"id": t.id, "uuid": str(t.uuid)}


@blueprint.delete("/api/nvr/signal-types/<type_ref>")
async def delete_signal_type(type_ref: str) -> Response:
    _body(set())
    c = ctx()
    async with c.reconfigure.lock:
        t = reconfig.signal_type(c.db, type_ref, "signal type")
        c.db.remove_signal_type(t.id)
        log.info("signal type %r removed by %s", t.short_name, _actor())
    return Response("", status=204)


@blueprint.post("/api/nvr/signals")
async def add_signal() -> dict[str, Any]:
    b = _body({"signal"})
    c = ctx()
    async with c.reconfigure.lock:
        sig = reconfig.add_signal(c.db, b.get("signal"), camera=camera_by_uuid)
        log.info("signal %r added by %s", sig.short_name, _actor())
    return {"id": sig.id, "uuid": str(sig.uuid), "type": str(c.db.signal_types[sig.type_id].uuid)}


@blueprint.delete("/api/nvr/signals/<int:signal_id>")
async def delete_signal(signal_id: int) -> Response:
    _body(set())
    c = ctx()
    async with c.reconfigure.lock:
        sig = c.db.signals.get(signal_id)
        if sig is None or not signal_visible(c.db, sig):
            raise errors.NotFound(f"no signal with id {signal_id}")
        c.db.remove_signal(signal_id)
        log.info("signal %r and its history removed by %s", sig.short_name, _actor())
    return Response("", status=204)


@blueprint.post("/api/nvr/sessions")
async def add_session() -> dict[str, Any]:
    """A session for a script (``nvr login`` while the daemon runs)."""
    b = _body({"username", "permissions", "description"})
    name = b.get("username")
    if not isinstance(name, str) or not name:
        raise errors.InvalidArgument("username must be a user's name")
    perms = b.get("permissions")
    if perms is not None and (
        not isinstance(perms, list) or not all(isinstance(p, str) for p in perms)
    ):
        raise errors.InvalidArgument("permissions must be null or a list of permission names")
    description = b.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 4096):
        raise errors.InvalidArgument("description must be a string of at most 4096 characters")
    a = ctx().auth
    assert a is not None  # create_app makes one
    session_id, session = a.script_session(
        name,
        permissions=None if perms is None else parse_permissions(perms),
        description=description,
    )
    log.info("a session for user %r minted by %s", name, _actor())
    return {"session": session_id, "creationTimeSec": session.creation_time_sec}
