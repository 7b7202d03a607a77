"""JSON routes compatible with Moonfire NVR's API (``ref/api.md``, version 0.7).

``GET /api/``, ``GET /api/cameras/<uuid>/`` and ``GET /api/cameras/<uuid>/<stream>/
recordings`` with the same field names and semantics. Extensions use new names:
``nvrStatus`` on each stream (the live recording state), ``nvrSampleFileDir`` (its
directory's id, and path with ``cameraConfigs``). Everything is served from the
database's in-memory summaries and its covering index; nothing scans the table.

Sessions and users, with Moonfire's shapes: ``POST /api/login`` (``{username,
password}`` -> ``204`` and cookie ``s``; a wrong name or password is ``403`` as
Moonfire documents, too many failures ``429``), ``POST /api/logout``, and
``/api/users/`` (``GET`` lists, ``POST`` adds: ``204`` with a ``Location`` header naming
the new user, an extension) and ``/api/users/<id>`` (``GET``, ``PATCH`` with ``update``
and ``precondition``, ``DELETE``). Who may call each route is in ``nvr.web.auth``'s
table, checked before the handler runs (with CSRF for every mutation); handlers here
only add checks that depend on the request (``cameraConfigs``, whose user id, which
fields). Password hashing runs through ``run_blocking`` (it is slow on purpose).
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint, Response

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.db import auth as dbauth
from nvr.db.auth import PERMISSIONS, Auth, User
from nvr.db.database import FLAG_TRAILING_ZERO, Camera, ListedRecording, Stream, day_bounds
from nvr.db.recording import VideoSampleEntry
from nvr.web import auth
from nvr.web.context import (
    MAX_TIME,
    StreamStatus,
    bool_arg,
    camera_by_uuid,
    ctx,
    int_arg,
    stream_of,
)

log = logging.getLogger(__name__)

blueprint = Blueprint("api", __name__)


def permissions_json(perms: frozenset[str]) -> dict[str, bool]:
    return {p: p in perms for p in PERMISSIONS}


def stream_json(stream: Stream, *, days: bool, config: bool) -> dict[str, Any]:
    c = ctx()
    s = c.db.stream_summary(stream.id)
    out: dict[str, Any] = {
        "id": stream.id,
        "retainBytes": stream.config.retain_bytes,
        "minStartTime90k": s.range_start,
        "maxEndTime90k": s.range_end,
        "totalDuration90k": s.duration_90k,
        "totalSampleFileBytes": s.sample_file_bytes,
        "fsBytes": s.fs_bytes,
        "record": stream.config.mode == "record",
    }
    if days:
        tz = c.db.tz
        out["days"] = {}
        for day, total in sorted(s.days.items()):
            start, end = day_bounds(day, tz)
            out["days"][day] = {
                "startTime90k": start,
                "endTime90k": end,
                "totalDuration90k": total.duration_90k,
            }
    if config:
        out["config"] = {
            "url": stream.config.url,
            "mode": stream.config.mode,
            "retainBytes": stream.config.retain_bytes,
            "flushIfSec": stream.config.flush_if_sec,
            "rtspTransport": stream.config.rtsp_transport,
        }
    if stream.sample_file_dir_id is not None:  # extension: lets a UI total disk use per dir
        d = c.db.dirs[stream.sample_file_dir_id]
        out["nvrSampleFileDir"] = {"id": d.id, "path": d.path} if config else {"id": d.id}
    status = c.stream_status(stream.id)
    if status is not None:
        out["nvrStatus"] = status_json(status)
    return out


def status_json(status: StreamStatus) -> dict[str, Any]:
    """``nvrStatus``: the stream's live state, and its directory's syncer's."""
    st = status.stream
    out: dict[str, Any] = {
        "state": st.kind,
        "since90k": st.since,
        "lastError": st.last_error,
        "nextTry90k": st.next_try,
    }
    if status.syncer is not None:
        # the directory's side: a failing syncer step (e.g. a commit), and free space
        sy = status.syncer
        out["syncer"] = {
            "failingStep": sy.failing_step,
            "failingSince90k": sy.failing_since,
            "lastError": sy.last_error,
            "freeBytes": status.free_bytes,
        }
    return out


def camera_json(cam: Camera, *, days: bool, config: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uuid": str(cam.uuid),
        "id": cam.id,
        "shortName": cam.short_name,
        "description": cam.description,
    }
    if config:
        out["config"] = {
            "username": cam.config.username,
            "password": cam.config.password,
            "onvifUrl": cam.config.onvif_url,
        }
    db = ctx().db
    out["streams"] = {
        t: stream_json(db.streams[sid], days=days, config=config)
        for t, sid in sorted(cam.streams.items())
    }
    return out


@blueprint.get("/api/")
async def top_level() -> dict[str, Any]:
    days = bool_arg("days")
    configs = bool_arg("cameraConfigs")
    if configs:
        auth.require("readCameraConfigs")
    c = ctx()
    who = auth.caller()
    out = {
        "timeZoneName": c.time_zone_name,
        "serverVersion": c.server_version,
        "cameras": [camera_json(cam, days=days, config=configs) for cam in c.db.cameras.values()],
        "signals": [],
        "signalTypes": [],
        "permissions": permissions_json(who.permissions),
    }
    if who.session is not None:
        user = who.session.user
        out["user"] = {
            "name": user.username,
            "id": user.id,
            "preferences": user.preferences,
            "session": {"csrf": who.session.csrf},
        }
    return out


@blueprint.get("/api/cameras/<camera_uuid>/")
async def camera(camera_uuid: str) -> dict[str, Any]:
    out = camera_json(camera_by_uuid(camera_uuid), days=True, config=False)
    del out["uuid"], out["id"]
    return out


@blueprint.get("/api/cameras/<camera_uuid>/<stream_type>/recordings")
async def recordings(camera_uuid: str, stream_type: str) -> dict[str, Any]:
    stream = stream_of(camera_by_uuid(camera_uuid), stream_type)
    start = int_arg("startTime90k", 0)
    end = int_arg("endTime90k", MAX_TIME)
    split = int_arg("split90k", MAX_TIME, minimum=1)
    if end < start:
        raise errors.InvalidArgument("endTime90k must not be before startTime90k")
    db = ctx().db
    recs = sorted(db.list_recordings_by_time(stream.id, start, end), key=lambda r: r.recording_id)
    rows = [coalesced_json(group) for group in coalesce(recs, split)]
    entries = {r.video_sample_entry_id for r in recs}
    return {
        "recordings": rows,
        "videoSampleEntries": {
            str(e): sample_entry_json(db.video_sample_entries[e]) for e in sorted(entries)
        },
    }


def coalesce(recs: list[ListedRecording], split: int) -> list[list[ListedRecording]]:
    """Groups consecutive recordings of one run (same open, same sample entry, no trailing
    zero inside) until the group's wall duration reaches ``split``."""
    groups: list[list[ListedRecording]] = []
    for r in recs:
        g = groups[-1] if groups else None
        if (
            g is not None
            and r.recording_id == g[-1].recording_id + 1
            and r.run_offset == g[-1].run_offset + 1
            and r.open_id == g[-1].open_id
            and r.video_sample_entry_id == g[-1].video_sample_entry_id
            and not g[-1].flags & FLAG_TRAILING_ZERO
            and g[-1].end_time_90k - g[0].start_time_90k < split
        ):
            g.append(r)
        else:
            groups.append([r])
    return groups


def coalesced_json(g: list[ListedRecording]) -> dict[str, Any]:
    first, last = g[0], g[-1]
    out: dict[str, Any] = {
        "startId": first.recording_id,
        "openId": first.open_id,
        "runStartId": first.recording_id - first.run_offset,
        "startTime90k": first.start_time_90k,
        "endTime90k": last.end_time_90k,
        "videoSampleEntryId": first.video_sample_entry_id,
        "videoSamples": sum(r.video_samples for r in g),
        "sampleFileBytes": sum(r.sample_file_bytes for r in g),
    }
    if len(g) > 1:
        out["endId"] = last.recording_id
    uncommitted = [r.recording_id for r in g if not r.committed]
    if uncommitted:
        out["firstUncommitted"] = uncommitted[0]
    if last.growing:
        out["growing"] = True
    if last.flags & FLAG_TRAILING_ZERO:
        out["hasTrailingZero"] = True
    if last.end_reason is not None:
        out["endReason"] = last.end_reason
    return out


def sample_entry_json(e: VideoSampleEntry) -> dict[str, Any]:
    from math import gcd

    aw, ah = e.width * e.pasp_h_spacing, e.height * e.pasp_v_spacing
    g = gcd(aw, ah) or 1
    return {
        "width": e.width,
        "height": e.height,
        "pixelHSpacing": e.pasp_h_spacing,
        "pixelVSpacing": e.pasp_v_spacing,
        "aspectWidth": aw // g,
        "aspectHeight": ah // g,
    }


# ----------------------------------------------------------------------------- sessions


def _auth() -> Auth:
    return auth.auth_of(ctx())


def _limiter() -> auth.LoginLimiter:
    limiter = ctx().login_limiter
    assert limiter is not None, "create_app fills WebContext.login_limiter"
    return limiter


def _string(obj: dict[str, Any], key: str, what: str, *, max_len: int = 1024) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise errors.InvalidArgument(f"{what} needs a string {key!r}")
    if len(value) > max_len:
        raise errors.InvalidArgument(f"{what}: {key!r} is longer than {max_len} characters")
    return value


@blueprint.post("/api/login")
async def login() -> Response:
    b = auth.body()
    username = _string(b, "username", "login")
    password = _string(b, "password", "login")
    who = auth.caller()
    a, limiter = _auth(), _limiter()
    limiter.check(who.address, username)
    user = a.find_user(username)
    ok = await run_blocking(a.verify_password, user, password)
    reason = "unknown user" if user is None else "wrong password"
    if ok and user is not None and user.disabled:
        ok, reason = False, "user disabled"
    if not ok or user is None:
        n_address, n_user = limiter.failed(who.address, username)
        a.note_login_failure(user)
        log.warning(
            "failed login as %r from %s (%s); failures recently: %d from this address, "
            "%d for this name",
            username, who.address, reason, n_address, n_user,
        )  # fmt: skip
        raise errors.PermissionDenied("incorrect username or password")
    limiter.succeeded(username)
    if a.needs_rehash(user):
        a.rehash_password(user, await run_blocking(a.hash_password, password))
    flags = dbauth.FLAG_HTTP_ONLY | dbauth.FLAG_SAME_SITE_STRICT
    if who.secure:
        flags |= dbauth.FLAG_SECURE
    session_id, _ = a.create_session(
        user, flags=flags, user_agent=who.user_agent, peer_addr=who.address
    )
    log.info("user %r logged in from %s", user.username, who.address)
    resp = Response("", status=204)
    auth.set_session_cookie(resp, session_id, who, a.policy.max_age_sec)
    return resp


@blueprint.post("/api/logout")
async def logout() -> Response:
    who = auth.caller()
    assert who.session is not None  # the permission table demands one
    _auth().revoke_session(who.session, user_agent=who.user_agent, peer_addr=who.address)
    log.info("user %r logged out from %s", who.session.user.username, who.address)
    resp = Response("", status=204)
    auth.clear_session_cookie(resp, who)
    return resp


# ----------------------------------------------------------------------------- users

PASSWORD_PLACEHOLDER = "(censored)"
_SUBSET_FIELDS = ("username", "disabled", "password", "permissions", "preferences")


def user_json(u: User) -> dict[str, Any]:
    """A Moonfire ``UserSubset`` with every field."""
    return {
        "username": u.username,
        "disabled": u.disabled,
        "password": PASSWORD_PLACEHOLDER if u.password_hash else None,
        "permissions": permissions_json(u.permissions),
        "preferences": u.preferences,
    }


def parse_subset(value: Any, what: str) -> dict[str, Any]:
    """A ``UserSubset`` from a request, checked field by field; ``permissions`` becomes a
    frozenset. Only the keys present are returned."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidArgument(f"{what} must be a JSON object")
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key == "username":
            if not isinstance(v, str):
                raise errors.InvalidArgument(f"{what}.username must be a string")
            dbauth.check_username(v)
        elif key == "disabled":
            if not isinstance(v, bool):
                raise errors.InvalidArgument(f"{what}.disabled must be true or false")
        elif key == "password":
            if v is not None and (not isinstance(v, str) or not v or len(v) > 1024):
                raise errors.InvalidArgument(f"{what}.password must be null or 1-1024 characters")
        elif key == "permissions":
            if not isinstance(v, dict) or not all(isinstance(x, bool) for x in v.values()):
                raise errors.InvalidArgument(f"{what}.permissions must map names to booleans")
            dbauth.parse_permissions(v)
            v = frozenset(p for p, on in v.items() if on)
        elif key == "preferences":
            if not isinstance(v, dict):
                raise errors.InvalidArgument(f"{what}.preferences must be a JSON object")
        else:
            raise errors.InvalidArgument(
                f"unknown field {what}.{key} (known: {', '.join(_SUBSET_FIELDS)})"
            )
        out[key] = v
    return out


def _only_keys(b: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(b) - allowed - {"csrf"})
    if extra:
        raise errors.InvalidArgument(f"unknown field {extra[0]!r} in the request body")


@blueprint.get("/api/users/")
async def list_users() -> dict[str, Any]:
    return {"users": [{"id": u.id, "user": user_json(u)} for u in _auth().list_users()]}


@blueprint.post("/api/users/")
async def add_user() -> Response:
    b = auth.body()
    _only_keys(b, {"user"})
    subset = parse_subset(b.get("user"), "user")
    if "username" not in subset:
        raise errors.InvalidArgument("user.username is required")
    a = _auth()
    password = subset.get("password")
    pw_hash = None if password is None else await run_blocking(a.hash_password, password)
    user = a.add_user(
        subset["username"],
        password_hash=pw_hash,
        permissions=subset.get("permissions", frozenset()),
        disabled=subset.get("disabled", False),
        preferences=subset.get("preferences"),
    )
    log.info("user %r added by %s", user.username, _actor())
    return Response("", status=204, headers={"Location": f"/api/users/{user.id}"})


def _actor() -> str:
    who = auth.caller()
    name = repr(who.user.username) if who.user else "an unauthenticated caller"
    return f"{name} from {who.address}"


@blueprint.get("/api/users/<int:user_id>")
async def get_user(user_id: int) -> dict[str, Any]:
    auth.require_self_or_admin(user_id)
    return user_json(_auth().get_user(user_id))


@blueprint.patch("/api/users/<int:user_id>")
async def update_user(user_id: int) -> Response:
    auth.require_self_or_admin(user_id)
    who = auth.caller()
    admin = "adminUsers" in who.permissions
    b = auth.body()
    _only_keys(b, {"update", "precondition"})
    update = parse_subset(b.get("update"), "update")
    pre = parse_subset(b.get("precondition"), "precondition")
    if not admin:
        for key in ("disabled", "permissions", "username"):
            if key in update:
                raise errors.PermissionDenied(f"changing {key} needs the adminUsers permission")
        if "password" in update and "password" not in pre:
            raise errors.PermissionDenied(
                "changing your password needs the current one as precondition.password"
            )
    a = _auth()
    user = a.get_user(user_id)
    new_password = update.get("password")
    new_hash = None if new_password is None else await run_blocking(a.hash_password, new_password)
    if isinstance(pre.get("password"), str):
        # A password guess: rate-limited and counted like a login.
        limiter = _limiter()
        limiter.check(who.address, user.username)
        if not await run_blocking(a.verify_password, user, pre["password"]):
            limiter.failed(who.address, user.username)
            a.note_login_failure(user)
            log.warning("wrong password in a precondition for %r by %s", user.username, _actor())
            raise errors.FailedPrecondition("precondition failed: password")
    current = a.get_user(user_id)  # again: hashing let other requests run
    if current.password_id != user.password_id:
        raise errors.FailedPrecondition("precondition failed: the password changed meanwhile")
    have = user_json(current)
    failed = [
        k
        for k, v in pre.items()
        if (k == "password" and v is None and current.password_hash is not None)
        or (k == "permissions" and v != current.permissions)
        or (k not in ("password", "permissions") and have[k] != v)
    ]
    if failed:
        raise errors.FailedPrecondition(f"precondition failed: {', '.join(failed)}")
    if any(k in update for k in ("username", "disabled", "permissions", "preferences")):
        a.update_user(
            user_id,
            username=update.get("username"),
            disabled=update.get("disabled"),
            permissions=update.get("permissions"),
            preferences=update.get("preferences"),
        )
    if "password" in update:
        own = who.session if who.user is not None and who.user.id == user_id else None
        a.set_password(user_id, new_hash, keep_session=own)
    log.info("user %r updated (%s) by %s", current.username, ", ".join(sorted(update)), _actor())
    return Response("", status=204)


@blueprint.delete("/api/users/<int:user_id>")
async def delete_user(user_id: int) -> Response:
    _only_keys(auth.body(), set())
    a = _auth()
    user = a.get_user(user_id)
    a.remove_user(user_id)
    log.info("user %r removed by %s", user.username, _actor())
    return Response("", status=204)
