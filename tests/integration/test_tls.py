"""HTTPS on a bind with ``tls_cert``/``tls_key``: a certificate made by the test, the
daemon's server (``nvr.web.server``), a real socket and httpx. Over TLS the session cookie is
``Secure``."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
import trio

from nvr.base.clock import RealClocks
from nvr.base.time90k import zone
from nvr.config import BindConfig
from nvr.db.auth import Auth
from nvr.db.database import Database
from nvr.web.app import create_app
from nvr.web.context import WebContext
from nvr.web.server import BindServer, HttpLimits
from tests.support.web import FAST_HASHER


def make_certificate(d: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for a day."""
    openssl = shutil.which("openssl")
    assert openssl, "the TLS test needs the openssl command (Debian package openssl)"
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=nvr test",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


async def test_https_bind_serves_the_api_with_a_secure_cookie(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    clocks = RealClocks()
    Database.create(tmp_path / "db", clocks.realtime())
    db = Database.open(tmp_path / "db", tz=zone("UTC"), now=clocks.realtime)
    try:
        auth = Auth(db, now=clocks.realtime, hasher=FAST_HASHER)
        auth.add_user("alice", password_hash=auth.hash_password("pw"),
                      permissions=frozenset({"viewVideo"}))
        bind = BindConfig(address="127.0.0.1:0", tls_cert=str(cert), tls_key=str(key))
        app = create_app(WebContext(db=db, dirs={}, clocks=clocks, bind=bind, auth=auth))
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            server = BindServer(app, bind, HttpLimits(graceful_timeout_sec=1.0), clocks,
                                daemon_slots=trio.Semaphore(10))
            bound = await nursery.start(server.serve, stop.wait)
            port = int(bound[0].rsplit(":", 1)[1])
            base = f"https://127.0.0.1:{port}"
            verify = ssl.create_default_context(cafile=str(cert))
            async with httpx.AsyncClient(base_url=base, verify=verify, timeout=10) as c:
                resp = await c.get("/api/")
                assert resp.status_code == 401
                resp = await c.post("/api/login", json={"username": "alice", "password": "pw"})
                assert resp.status_code == 204, resp.text
                set_cookie = resp.headers["set-cookie"]
                attrs = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
                assert {"secure", "httponly", "samesite", "path"} <= attrs
                assert "SameSite=Lax" in set_cookie
                top = (await c.get("/api/")).json()  # httpx sends the Secure cookie over TLS
                assert top["user"]["name"] == "alice"
                assert top["permissions"]["viewVideo"] is True
            # The port speaks only TLS: plain HTTP gets no answer.
            async with httpx.AsyncClient(timeout=5) as plain:
                with pytest.raises(httpx.HTTPError):
                    await plain.get(f"http://127.0.0.1:{port}/api/")
            # A client that does not trust the certificate refuses the connection.
            async with httpx.AsyncClient(timeout=5) as untrusting:
                with pytest.raises(httpx.ConnectError):
                    await untrusting.get(f"{base}/api/")
            stop.set()
    finally:
        db.close()
