"""Configuration changes made while the daemon is stopped (``nvr config ...``).

Each function opens what it needs, changes it and closes it again, so the CLI stays a
thin layer of argument parsing and printing. Directories are created with their meta file
(``SampleFileDir.create``) before the database learns of them; removing a camera's
recordings goes through the same garbage sequence as retention (rows to ``garbage`` in
one transaction, unlink, fsync, forget) so a crash at any point leaves a clean state.
Users and sessions for scripts (``nvr config user ...``, ``nvr login``) go through
``nvr.db.auth`` like the web routes do.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType

from nvr.base import errors
from nvr.base.clock import RealClocks
from nvr.base.time90k import zone
from nvr.db.auth import FLAG_HTTP_ONLY, FLAG_SAME_SITE_LAX, KEEP, SESSION_COOKIE, Auth, User
from nvr.db.database import Database
from nvr.db.types import Camera, CameraConfig, SampleFileDirRow, StreamConfig
from nvr.storage.dir import SampleFileDir, open_for_database
from nvr.storage.forecast import StreamForecast, stream_forecast


def open_db(db_dir: Path, *, read_only: bool = False) -> Database:
    clocks = RealClocks()
    return Database.open(db_dir, read_only=read_only, tz=zone(None), now=clocks.realtime)


def add_dir(db_dir: Path, path: Path) -> SampleFileDirRow:
    """Creates (or adopts an empty) sample-file directory and registers it."""
    path = path.absolute()
    with open_db(db_dir) as db:
        if any(d.path == str(path) for d in db.dirs.values()):
            raise errors.AlreadyExists(f"{path} is already a sample file directory")
        dir_uuid = uuid.uuid4()
        SampleFileDir.create(path, db.uuid, dir_uuid)
        return db.add_sample_file_dir(str(path), dir_uuid)


def find_dir(db: Database, path: Path) -> SampleFileDirRow:
    want = str(path.absolute())
    for d in db.dirs.values():
        if d.path == want:
            return d
    raise errors.NotFound(
        f"{want} is not a sample file directory; add it with `nvr config dir add`"
    )


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What the CLI says about one stream of a camera."""

    url: str
    retain_bytes: int
    flush_if_sec: int = 60
    rtsp_transport: str = "tcp"
    mode: str = "record"
    retain_days: int | None = None


@dataclass(frozen=True, slots=True)
class MotionSpec:
    """Motion settings of ``nvr config camera add|edit``; None leaves a field as it is."""

    stream: str | None = None  # "sub", "main" or "off"
    sensitivity: int | None = None
    mask: list[int] | None = None

    def apply(self, config: CameraConfig) -> CameraConfig:
        if self.stream is not None:
            config = dataclasses.replace(
                config, motion=None if self.stream == "off" else self.stream
            )
        if self.sensitivity is not None:
            config = dataclasses.replace(config, motion_sensitivity=self.sensitivity)
        if self.mask is not None:
            config = dataclasses.replace(config, motion_mask=sorted(set(self.mask)) or None)
        config.validate()
        return config


def add_camera(
    db_dir: Path,
    *,
    name: str,
    dir_path: Path,
    streams: dict[str, StreamSpec],
    description: str = "",
    username: str | None = None,
    password: str | None = None,
    motion: MotionSpec | None = None,
) -> Camera:
    if "main" not in streams:
        raise errors.InvalidArgument("a camera needs a main stream URL")
    config = CameraConfig(username=username, password=password)
    if motion is not None:
        config = motion.apply(config)
    with open_db(db_dir) as db:
        d = find_dir(db, dir_path)
        return db.add_camera(
            name,
            description=description,
            config=config,
            streams={t: (d.id, _stream_config(s)) for t, s in streams.items()},
        )


def _stream_config(s: StreamSpec) -> StreamConfig:
    for scheme in ("rtsp://", "rtsps://", "file:", "/"):
        if s.url.lower().startswith(scheme):
            break
    else:
        raise errors.InvalidArgument(f"stream URL {s.url!r} must be rtsp://, rtsps:// or a file")
    cfg = StreamConfig(
        url=s.url,
        mode=s.mode,
        retain_bytes=s.retain_bytes,
        retain_days=s.retain_days,
        flush_if_sec=s.flush_if_sec,
        rtsp_transport=s.rtsp_transport,
    )
    cfg.validate()
    return cfg


def edit_camera(
    db_dir: Path,
    name: str,
    *,
    new_name: str | None = None,
    description: str | None = None,
    username: str | None = None,
    password: str | None = None,
    urls: dict[str, str] | None = None,
    retain_bytes: dict[str, int] | None = None,
    flush_if_sec: int | None = None,
    dir_path: Path | None = None,
    retain_days: dict[str, int | None] | None = None,
    motion: MotionSpec | None = None,
    motion_signal: str | None = None,
) -> Camera:
    """Changes the named camera; only the given fields change (of ``motion``, the
    fields that are not None). ``urls``,
    ``retain_bytes`` and ``retain_days`` (0 or None: no age limit) are by stream type;
    new stream types in ``urls`` are added (they need
    a directory: the camera's, or ``dir_path``). ``motion_signal`` names the signal its
    motion detector writes ("": the default, "<camera> motion")."""
    with open_db(db_dir) as db:
        cam = db.camera_by_name(name)
        config = cam.config
        if username is not None:
            config = dataclasses.replace(config, username=username)
        if password is not None:
            config = dataclasses.replace(config, password=password)
        if motion is not None:
            config = motion.apply(config)
        if motion_signal is not None:
            config = dataclasses.replace(config, motion_signal=motion_signal or None)
        changes: dict[str, tuple[int | None, StreamConfig]] = {}
        types = set(cam.streams) | set(urls or {})
        for t in sorted(types):
            sid = cam.streams.get(t)
            old = db.streams[sid] if sid is not None else None
            dir_id = old.sample_file_dir_id if old else None
            if dir_path is not None:
                dir_id = find_dir(db, dir_path).id
            elif dir_id is None and cam.streams:
                dir_id = db.streams[next(iter(cam.streams.values()))].sample_file_dir_id
            cfg = StreamConfig.from_json(old.config.to_json()) if old else StreamConfig()
            if urls and t in urls:
                cfg = _stream_config(
                    StreamSpec(urls[t], cfg.retain_bytes, cfg.flush_if_sec,
                               retain_days=cfg.retain_days)
                )
            if retain_bytes and t in retain_bytes:
                cfg.retain_bytes = retain_bytes[t]
            if retain_days and t in retain_days:
                cfg.retain_days = retain_days[t] or None
            if flush_if_sec is not None:
                cfg.flush_if_sec = flush_if_sec
            cfg.validate()
            changes[t] = (dir_id, cfg)
        return db.update_camera(
            cam.id, short_name=new_name, description=description, config=config, streams=changes
        )


def remove_camera(
    db_dir: Path, name: str, *, delete_recordings: bool, unprotect: bool = False
) -> int:
    """Removes a camera. With recordings it is refused unless ``delete_recordings``; then
    its recordings are deleted first, which is refused while it has active protected
    ranges unless ``unprotect`` (they are removed first, logged). Returns the number of
    recordings deleted."""
    with open_db(db_dir) as db:
        cam = db.camera_by_name(name)
        streams = [db.streams[sid] for sid in cam.streams.values()]
        count = sum(s.committed.num_recordings for s in streams)
        if count and not delete_recordings:
            raise errors.FailedPrecondition(
                f"camera {name!r} has {count} recordings; pass --delete-recordings to delete "
                "them with the camera"
            )
        ranges = db.active_ranges(cam.id)
        if count and ranges:
            if not unprotect:
                raise errors.FailedPrecondition(
                    f"camera {name!r} has {len(ranges)} protected ranges; pass --unprotect "
                    "to remove them and delete the protected video too"
                )
            for r in ranges:
                db.unprotect(cam.id, r.id, by=f"nvr config camera remove (uid {os.getuid()})")
        if count:
            _delete_recordings(db, [s.id for s in streams])
        db.delete_camera(cam.id)
        return count


def _delete_recordings(db: Database, stream_ids: list[int]) -> None:
    dir_ids = {db.streams[sid].sample_file_dir_id for sid in stream_ids} - {None}
    dirs = {d: open_for_database(db, d, read_only=False) for d in dir_ids if d is not None}
    try:
        for sid in stream_ids:
            db.plan_delete_all_recordings(sid)
        db.flush("deleting recordings")
        for dir_id, sdir in dirs.items():
            garbage = sorted(db.dirs[dir_id].garbage_needs_unlink)
            for cid in garbage:
                sdir.unlink(cid)
            sdir.sync()
            db.mark_garbage_unlinked(dir_id, garbage)
        db.flush("forgetting deleted recordings")
    finally:
        for sdir in dirs.values():
            sdir.close()


# ----------------------------------------------------------------------------- users


def _auth(db: Database) -> Auth:
    return Auth(db, now=RealClocks().realtime)


def add_user(db_dir: Path, name: str, *, password: str | None, permissions: frozenset[str]) -> User:
    with open_db(db_dir) as db:
        a = _auth(db)
        pw_hash = None if password is None else a.hash_password(password)
        return a.add_user(name, password_hash=pw_hash, permissions=permissions)


def set_password(db_dir: Path, name: str, password: str | None) -> None:
    """Sets (None: clears) the password; every session of the user ends."""
    with open_db(db_dir) as db:
        a = _auth(db)
        user = a.user_by_name(name)
        a.set_password(user.id, None if password is None else a.hash_password(password))


def update_user(
    db_dir: Path,
    name: str,
    *,
    disabled: bool | None = None,
    permissions: frozenset[str] | None = None,
    cameras: list[str] | EllipsisType | None = ...,
) -> User:
    """Changes a user. ``cameras``: the only cameras (short names or uuids) its
    permissions apply to; None lifts the limit; ``...`` leaves it."""
    with open_db(db_dir) as db:
        a = _auth(db)
        limit = KEEP if cameras is ... else (
            None if cameras is None else frozenset(_camera_uuid(db, c) for c in cameras)
        )
        return a.update_user(
            a.user_by_name(name).id, disabled=disabled, permissions=permissions, cameras=limit
        )


def camera_forecast(db_dir: Path, name: str) -> list[tuple[str, StreamForecast]]:
    """Each stream's storage forecast (type, forecast) as of now, by stream type."""
    with open_db(db_dir, read_only=True) as db:
        cam = db.camera_by_name(name)
        now = RealClocks().realtime()
        return [(t, stream_forecast(db, sid, now)) for t, sid in sorted(cam.streams.items())]


def _camera_uuid(db: Database, name: str) -> uuid.UUID:
    """A camera named by short name or uuid (which must exist)."""
    try:
        return db.camera_by_uuid(uuid.UUID(name)).uuid
    except ValueError:
        return db.camera_by_name(name).uuid


def camera_names(db_dir: Path, uuids: frozenset[uuid.UUID]) -> list[str]:
    """Short names of the cameras (the uuid of any that no longer exists)."""
    with open_db(db_dir, read_only=True) as db:
        names = {c.uuid: c.short_name for c in db.cameras.values()}
    return sorted(names.get(u, str(u)) for u in uuids)


def remove_user(db_dir: Path, name: str) -> None:
    with open_db(db_dir) as db:
        a = _auth(db)
        a.remove_user(a.user_by_name(name).id)


def list_users(db_dir: Path) -> list[tuple[User, int]]:
    """Every user with its number of unrevoked sessions."""
    with open_db(db_dir, read_only=True) as db:
        a = _auth(db)
        counts = a.live_session_counts()
        return [(u, counts.get(u.id, 0)) for u in a.list_users()]


def mint_session(
    db_dir: Path, name: str, *, permissions: frozenset[str] | None, description: str
) -> tuple[str, int]:
    """A new session for scripts: its id and creation time (unix seconds)."""
    with open_db(db_dir) as db:
        a = _auth(db)
        session_id, session = a.create_session(
            a.user_by_name(name),
            flags=FLAG_HTTP_ONLY | FLAG_SAME_SITE_LAX,
            permissions=permissions,
            description=description,
        )
        return session_id, session.creation_time_sec


def write_cookie_jar(path: Path, session_id: str, *, domain: str, expires_sec: int) -> None:
    """A curl cookie jar (Netscape format) holding the session cookie, readable only by
    its owner: it is a credential."""
    text = (
        "# Netscape HTTP Cookie File\n"
        "# written by `nvr login`: a session credential, keep it private\n"
        f"#HttpOnly_{domain}\tFALSE\t/\tFALSE\t{expires_sec}\t{SESSION_COOKIE}\t{session_id}\n"
    )
    with errors.mapped_os_errors(f"writing cookie jar {path}"):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(text)
