"""The web application: ``create_app``, and how errors become HTTP answers.

One quart-trio app is made per HTTP bind (binds differ in what they grant to callers
without a session), served by ``hypercorn.trio.serve`` in the daemon's nursery. The app
never starts tasks of its own (it receives no nursery, DESIGN.md §2): it reads through
the database's read API and the streamers' state.

Here live: the one table mapping ``NvrError`` kinds to HTTP statuses (every error
becomes a one-line ``text/plain`` body, never a traceback), and the count of every
request by route template and status for the daemon's metrics (``WebContext.metrics``).
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
from collections.abc import Mapping

from quart import Response, g, has_request_context, request, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from nvr.base import errors
from nvr.db.auth import Auth
from nvr.web import api, auth, live, metrics_route, ui, view
from nvr.web.context import WebContext, one_line, text_response

#: ``WebContext`` stays importable from here (the daemon and older callers)
__all__ = ["STATUS_BY_KIND", "WebContext", "create_app", "status_for"]

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


def _where() -> str:
    if has_request_context():
        return f"{request.method} {request.path}"
    return f"WebSocket {websocket.path}"


def create_app(ctx: WebContext) -> QuartTrio:
    if ctx.auth is None:
        ctx.auth = Auth(ctx.db, now=ctx.clocks.realtime)
    if ctx.login_limiter is None:
        ctx.login_limiter = auth.LoginLimiter(ctx.clocks)
    app = QuartTrio(__name__)
    app.config["nvr"] = ctx
    # Mutations carry small JSON objects; nothing uploads more.
    app.config["MAX_CONTENT_LENGTH"] = auth.MAX_JSON_BODY
    # JSON keys in the order the code writes them (as Moonfire's API examples show).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.before_request(auth.check_request)
    app.before_websocket(auth.check_websocket)

    @app.errorhandler(errors.NvrError)
    async def nvr_error(e: errors.NvrError) -> Response:
        status = status_for(e)
        if status >= 500:
            log.error("%s: %s", _where(), e)
        resp = text_response(status, one_line(str(e)))
        if isinstance(e, auth.RateLimited):
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
        log.exception("%s: unexpected error", _where())
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
    app.register_blueprint(view.blueprint)
    app.register_blueprint(live.blueprint)
    app.register_blueprint(metrics_route.blueprint)
    app.register_blueprint(ui.blueprint)
    missing = auth.missing_routes([(r.rule, r.endpoint) for r in app.url_map.iter_rules()])
    if missing:
        raise errors.Internal(
            "routes without an entry in nvr.web.auth.ROUTE_PERMISSIONS: " + ", ".join(missing)
        )
    return app
