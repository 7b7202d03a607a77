"""Hostile input at every route: never a 5xx, never a traceback, every error a one-line
``text/plain`` reason, and unexpected errors logged without letting a client flood the log.

Hypothesis throws arbitrary path values, query strings, ``Range`` headers and bodies (JSON
values, and raw bytes: deep nesting, ``NaN``, lone surrogates, huge numbers, not UTF-8) at
every route of the app, as nobody, as an administrator without and with the CSRF token.
``HOSTILE`` lists the requests that answered 500 before issue 12, one test each."""

from __future__ import annotations

import logging
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart_trio import QuartTrio

from nvr.config import BindConfig
from nvr.db.auth import FLAG_HTTP_ONLY, PERMISSIONS, Session, User
from nvr.web.app import create_app
from nvr.web.context import MAX_JSON_BODY
from tests.support.web import Recorded, record, web_context

KEYS = ["s", "days", "cameraConfigs", "startTime90k", "endTime90k", "split90k", "ts",
        "username", "password", "csrf", "user", "update", "precondition", "disabled",
        "permissions", "preferences", "reason", "expiresTime90k", "nvrCameras", "all",
        "signalIds", "states", "start", "end", "base", "rel90k", "time90k", "width",
        "keyFrame", *PERMISSIONS]

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: query values and Range headers of absurd numbers
long_numbers = st.integers(min_value=19, max_value=6000).map(lambda n: "9" * n)
ranges = st.sampled_from(["bytes=0-65535"]) | long_numbers.map(lambda n: f"bytes={n}-") \
    | long_numbers.map(lambda n: f"bytes=-{n}") | long_numbers.map(lambda n: f"bytes=0-{n}")
keys = st.sampled_from(KEYS) | st.text(min_size=1, max_size=8)
query_values = (st.text(max_size=30) | st.integers().map(str) | long_numbers
                | st.sampled_from(["true", "false", "0", "0-2", "1.0-90000", "0@1", "-1", ""]))
queries = st.lists(st.tuples(keys, query_values), max_size=5)
bodies = st.dictionaries(keys, json_values, max_size=5) | json_values


def nested(depth: int, inner: bytes = b"0") -> bytes:
    return b"[" * depth + inner + b"]" * depth


#: JSON texts no JSON encoder writes, and bytes that are no JSON text at all
HOSTILE_BODIES = [
    nested(100_000), nested(33), b'{"preferences": ' + nested(40, b"{}") + b"}",
    b"\xff\xfe{}", b"\xef\xbb\xbf{}", b'{"username": "\\ud800", "password": "x"}',
    b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": 1e999}', b'{"a": ' + b"9" * 5000 + b"}",
    b'{"\\udfff": 1}', b"", b"{", b"\x00",
]
raw_bodies = st.sampled_from(HOSTILE_BODIES) | st.binary(max_size=40)


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


def app_with_admin(recorded: Recorded,
                   bind: BindConfig) -> tuple[QuartTrio, User, str, Session]:
    """An app, a user with every permission, and a session of it (id, session)."""
    ctx = web_context(recorded, bind)
    app = create_app(ctx)
    auth = ctx.auth
    assert auth is not None
    admin = auth.add_user("fuzz-admin", password_hash=auth.hash_password("pw"),
                          permissions=frozenset(PERMISSIONS))
    session_id, session = auth.create_session(admin, flags=FLAG_HTTP_ONLY)
    return app, admin, session_id, session


async def fuzz_every_route(recorded: Recorded, data: st.DataObject) -> None:
    app, admin, session_id, session = app_with_admin(
        recorded, BindConfig(allow_unauthenticated=("viewVideo",)))
    samples = {"camera_uuid": recorded.camera_uuid, "stream_type": "main", "kind": "mp4",
               "name": "2.mp4", "user_id": str(admin.id), "filename": "x.js"}
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            continue
        path = rule.rule
        for arg in rule.arguments:
            value = data.draw(st.sampled_from([samples.get(arg, "x")]) | st.text(max_size=20)
                              | st.integers().map(str) | long_numbers
                              | st.text(min_size=250, max_size=300), label=arg)
            quoted = urllib.parse.quote(value, safe="") or "%20"
            path = path.replace(f"<{arg}>", quoted).replace(f"<int:{arg}>", quoted)
            path = path.replace(f"<path:{arg}>", quoted)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            who = data.draw(st.sampled_from(["nobody", "admin", "admin+csrf"]), label="who")
            # bounded bodies (the test client's limit), or a Range to ignore
            headers = {"Range": data.draw(ranges, label="range")}
            if who != "nobody":
                headers["Cookie"] = f"s={session_id}"
            query = urllib.parse.urlencode(data.draw(queries, label="query"))
            kw: dict[str, Any] = {"headers": headers}
            if method != "GET" and data.draw(st.booleans(), label="raw body"):
                kw["data"] = data.draw(raw_bodies, label="body")
                headers["Content-Type"] = "application/json"
            elif method != "GET":
                b = data.draw(bodies, label="body")
                if who == "admin+csrf" and isinstance(b, dict):
                    b["csrf"] = session.csrf
                kw["json"] = b
            resp = await client.open(f"{path}?{query}", method=method, **kw)
            where = f"{method} {path[:80]}?{query[:80]} ({who})"
            assert_no_server_error(where, resp.status_code, resp.content_type,
                                   await resp.get_data())


def assert_no_server_error(where: str, status: int, content_type: str | None,
                           body: bytes) -> None:
    """The property: below 500, and an error is one line of text without a traceback."""
    assert status < 500, (where, body[:200])
    if status >= 400:
        text = body.decode()
        assert "Traceback" not in text, where
        assert content_type == "text/plain; charset=utf-8", where
        assert text.count("\n") == 1, (where, text)


# ----------------------------------------------------------------------------- issue 12

#: (method, path, body, headers, status) of requests that answered 500 with a traceback
#: in the log before issue 12; {uuid} is the camera's, {me} the session's user id
HOSTILE = [
    ("POST", "/api/login", nested(100_000), {}, 400),  # RecursionError
    ("POST", "/api/login", b'{"username": ' + nested(5000) + b"}", {}, 400),
    ("POST", "/api/login", b"\xff\xfe{}", {}, 400),  # UnicodeDecodeError (as UTF-16)
    ("POST", "/api/login", b" " * (MAX_JSON_BODY + 1), {}, 413),  # (was 413 already)
    ("POST", "/api/login", b'{"username": "\\ud800", "password": "x"}', {}, 400),  # encode
    ("GET", "/static/" + "a" * 300, None, {}, 404),  # ENAMETOOLONG
    ("GET", "/static/" + "é" * 128, None, {}, 404),  # 256 bytes
    ("GET", "/api/cameras/{uuid}/main/view.mp4?s=" + "9" * 5000, None, {}, 400),  # int()
    ("GET", "/api/cameras/{uuid}/main/view.mp4?s=0." + "9" * 5000 + "-", None, {}, 400),
    ("GET", "/api/cameras/{uuid}/main/view.mp4?s=0", None, {"Range": "bytes=" + "9" * 5000
                                                           + "-"}, 200),  # ignored
    ("GET", "/api/cameras/{uuid}/main/view.mp4?s=0", None, {"Range": "bytes=-" + "9" * 5000},
     200),
    ("GET", "/api/cameras/{uuid}/main/recordings?startTime90k=" + "9" * 5000, None, {}, 400),
    ("GET", "/api/users/" + "9" * 5000, None, {}, 404),
    ("PATCH", "/api/users/{me}", b'{"csrf": "{csrf}", "update": {"preferences": {"a": '
     + nested(5000) + b"}}}", {}, 400),
    ("PATCH", "/api/users/{me}", b'{"csrf": "{csrf}", "update": {"preferences": {"a": NaN}}}',
     {}, 400),  # was 412 with SQL text
    ("POST", "/api/users/", b'{"csrf": "{csrf}", "user": {"username": "x", "password": '
     b'"\\ud800"}}', {}, 400),
]


def _case_id(case: tuple[str, str, bytes | None, dict[str, str], int]) -> str:
    method, path, body, headers, _ = case
    return f"{method} {path[:40]} {(body or b'')[:20]!r} {list(headers)}"


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), HOSTILE,
                         ids=[_case_id(c) for c in HOSTILE])
async def test_what_answered_500_is_a_one_line_4xx(
        recorded: Recorded, autojump_clock: object, caplog: pytest.LogCaptureFixture,
        method: str, path: str, body: bytes | None, headers: dict[str, str],
        status: int) -> None:
    app, admin, session_id, session = app_with_admin(recorded, BindConfig())
    path = path.replace("{uuid}", recorded.camera_uuid).replace("{me}", str(admin.id))
    headers = {**headers, "Cookie": f"s={session_id}", "Content-Type": "application/json"}
    data = None if body is None else body.replace(b"{csrf}", session.csrf.encode())
    resp = await app.test_client().open(path, method=method, data=data, headers=headers)
    got = await resp.get_data()
    assert resp.status_code == status, got[:300]
    assert_no_server_error(path[:60], resp.status_code, resp.content_type, got)
    if status >= 400:
        assert "SQL" not in got.decode() and "constraint" not in got.decode()
    else:  # a Range of absurd positions is ignored: the whole file
        assert "Content-Range" not in resp.headers
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_unexpected_errors_are_logged_without_flooding(
        recorded: Recorded, autojump_clock: object, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr("nvr.web.api.coalesce", broken)
    caplog.set_level(logging.ERROR, logger="nvr.web.app")
    c = create_app(web_context(recorded)).test_client()
    url = f"/api/cameras/{recorded.camera_uuid}/main/recordings"
    for _ in range(100):  # an anonymous client hammering a broken route for 50 s
        resp = await c.get(url)
        assert resp.status_code == 500
        assert await resp.get_data(as_text=True) == "internal error (see the server log)\n"
        await trio.sleep(0.5)
    await trio.sleep(10)
    resp = await c.get(url + "?x=1")  # 60 s after the first: logged again, with a count
    assert resp.status_code == 500
    logged = [r for r in caplog.records if r.name == "nvr.web.app"]
    assert [(r.getMessage(), r.exc_info is not None) for r in logged] == [
        (f"GET {url!r}: unexpected error", True),
        (f"GET {url!r}: unexpected error (99 more since the last report)", True),
    ]
    assert "secret detail" in caplog.text  # in the log (traceback), never in the answer


