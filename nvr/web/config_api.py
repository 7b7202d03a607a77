"""The configuration routes, applied while the daemon records (docs/api.md,
"Configuration (extensions)"): cameras and their streams, sample-file directories. All
need ``adminConfig``.

``POST /api/nvr/cameras`` (``{"camera": {...}}`` -> ``{"uuid", "id"}``), ``PATCH
/api/nvr/cameras/<uuid>`` (``{"update": {...}}``), ``DELETE /api/nvr/cameras/<uuid>``
(``{"deleteRecordings": bool, "unprotect": bool}`` -> ``{"recordings": n}``, how many
were deleted),
``GET /api/nvr/dirs``, ``POST /api/nvr/dirs`` (``{"path"}`` -> ``{"id"}``), ``DELETE
/api/nvr/dirs/<id>``.

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
from nvr.web import auth
from nvr.web.context import camera_by_uuid, ctx

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
