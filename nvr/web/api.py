"""JSON routes compatible with Moonfire NVR's API (``ref/api.md``, version 0.7).

``GET /api/``, ``GET /api/cameras/<uuid>/`` and ``GET /api/cameras/<uuid>/<stream>/
recordings`` with the same field names and semantics. Extensions use new names:
``nvrStatus`` on each stream (the live recording state), ``nvrSampleFileDir`` (its
directory's id, and path with ``cameraConfigs``). Everything is served from the
database's in-memory summaries and its covering index; nothing scans the table.
``signals`` and ``signalTypes`` come from ``nvr.web.signals``, which also serves
``/api/signals``.

Sessions and users, with Moonfire's shapes: ``POST /api/login`` (``{username,
password}`` -> ``204`` and cookie ``s``; a wrong name or password is ``401`` as
Moonfire's server answers, too many attempts ``429``), ``POST /api/logout``, and
``/api/users/`` (``GET`` lists, ``POST`` adds: ``204`` with a ``Location`` header naming
the new user, an extension) and ``/api/users/<id>`` (``GET``, ``PATCH`` with ``update``
and ``precondition``, ``DELETE``). Who may call each route is in ``nvr.web.auth``'s
table, checked before the handler runs (with CSRF for every mutation); handlers here
only add checks that depend on the request (``cameraConfigs``, whose user id, which
fields). Password hashing runs through ``run_blocking`` (it is slow on purpose).
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from quart import Blueprint, Response, request

from nvr.base import errors
from nvr.base.blocking import run_blocking
from nvr.base.time90k import UNITS_PER_SEC, to_datetime
from nvr.db import auth as dbauth
from nvr.db import signing
from nvr.db.auth import PERMISSIONS, Auth, User
from nvr.db.database import Database
from nvr.db.recording import VideoSampleEntry
from nvr.db.stream_summary import day_bounds
from nvr.db.types import FLAG_TRAILING_ZERO, Camera, ListedRecording, RetentionStatus, Stream
from nvr.storage import forecast
from nvr.storage.space import DiskSpace, budget_bytes, budget_warning
from nvr.web import auth
from nvr.web.context import (
    MAX_TIME,
    StreamStatus,
    bool_arg,
    camera_by_uuid,
    camera_limit,
    ctx,
    int_arg,
    stream_of,
    text_response,
    visible_cameras,
)
from nvr.web.login_limit import LoginLimiter
from nvr.web.motion_api import motion_json
from nvr.web.signals import signal_types_json, signals_json

log = logging.getLogger(__name__)

blueprint = Blueprint("api", __name__)

T = TypeVar("T")


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
        # local and archive-only recordings, as the recordings listing shows them both
        tz = c.db.tz
        durations = {day: t.duration_90k for day, t in s.days.items()}
        for day, t in stream.archive_only.days.items():
            durations[day] = durations.get(day, 0) + t.duration_90k
        out["days"] = {}
        for day, duration in sorted(durations.items()):
            start, end = day_bounds(day, tz)
            out["days"][day] = {
                "startTime90k": start,
                "endTime90k": end,
                "totalDuration90k": duration,
            }
    if config:
        out["config"] = {
            "url": stream.config.url,
            "mode": stream.config.mode,
            "retainBytes": stream.config.retain_bytes,
            "flushIfSec": stream.config.flush_if_sec,
            "rtspTransport": stream.config.rtsp_transport,
        }
    out["nvrRetention"] = retention_json(c.db.refresh_retention_status(stream.id))
    out["nvrForecast"] = stream_forecast_json(
        forecast.stream_forecast(c.db, stream.id, c.clocks.realtime(), c.day_sums)
    )
    if stream.sample_file_dir_id is not None:  # extension: lets a UI total disk use per dir
        d = c.db.dirs[stream.sample_file_dir_id]
        out["nvrSampleFileDir"] = {"id": d.id, "path": d.path} if config else {"id": d.id}
    codec = stream_codec(stream)
    if codec is not None:  # extension: what a UI asks the browser about (issue 20)
        out["nvrCodec"] = codec
    status = c.stream_status(stream.id)
    if status is not None:
        may_read = "readCameraConfigs" in auth.caller().permissions
        out["nvrStatus"] = status_json(status, redact=None if may_read else Redactor(c.db))
    return out


def stream_codec(stream: Stream) -> str | None:
    """The RFC 6381 codec string of the stream's newest recording (None: it has none)."""
    db = ctx().db
    entry_id = None
    if stream.pending:
        entry_id = stream.pending[-1].video_sample_entry_id
    elif stream.cum_recordings:
        last = db.list_recordings_by_id(stream.id, stream.cum_recordings - 1,
                                        stream.cum_recordings)
        entry_id = last[0].video_sample_entry_id if last else None
    entry = None if entry_id is None else db.video_sample_entries.get(entry_id)
    return None if entry is None else entry.rfc6381_codec


def retention_json(st: RetentionStatus) -> dict[str, Any]:
    """``nvrRetention``: the stream's budget split by protection (docs/api.md)."""
    return {
        "protectedBytes": st.protected_bytes,
        "unprotectedBytes": st.unprotected_bytes,
        "state": "protectedOverBudget" if st.over_budget else "ok",
    }


def _days(d: float | None) -> float | None:
    return None if d is None else round(d, 3)


def stream_forecast_json(f: forecast.StreamForecast) -> dict[str, Any]:
    """``nvrForecast`` of a stream (docs/api.md, "Extensions": Storage forecast)."""
    return {
        "bytesPerSec": None if f.bytes_per_sec is None else round(f.bytes_per_sec),
        "sampledDuration90k": f.sampled_90k,
        "budgetDays": _days(f.budget_days),
        "heldDays": _days(f.held_days),
    }


async def sample_file_dirs_json(*, paths: bool) -> list[dict[str, Any]]:
    """``nvrSampleFileDirs``: each directory's disk (measured now, off the event loop), its
    streams' budgets and use, the warning when the budgets exceed the disk, and its
    storage forecast; its path only for callers who may read camera configurations
    (docs/api.md)."""
    c = ctx()
    now = c.clocks.realtime()
    out: list[dict[str, Any]] = []
    for dir_id, row in sorted(c.db.dirs.items()):
        space: DiskSpace | None = None
        sdir = c.dirs.get(dir_id)
        if sdir is not None:  # (a sick disk: its syncer's error says why)
            with contextlib.suppress(errors.NvrError, OSError):
                space = DiskSpace.of(await run_blocking(sdir.statvfs))
        streams = c.db.streams_in_dir(dir_id)
        free, min_free = None, 0
        for s in streams:  # the floor is the syncer's; so is the last free space it saw
            st = c.stream_status(s.id)
            if st is not None and st.free_bytes is not None:
                free, min_free = st.free_bytes, st.min_free
                break
        if space is not None:
            free = space.free_bytes
        f = forecast.dir_forecast(c.db, dir_id, now, free_bytes=free, min_free=min_free,
                                  sums=c.day_sums)
        budget = budget_bytes(c.db, dir_id)
        d: dict[str, Any] = {"id": dir_id}
        if paths:
            d["path"] = row.path
        eta = f.floor_in_sec
        d |= {
            "totalBytes": space.total_bytes if space else None,
            "freeBytes": free,
            "minFreeBytes": min_free,
            "retainBytes": budget,
            "fsBytes": sum(c.db.stream_summary(s.id).fs_bytes for s in streams),
            "storedBytes": f.stored_bytes,
            "warning": budget_warning(budget, space),
            "bytesPerSec": round(f.bytes_per_sec),
            "budgetDays": _days(f.budget_days),
            "heldDays": _days(f.held_days),
            "floorDays": None if eta is None else round(eta / 86_400, 3),
            "floorTime90k": None if eta is None else now + round(eta * UNITS_PER_SEC),
        }
        out.append(d)
    return out


def status_json(status: StreamStatus, *, redact: Redactor | None) -> dict[str, Any]:
    """``nvrStatus``: the stream's live state, and its directory's syncer's; error texts
    through ``redact`` unless the caller may read camera configurations."""

    def text(message: str | None) -> str | None:
        return message if redact is None or message is None else redact(message)

    st = status.stream
    # recording while the directory's syncer retries a failing step (it does its steps in
    # order): nothing recorded becomes durable, so the stream is "blocked"
    blocked = st.kind == "recording" and status.syncer is not None and not status.syncer.ok
    out: dict[str, Any] = {
        "state": "blocked" if blocked else st.kind,
        "since90k": st.since,
        "lastError": text(st.last_error),
        "nextTry90k": st.next_try,
    }
    if status.syncer is not None:
        # the directory's side: a failing syncer step (e.g. a commit), and free space
        sy = status.syncer
        out["syncer"] = {
            "failingStep": sy.failing_step,
            "failingSince90k": sy.failing_since,
            "lastError": text(sy.last_error),
            "freeBytes": status.free_bytes,
        }
    return out


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/>-])/[^\s'\"<>:,;]+")


class Redactor:
    """Takes out of an error text what belongs to ``readCameraConfigs``: camera URLs
    (with any credentials in them) and file-system paths (sample-file directories: their
    configured paths, then anything else that looks like an absolute path)."""

    def __init__(self, db: Database) -> None:
        self._dirs = sorted((d.path for d in db.dirs.values() if d.path), key=len, reverse=True)

    def __call__(self, message: str) -> str:
        for path in self._dirs:
            message = message.replace(path, "<sample file dir>")
        message = _URL.sub(lambda m: _hide(m, "<URL>"), message)
        return _ABSOLUTE_PATH.sub(lambda m: _hide(m, "<path>"), message)


def _hide(m: re.Match[str], placeholder: str) -> str:
    """``placeholder`` for the match, but for the punctuation that ends it (a sentence's,
    not the URL's or path's)."""
    text = m[0]
    kept = text.rstrip(".,:;!?)]")
    return placeholder + text[len(kept) :]


def archives_json(*, config: bool) -> list[dict[str, Any]]:
    """``archives`` (extension): each archive, the streams it copies, its uploader's
    state and backlog. Never its keys; its endpoint, bucket and prefix only with
    ``cameraConfigs`` (``readCameraConfigs``), error texts redacted without it."""
    c = ctx()
    redact = None if config else Redactor(c.db)
    out = []
    for aid, a in sorted(c.db.archives.items()):
        streams = [
            {"cameraUuid": str(c.db.cameras[c.db.streams[sid].camera_id].uuid),
             "type": c.db.streams[sid].type}
            for sid in sorted(a.streams)
        ]
        b = c.db.archive_backlog(aid)
        entry: dict[str, Any] = {
            "uuid": str(a.uuid),
            "shortName": a.short_name,
            "streams": streams,
            "requireArchived": a.config.require_archived,
            "retainDays": a.config.retain_days,
            "retainBytes": a.config.retain_bytes,
            "maxRate": a.config.max_rate,
            "backlog": {"recordings": b.recordings, "bytes": b.bytes,
                        "oldestStartTime90k": b.oldest_start_90k},
            # deleted locally before this archive held them (since the daemon started)
            "neverArchivedRecordings": c.db.never_archived.get(aid, 0),
        }
        if config:
            pub = a.config.public()
            entry["config"] = {"endpoint": pub["endpoint"], "bucket": pub["bucket"],
                               "prefix": pub["prefix"], "region": pub["region"]}
        up = c.uploaders.get(aid)
        if up is None:
            entry["status"] = {"state": "stopped"}
        else:
            st = up.status.value
            err = st.last_error
            entry["status"] = {
                "state": "ok" if st.ok else "retrying",
                "failingSince90k": st.failing_since,
                "lastError": err if redact is None or err is None else redact(err),
                "attempts": st.attempts,
                "uploadedRecordings": up.uploaded,
                "uploadedBytes": up.uploaded_bytes,
                # the alarm: local files that changed since they were written
                "skippedRecordings": len(up.skipped),
                "lastSkip": max(up.skipped.values(), key=lambda k: k.since).reason
                if up.skipped else None,
            }
        out.append(entry)
    return out


def camera_json(cam: Camera, *, days: bool, config: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uuid": str(cam.uuid),
        "id": cam.id,
        "shortName": cam.short_name,
        "description": cam.description,
    }
    if config:
        # Moonfire's CameraConfig: empty values are left out
        cfg = cam.config
        named = (("onvifBaseUrl", cfg.onvif_url), ("username", cfg.username),
                 ("password", cfg.password))  # fmt: skip
        out["config"] = {k: v for k, v in named if v}
    db = ctx().db
    out["streams"] = {
        t: stream_json(db.streams[sid], days=days, config=config)
        for t, sid in sorted(cam.streams.items())
    }
    if days and (motion := motion_json(cam)) is not None:
        out["motion"] = motion
    return out


@blueprint.get("/api/")
async def top_level() -> dict[str, Any]:
    days = bool_arg("days")
    configs = bool_arg("cameraConfigs")
    if configs:
        auth.require("readCameraConfigs")
    c = ctx()
    who = auth.caller()
    out: dict[str, Any] = {
        "timeZoneName": c.time_zone_name,
        "serverVersion": c.server_version,
        "cameras": [camera_json(cam, days=days, config=configs) for cam in visible_cameras()],
        "signals": signals_json(c.db, days=days, now=c.clocks.realtime()),
        "signalTypes": signal_types_json(c.db),
        "archives": archives_json(config=configs),
        "permissions": permissions_json(who.permissions),
        # extension: the key exports are signed with (nvr.db.signing), for verify-export
        "nvrExportPublicKey": signing.public_key_of(c.db.db_dir),
    }
    if camera_limit() is None:  # totals of every camera: not for a caller limited to some
        out["nvrSampleFileDirs"] = await sample_file_dirs_json(
            paths="readCameraConfigs" in who.permissions
        )
    if who.session is None:
        # extension: whether logging in can work at all (the demo has no users: a UI
        # then offers no "Log in")
        out["nvrLoginAvailable"] = any(
            u.password_hash is not None and not u.disabled for u in _auth().list_users()
        )
    else:
        user = who.session.user
        out["user"] = {
            "name": user.username,
            "id": user.id,
            "preferences": user.preferences,
            "session": {"csrf": who.session.csrf},
            "nvrCameras": cameras_json(user.cameras),
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
    # by time, then id: ids grow with time but for a redaction's pieces (ids from 2^30)
    recs = sorted(db.list_recordings_by_time(stream.id, start, end),
                  key=lambda r: (r.start_time_90k, r.recording_id))
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
    zero inside, all local or all archive-only) until the group's wall duration reaches
    ``split``."""
    groups: list[list[ListedRecording]] = []
    for r in recs:
        g = groups[-1] if groups else None
        if (
            g is not None
            and r.recording_id == g[-1].recording_id + 1
            and r.run_offset == g[-1].run_offset + 1
            and r.open_id == g[-1].open_id
            and r.video_sample_entry_id == g[-1].video_sample_entry_id
            and r.archive_only == g[-1].archive_only
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
        "nvrLocation": "archive" if first.archive_only else "local",
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
        "nvrCodec": e.rfc6381_codec,
    }


# ----------------------------------------------------------------------------- sessions


def _auth() -> Auth:
    return auth.auth_of(ctx())


def _limiter() -> LoginLimiter:
    limiter = ctx().login_limiter
    assert limiter is not None, "create_app fills WebContext.login_limiter"
    return limiter


async def _hash(fn: Callable[..., T], *args: object) -> T:
    """Runs argon2id work (``Auth.verify_password``/``hash_password``) in a worker thread
    while holding one of the limiter's hash slots (``nvr.web.login_limit``)."""
    async with _limiter().hashing():
        return await run_blocking(fn, *args)


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
    attempt = limiter.admit(who.address, username)  # counted now, before the slow hash
    user = a.find_user(username)
    ok = await _hash(a.verify_password, user, password)
    reason = "unknown user" if user is None else "wrong password"
    if ok and user is not None and user.disabled:
        ok, reason = False, "user disabled"
    if not ok or user is None:
        n_address, n_user = limiter.failed(attempt)
        a.note_login_failure(user)
        log.warning(
            "failed login as %r from %s (%s); attempts recently: %d from this address, "
            "%d for this name",
            username, who.address, reason, n_address, n_user,
        )  # fmt: skip
        # 401 as Moonfire's server answers (its reference says 403; its clients show
        # the error under the login form only on 401)
        raise errors.Unauthenticated("incorrect username or password")
    limiter.succeeded(attempt)
    if a.needs_rehash(user):
        a.rehash_password(user, await _hash(a.hash_password, password))
    flags = dbauth.FLAG_HTTP_ONLY | dbauth.FLAG_SAME_SITE_LAX
    if who.secure:
        flags |= dbauth.FLAG_SECURE
    session_id, _ = a.create_session(
        user, flags=flags, user_agent=who.user_agent, peer_addr=who.address
    )
    log.info("user %r logged in from %s", user.username, who.address)
    resp = Response("", status=204)
    auth.set_session_cookie(resp, session_id, who, a.policy.max_age_sec)
    return resp


@blueprint.get("/api/request")
async def request_info() -> Response:
    """Moonfire's request-debugging page: what the server makes of this request (to check
    a reverse proxy's forwarded address and scheme, or a session). Only what the caller
    sent or may know already."""
    c, who = ctx(), auth.caller()
    when = to_datetime(c.clocks.realtime(), c.db.tz).isoformat(timespec="seconds")
    if who.session is not None:
        as_ = f"user {who.session.user.username!r} (session)"
    else:
        as_ = "no session" + (" (an unknown or expired cookie)" if who.stale_cookie else "")
    perms = ", ".join(p for p in PERMISSIONS if p in who.permissions) or "none"
    lines = [
        f"when: {when}",
        f"host: {request.headers.get('Host')!r}",
        f"addr: {who.address!r}",
        f"user_agent: {who.user_agent!r}",
        f"secure: {str(who.secure).lower()}",
        f"caller: {as_}; permissions: {perms}",
    ]
    resp = text_response(200, "\n".join(lines))
    resp.headers["Cache-Control"] = "private, no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
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
_SUBSET_FIELDS = ("username", "disabled", "password", "permissions", "preferences",
                  "nvrCameras")
#: cameras a user's limit may name
MAX_LIMIT_CAMERAS = 1000


def cameras_json(cameras: frozenset[uuid.UUID] | None) -> list[str] | None:
    return None if cameras is None else sorted(str(c) for c in cameras)


def user_json(u: User) -> dict[str, Any]:
    """A Moonfire ``UserSubset`` with every field, plus ``nvrCameras`` (the camera limit:
    null for every camera, else the uuids of the only cameras its permissions apply to)."""
    return {
        "username": u.username,
        "disabled": u.disabled,
        "password": PASSWORD_PLACEHOLDER if u.password_hash else None,
        "permissions": permissions_json(u.permissions),
        "preferences": u.preferences,
        "nvrCameras": cameras_json(u.cameras),
    }


def parse_cameras(v: Any, what: str) -> frozenset[uuid.UUID] | None:
    """``nvrCameras`` from a request: null, or a list of camera uuids (which need not
    exist: a limit may name a camera added later)."""
    if v is None:
        return None
    if not isinstance(v, list) or len(v) > MAX_LIMIT_CAMERAS:
        raise errors.InvalidArgument(
            f"{what}.nvrCameras must be null or a list of at most {MAX_LIMIT_CAMERAS} uuids"
        )
    out = set()
    for item in v:
        try:
            out.add(uuid.UUID(item) if isinstance(item, str) and len(item) <= 64 else None)
        except ValueError:
            out.add(None)
    if None in out:
        raise errors.InvalidArgument(f"{what}.nvrCameras must hold camera uuids")
    return frozenset(c for c in out if c is not None)


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
        elif key == "nvrCameras":
            v = parse_cameras(v, what)
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
    pw_hash = None if password is None else await _hash(a.hash_password, password)
    user = a.add_user(
        subset["username"],
        password_hash=pw_hash,
        permissions=subset.get("permissions", frozenset()),
        disabled=subset.get("disabled", False),
        preferences=subset.get("preferences"),
        cameras=subset.get("nvrCameras"),
    )
    log.info("user %r added by %s", user.username, _actor())
    return Response("", status=204, headers={"Location": f"/api/users/{user.id}"})


def _actor() -> str:
    return auth.actor()


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
        for key in ("disabled", "permissions", "username", "nvrCameras"):
            if key in update:
                raise errors.PermissionDenied(f"changing {key} needs the adminUsers permission")
        if "password" in update and "password" not in pre:
            raise errors.PermissionDenied(
                "changing your password needs the current one as precondition.password"
            )
    a = _auth()
    user = a.get_user(user_id)
    new_password = update.get("password")
    if isinstance(pre.get("password"), str):
        # A password guess: rate-limited and counted like a login.
        limiter = _limiter()
        attempt = limiter.admit(who.address, user.username)
        if not await _hash(a.verify_password, user, pre["password"]):
            limiter.failed(attempt)
            a.note_login_failure(user)
            log.warning("wrong password in a precondition for %r by %s", user.username, _actor())
            raise errors.FailedPrecondition("precondition failed: password")
        limiter.succeeded(attempt)
    new_hash = None if new_password is None else await _hash(a.hash_password, new_password)
    current = a.get_user(user_id)  # again: hashing let other requests run
    if current.password_id != user.password_id:
        raise errors.FailedPrecondition("precondition failed: the password changed meanwhile")
    have = user_json(current)
    failed = [
        k
        for k, v in pre.items()
        if (k == "password" and v is None and current.password_hash is not None)
        or (k == "permissions" and v != current.permissions)
        or (k == "nvrCameras" and v != current.cameras)
        or (k not in ("password", "permissions", "nvrCameras") and have[k] != v)
    ]
    if failed:
        raise errors.FailedPrecondition(f"precondition failed: {', '.join(failed)}")
    if any(k in update for k in ("username", "disabled", "permissions", "preferences",
                                 "nvrCameras")):
        a.update_user(
            user_id,
            username=update.get("username"),
            disabled=update.get("disabled"),
            permissions=update.get("permissions"),
            preferences=update.get("preferences"),
            cameras=update.get("nvrCameras", dbauth.KEEP),
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
