"""The web application: ``create_app``, and how errors become HTTP answers.

One quart-trio app is made per HTTP bind (binds differ in what they grant to callers
without a session), served by ``nvr.web.server`` in the daemon's nursery. The app
never starts tasks of its own (it receives no nursery: docs/design.md, "The nursery tree
and shutdown"): it reads through the database's read API and the streamers' state.

Here live: the handlers that turn every error into a one-line ``text/plain`` answer
(statuses from ``nvr.web.context.STATUS_BY_KIND``; never a traceback), an unexpected
exception into a ``500`` that says only "internal error" and is logged through
``ErrorLog`` (rate-limited: an anonymous client cannot flood the log), a guard against
over-long path segments, and the count of every request by route template and status
for the daemon's metrics (``WebContext.metrics``).
Who may call which route is decided before every request by ``nvr.web.auth`` (its
permission table lists every route; ``create_app`` refuses a route without an entry).
What the routes share (``WebContext``, responses, argument helpers) is in
``nvr.web.context``.
"""

from __future__ import annotations

# werkzeug encodes every request's host with the "idna" codec; imported here, at start-up,
# rather than by the first request (~0.5 ms).
import encodings.idna  # noqa: F401
import logging

from quart import Response, g, has_request_context, request, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from nvr.base import errors
from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC, Duration
from nvr.db.auth import Auth
from nvr.web import (
    api,
    auth,
    camera_test,
    config_api,
    export,
    live,
    metrics_route,
    motion_api,
    protect,
    redact,
    signals,
    thumb,
    transcoding,
    ui,
    view,
)
from nvr.web.context import MAX_JSON_BODY, WebContext, one_line, status_for, text_response
from nvr.web.login_limit import LoginLimiter, RateLimited

#: ``WebContext`` stays importable from here (the daemon and older callers)
__all__ = ["WebContext", "create_app"]

log = logging.getLogger(__name__)

#: a path segment longer than this (in bytes) names nothing here (NAME_MAX on Linux)
MAX_SEGMENT_BYTES = 255


class ErrorLog:
    """Logs server-side errors (5xx) so that no client can flood the log: for each route
    and kind of error, the first one (with its traceback if unexpected), then at most one
    line per ``interval`` that also says how many were left out since the last."""

    def __init__(self, clocks: Clocks, interval: Duration = 60 * UNITS_PER_SEC) -> None:
        self._clocks = clocks
        self._interval = interval
        #: (route, error kind) -> (when last logged, how many left out since)
        self._last: dict[tuple[str, str], tuple[Duration, int]] = {}

    def error(self, e: BaseException, *, traceback: bool) -> None:
        rule = (request if has_request_context() else websocket).url_rule
        key = ("" if rule is None else rule.rule, type(e).__name__)
        now = self._clocks.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self._interval:
            self._last[key] = (last[0], last[1] + 1)
            return
        self._last[key] = (now, 0)
        left_out = f" ({last[1]} more since the last report)" if last and last[1] else ""
        what = "unexpected error" if traceback else one_line(str(e))
        log.error("%s: %s%s", _where(), what, left_out, exc_info=e if traceback else None)


def _where() -> str:
    if has_request_context():
        return f"{request.method} {request.path!r}"
    return f"WebSocket {websocket.path!r}"


async def refuse_overlong_paths() -> None:
    """``before_request``: no route or static file has a path segment longer than a file
    name may be (the static route would fail with ENAMETOOLONG)."""
    for segment in request.path.split("/"):
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise errors.NotFound(
                f"no such path (a segment is longer than {MAX_SEGMENT_BYTES} bytes)"
            )


def create_app(ctx: WebContext) -> QuartTrio:
    if ctx.auth is None:
        ctx.auth = Auth(ctx.db, now=ctx.clocks.realtime)
    if ctx.login_limiter is None:
        ctx.login_limiter = LoginLimiter(ctx.clocks)
    own_thumbnails = ctx.thumbnails is None  # else its owner closes it (nvr.web.server)
    if ctx.thumbnails is None:
        ctx.thumbnails = thumb.Thumbnails()
    if ctx.transcodes is None:
        ctx.transcodes = transcoding.Transcodes()
    errors_log = ErrorLog(ctx.clocks)
    app = QuartTrio(__name__, static_folder=None)  # nvr.web.ui serves the UI's files
    app.config["nvr"] = ctx
    app.config["MAX_CONTENT_LENGTH"] = MAX_JSON_BODY
    # JSON keys in the order the code writes them (as Moonfire's API examples show).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.before_request(refuse_overlong_paths)
    if own_thumbnails:
        app.after_serving(ctx.thumbnails.aclose)  # kept decoders, on a worker thread
    app.before_request(auth.check_request)
    app.before_websocket(auth.check_websocket)

    @app.errorhandler(errors.NvrError)
    async def nvr_error(e: errors.NvrError) -> Response:
        status = status_for(e)
        if status >= 500:
            errors_log.error(e, traceback=False)
        resp = text_response(status, one_line(str(e)))
        if isinstance(e, RateLimited | thumb.Busy | transcoding.Busy):
            resp.headers["Retry-After"] = str(e.retry_after_sec)
        caller: auth.Caller | None = g.get("nvr_caller")
        if status == 401 and caller is not None and caller.stale_cookie:
            auth.clear_session_cookie(resp, caller)  # the browser can forget a dead session
        return resp

    @app.errorhandler(HTTPException)
    async def http_error(e: HTTPException) -> Response:
        return text_response(e.code or 500, one_line(e.description or e.name))

    @app.errorhandler(Exception)
    async def unexpected(e: Exception) -> Response:
        errors_log.error(e, traceback=True)
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

    app.register_blueprint(api.blueprint)
    app.register_blueprint(config_api.blueprint)
    app.register_blueprint(camera_test.blueprint)
    app.register_blueprint(protect.blueprint)
    app.register_blueprint(signals.blueprint)
    app.register_blueprint(view.blueprint)
    app.register_blueprint(export.blueprint)
    app.register_blueprint(redact.blueprint)
    app.register_blueprint(motion_api.blueprint)
    app.register_blueprint(thumb.blueprint)
    app.register_blueprint(live.blueprint)
    app.register_blueprint(metrics_route.blueprint)
    app.register_blueprint(ui.blueprint)
    missing = auth.missing_routes([(r.rule, r.endpoint) for r in app.url_map.iter_rules()])
    if missing:
        raise errors.Internal(
            "routes without an entry in nvr.web.auth.ROUTE_PERMISSIONS: " + ", ".join(missing)
        )
    return app
