"""Hypothesis throws arbitrary path values, query strings and JSON bodies at every route
of the app, as nobody, as an administrator without and with the CSRF token: never a 5xx,
never a traceback, every error a one-line ``text/plain`` reason."""

from __future__ import annotations

import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvr.config import BindConfig
from nvr.db.auth import FLAG_HTTP_ONLY, PERMISSIONS
from nvr.web.app import create_app
from tests.support.web import Recorded, inline_web_threads, record, web_context

KEYS = ["s", "days", "cameraConfigs", "startTime90k", "endTime90k", "split90k", "ts",
        "username", "password", "csrf", "user", "update", "precondition", "disabled",
        "permissions", "preferences", *PERMISSIONS]

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(KEYS) | st.text(min_size=1, max_size=8)
query_values = (st.text(max_size=30) | st.integers().map(str)
                | st.sampled_from(["true", "false", "0", "0-2", "1.0-90000", "0@1", "-1", ""]))
queries = st.lists(st.tuples(keys, query_values), max_size=5)
bodies = st.dictionaries(keys, json_values, max_size=5) | json_values


__all__ = ["inline_web_threads"]  # a fixture

pytestmark = pytest.mark.usefixtures("inline_web_threads")


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_no_route_fails_on_any_input(autojump_clock: object, data: st.DataObject) -> None:
    # pytest-trio runs each example in a trio run of its own but sets fixtures up only
    # once, so each example records its own database here.
    with tempfile.TemporaryDirectory(prefix="nvr-fuzz-") as d:
        recorded = await record(Path(d), seconds=30)  # one recording is enough
        try:
            await fuzz_every_route(recorded, data)
        finally:
            recorded.env.close()


async def fuzz_every_route(recorded: Recorded, data: st.DataObject) -> None:
    ctx = web_context(recorded, BindConfig(allow_unauthenticated=("viewVideo",)))
    app = create_app(ctx)
    auth = ctx.auth
    assert auth is not None
    admin = auth.add_user("fuzz-admin", password_hash=auth.hash_password("pw"),
                          permissions=frozenset(PERMISSIONS))
    session_id, session = auth.create_session(admin, flags=FLAG_HTTP_ONLY)
    samples = {"camera_uuid": recorded.camera_uuid, "stream_type": "main", "kind": "mp4",
               "name": "2.mp4", "user_id": str(admin.id), "filename": "x.js"}
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            continue
        path = rule.rule
        for arg in rule.arguments:
            value = data.draw(st.sampled_from([samples.get(arg, "x")]) | st.text(max_size=20)
                              | st.integers().map(str), label=arg)
            quoted = urllib.parse.quote(value, safe="") or "%20"
            path = path.replace(f"<{arg}>", quoted).replace(f"<int:{arg}>", quoted)
            path = path.replace(f"<path:{arg}>", quoted)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            who = data.draw(st.sampled_from(["nobody", "admin", "admin+csrf"]), label="who")
            headers = {"Range": "bytes=0-65535"}  # bounded bodies (the test client's limit)
            if who != "nobody":
                headers["Cookie"] = f"s={session_id}"
            query = urllib.parse.urlencode(data.draw(queries, label="query"))
            kw: dict[str, Any] = {"headers": headers}
            if method != "GET":
                b = data.draw(bodies, label="body")
                if who == "admin+csrf" and isinstance(b, dict):
                    b["csrf"] = session.csrf
                kw["json"] = b
            resp = await client.open(f"{path}?{query}", method=method, **kw)
            where = f"{method} {path}?{query} ({who})"
            assert resp.status_code < 500, (where, await resp.get_data(as_text=True))
            if resp.status_code >= 400:
                text = await resp.get_data(as_text=True)
                assert "Traceback" not in text, where
                assert resp.content_type == "text/plain; charset=utf-8", where
                assert text.count("\n") == 1, (where, text)

