"""The web application: ``create_app`` and what every route shares.

One quart-trio app is made per HTTP bind (binds differ in what they grant to callers
without a session), served by ``hypercorn.trio.serve`` in the daemon's nursery. The app
never starts tasks of its own (it receives no nursery, DESIGN.md §2): it reads through
the database's read API and the streamers' state.

Here live: the ``WebContext`` the routes read from, the one table mapping ``NvrError``
kinds to HTTP statuses (every error becomes a one-line ``text/plain`` body, never a
traceback), the permission check every route calls, and the count of every request by
route template and status for the daemon's metrics (``WebContext.metrics``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from nvr import __version__
from nvr.base import errors
from nvr.base.clock import Clocks
from nvr.config import BindConfig
from nvr.db.database import Database
from nvr.ingest.hub import FrameHub
from nvr.storage.dir import SampleFileDir

if TYPE_CHECKING:
    from nvr.metrics import Metrics

log = logging.getLogger(__name__)

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
    #: stream id -> a callable giving that stream's live state as a JSON-ready dict
    stream_status: Callable[[int], dict[str, Any] | None] = lambda _sid: None
    server_version: str = __version__
    #: the daemon's metrics: requests are counted there, and served at ``/metrics`` on
    #: binds with ``metrics = true``
    metrics: Metrics | None = None


def text_response(status: int, message: str) -> Response:
    return Response(
        message.rstrip("\n") + "\n", status=status, content_type="text/plain; charset=utf-8"
    )


def require(ctx: WebContext, permission: str) -> None:
    """Raises unless the caller holds ``permission``. Until sessions exist (the auth
    issue), only what the bind grants to unauthenticated callers is held."""
    if permission in ctx.bind.allow_unauthenticated:
        return
    raise errors.Unauthenticated(f"this requires the {permission} permission: log in first")


def create_app(ctx: WebContext) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["nvr"] = ctx
    # JSON keys in the order the code writes them (as Moonfire's API examples show).
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.errorhandler(errors.NvrError)
    async def nvr_error(e: errors.NvrError) -> Response:
        status = status_for(e)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, e)
        return text_response(status, str(e))

    @app.errorhandler(HTTPException)
    async def http_error(e: HTTPException) -> Response:
        return text_response(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    async def unexpected(e: Exception) -> Response:
        log.exception("%s %s: unexpected error", request.method, request.path)
        return text_response(500, "internal error (see the server log)")

    if ctx.metrics is not None:
        metrics = ctx.metrics

        @app.after_request
        async def count_request(response: Response) -> Response:
            rule = request.url_rule
            metrics.observe_request(
                None if rule is None else rule.rule, request.method, response.status_code
            )
            return response

    from nvr.web import api, live, metrics_route, ui, view

    app.register_blueprint(api.blueprint)
    app.register_blueprint(view.blueprint)
    app.register_blueprint(live.blueprint)
    app.register_blueprint(metrics_route.blueprint)
    app.register_blueprint(ui.blueprint)
    return app
