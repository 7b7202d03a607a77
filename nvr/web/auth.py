"""Who may call what: the permission table, callers, host names, CSRF and WebSockets.

**The permission table.** ``ROUTE_PERMISSIONS`` maps the endpoint name of every route
(``blueprint.function``, as in ``app.url_map``) to what it needs. ``create_app`` refuses
to build an app with a route that has no entry, and ``tests/unit/test_web_auth.py``
calls every route with and without it. To add a route: add one line below.
Values:

- a permission (``viewVideo``, ``readCameraConfigs``, ``updateSignals``, ``adminUsers``,
  ``protectVideo``, ``adminConfig``, ``redactVideo``);
- ``PUBLIC``: anyone (the login form, static files of the UI, ``/api/request``);
- ``CALLER``: anyone with a session, or with at least one permission the bind grants to
  unauthenticated callers (the top-level listing: it also tells a caller who it is);
- ``SESSION``: a logged-in session (logout);
- ``SELF_OR_ADMIN``: a session (the handler then allows only the caller's own user id
  unless the caller holds ``adminUsers``), or ``adminUsers`` granted by the bind.

Handlers may demand more depending on the request (``require``): e.g. ``GET /api/``
with ``cameraConfigs=true`` needs ``readCameraConfigs``.

**Per-camera rights.** A user may be limited to some cameras (``User.cameras``); then
every permission it holds applies to those cameras only (what a bind grants everyone
applies to all). Routes get this by default, with nothing to add: before every request
the caller's limit for the route's need is noted, a ``<camera_uuid>`` path value outside
it is ``404`` (the answer for a camera that does not exist, so a limited user cannot
probe for others' uuids), and ``nvr.web.context.camera_by_uuid`` (how every route
resolves a camera a client names, in the path, query or body) and ``visible_cameras``
(listings) apply the same limit. A new route only has to name its path variable
``camera_uuid`` and resolve cameras through those helpers.

**Checks, in this order, before every request** (``check_request``):

1. *Host* (DNS rebinding): on a bind that serves something without a login
   (``allow_unauthenticated`` or ``metrics``), the ``Host`` header must be an IP address
   or one of the bind's names (``allowed_host_names``: its ``allowed_hosts``, by default
   ``localhost``, the bound host and the machine's names); else ``403``. A page on
   another site that had its name resolve to this server sends its own name as Host;
   an IP address cannot be another site's name. Binds that need a login are safe
   without the check: the browser keeps the session cookie for this server's name.
2. The caller is resolved from cookie ``s`` (a session) plus what the bind grants to
   everyone; no session and not enough -> ``401``; a session without the permission ->
   ``403``.
3. Every mutation (any method but GET, HEAD, OPTIONS) must carry ``Content-Type:
   application/json`` (``415`` otherwise: a plain HTML form cannot send it) and a JSON
   object body read by ``nvr.web.context.parse_json_object`` (``400``); with a session,
   the body's ``csrf`` must equal the session's token, compared in constant time
   (``403``). The session cookie is ``SameSite=Lax`` as Moonfire's reference says (Safari
   sends no ``Strict`` cookie on WebSocket upgrades), which lets a cross-site link or
   form navigation carry it: the CSRF token and the JSON content type are what protect
   every state change, as ``GET`` changes nothing.

**WebSocket upgrades** (``check_websocket``): the same Host check, and an ``Origin``
(when present: browsers always send one) must name the ``Host`` the upgrade was sent to
or one of the bind's configured ``allowed_hosts`` (a reverse proxy may rewrite Host);
either refusal is an HTTP ``403`` before the upgrade, telling a foreign page nothing.
Then, as Moonfire's server does, the upgrade is accepted even when the caller may not
use the route: the socket gets one text message ``{"type": "error", "message": ...}``
(plus ``"status"``, the HTTP status the error would have had: an nvr extension that tells
"log in" from "not allowed") and is closed (``nvr.web.context.websocket_error``).

**Binds.** A bind grants permissions to unauthenticated callers (default: none) and
may trust a reverse proxy's ``X-Forwarded-For`` (the client address: the last entry,
the one the proxy added) and ``X-Forwarded-Proto`` (``https`` makes the session cookie
``Secure``, as a TLS bind does). Password guesses are limited in ``nvr.web.login_limit``.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import socket
import urllib.parse
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from quart import Response, g, request, websocket
from quart.wrappers import BaseRequestWebsocket
from werkzeug.exceptions import UnsupportedMediaType

from nvr.base import errors
from nvr.config import BindConfig, parse_address
from nvr.db.auth import PERMISSIONS, SESSION_COOKIE, Auth, Session, User
from nvr.web.context import (
    WebContext,
    check_camera_visible,
    ctx,
    parse_json_object,
    websocket_error,
)

log = logging.getLogger(__name__)

PUBLIC = "public"
CALLER = "caller"
SESSION = "session"
SELF_OR_ADMIN = "selfOrAdminUsers"

#: endpoint name -> what the route needs (see the module docstring). Every route.
ROUTE_PERMISSIONS: Mapping[str, str] = {
    # the UI's scripts and styles
    "ui.static": PUBLIC,
    # the UI's pages (ui.py): one HTML shell without data; its scripts call the API
    "ui.page_": PUBLIC,
    "ui.page_live": PUBLIC,
    "ui.page_recordings": PUBLIC,
    "ui.page_status": PUBLIC,
    "ui.page_login": PUBLIC,
    "ui.page_settings": PUBLIC,
    "ui.page_settings_cameras": PUBLIC,
    "ui.page_settings_storage": PUBLIC,
    "ui.page_settings_users": PUBLIC,
    # sessions (api.py)
    "api.login": PUBLIC,
    # who the server takes the caller to be (api.py; Moonfire's debugging route)
    "api.request_info": PUBLIC,
    "api.logout": SESSION,
    # listings (api.py)
    "api.top_level": CALLER,
    "api.camera": CALLER,
    "api.recordings": "viewVideo",
    # protected ranges (protect.py): listing them is part of seeing the video
    "protect.list_ranges": "viewVideo",
    "protect.add_range": "protectVideo",
    "protect.remove_range": "protectVideo",
    # motion search over stored summaries, and its debug twin (motion_api.py)
    "motion.motion_search": "viewVideo",
    "motion.motion_txt": "viewVideo",
    # media (view.py)
    "view.view": "viewVideo",
    "view.init_segment": "viewVideo",
    "thumb.thumbnail": "viewVideo",
    "live.live": "viewVideo",
    # several cameras and ranges as one signed .zip (export.py)
    "export.export": "viewVideo",
    # tombstones (redact.py): hide a range for good; who, when, why
    "redact.redact": "redactVideo",
    "redact.redactions": "redactVideo",
    # Prometheus metrics (metrics_route.py): only on binds with metrics = true, which
    # should be reachable by the scraper alone (scrapers have no session)
    "metrics.metrics": PUBLIC,
    # signals (signals.py)
    "signals.list_signals": "viewVideo",
    "signals.update_signals": "updateSignals",
    # users (api.py)
    "api.list_users": "adminUsers",
    "api.add_user": "adminUsers",
    "api.get_user": SELF_OR_ADMIN,
    "api.update_user": SELF_OR_ADMIN,
    "api.delete_user": "adminUsers",
    # configuration, applied while recording (config_api.py)
    "config.add_camera": "adminConfig",
    "config.update_camera": "adminConfig",
    "config.delete_camera": "adminConfig",
    "config.list_dirs": "adminConfig",
    "config.add_dir": "adminConfig",
    "config.delete_dir": "adminConfig",
    "config.add_signal_type": "adminConfig",
    "config.delete_signal_type": "adminConfig",
    "config.add_signal": "adminConfig",
    "config.delete_signal": "adminConfig",
    "config.add_archive": "adminConfig",
    "config.update_archive": "adminConfig",
    "config.delete_archive": "adminConfig",
    # a session for a script (`nvr login` while the daemon runs)
    "config.add_session": "adminUsers",
    # the settings page's camera test: the server opens a URL (camera_test.py)
    "camera_test.test_camera": "adminConfig",
}

#: the path variable that names a camera in every route that takes one
CAMERA_PATH_VARIABLE = "camera_uuid"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the session cookie's SameSite attribute (see the module docstring)
SAME_SITE = "Lax"


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
    #: what the bind grants every caller (on every camera)
    granted: frozenset[str] = frozenset()

    @property
    def user(self) -> User | None:
        return self.session.user if self.session is not None else None

    def camera_limit(self, need: str) -> frozenset[uuid.UUID] | None:
        """The cameras a route needing ``need`` may reach for this caller (None: all):
        every camera when the bind grants ``need`` (or, for a route that needs no
        particular permission, anything) to everyone; else the user's camera limit."""
        granted = need in self.granted if need in PERMISSIONS else bool(self.granted)
        if granted or self.user is None:
            return None
        return self.user.cameras


def actor(c: Caller | None = None) -> str:
    """Who the caller is, for logs and audit rows: ``user 'name' from ADDRESS``."""
    c = c or caller()
    name = f"user {c.user.username!r}" if c.user else "an unauthenticated caller"
    return f"{name} from {c.address}"


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
        granted=granted,
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


def _check_camera(need: str, who: Caller, view_args: Mapping[str, Any] | None) -> None:
    """Per-camera rights, for every route: notes the caller's camera limit for
    ``camera_by_uuid``/``visible_cameras`` (which every route resolves cameras with) and
    refuses a ``<camera_uuid>`` path value outside it now, before the handler runs."""
    g.nvr_camera_limit = who.camera_limit(need)
    text = (view_args or {}).get(CAMERA_PATH_VARIABLE)
    if isinstance(text, str):
        try:
            u = uuid.UUID(text)
        except ValueError:
            return  # the handler says it names no camera
        check_camera_visible(u)


def _need_of(endpoint: str | None) -> str:
    need = ROUTE_PERMISSIONS.get(endpoint or "")
    if need is None:
        # create_app checks the table; a route added later still fails closed.
        raise errors.Internal(f"route {endpoint!r} has no entry in the permission table")
    return need


async def check_request() -> None:
    """``before_request``: see the module docstring."""
    c = ctx()
    check_host(request.headers.get("Host"), c.bind)
    if request.routing_exception is not None or request.endpoint is None:
        return  # 404 / 405 follow
    need = _need_of(request.endpoint)
    who = resolve_caller(request)
    g.nvr_caller = who
    _check_need(need, who)
    _check_camera(need, who, request.view_args)
    if request.method in SAFE_METHODS:
        return
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"{request.method} needs a JSON body with Content-Type: application/json"
        )
    body = parse_json_object(await request.get_data(True, False, False))
    g.nvr_body = body
    if who.session is not None and need != PUBLIC:
        token = body.get("csrf")
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode(), who.session.csrf.encode()
        ):
            raise errors.PermissionDenied(
                'missing or wrong csrf token (send session.csrf from GET /api/ as "csrf")'
            )


async def check_websocket() -> Response | None:
    """``before_websocket``: see the module docstring. Returns a response (which skips
    the route) once it has sent the caller the error and closed the socket."""
    c = ctx()
    host = websocket.headers.get("Host")
    check_host(host, c.bind)
    check_origin(websocket.headers.get("Origin"), host, c.bind.allowed_hosts or ())
    if websocket.routing_exception is not None or websocket.endpoint is None:
        return None  # 404 follows
    need = _need_of(websocket.endpoint)
    who = resolve_caller(websocket)
    g.nvr_caller = who
    try:
        _check_need(need, who)
        _check_camera(need, who, websocket.view_args)
    except errors.NvrError as e:
        return await websocket_error(e)
    return None


# ----------------------------------------------------------------------------- host names


def host_name(header: str) -> str:
    """The host of a ``Host`` header (or an URL's netloc): lowercase, without the port,
    the brackets of an IPv6 address or a trailing dot."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else h
    name, colon, port = h.rpartition(":")
    if colon and port.isdigit():
        h = name
    return h.rstrip(".")


@functools.cache
def allowed_host_names(bind: BindConfig) -> frozenset[str]:
    """The names a Host header may carry on ``bind``: its ``allowed_hosts`` or, by
    default, ``localhost``, the bound host (when a name) and the machine's host name,
    with its first label alone and under ``.local``."""
    if bind.allowed_hosts is not None:
        return frozenset(host_name(h) for h in bind.allowed_hosts)
    names = {"localhost"}
    address = parse_address(bind.address)
    if isinstance(address, tuple):
        names.add(host_name(address[0]))
    machine = host_name(socket.gethostname())
    if machine:
        short = machine.split(".")[0]
        names |= {machine, short, f"{short}.local"}
    return frozenset(names)


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def check_host(header: str | None, bind: BindConfig) -> None:
    """Raises ``PermissionDenied`` for a Host that is not this server's on a bind that
    serves anything without a login (see the module docstring)."""
    if not (bind.allow_unauthenticated or bind.metrics) or not header:
        return  # needs a login (the cookie is kept per name), or not from a browser
    name = host_name(header)
    if _is_ip_address(name) or name in allowed_host_names(bind):
        return
    raise errors.PermissionDenied(
        f"Host {header!r} is not a name of this server (see allowed_hosts in the config)"
    )


def check_origin(origin: str | None, host: str | None, allowed: Collection[str] = ()) -> None:
    """Raises unless a present ``Origin`` names the ``Host`` (scheme aside; host names
    compare case-insensitively) or a host of ``allowed``. No ``Origin``: not a browser,
    nothing to hijack."""
    if origin is None:
        return
    try:
        parts = urllib.parse.urlsplit(origin)
    except ValueError:
        parts = urllib.parse.urlsplit("")
    netloc = parts.netloc.lower()
    if netloc and netloc == (host or "").lower():
        return
    if parts.hostname and host_name(parts.hostname) in {host_name(h) for h in allowed}:
        return
    raise errors.PermissionDenied(f"WebSocket Origin {origin!r} does not match Host {host!r}")


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
        samesite=SAME_SITE,
    )


def clear_session_cookie(resp: Response, c: Caller) -> None:
    resp.delete_cookie(SESSION_COOKIE, path="/", secure=c.secure, httponly=True, samesite=SAME_SITE)
