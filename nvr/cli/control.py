"""Where ``nvr config`` sends a change: to the running daemon or to the database.

The database directory's lock tells whether a daemon runs (docs/design.md, "Live
configuration"). If one does, a change goes to the daemon's control socket (``control.sock`` in
the database directory, only its owner may connect) as a request to the configuration
routes of the HTTP API, so the daemon validates, commits and applies it exactly as for any
API client; otherwise ``nvr.offline.admin`` opens the database and makes the same change
through the same functions (``nvr.reconfig``). Either way the command sends the same JSON
body and prints the same result. Read-only commands (``list``) read what is committed
without the lock (``Database.open(lock=False)``) and work in both cases.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from nvr import reconfig
from nvr.base import errors
from nvr.config import control_socket_path
from nvr.db import connection
from nvr.db.auth import PERMISSIONS
from nvr.db.database import Database
from nvr.offline import admin

#: how long a request to the daemon may take (a removal waits for recordings to commit)
TIMEOUT_SEC = 60.0


def daemon_running(db_dir: Path) -> bool:
    """True while some process (the daemon) holds the database directory's lock."""
    if not (db_dir / connection.DB_FILE).exists():
        return False
    try:
        fd = connection.lock_dir(db_dir, exclusive=True)
    except errors.Unavailable:
        return True
    os.close(fd)
    return False


def peek(db_dir: Path) -> Database:
    """The database read-only, without the lock (what is committed, daemon or not)."""
    return admin.open_db(db_dir, read_only=True, lock=False)


@dataclass(frozen=True, slots=True)
class CameraRef:
    uuid: str
    name: str
    stream_types: frozenset[str]


def no_camera(name: str) -> errors.NvrError:
    return errors.NotFound(f"no camera named {name!r}")


def no_dir(path: Path) -> errors.NvrError:
    return errors.NotFound(
        f"{path} is not a sample file directory; add it with `nvr config dir add`"
    )


class Target(Protocol):
    """Where changes go (the daemon or the database); bodies as in docs/api.md."""

    def camera(self, name: str) -> CameraRef: ...

    def dir_id(self, path: Path) -> int: ...

    def add_camera(self, body: dict[str, Any]) -> CameraRef: ...

    def update_camera(self, cam: CameraRef, update: dict[str, Any]) -> None: ...

    def remove_camera(
        self, cam: CameraRef, *, delete_recordings: bool, unprotect: bool = False
    ) -> int: ...

    def add_dir(self, path: Path) -> int: ...

    def remove_dir(self, dir_id: int) -> None: ...

    def add_user(self, name: str, password: str | None, permissions: frozenset[str]) -> int: ...

    def set_password(self, name: str, password: str | None) -> None: ...

    def update_user(
        self, name: str, *, disabled: bool | None = None,
        permissions: frozenset[str] | None = None,
    ) -> None: ...  # fmt: skip

    def remove_user(self, name: str) -> None: ...

    def add_signal_type(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def remove_signal_type(self, type_uuid: str) -> None: ...

    def add_signal(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def remove_signal(self, signal_id: int) -> None: ...

    def login(
        self, name: str, permissions: frozenset[str] | None, description: str | None
    ) -> tuple[str, int]: ...

    def add_archive(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def update_archive(self, name: str, update: dict[str, Any]) -> None: ...

    def remove_archive(self, name: str) -> None: ...


def target(db_dir: Path) -> Target:
    return DaemonTarget(db_dir) if daemon_running(db_dir) else LocalTarget(db_dir)


class LocalTarget:
    """Changes straight to the database (no daemon runs)."""

    def __init__(self, db_dir: Path) -> None:
        self._db_dir = db_dir

    def camera(self, name: str) -> CameraRef:
        with peek(self._db_dir) as db:
            for c in db.cameras.values():
                if c.short_name == name:
                    return CameraRef(str(c.uuid), name, frozenset(c.streams))
        raise no_camera(name)

    def dir_id(self, path: Path) -> int:
        with peek(self._db_dir) as db:
            for d in db.dirs.values():
                if d.path == str(path):
                    return d.id
        raise no_dir(path)

    def add_camera(self, body: dict[str, Any]) -> CameraRef:
        cam = admin.add_camera(self._db_dir, body)
        return CameraRef(str(cam.uuid), cam.short_name, frozenset(cam.streams))

    def update_camera(self, cam: CameraRef, update: dict[str, Any]) -> None:
        admin.update_camera(self._db_dir, cam.uuid, update)

    def remove_camera(
        self, cam: CameraRef, *, delete_recordings: bool, unprotect: bool = False
    ) -> int:
        return admin.remove_camera(
            self._db_dir, cam.uuid, delete_recordings=delete_recordings, unprotect=unprotect
        )

    def add_dir(self, path: Path) -> int:
        return admin.add_dir(self._db_dir, path)

    def remove_dir(self, dir_id: int) -> None:
        admin.remove_dir(self._db_dir, dir_id)

    def add_user(self, name: str, password: str | None, permissions: frozenset[str]) -> int:
        return admin.add_user(self._db_dir, name, password=password, permissions=permissions).id

    def set_password(self, name: str, password: str | None) -> None:
        admin.set_password(self._db_dir, name, password)

    def update_user(
        self, name: str, *, disabled: bool | None = None,
        permissions: frozenset[str] | None = None,
    ) -> None:  # fmt: skip
        admin.update_user(self._db_dir, name, disabled=disabled, permissions=permissions)

    def remove_user(self, name: str) -> None:
        admin.remove_user(self._db_dir, name)

    def add_signal_type(self, body: dict[str, Any]) -> dict[str, Any]:
        with admin.open_db(self._db_dir) as db:
            t = reconfig.add_signal_type(db, body)
            return {"id": t.id, "uuid": str(t.uuid)}

    def remove_signal_type(self, type_uuid: str) -> None:
        with admin.open_db(self._db_dir) as db:
            db.remove_signal_type(reconfig.signal_type(db, type_uuid, "signal type").id)

    def add_signal(self, body: dict[str, Any]) -> dict[str, Any]:
        with admin.open_db(self._db_dir) as db:
            sig = reconfig.add_signal(db, body)
            return {"id": sig.id, "uuid": str(sig.uuid),
                    "type": str(db.signal_types[sig.type_id].uuid)}  # fmt: skip

    def remove_signal(self, signal_id: int) -> None:
        with admin.open_db(self._db_dir) as db:
            db.remove_signal(signal_id)

    def login(
        self, name: str, permissions: frozenset[str] | None, description: str | None
    ) -> tuple[str, int]:
        return admin.mint_session(
            self._db_dir, name, permissions=permissions, description=description
        )

    def add_archive(self, body: dict[str, Any]) -> dict[str, Any]:
        with admin.open_db(self._db_dir) as db:
            a = reconfig.add_archive(db, body)
            return {"uuid": str(a.uuid), "id": a.id, "streams": len(a.streams)}

    def update_archive(self, name: str, update: dict[str, Any]) -> None:
        with admin.open_db(self._db_dir) as db:
            a = reconfig.archive_by_ref(db, name)
            change = reconfig.archive_change(db, update, a)
            db.update_archive(a.id, change.config, change.stream_ids)

    def remove_archive(self, name: str) -> None:
        with admin.open_db(self._db_dir) as db:
            db.delete_archive(reconfig.archive_by_ref(db, name).id)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=TIMEOUT_SEC)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT_SEC)
        try:
            sock.connect(str(self._path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


_KIND_BY_STATUS: dict[int, type[errors.NvrError]] = {
    400: errors.InvalidArgument,
    401: errors.PermissionDenied,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.AlreadyExists,
    412: errors.FailedPrecondition,
    429: errors.ResourceExhausted,
    503: errors.Unavailable,
}


class DaemonTarget:
    """Changes through the running daemon's control socket."""

    def __init__(self, db_dir: Path) -> None:
        self._socket = control_socket_path(db_dir)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API request; the JSON answer (None for 204), or the error as ``NvrError``."""
        conn = _UnixConnection(self._socket)
        try:
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except OSError as e:
                raise errors.Unavailable(
                    f"the database is locked by another nvr process, and no daemon answers "
                    f"on {self._socket}: {e.strerror or e}"
                ) from None
        finally:
            conn.close()
        if resp.status >= 400:
            kind = _KIND_BY_STATUS.get(resp.status, errors.Internal)
            raise kind(payload.decode("utf-8", "replace").strip())
        return json.loads(payload) if payload else None

    def camera(self, name: str) -> CameraRef:
        for c in self.request("GET", "/api/")["cameras"]:
            if c["shortName"] == name:
                return CameraRef(c["uuid"], name, frozenset(c["streams"]))
        raise no_camera(name)

    def dir_id(self, path: Path) -> int:
        for d in self.request("GET", "/api/nvr/dirs")["dirs"]:
            if d["path"] == str(path):
                return int(d["id"])
        raise no_dir(path)

    def add_camera(self, body: dict[str, Any]) -> CameraRef:
        out = self.request("POST", "/api/nvr/cameras", {"camera": body})
        return CameraRef(out["uuid"], body["shortName"], frozenset(body["streams"]))

    def update_camera(self, cam: CameraRef, update: dict[str, Any]) -> None:
        self.request("PATCH", f"/api/nvr/cameras/{quote(cam.uuid)}", {"update": update})

    def remove_camera(
        self, cam: CameraRef, *, delete_recordings: bool, unprotect: bool = False
    ) -> int:
        out = self.request(
            "DELETE", f"/api/nvr/cameras/{quote(cam.uuid)}",
            {"deleteRecordings": delete_recordings, "unprotect": unprotect},
        )  # fmt: skip
        return int(out["recordings"])

    def add_dir(self, path: Path) -> int:
        return int(self.request("POST", "/api/nvr/dirs", {"path": str(path)})["id"])

    def remove_dir(self, dir_id: int) -> None:
        self.request("DELETE", f"/api/nvr/dirs/{dir_id}", {})

    def _user_id(self, name: str) -> int:
        for u in self.request("GET", "/api/users/")["users"]:
            if u["user"]["username"] == name:
                return int(u["id"])
        raise errors.NotFound(f"no user named {name!r}")

    def add_user(self, name: str, password: str | None, permissions: frozenset[str]) -> int:
        user = {"username": name, "password": password,
                "permissions": {p: True for p in sorted(permissions)}}  # fmt: skip
        self.request("POST", "/api/users/", {"user": user})
        return self._user_id(name)

    def set_password(self, name: str, password: str | None) -> None:
        self.request("PATCH", f"/api/users/{self._user_id(name)}",
                     {"update": {"password": password}})  # fmt: skip

    def update_user(
        self, name: str, *, disabled: bool | None = None,
        permissions: frozenset[str] | None = None,
    ) -> None:  # fmt: skip
        update: dict[str, Any] = {}
        if disabled is not None:
            update["disabled"] = disabled
        if permissions is not None:
            update["permissions"] = {p: p in permissions for p in PERMISSIONS}
        self.request("PATCH", f"/api/users/{self._user_id(name)}", {"update": update})

    def remove_user(self, name: str) -> None:
        self.request("DELETE", f"/api/users/{self._user_id(name)}", {})

    def add_signal_type(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", "/api/nvr/signal-types", {"signalType": body})
        return out

    def remove_signal_type(self, type_uuid: str) -> None:
        self.request("DELETE", f"/api/nvr/signal-types/{quote(type_uuid)}", {})

    def add_signal(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", "/api/nvr/signals", {"signal": body})
        return out

    def remove_signal(self, signal_id: int) -> None:
        self.request("DELETE", f"/api/nvr/signals/{signal_id}", {})

    def login(
        self, name: str, permissions: frozenset[str] | None, description: str | None
    ) -> tuple[str, int]:
        body = {"username": name, "description": description,
                "permissions": None if permissions is None else sorted(permissions)}  # fmt: skip
        out = self.request("POST", "/api/nvr/sessions", body)
        return str(out["session"]), int(out["creationTimeSec"])

    def add_archive(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", "/api/nvr/archives", {"archive": body})
        return out

    def update_archive(self, name: str, update: dict[str, Any]) -> None:
        self.request("PATCH", f"/api/nvr/archives/{quote(name, safe='')}", {"update": update})

    def remove_archive(self, name: str) -> None:
        self.request("DELETE", f"/api/nvr/archives/{quote(name, safe='')}", {})
