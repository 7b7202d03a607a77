"""The web UI's pages: one HTML shell for every UI path; the rest is ``static/``.

The UI is plain ES modules and CSS under ``nvr/web/static/`` (served by Quart's static
route at ``/static/``), and talks to the server only through the public JSON and media
API, with the session cookie and CSRF token exactly as a third-party client would. The
shell needs no permission: the modules find out from ``GET /api/`` whether a login is
required.
"""

from __future__ import annotations

from quart import Blueprint, Response, render_template

from nvr import __version__

blueprint = Blueprint("ui", __name__)

#: the pages the client-side router knows; each serves the same shell
PAGES = ("/", "/live", "/recordings", "/status", "/login")

CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def shell() -> Response:
    html = await render_template("index.html", version=__version__)
    return Response(
        html,
        content_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


for _path in PAGES:
    blueprint.add_url_rule(_path, f"page{_path.replace('/', '_')}", shell, methods=["GET"])
