"""Configuration changes made while the daemon is stopped (``nvr config ...``).

Each function opens what it needs, changes it and closes it again, so the CLI stays a
thin layer of argument parsing and printing. Cameras and directories change through
``nvr.reconfig`` with the same JSON bodies as the API's configuration routes (the CLI
sends those to a running daemon instead: ``nvr.cli.control``). Directories are created
with their meta file (``SampleFileDir.create``) before the database learns of them;
removing a camera's recordings goes through the same garbage sequence as retention (rows
to ``garbage`` in one transaction, unlink, fsync, forget) so a crash at any point leaves
a clean state. Users and sessions for scripts (``nvr config user ...``, ``nvr login``) go through
``nvr.db.auth`` like the web routes do.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import EllipsisType
from typing import Any

from nvr import reconfig
from nvr.base import errors
from nvr.base.clock import RealClocks
from nvr.base.time90k import zone
from nvr.db.auth import KEEP, SESSION_COOKIE, Auth, User
from nvr.db.database import Database
from nvr.db.types import Camera
from nvr.storage.dir import open_for_database
from nvr.storage.forecast import StreamForecast, stream_forecast


def open_db(db_dir: Path, *, read_only: bool = False, lock: bool = True) -> Database:
    clocks = RealClocks()
    return Database.open(
        db_dir, read_only=read_only, tz=zone(None), now=clocks.realtime, lock=lock
    )


def add_dir(db_dir: Path, path: Path) -> int:
    """Creates (or adopts an empty) sample-file directory and registers it."""
    with open_db(db_dir) as db:
        new = reconfig.check_new_dir(db, str(path.absolute()))
        reconfig.create_dir(db.uuid, new)
        return reconfig.commit_dir(db, new)


def remove_dir(db_dir: Path, dir_id: int) -> None:
    """Forgets an empty sample-file directory (its meta file stays on disk)."""
    with open_db(db_dir) as db:
        reconfig.check_dir_removable(db, dir_id)
        db.remove_sample_file_dir(dir_id)


def _camera(db: Database, camera_uuid: str) -> Camera:
    return db.camera_by_uuid(uuid.UUID(camera_uuid))


def add_camera(db_dir: Path, body: dict[str, Any]) -> Camera:
    """Adds a camera described as ``POST /api/nvr/cameras``'s ``camera``."""
    with open_db(db_dir) as db:
        return reconfig.add_camera(db, body)


def update_camera(db_dir: Path, camera_uuid: str, update: dict[str, Any]) -> Camera:
    """Changes a camera as ``PATCH /api/nvr/cameras/<uuid>``'s ``update`` says."""
    with open_db(db_dir) as db:
        return reconfig.update_camera(db, _camera(db, camera_uuid), update)


def remove_camera(
    db_dir: Path, camera_uuid: str, *, delete_recordings: bool, unprotect: bool = False
) -> int:
    """Removes a camera. With recordings it is refused unless ``delete_recordings``; then
    its recordings are deleted first, which is refused while it has active protected
    ranges unless ``unprotect`` (they are removed first, logged). Returns the number of
    recordings deleted."""
    with open_db(db_dir) as db:
        cam = _camera(db, camera_uuid)
        count = reconfig.check_removable(
            db, cam, delete_recordings=delete_recordings, unprotect=unprotect
        )
        if count:
            reconfig.unprotect_all(db, cam, by=f"nvr config camera remove (uid {os.getuid()})")
        if count:
            _delete_recordings(db, list(cam.streams.values()))
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
    """Each stream's storage forecast (type, forecast) as of now, by stream type (what is
    committed, without the lock: it works while the daemon runs)."""
    with open_db(db_dir, read_only=True, lock=False) as db:
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
    """Every user with its number of unrevoked sessions (as committed: works while the
    daemon runs)."""
    with open_db(db_dir, read_only=True, lock=False) as db:
        a = _auth(db)
        counts = a.live_session_counts()
        return [(u, counts.get(u.id, 0)) for u in a.list_users()]


def mint_session(
    db_dir: Path, name: str, *, permissions: frozenset[str] | None, description: str | None
) -> tuple[str, int]:
    """A new session for scripts: its id and creation time (unix seconds)."""
    with open_db(db_dir) as db:
        session_id, session = _auth(db).script_session(
            name, permissions=permissions, description=description
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
