"""Who may call what: the permission table, callers, CSRF and the login rate limit.

**The permission table.** ``ROUTE_PERMISSIONS`` maps the endpoint name of every route
(``blueprint.function``, as in ``app.url_map``) to what it needs. ``create_app`` refuses
to build an app with a route that has no entry, and ``tests/unit/test_web_auth.py``
calls every route with and without it. To add a route: add one line below.
Values:

- a permission (``viewVideo``, ``readCameraConfigs``, ``updateSignals``, ``adminUsers``);
- ``PUBLIC``: anyone (the login form, static files of the UI);
- ``CALLER``: anyone with a session, or with at least one permission the bind grants to
  unauthenticated callers (the top-level listing: it also tells a caller who it is);
- ``SESSION``: a logged-in session (logout);
- ``SELF_OR_ADMIN``: a session (the handler then allows only the caller's own user id
  unless the caller holds ``adminUsers``), or ``adminUsers`` granted by the bind.

Handlers may demand more depending on the request (``require``): e.g. ``GET /api/``
with ``cameraConfigs=true`` needs ``readCameraConfigs``.

**Checks, in this order, before every request** (``check_request``): the caller is
resolved from cookie ``s`` (a session) plus what the bind grants to everyone; no
session and not enough -> ``401``; a session without the permission -> ``403``. Every
mutation (any method but GET, HEAD, OPTIONS) must carry ``Content-Type:
application/json`` (``415`` otherwise: a plain HTML form cannot send it) and a JSON
object body (``400``); with a session, the body's ``csrf`` must equal the session's
token, compared in constant time (``403``). WebSocket upgrades (``check_websocket``)
get the same permission check, and an ``Origin`` that does not match ``Host`` is
refused (a page on another site cannot open them with the user's cookie).

**Login rate limit** (``LoginLimiter``): failed logins are counted per client address
and per user name in sliding windows on the ``Clocks`` monotonic clock; once a window
is full, logins from that address or for that name get ``429`` with ``Retry-After``
until its oldest failure ages out. Failures are logged (name, address, count; never the
password).

**Binds.** A bind grants permissions to unauthenticated callers (default: none) and
may trust a reverse proxy's ``X-Forwarded-For`` (the client address: the last entry,
the one the proxy added) and ``X-Forwarded-Proto`` (``https`` makes the session cookie
``Secure``, as a TLS bind does).
"""

from __future__ import annotations

import collections
import hmac
import logging
import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quart import Response, g, request, websocket
from quart.wrappers import BaseRequestWebsocket
from werkzeug.exceptions import UnsupportedMediaType

from nvr.base import errors
from nvr.base.clock import Clocks
from nvr.base.time90k import UNITS_PER_SEC, Duration
from nvr.db.auth import Auth, Session, User
from nvr.web.context import WebContext, ctx

log = logging.getLogger(__name__)

PUBLIC = "public"
CALLER = "caller"
SESSION = "session"
SELF_OR_ADMIN = "selfOrAdminUsers"

#: endpoint name -> what the route needs (see the module docstring). Every route.
ROUTE_PERMISSIONS: Mapping[str, str] = {
    # Flask's built-in static files (the UI's scripts and styles)
    "static": PUBLIC,
    # the UI's pages (ui.py): one HTML shell without data; its scripts call the API
    "ui.page_": PUBLIC,
    "ui.page_live": PUBLIC,
    "ui.page_recordings": PUBLIC,
    "ui.page_status": PUBLIC,
    "ui.page_login": PUBLIC,
    # sessions (api.py)
    "api.login": PUBLIC,
    "api.logout": SESSION,
    # listings (api.py)
    "api.top_level": CALLER,
    "api.camera": CALLER,
    "api.recordings": "viewVideo",
    # media (view.py)
    "view.view": "viewVideo",
    "view.init_segment": "viewVideo",
    "live.live": "viewVideo",
    # Prometheus metrics (metrics_route.py): only on binds with metrics = true, which
    # should be reachable by the scraper alone (scrapers have no session)
    "metrics.metrics": PUBLIC,
    # users (api.py)
    "api.list_users": "adminUsers",
    "api.add_user": "adminUsers",
    "api.get_user": SELF_OR_ADMIN,
    "api.update_user": SELF_OR_ADMIN,
    "api.delete_user": "adminUsers",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "s"
MAX_JSON_BODY = 1 << 20


# ----------------------------------------------------------------------------- callers


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the session (if any) and everything the caller may do."""

    permissions: frozenset[str]
    session: Session | None
    address: str
    #: the client reached us over HTTPS (directly, or through a trusted proxy)
    secure: bool
    user_agent: str | None
    #: a cookie ``s`` was sent but names no live session (expired, revoked, unknown)
    stale_cookie: bool = False

    @property
    def user(self) -> User | None:
        return self.session.user if self.session is not None else None


def auth_of(c: WebContext) -> Auth:
    assert c.auth is not None, "create_app fills WebContext.auth"
    return c.auth


def _last(header: str | None) -> str | None:
    if not header:
        return None
    return header.split(",")[-1].strip() or None


def client_address(req: BaseRequestWebsocket, c: WebContext) -> str:
    if c.bind.trust_forward_headers:
        forwarded = _last(req.headers.get("X-Forwarded-For"))
        if forwarded:
            return forwarded
    return req.remote_addr or "local"


def is_secure(req: BaseRequestWebsocket, c: WebContext) -> bool:
    if req.scheme in ("https", "wss"):
        return True
    if c.bind.trust_forward_headers:
        return (_last(req.headers.get("X-Forwarded-Proto")) or "").lower() == "https"
    return False


def resolve_caller(req: BaseRequestWebsocket) -> Caller:
    c = ctx()
    address = client_address(req, c)
    agent = req.headers.get("User-Agent")
    granted = frozenset(c.bind.allow_unauthenticated)
    cookie = req.cookies.get(SESSION_COOKIE)
    session = None
    if cookie:
        session = auth_of(c).authenticate(cookie, user_agent=agent, peer_addr=address)
    return Caller(
        granted | (session.permissions if session else frozenset()),
        session,
        address,
        is_secure(req, c),
        agent,
        stale_cookie=bool(cookie) and session is None,
    )


def caller() -> Caller:
    """The caller of the current request (resolved before the handler ran)."""
    c: Caller = g.nvr_caller
    return c


def _login_hint(c: Caller) -> str:
    if c.stale_cookie:
        return "your session has expired or was revoked: log in again"
    return "log in first"


def require(permission: str, c: Caller | None = None) -> None:
    """Raises unless the caller holds ``permission``: ``Unauthenticated`` without a
    session (logging in may help), ``PermissionDenied`` with one."""
    c = c or caller()
    if permission in c.permissions:
        return
    if c.session is None:
        raise errors.Unauthenticated(f"this needs the {permission} permission: {_login_hint(c)}")
    raise errors.PermissionDenied(
        f"user {c.session.user.username!r} does not have the {permission} permission"
    )


def require_self_or_admin(user_id: int, c: Caller | None = None) -> None:
    c = c or caller()
    if c.user is not None and c.user.id == user_id:
        return
    require("adminUsers", c)


def _check_need(need: str, c: Caller) -> None:
    if need == PUBLIC:
        return
    if need == CALLER:
        if c.session is None and not c.permissions:
            raise errors.Unauthenticated(_login_hint(c))
        return
    if need == SESSION:
        if c.session is None:
            raise errors.Unauthenticated(f"this needs a session: {_login_hint(c)}")
        return
    if need == SELF_OR_ADMIN:
        if c.session is None:
            require("adminUsers", c)
        return
    require(need, c)


def _need_of(endpoint: str | None) -> str:
    need = ROUTE_PERMISSIONS.get(endpoint or "")
    if need is None:
        # create_app checks the table; a route added later still fails closed.
        raise errors.Internal(f"route {endpoint!r} has no entry in the permission table")
    return need


async def check_request() -> None:
    """``before_request``: see the module docstring."""
    if request.routing_exception is not None or request.endpoint is None:
        return  # 404 / 405 follow
    need = _need_of(request.endpoint)
    c = resolve_caller(request)
    g.nvr_caller = c
    _check_need(need, c)
    if request.method in SAFE_METHODS:
        return
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"{request.method} needs a JSON body with Content-Type: application/json"
        )
    body = await request.get_json()
    if not isinstance(body, dict):
        raise errors.InvalidArgument("the request body must be a JSON object")
    g.nvr_body = body
    if c.session is not None and need != PUBLIC:
        token = body.get("csrf")
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode(), c.session.csrf.encode()
        ):
            raise errors.PermissionDenied(
                'missing or wrong csrf token (send session.csrf from GET /api/ as "csrf")'
            )


async def check_websocket() -> None:
    """``before_websocket``: the permission check, and ``Origin`` must match ``Host``."""
    if websocket.routing_exception is not None or websocket.endpoint is None:
        return  # 404 follows
    need = _need_of(websocket.endpoint)
    c = resolve_caller(websocket)
    g.nvr_caller = c
    check_origin(websocket.headers.get("Origin"), websocket.headers.get("Host"))
    _check_need(need, c)


def check_origin(origin: str | None, host: str | None) -> None:
    """Raises unless a present ``Origin`` names the ``Host`` (scheme aside; host names
    compare case-insensitively). No ``Origin``: not a browser, nothing to hijack."""
    if origin is None:
        return
    netloc = urllib.parse.urlsplit(origin).netloc.lower()
    if not netloc or netloc != (host or "").lower():
        raise errors.PermissionDenied(
            f"WebSocket Origin {origin!r} does not match Host {host!r}"
        )


def body() -> dict[str, Any]:
    """The JSON object body of the current mutation (parsed by ``check_request``)."""
    b: dict[str, Any] = g.nvr_body
    return b


def missing_routes(rules: list[tuple[str, str]]) -> list[str]:
    """``rule (endpoint)`` of each (rule, endpoint) without a permission-table entry."""
    return [f"{rule} ({ep})" for rule, ep in rules if ep not in ROUTE_PERMISSIONS]


def set_session_cookie(resp: Response, session_id: str, c: Caller, max_age_sec: int) -> None:
    resp.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=max_age_sec,
        path="/",
        secure=c.secure,
        httponly=True,
        samesite="Strict",
    )


def clear_session_cookie(resp: Response, c: Caller) -> None:
    resp.delete_cookie(SESSION_COOKIE, path="/", secure=c.secure, httponly=True, samesite="Strict")


# ----------------------------------------------------------------------------- rate limit


class RateLimited(errors.ResourceExhausted):
    """Too many failed logins: ``429`` with ``Retry-After``."""

    def __init__(self, message: str, retry_after_sec: int) -> None:
        super().__init__(message)
        self.retry_after_sec = retry_after_sec


@dataclass(frozen=True, slots=True)
class LoginLimits:
    #: failed logins from one client address allowed per window
    per_address: int = 20
    address_window_sec: int = 10 * 60
    #: failed logins for one user name (existing or not) allowed per window
    per_user: int = 5
    user_window_sec: int = 60
    #: addresses and names remembered at most (the oldest are forgotten first)
    max_keys: int = 10_000


class _Window:
    """Failure times per key within a sliding window."""

    def __init__(self, limit: int, window: Duration, max_keys: int) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.failures: dict[str, collections.deque[Duration]] = {}

    def _prune(self, key: str, now: Duration) -> collections.deque[Duration] | None:
        q = self.failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self.failures[key]
            return None
        return q

    def wait(self, key: str, now: Duration) -> Duration:
        """How long until ``key`` may try again (0: now)."""
        q = self._prune(key, now)
        if q is None or len(q) < self.limit:
            return 0
        return q[-self.limit] + self.window - now

    def count(self, key: str, now: Duration) -> int:
        q = self._prune(key, now)
        return 0 if q is None else len(q)

    def add(self, key: str, now: Duration) -> None:
        q = self._prune(key, now)
        if q is None:
            q = self.failures[key] = collections.deque(maxlen=self.limit)
        q.append(now)
        while len(self.failures) > self.max_keys:
            del self.failures[next(iter(self.failures))]

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)


@dataclass
class LoginLimiter:
    """Counts failed logins per client address and per user name. One per daemon,
    shared by its binds."""

    clocks: Clocks
    limits: LoginLimits = field(default_factory=LoginLimits)

    def __post_init__(self) -> None:
        lim = self.limits
        self._by_address = _Window(
            lim.per_address, lim.address_window_sec * UNITS_PER_SEC, lim.max_keys
        )
        self._by_user = _Window(lim.per_user, lim.user_window_sec * UNITS_PER_SEC, lim.max_keys)

    def check(self, address: str, username: str) -> None:
        now = self.clocks.monotonic()
        wait = max(self._by_address.wait(address, now), self._by_user.wait(username, now))
        if wait > 0:
            secs = max(1, math.ceil(wait / UNITS_PER_SEC))
            raise RateLimited(f"too many failed logins: try again in {secs} s", secs)

    def failed(self, address: str, username: str) -> tuple[int, int]:
        """Counts a failure; returns the failures now in the address's and the name's
        windows."""
        now = self.clocks.monotonic()
        self._by_address.add(address, now)
        self._by_user.add(username, now)
        return self._by_address.count(address, now), self._by_user.count(username, now)

    def succeeded(self, username: str) -> None:
        self._by_user.clear(username)
