"""JSON routes compatible with Moonfire NVR's API (``ref/api.md``, version 0.7).

``GET /api/``, ``GET /api/cameras/<uuid>/`` and ``GET /api/cameras/<uuid>/<stream>/
recordings`` with the same field names and semantics. Extensions use new names:
``nvrStatus`` on each stream (the live recording state), ``nvrSampleFileDir`` (its
directory's id, and path with ``cameraConfigs``). Everything is served from the
database's in-memory summaries and its covering index; nothing scans the table.
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint, current_app, request

from nvr.base import errors
from nvr.config import PERMISSIONS
from nvr.db.database import FLAG_TRAILING_ZERO, Camera, ListedRecording, Stream, day_bounds
from nvr.db.recording import VideoSampleEntry
from nvr.web.app import WebContext, require

blueprint = Blueprint("api", __name__)

MAX_TIME = 1 << 62


def ctx() -> WebContext:
    context: WebContext = current_app.config["nvr"]
    return context


def bool_arg(name: str) -> bool:
    value = request.args.get(name, "false")
    if value not in ("true", "false"):
        raise errors.InvalidArgument(f"{name} must be true or false")
    return value == "true"


def int_arg(name: str, default: int, *, minimum: int = 0, maximum: int = MAX_TIME) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise errors.InvalidArgument(f"{name} must be an integer") from None
    if not minimum <= value <= maximum:
        raise errors.InvalidArgument(f"{name} must be between {minimum} and {maximum}")
    return value


def camera_by_uuid(text: str) -> Camera:
    try:
        u = uuid.UUID(text)
    except ValueError:
        raise errors.NotFound(f"no camera {text!r}") from None
    return ctx().db.camera_by_uuid(u)


def stream_of(cam: Camera, type_: str) -> Stream:
    sid = cam.streams.get(type_)
    if sid is None:
        raise errors.NotFound(f"camera {cam.short_name} has no {type_!r} stream")
    return ctx().db.streams[sid]


def permissions_json() -> dict[str, bool]:
    granted = ctx().bind.allow_unauthenticated
    return {p: p in granted for p in PERMISSIONS}


def require_any_permission() -> None:
    """The top-level listing needs a session or some permission granted by the bind."""
    if not ctx().bind.allow_unauthenticated:
        require(ctx(), "viewVideo")


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
        out["nvrStatus"] = status
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
    require_any_permission()
    days = bool_arg("days")
    configs = bool_arg("cameraConfigs")
    if configs:
        require(ctx(), "readCameraConfigs")
    c = ctx()
    return {
        "timeZoneName": c.time_zone_name,
        "serverVersion": c.server_version,
        "cameras": [camera_json(cam, days=days, config=configs) for cam in c.db.cameras.values()],
        "signals": [],
        "signalTypes": [],
        "permissions": permissions_json(),
    }


@blueprint.get("/api/cameras/<camera_uuid>/")
async def camera(camera_uuid: str) -> dict[str, Any]:
    require_any_permission()
    out = camera_json(camera_by_uuid(camera_uuid), days=True, config=False)
    del out["uuid"], out["id"]
    return out


@blueprint.get("/api/cameras/<camera_uuid>/<stream_type>/recordings")
async def recordings(camera_uuid: str, stream_type: str) -> dict[str, Any]:
    require(ctx(), "viewVideo")
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
