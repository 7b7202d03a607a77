"""The web UI: one HTML shell for every UI path, and its static files.

The UI is plain ES modules and CSS under ``nvr/web/static/`` (no build step), and talks
to the server only through the public JSON and media API, with the session cookie and
CSRF token exactly as a third-party client would. The shell needs no permission: the
modules find out from ``GET /api/`` whether a login is required.

**Cache-busting.** The static files are read once, when an app is made, and served from
memory under ``/static/<version>/<name>``, where ``version`` is a digest of every file's
name and bytes (``StaticFiles``). The shell (``Cache-Control: no-cache``) names the
stylesheet and ``app.js`` under that prefix, and every module imports its neighbours
with relative specifiers (``./api.js``), which the browser resolves under the same
prefix; so any changed file changes every URL the UI uses, and each URL can be cached
for good (``immutable``). A URL of another version, or of no version, is ``404``: the
bytes of a versioned URL never change, and since the shell is never cached a page asks
only for the version that served it. (A page loads its whole module graph at start, so
one left open across an upgrade has nothing left to fetch.) Everything is same-origin
and there is no inline script, so the CSP's ``script-src 'self'`` holds.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from quart import Blueprint, Response, current_app, render_template
from quart.blueprints import BlueprintSetupState

from nvr.base import errors

blueprint = Blueprint("ui", __name__)

#: where the UI's files are (tests point it elsewhere before making an app)
STATIC_DIR = Path(__file__).parent / "static"

#: the pages the client-side router knows; each serves the same shell
PAGES = (
    "/", "/live", "/recordings", "/status", "/login",
    "/settings", "/settings/cameras", "/settings/storage", "/settings/users",
)

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

#: for a static file under its version: the same URL always has the same bytes
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class StaticFiles:
    """The UI's files by name (``/``-separated, relative to the folder) and ``version``,
    a digest of all of them, which changes whenever any file's name or bytes do."""

    version: str
    files: Mapping[str, bytes]

    @classmethod
    def load(cls, folder: Path) -> StaticFiles:
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        digest = hashlib.sha256()
        for name, data in files.items():
            encoded = name.encode()
            digest.update(len(encoded).to_bytes(8, "big") + encoded)
            digest.update(len(data).to_bytes(8, "big") + data)
        return cls(digest.hexdigest()[:16], files)


@blueprint.record_once
def _load_static_files(state: BlueprintSetupState) -> None:
    state.app.extensions["nvr.ui"] = StaticFiles.load(STATIC_DIR)


def _static_files() -> StaticFiles:
    static: StaticFiles = current_app.extensions["nvr.ui"]
    return static


async def shell() -> Response:
    html = await render_template("index.html", static_version=_static_files().version)
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


@blueprint.route("/static/<version>/<path:filename>", methods=["GET"])
async def static(version: str, filename: str) -> Response:
    files = _static_files()
    data = files.files.get(filename)
    if version != files.version or data is None:
        raise errors.NotFound("no such file of the UI (a page of an older version: reload it)")
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    return Response(
        data,
        content_type=content_type,
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )


for _path in PAGES:
    blueprint.add_url_rule(_path, f"page{_path.replace('/', '_')}", shell, methods=["GET"])
