"""What every web module shares: the ``WebContext``, plain responses and argument helpers.

Here live:

- ``WebContext``: what routes may read (the database, directories, clocks, the bind, the
  live frame hub, metrics, users, the login limiter, the thumbnail cache and the
  transcode slots), filled by
  the daemon (tests build their own), and ``ctx()`` to reach it from a request;
- ``StreamStatus``: the live state of a recorded stream as the daemon exposes it (plain
  values of the streamer and its directory's syncer); ``nvr.web.api`` turns it into JSON;
- ``STATUS_BY_KIND``: the one table mapping ``NvrError`` kinds to HTTP statuses, and
  ``text_response``, ``one_line`` and ``websocket_error``: every error (and debugging
  answer) is one ``text/plain`` line, on a WebSocket one JSON text message;
- the argument helpers every route uses the same way: ``bool_arg`` and ``int_arg`` for the
  query string, ``camera_by_uuid`` (which applies the caller's camera limit: per-camera
  rights) and ``stream_of`` for path values, ``visible_cameras`` for listings, ``parse_int`` for
  every integer a client writes (query values, ``s=`` ids, ``Range`` positions), and
  ``parse_json_object`` for every JSON body.

**Hostile input.** Nothing a client sends reaches ``int()`` or ``json.loads`` unchecked:
integers are ASCII digits with an optional ``-`` and at most ``MAX_DIGITS`` of them
(``int()`` would take "١٢", " 12 " and "1_000", and raises past 4,300 digits); JSON bodies
must be UTF-8, at most ``MAX_JSON_BODY`` long (``413`` otherwise, before reading), nest
at most ``MAX_JSON_DEPTH`` deep, hold no ``NaN``/``Infinity``, no number beyond
``MAX_DIGITS`` digits or outside a double's range, and no string with a lone surrogate
(``"\ud800"`` cannot be stored or encoded). Each refusal is an ``InvalidArgument`` (400)
with a one-line reason.

What does not belong here: creating the app and its error handlers (``nvr.web.app``),
who may call what (``nvr.web.auth``), and anything a single route needs (its own
module). This module imports no other web module, so each of them (and ``app.py``) can
import it without a cycle.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import trio
from quart import Response, current_app, g, has_app_context, request, websocket

from nvr import __version__
from nvr.archive.reader import ArchiveReads
from nvr.archive.uploader import Uploader
from nvr.base import errors
from nvr.base.clock import Clocks
from nvr.config import BindConfig
from nvr.db.auth import Auth
from nvr.db.database import Database
from nvr.db.types import Camera, Stream
from nvr.ingest.hub import FrameHub
from nvr.ingest.source import Opener
from nvr.ingest.streamer import StreamState
from nvr.storage.dir import SampleFileDir
from nvr.storage.forecast import DaySums
from nvr.syncer import SyncerStatus

if TYPE_CHECKING:
    from nvr.ops.metrics import Metrics
    from nvr.web.login_limit import LoginLimiter
    from nvr.web.thumb import Thumbnails
    from nvr.web.transcoding import Transcodes

#: the largest time a query may name (90 kHz units; SQLite's integers hold it)
MAX_TIME = 1 << 62
#: digits an integer from a client may have (2**63 has 19)
MAX_DIGITS = 19
#: the largest request body (mutations carry small JSON objects; nothing uploads more):
#: larger ones are refused with 413 before they are read
MAX_JSON_BODY = 1 << 20
#: how deep JSON arrays and objects may nest in a request body (the body itself is 1)
MAX_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """The live state of a recorded stream: its streamer's, and its directory's syncer's
    (None when the stream has no running syncer) with the free space last measured."""

    stream: StreamState
    syncer: SyncerStatus | None = None
    free_bytes: int | None = None
    #: the directory's free-space floor (``min_free``; 0: none)
    min_free: int = 0


class Reconfigurer(Protocol):
    """The daemon's side of a configuration change (``nvr.supervisor.Supervisor``): the
    configuration routes commit a change with ``lock`` held, then call ``apply`` (or the
    directory methods) so the running tasks follow it."""

    lock: trio.Lock

    async def apply(self) -> None: ...

    async def settle(self, camera_id: int) -> None: ...

    async def dir_added(self, dir_id: int) -> None: ...

    async def stop_syncer(self, dir_id: int) -> None: ...

    async def stop_uploader(self, archive_id: int) -> None: ...


class NoTasks:
    """A ``Reconfigurer`` for an app without a daemon (tests): changes are committed and
    nothing else happens."""

    def __init__(self) -> None:
        self.lock = trio.Lock()

    async def apply(self) -> None:
        pass

    async def settle(self, camera_id: int) -> None:
        pass

    async def dir_added(self, dir_id: int) -> None:
        pass

    async def stop_syncer(self, dir_id: int) -> None:
        pass

    async def stop_uploader(self, archive_id: int) -> None:
        pass


@dataclass
class WebContext:
    """What routes may read. Filled by the daemon; tests build their own."""

    db: Database
    dirs: Mapping[int, SampleFileDir]
    clocks: Clocks
    bind: BindConfig = field(default_factory=BindConfig)
    time_zone_name: str = "UTC"
    #: live frames from ingest (the daemon's; tests publish into their own)
    hub: FrameHub = field(default_factory=FrameHub)
    #: stream id -> that stream's live state (None: not recorded by this daemon)
    stream_status: Callable[[int], StreamStatus | None] = lambda _sid: None
    server_version: str = __version__
    #: the daemon's metrics: requests are counted there, and served at ``/metrics`` on
    #: binds with ``metrics = true``
    metrics: Metrics | None = None
    #: users and sessions (``create_app`` makes one when None; the daemon shares one)
    auth: Auth | None = None
    #: failed-login counter (``create_app`` makes one when None; the daemon shares one)
    login_limiter: LoginLimiter | None = None
    #: applies configuration changes to the running tasks (the daemon's supervisor)
    reconfigure: Reconfigurer = field(default_factory=NoTasks)
    #: the storage forecast's per-stream sums of the last day, cached a minute
    day_sums: DaySums = field(default_factory=DaySums)
    #: thumbnails' cache and render slots (``create_app`` makes one when None; the daemon
    #: shares one)
    thumbnails: Thumbnails | None = None
    #: transcode slots and settings (``create_app`` makes one when None; the daemon
    #: shares one)
    transcodes: Transcodes | None = None
    #: archive id -> its running uploader (the daemon's; empty when none runs)
    uploaders: Mapping[int, Uploader] = field(default_factory=dict)
    #: opens camera URLs (the daemon's, as its streamers use): the settings page's
    #: camera test (``nvr.web.camera_test``); None: this server opens none
    opener: Opener | None = None
    #: the archives' stores for playback of archive-only recordings (None: none)
    archive_reads: ArchiveReads | None = None


def ctx() -> WebContext:
    """The context of the app serving the current request or WebSocket."""
    context: WebContext = current_app.config["nvr"]
    return context


# ----------------------------------------------------------------------------- responses

STATUS_BY_KIND: Mapping[type[errors.NvrError], int] = {
    errors.InvalidArgument: 400,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.FailedPrecondition: 412,
    errors.ResourceExhausted: 429,
    errors.Unavailable: 503,
    errors.DataLoss: 500,
    errors.Internal: 500,
}


def status_for(e: errors.NvrError) -> int:
    for kind in type(e).__mro__:
        status = STATUS_BY_KIND.get(kind)
        if status is not None:
            return status
    return 500




def text_response(status: int, message: str) -> Response:
    return Response(
        message.rstrip("\n") + "\n", status=status, content_type="text/plain; charset=utf-8"
    )


def one_line(message: str) -> str:
    """An error reason as one line: each line break of any kind (from a request's path
    or values quoted in the message) becomes a literal ``\\n``."""
    return "\\n".join(message.splitlines())


async def websocket_error(e: errors.NvrError) -> Response:
    """Refuses a WebSocket the way Moonfire's server does: accepts the upgrade, sends one
    text message ``{"type": "error", "message": ..., "status": ...}`` (``status``: the
    HTTP status the error maps to, an extension) and closes the socket (1008, policy
    violation). Returns a response for Quart's ``before_websocket`` (sent nowhere)."""
    status, reason = status_for(e), one_line(str(e))
    await websocket.accept()
    await websocket.send(json.dumps({"type": "error", "message": reason, "status": status}))
    await websocket.close(1008)
    return text_response(status, reason)


# ----------------------------------------------------------------------------- arguments


def bool_arg(name: str) -> bool:
    value = request.args.get(name, "false")
    if value not in ("true", "false"):
        raise errors.InvalidArgument(f"{name} must be true or false")
    return value == "true"


_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)


def parse_int(text: str, what: str) -> int:
    """``text`` as an integer, or ``InvalidArgument`` naming ``what``: see the module
    docstring."""
    if _INTEGER.fullmatch(text) is None:
        raise errors.InvalidArgument(f"{what} must be an integer")
    if len(text) - text.startswith("-") > MAX_DIGITS:
        raise errors.InvalidArgument(f"{what} has more than {MAX_DIGITS} digits")
    return int(text)


def int_arg(name: str, default: int, *, minimum: int = 0, maximum: int = MAX_TIME) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    value = parse_int(text, name)
    if not minimum <= value <= maximum:
        raise errors.InvalidArgument(f"{name} must be between {minimum} and {maximum}")
    return value


def parse_json_object(data: bytes) -> dict[str, Any]:
    """A request body as a JSON object, checked as the module docstring says."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidArgument("the request body is not UTF-8") from None
    try:
        value = json.loads(
            text,
            parse_int=lambda t: parse_int(t, "a number in the request body"),
            parse_float=_json_float,
            parse_constant=_json_constant,
        )
    except RecursionError:
        raise errors.InvalidArgument(
            f"the request body nests deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except json.JSONDecodeError as e:
        raise errors.InvalidArgument(f"the request body is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise errors.InvalidArgument("the request body must be a JSON object")
    _check_json_tree(value)
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise errors.InvalidArgument(f"the number {text[:30]} in the request body is too large")
    return value


def _json_constant(name: str) -> Any:
    raise errors.InvalidArgument(f"{name} is not a JSON number")


def _json_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise errors.InvalidArgument(
                "a string in the request body has a lone surrogate (\\ud800-\\udfff)"
            ) from None


def _check_json_tree(body: dict[str, Any]) -> None:
    """Depth and strings of a parsed body, without recursion."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _json_text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise errors.InvalidArgument(
                    f"the request body nests deeper than {MAX_JSON_DEPTH} levels"
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    _json_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def camera_by_uuid(text: str) -> Camera:
    """The camera a client names, if the caller may see it: a camera outside the caller's
    camera limit (``nvr.web.auth``, per-camera rights) is ``NotFound`` exactly as one that
    does not exist, so a limited user learns nothing about other cameras. Every route
    that takes a camera from a client (path, query or body) resolves it here."""
    try:
        u = uuid.UUID(text)
    except ValueError:
        raise errors.NotFound(f"no camera {text!r}") from None
    check_camera_visible(u)
    return ctx().db.camera_by_uuid(u)


def camera_limit() -> frozenset[uuid.UUID] | None:
    """The cameras the current caller may reach with the route's permission (None:
    every camera); set by ``nvr.web.auth`` before each request. Outside a request (no
    caller resolved), none may be reached."""
    if not has_app_context():
        return frozenset()
    limit: frozenset[uuid.UUID] | None = g.get("nvr_camera_limit", frozenset())
    return limit


def check_camera_visible(u: uuid.UUID) -> None:
    limit = camera_limit()
    if limit is not None and u not in limit:
        raise errors.NotFound(f"no camera {u}")


def visible_cameras() -> list[Camera]:
    """The database's cameras the current caller may see, in id order."""
    limit = camera_limit()
    return [c for c in ctx().db.cameras.values() if limit is None or c.uuid in limit]


def stream_of(cam: Camera, type_: str) -> Stream:
    sid = cam.streams.get(type_)
    if sid is None:
        raise errors.NotFound(f"camera {cam.short_name} has no {type_!r} stream")
    return ctx().db.streams[sid]
