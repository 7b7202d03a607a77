"""What every web module shares: the ``WebContext``, plain responses and argument helpers.

Here live:

- ``WebContext``: what routes may read (the database, directories, clocks, the bind, the
  live frame hub, metrics, users and the login limiter), filled by the daemon (tests build
  their own), and ``ctx()`` to reach it from a request;
- ``StreamStatus``: the live state of a recorded stream as the daemon exposes it (plain
  values of the streamer and its directory's syncer); ``nvr.web.api`` turns it into JSON;
- ``text_response`` and ``one_line``: every error and debugging answer is one
  ``text/plain`` line;
- the argument helpers every route uses the same way: ``bool_arg`` and ``int_arg`` for the
  query string, ``camera_by_uuid`` and ``stream_of`` for path values.

What does not belong here: creating the app and mapping errors to statuses
(``nvr.web.app``), who may call what (``nvr.web.auth``), and anything a single route
needs (its own module). This module imports no other web module, so each of them (and
``app.py``) can import it without a cycle.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quart import Response, current_app, request

from nvr import __version__
from nvr.base import errors
from nvr.base.clock import Clocks
from nvr.config import BindConfig
from nvr.db.auth import Auth
from nvr.db.database import Camera, Database, Stream
from nvr.ingest.hub import FrameHub
from nvr.ingest.streamer import StreamState
from nvr.storage.dir import SampleFileDir
from nvr.syncer import SyncerStatus

if TYPE_CHECKING:
    from nvr.metrics import Metrics
    from nvr.web.auth import LoginLimiter

#: the largest time a query may name (90 kHz units; SQLite's integers hold it)
MAX_TIME = 1 << 62


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """The live state of a recorded stream: its streamer's, and its directory's syncer's
    (None when the stream has no running syncer) with the free space last measured."""

    stream: StreamState
    syncer: SyncerStatus | None = None
    free_bytes: int | None = None


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


def ctx() -> WebContext:
    """The context of the app serving the current request or WebSocket."""
    context: WebContext = current_app.config["nvr"]
    return context


# ----------------------------------------------------------------------------- responses


def text_response(status: int, message: str) -> Response:
    return Response(
        message.rstrip("\n") + "\n", status=status, content_type="text/plain; charset=utf-8"
    )


def one_line(message: str) -> str:
    """An error reason as one line: each line break of any kind (from a request's path
    or values quoted in the message) becomes a literal ``\\n``."""
    return "\\n".join(message.splitlines())


# ----------------------------------------------------------------------------- arguments


def bool_arg(name: str) -> bool:
    value = request.args.get(name, "false")
    if value not in ("true", "false"):
        raise errors.InvalidArgument(f"{name} must be true or false")
    return value == "true"


_INTEGER = re.compile(r"-?[0-9]{1,20}")


def int_arg(name: str, default: int, *, minimum: int = 0, maximum: int = MAX_TIME) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    # ASCII digits only: int() would also take "١٢", " 12 " and "1_000"
    if _INTEGER.fullmatch(text) is None:
        raise errors.InvalidArgument(f"{name} must be an integer")
    value = int(text)
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
