"""Configuration changes as the API's JSON describes them: cameras, streams,
sample-file directories, signals and signal types, archives (docs/api.md, "Configuration
(extensions)").

What belongs here: reading a change's JSON body field by field (a wrong field is
``InvalidArgument`` naming it), checking it against the database, and committing it in
one transaction. Every check runs before anything is written, so a change that cannot
apply changes nothing. One code path for the three ways a change arrives: the HTTP API
(``nvr.web.config_api``), the daemon's control socket (the same API on a unix socket)
and ``nvr config`` with the daemon stopped (``nvr.offline.admin``). Not here: applying a
change to running tasks (``nvr.supervisor``), HTTP, files other than a new directory's
meta file. Imports: ``base``, ``db``, ``storage``.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nvr.base import errors
from nvr.db.archives import Archive, ArchiveConfig
from nvr.db.database import Database
from nvr.db.signals import MAX_STATE, RELATIONS, Signal, SignalState, SignalType
from nvr.db.types import (
    MOTION_CELLS,
    MOTION_STREAMS,
    STREAM_MODES,
    STREAM_TYPES,
    Camera,
    CameraConfig,
    StreamConfig,
)
from nvr.storage.dir import SampleFileDir

#: the largest byte budget or age (days) a stream may have
MAX_RETAIN_BYTES = 1 << 62
MAX_RETAIN_DAYS = 100 * 366
MAX_FLUSH_IF_SEC = 24 * 3600
MAX_TEXT = 4096
#: the most cameras one signal may be tied to
MAX_SIGNAL_CAMERAS = 1000

_CAMERA_FIELDS = ("shortName", "description", "config", "streams")
_CONFIG_FIELDS = (
    "username", "password", "onvifBaseUrl", "motionSignal", "motion", "motionSensitivity",
    "motionMask",
)
_STREAM_FIELDS = (
    "url", "mode", "sampleFileDirId", "retainBytes", "retainDays", "flushIfSec", "rtspTransport",
)


def _only(obj: Any, known: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise errors.InvalidArgument(f"{what} must be a JSON object")
    for key in obj:
        if key not in known:
            raise errors.InvalidArgument(f"unknown field {what}.{key} (known: {', '.join(known)})")
    return obj


def _text(value: Any, what: str, *, empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or (not empty and not value):
        raise errors.InvalidArgument(
            f"{what} must be a {'' if empty else 'non-empty '}string of at most {MAX_TEXT} "
            "characters"
        )
    return value


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None or value == "" else _text(value, what)


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise errors.InvalidArgument(f"{what} must be an integer from {lo} to {hi}")
    return value


def check_url(url: str, what: str) -> str:
    if not url.lower().startswith(("rtsp://", "rtsps://", "file:", "/")):
        raise errors.InvalidArgument(f"{what} {url!r} must be rtsp://, rtsps:// or a file")
    if any(c in url for c in "\r\n\0"):
        raise errors.InvalidArgument(f"{what} must be one line")
    return url


def _camera_config(raw: Any, old: CameraConfig) -> CameraConfig:
    d = _only(raw, _CONFIG_FIELDS, "camera.config")
    new = replace(old)
    if "username" in d:
        new.username = _optional_text(d["username"], "camera.config.username")
    if "password" in d:
        new.password = _optional_text(d["password"], "camera.config.password")
    if "onvifBaseUrl" in d:
        new.onvif_url = _optional_text(d["onvifBaseUrl"], "camera.config.onvifBaseUrl")
    if "motionSignal" in d:  # the signal its motion detector writes (None: the default)
        new.motion_signal = _optional_text(d["motionSignal"], "camera.config.motionSignal")
    if "motion" in d:  # the stream motion analysis decodes (None: off)
        if d["motion"] not in (None, *MOTION_STREAMS):
            raise errors.InvalidArgument(
                f"camera.config.motion must be one of {', '.join(MOTION_STREAMS)} or null"
            )
        new.motion = d["motion"]
    if "motionSensitivity" in d:
        value = d["motionSensitivity"]
        new.motion_sensitivity = (
            None if value is None else _int(value, "camera.config.motionSensitivity", 1, 10)
        )
    if "motionMask" in d:  # cells of the grid to ignore ([] or null: none)
        mask = d["motionMask"]
        if mask is not None and (not isinstance(mask, list) or len(mask) > MOTION_CELLS):
            raise errors.InvalidArgument(
                f"camera.config.motionMask must be a list of at most {MOTION_CELLS} cells"
            )
        cells = {_int(c, "camera.config.motionMask[]", 0, MOTION_CELLS - 1) for c in mask or ()}
        new.motion_mask = sorted(cells) or None
    return new


def _stream(
    db: Database, type_: str, raw: Any, old: StreamConfig | None, old_dir: int | None
) -> tuple[int | None, StreamConfig]:
    """A stream's directory and config: ``old`` (None: a new stream) with ``raw`` applied."""
    what = f"camera.streams.{type_}"
    if type_ not in STREAM_TYPES:
        known = ", ".join(STREAM_TYPES)
        raise errors.InvalidArgument(f"{what}: stream type must be one of {known}")
    d = _only(raw, _STREAM_FIELDS, what)
    cfg = replace(old) if old is not None else StreamConfig(url="")
    dir_id = old_dir
    if "url" in d:
        cfg.url = check_url(_text(d["url"], f"{what}.url", empty=False), f"{what}.url")
    elif old is None:
        raise errors.InvalidArgument(f"{what}.url is required for a new stream")
    if "mode" in d:
        if d["mode"] not in STREAM_MODES:
            raise errors.InvalidArgument(f"{what}.mode must be one of {', '.join(STREAM_MODES)}")
        cfg.mode = d["mode"]
    if "sampleFileDirId" in d:
        dir_id = _int(d["sampleFileDirId"], f"{what}.sampleFileDirId", 0, 1 << 62)
        if dir_id not in db.dirs:
            raise errors.NotFound(f"{what}.sampleFileDirId: no sample file directory {dir_id}")
    if "retainBytes" in d:
        cfg.retain_bytes = _int(d["retainBytes"], f"{what}.retainBytes", 0, MAX_RETAIN_BYTES)
    if "retainDays" in d:
        days = d["retainDays"]
        cfg.retain_days = (
            None if days in (None, 0) else _int(days, f"{what}.retainDays", 0, MAX_RETAIN_DAYS)
        )
    if "flushIfSec" in d:
        cfg.flush_if_sec = _int(d["flushIfSec"], f"{what}.flushIfSec", 0, MAX_FLUSH_IF_SEC)
    if "rtspTransport" in d:
        if d["rtspTransport"] not in ("tcp", "udp"):
            raise errors.InvalidArgument(f"{what}.rtspTransport must be tcp or udp")
        cfg.rtsp_transport = d["rtspTransport"]
    cfg.validate()
    if cfg.mode == "record" and dir_id is None:
        raise errors.InvalidArgument(f"{what} records but names no sampleFileDirId")
    return dir_id, cfg


def add_camera(db: Database, body: Any) -> Camera:
    """``{"shortName", "description"?, "config"?, "streams": {"main": {...}}}``."""
    d = _only(body, _CAMERA_FIELDS, "camera")
    name = _text(d.get("shortName"), "camera.shortName", empty=False)
    streams_raw = d.get("streams")
    if not isinstance(streams_raw, dict) or not streams_raw:
        raise errors.InvalidArgument("camera.streams must name at least one stream")
    streams = {t: _stream(db, t, s, None, None) for t, s in streams_raw.items()}
    return db.add_camera(
        name,
        description=_text(d.get("description", ""), "camera.description"),
        config=_camera_config(d.get("config", {}), CameraConfig()),
        streams=streams,
    )


def update_camera(db: Database, cam: Camera, update: Any) -> Camera:
    """Applies the fields present in ``update`` (same shape as ``add_camera``'s; each
    stream's fields too). A new stream type is added; a stream with recordings cannot
    move to another directory."""
    d = _only(update, _CAMERA_FIELDS, "update")
    name = None if "shortName" not in d else _text(d["shortName"], "camera.shortName", empty=False)
    description = (
        None if "description" not in d else _text(d["description"], "camera.description")
    )
    config = _camera_config(d["config"], cam.config) if "config" in d else None
    streams: dict[str, tuple[int | None, StreamConfig]] = {}
    raw_streams = d.get("streams", {})
    if not isinstance(raw_streams, dict):
        raise errors.InvalidArgument("camera.streams must be a JSON object")
    for t, s in raw_streams.items():
        sid = cam.streams.get(t)
        old = db.streams[sid] if sid is not None else None
        default_dir = old.sample_file_dir_id if old is not None else _camera_dir(db, cam)
        streams[t] = _stream(db, t, s, old.config if old else None, default_dir)
    return db.update_camera(
        cam.id, short_name=name, description=description, config=config, streams=streams
    )


def _camera_dir(db: Database, cam: Camera) -> int | None:
    for sid in cam.streams.values():
        dir_id = db.streams[sid].sample_file_dir_id
        if dir_id is not None:
            return dir_id
    return None


def recordings_of(db: Database, cam: Camera) -> int:
    """Committed and pending recordings of the camera's streams."""
    streams = [db.streams[sid] for sid in cam.streams.values()]
    return sum(s.committed.num_recordings + len(s.pending) for s in streams)


def check_removable(
    db: Database, cam: Camera, *, delete_recordings: bool, unprotect: bool = False
) -> int:
    """Refuses removing a camera with recordings unless ``delete_recordings``, and one
    whose recordings have active protected ranges unless ``unprotect``; returns how many
    recordings it has."""
    n = recordings_of(db, cam)
    if n and not delete_recordings:
        raise errors.FailedPrecondition(
            f"camera {cam.short_name!r} has {n} recordings; remove it with deleteRecordings "
            "(nvr config camera remove --delete-recordings) to delete them too"
        )
    ranges = db.active_ranges(cam.id)
    if n and ranges and not unprotect:
        raise errors.FailedPrecondition(
            f"camera {cam.short_name!r} has {len(ranges)} protected ranges; pass --unprotect "
            "(API: unprotect) to remove them and delete the protected video too"
        )
    return n


def unprotect_all(db: Database, cam: Camera, *, by: str) -> None:
    """Removes the camera's active protected ranges (each logged with ``by``), before its
    recordings are deleted with it."""
    for r in db.active_ranges(cam.id):
        db.unprotect(cam.id, r.id, by=by)


def delete_recordings_and_camera(db: Database, cam: Camera) -> None:
    """Plans every committed recording of the camera for deletion, commits that (rows go
    to ``garbage``, whose files the directory's syncer or the caller unlinks) and deletes
    the camera. Its streams must have nothing pending (their streamers stopped and their
    recordings committed)."""
    stream_ids = list(cam.streams.values())
    if any(db.streams[sid].pending for sid in stream_ids):
        raise errors.Unavailable(f"camera {cam.short_name!r} still has uncommitted recordings")
    if any(db.plan_delete_all_recordings(sid) for sid in stream_ids):
        db.flush(f"deleting the recordings of camera {cam.short_name}")
    db.delete_camera(cam.id)


# ----------------------------------------------------------------------------- directories


@dataclass(frozen=True, slots=True)
class NewDir:
    path: str
    uuid: uuidlib.UUID


def check_new_dir(db: Database, raw_path: Any) -> NewDir:
    """Validates a directory to add: an absolute path not configured yet."""
    path = _text(raw_path, "path", empty=False)
    if not path.startswith("/") or "\0" in path:
        raise errors.InvalidArgument(f"path {path!r} must be absolute")
    norm = str(Path(path))
    if any(d.path == norm for d in db.dirs.values()):
        raise errors.AlreadyExists(f"{norm} is already a sample file directory")
    return NewDir(norm, uuidlib.uuid4())


def create_dir(db_uuid: uuidlib.UUID, new: NewDir) -> None:
    """Blocking: makes the directory (or takes an empty one) with its meta file. A path
    that cannot be one (a file on the way, no permission) is the request's problem
    (``FailedPrecondition``), not the server's."""
    try:
        SampleFileDir.create(new.path, db_uuid, new.uuid)
    except (errors.Internal, errors.PermissionDenied) as e:
        raise errors.FailedPrecondition(str(e)) from None


def commit_dir(db: Database, new: NewDir) -> int:
    return db.add_sample_file_dir(new.path, new.uuid).id


def check_dir_removable(db: Database, dir_id: int) -> None:
    d = db.dirs.get(dir_id)
    if d is None:
        raise errors.NotFound(f"no sample file directory {dir_id}")
    streams = db.streams_in_dir(dir_id)
    if streams:
        cams = sorted({db.cameras[s.camera_id].short_name for s in streams})
        raise errors.FailedPrecondition(
            f"sample file directory {d.path} is used by cameras {', '.join(cams)}"
        )
    if d.garbage_needs_unlink or d.garbage_unlinked:
        raise errors.Unavailable(
            f"sample file directory {d.path} still has deleted files to forget; try again soon"
        )


# ----------------------------------------------------------------------------- signals

_SIGNAL_FIELDS = ("shortName", "type", "cameras")
_TYPE_FIELDS = ("shortName", "states")
_STATE_FIELDS = ("value", "name", "motion", "color")


def add_signal_type(db: Database, body: Any) -> SignalType:
    """``{"shortName", "states": [{"value", "name", "motion"?, "color"?}, ...]}``."""
    d = _only(body, _TYPE_FIELDS, "signalType")
    name = _text(d.get("shortName"), "signalType.shortName", empty=False)
    raw_states = d.get("states")
    if not isinstance(raw_states, list) or not 1 <= len(raw_states) <= MAX_STATE:
        raise errors.InvalidArgument(
            f"signalType.states must be a list of 1 to {MAX_STATE} states"
        )
    states = []
    for i, raw in enumerate(raw_states):
        what = f"signalType.states[{i}]"
        s = _only(raw, _STATE_FIELDS, what)
        motion = s.get("motion", False)
        if not isinstance(motion, bool):
            raise errors.InvalidArgument(f"{what}.motion must be true or false")
        states.append(SignalState(
            _int(s.get("value"), f"{what}.value", 1, MAX_STATE),
            _text(s.get("name"), f"{what}.name", empty=False),
            motion,
            _optional_text(s.get("color"), f"{what}.color"),
        ))  # fmt: skip
    return db.add_signal_type(name, states)


def signal_type(db: Database, ref: Any, what: str) -> SignalType:
    """A signal type named by its uuid or its short name."""
    ref = _text(ref, what, empty=False)
    for t in db.signal_types.values():
        if str(t.uuid) == ref.lower() or t.short_name == ref:
            return t
    raise errors.NotFound(f"{what}: no signal type named {ref!r}")


def add_signal(
    db: Database, body: Any, camera: Callable[[str], Camera] | None = None
) -> Signal:
    """``{"shortName", "type"?, "cameras"?: {camera uuid: "direct"|"indirect"}}``;
    ``type`` is a signal type's uuid or name (default: nvr's motion type). ``camera``
    resolves a uuid (the web's applies the caller's camera limit)."""
    d = _only(body, _SIGNAL_FIELDS, "signal")
    name = _text(d.get("shortName"), "signal.shortName", empty=False)
    cams = d.get("cameras", {})
    if not isinstance(cams, dict) or len(cams) > MAX_SIGNAL_CAMERAS:
        raise errors.InvalidArgument(
            f"signal.cameras must map at most {MAX_SIGNAL_CAMERAS} camera uuids to relations"
        )
    find = camera or (lambda u: _camera_by_uuid(db, u))
    cameras: dict[int, str] = {}
    for u, relation in cams.items():
        if relation not in RELATIONS:
            raise errors.InvalidArgument(
                f"signal.cameras[{u!r}] must be one of {', '.join(RELATIONS)}"
            )
        cameras[find(u).id] = relation
    t = (
        signal_type(db, d["type"], "signal.type") if d.get("type") is not None
        else db.motion_signal_type()
    )  # fmt: skip
    return db.add_signal(name, t.id, cameras)


def _camera_by_uuid(db: Database, text: str) -> Camera:
    try:
        return db.camera_by_uuid(uuidlib.UUID(text))
    except ValueError:
        raise errors.NotFound(f"no camera {text!r}") from None


# ----------------------------------------------------------------------------- archives

#: the most streams one archive may be told to copy in one request
MAX_ARCHIVE_STREAMS = 1000
#: an archive's JSON field -> its ``ArchiveConfig`` attribute (text fields)
_ARCHIVE_TEXT = {"endpoint": "endpoint", "bucket": "bucket", "prefix": "prefix",
                 "region": "region", "accessKey": "access_key", "secretKey": "secret_key"}
#: numeric fields: JSON name -> (attribute, largest); 0 or null clears one
_ARCHIVE_LIMITS = {"retainDays": ("retain_days", MAX_RETAIN_DAYS),
                   "retainBytes": ("retain_bytes", MAX_RETAIN_BYTES),
                   "maxRate": ("max_rate", MAX_RETAIN_BYTES)}
_ARCHIVE_FIELDS = ("shortName", *_ARCHIVE_TEXT, *_ARCHIVE_LIMITS, "requireArchived", "streams")


@dataclass(frozen=True, slots=True)
class ArchiveChange:
    """An archive's new configuration and streams (None: unchanged), validated."""

    config: ArchiveConfig
    stream_ids: list[int] | None


def archive_change(
    db: Database, body: Any, old: Archive | None,
    camera: Callable[[str], Camera] | None = None,
) -> ArchiveChange:  # fmt: skip
    """Reads ``{"shortName", "endpoint", "bucket", "prefix"?, "region"?, "accessKey",
    "secretKey", "retainDays"?, "retainBytes"?, "maxRate"?, "requireArchived"?, "streams"?:
    [{"cameraUuid", "type"?}]}`` (an update: only the fields to change, no name) over
    ``old`` (None: a new archive) and validates the result. Messages never quote a key."""
    what = "archive" if old is None else "update"
    d = _only(body, _ARCHIVE_FIELDS if old is None else _ARCHIVE_FIELDS[1:], what)
    cfg = replace(old.config) if old is not None else ArchiveConfig()
    for key, attr in _ARCHIVE_TEXT.items():
        if key in d:
            setattr(cfg, attr, _text(d[key], f"{what}.{key}", empty=key == "prefix"))
    for key, (attr, hi) in _ARCHIVE_LIMITS.items():
        if key in d:
            v = d[key]
            setattr(cfg, attr, None if v in (None, 0) else _int(v, f"{what}.{key}", 0, hi))
    if "requireArchived" in d:
        if not isinstance(d["requireArchived"], bool):
            raise errors.InvalidArgument(f"{what}.requireArchived must be true or false")
        cfg.require_archived = d["requireArchived"]
    cfg = cfg.normalized()
    cfg.validate()
    ids = None
    if "streams" in d:
        raw = d["streams"]
        if not isinstance(raw, list) or len(raw) > MAX_ARCHIVE_STREAMS:
            raise errors.InvalidArgument(
                f"{what}.streams must be a list of at most {MAX_ARCHIVE_STREAMS} "
                '{"cameraUuid", "type"} objects'
            )
        find = camera or (lambda u: _camera_by_uuid(db, u))
        ids = []
        for s in raw:
            s = _only(s, ("cameraUuid", "type"), f"{what}.streams[]")
            cam = find(_text(s.get("cameraUuid"), f"{what}.streams[].cameraUuid", empty=False))
            type_ = s.get("type", "main")
            sid = cam.streams.get(type_) if isinstance(type_, str) else None
            if sid is None:
                raise errors.NotFound(f"camera {cam.short_name!r} has no {type_} stream")
            ids.append(sid)
    return ArchiveChange(cfg, ids)


def add_archive(
    db: Database, body: Any, camera: Callable[[str], Camera] | None = None
) -> Archive:
    """Adds the archive ``body`` describes (``archive_change``; ``streams`` omitted: every
    main stream)."""
    change = archive_change(db, body, None, camera)
    name = _text(body.get("shortName"), "archive.shortName", empty=False)
    return db.add_archive(name, change.config, change.stream_ids)


def archive_by_ref(db: Database, ref: str) -> Archive:
    """An archive named by its uuid or its short name."""
    for a in db.archives.values():
        if str(a.uuid) == ref.lower() or a.short_name == ref:
            return a
    raise errors.NotFound(f"no archive named {ref!r}")
