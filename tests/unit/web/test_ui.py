"""The UI's shell and static files (``nvr.web.ui``): every URL the shell and the modules
use is under the content-hash prefix, cached for good there, and changes when any file
does; URLs of another version, or none, are 404."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from quart_trio import QuartTrio

from nvr.base.clock import SimulatedClocks
from nvr.db.database import Database
from nvr.web import ui
from nvr.web.app import WebContext, create_app
from tests.support.determinism import T0

#: the specifier of ``import ... from "./x.js"`` (also re-exports, over several lines),
#: ``import "./x.js"`` and ``import("./x.js")``
IMPORT = re.compile(
    r"""^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']"""
    r"""|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)""",
    re.MULTILINE,
)
SHELL_URL = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)\"""")
PREFIX = re.compile(r"^/static/([0-9a-f]{16})/")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    Database.create(tmp_path / "db", T0)
    with Database.open(tmp_path / "db", tz=dt.UTC, now=lambda: T0) as db:
        yield db


@pytest.fixture
def static_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the UI's files that apps made from now on serve."""
    folder = tmp_path / "static"
    shutil.copytree(ui.STATIC_DIR, folder)
    monkeypatch.setattr(ui, "STATIC_DIR", folder)
    return folder


MakeApp = Callable[[], QuartTrio]


@pytest.fixture
def make_app(db: Database) -> MakeApp:
    """Makes an app (as the daemon does per bind), which reads the UI's files then."""
    return lambda: create_app(WebContext(db=db, dirs={}, clocks=SimulatedClocks(T0)))


async def crawl(app: QuartTrio) -> dict[str, bytes]:
    """Every URL the shell and, transitively, the modules it loads refer to, with its
    body; each must answer 200, cacheable for good."""
    c = app.test_client()
    resp = await c.get("/recordings")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-cache"
    shell = await resp.get_data(as_text=True)
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", shell), "an inline script"
    todo = [u for u in SHELL_URL.findall(shell) if not u.startswith("data:")]
    assert len(todo) == 2  # the stylesheet and app.js
    seen: dict[str, bytes] = {}
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        resp = await c.get(url)
        assert resp.status_code == 200, url
        assert resp.headers["Cache-Control"] == ui.IMMUTABLE
        seen[url] = body = await resp.get_data(as_text=False)
        if url.endswith(".js"):
            assert resp.headers["Content-Type"].startswith("text/javascript")
            specs = [next(filter(None, m)) for m in IMPORT.findall(body.decode())]
            todo += [urljoin(url, spec) for spec in specs]
    return seen


async def test_every_url_of_the_ui_carries_the_content_hash(make_app: MakeApp) -> None:
    app = make_app()
    urls = await crawl(app)
    versions = {m.group(1) for u in urls if (m := PREFIX.match(u))}
    assert len(versions) == 1 and all(PREFIX.match(u) for u in urls), sorted(urls)
    # the shell and the imports reach every script and stylesheet there is
    names = {PREFIX.sub("", u) for u in urls}
    on_disk = {p.name for p in ui.STATIC_DIR.iterdir() if p.suffix in (".js", ".css")}
    assert names == on_disk
    # the same files give the same version (another app, another bind: same URLs)
    assert set(await crawl(make_app())) == set(urls)


async def test_a_changed_file_changes_every_url_and_old_ones_are_gone(
    make_app: MakeApp, static_copy: Path
) -> None:
    before = await crawl(make_app())
    # a leaf module, imported by others but importing nothing
    leaf = static_copy / "time.js"
    leaf.write_text(leaf.read_text() + "\n// changed\n")
    app = make_app()
    after = await crawl(app)
    assert not set(before) & set(after)
    assert {PREFIX.sub("", u) for u in before} == {PREFIX.sub("", u) for u in after}
    changed = [u for u in after if u.endswith("/time.js")]
    assert len(changed) == 1 and after[changed[0]].endswith(b"// changed\n")
    # the old version's URLs, and unversioned ones, are a clean 404
    c = app.test_client()
    for url in [*before, "/static/app.js", "/static/style.css"]:
        resp = await c.get(url)
        assert resp.status_code == 404, url
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert (await resp.get_data(as_text=True)).count("\n") == 1


async def test_names_outside_the_ui_are_404(make_app: MakeApp) -> None:
    app = make_app()
    c = app.test_client()
    version = ui.StaticFiles.load(ui.STATIC_DIR).version
    for name in ["../ui.py", "..%2Fui.py", "no-such.js", "x" * 300 + ".js", "%00.js"]:
        resp = await c.get(f"/static/{version}/{name}")
        assert resp.status_code == 404, name
