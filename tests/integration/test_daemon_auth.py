"""Logins against the real daemon over real sockets: a user made by the command line's
code (real argon2id), the daemon's session settings from its config, and one login
rate limit shared by all binds."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
import trio

from nvr import daemon
from nvr.base.clock import RealClocks
from nvr.cli import main
from nvr.config import BindConfig, Config
from nvr.db.database import Database


async def test_login_through_the_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Database.create(tmp_path / "db", RealClocks().realtime())
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert main(["--db-dir", str(tmp_path / "db"), "config", "user", "add", "ann",
                 "--password-stdin", "--perms", "viewVideo"]) == 0
    binds = (BindConfig(address="127.0.0.1:0"), BindConfig(address="127.0.0.1:0"))
    config = Config(db_dir=tmp_path / "db", binds=binds, session_max_age_sec=3600)
    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(
            lambda task_status: daemon.run(config, handle_signals=False, task_status=task_status)
        )
        try:
            one, two = d.http_addresses
            async with httpx.AsyncClient(base_url=one, timeout=10) as c:
                assert (await c.get("/api/")).status_code == 401
                resp = await c.post("/api/login", json={"username": "ann", "password": "pw"})
                assert resp.status_code == 204
                assert "Max-Age=3600" in resp.headers["set-cookie"]  # from the config
                top = (await c.get("/api/")).json()
                assert top["user"]["name"] == "ann" and top["permissions"]["viewVideo"]
                csrf = top["user"]["session"]["csrf"]
                assert (await c.post("/api/logout", json={"csrf": csrf})).status_code == 204
                assert (await c.get("/api/")).status_code == 401
            # Failures on one bind count on the other: the limit is per daemon.
            async with httpx.AsyncClient(timeout=10) as c:
                for _ in range(5):
                    resp = await c.post(f"{one}/api/login",
                                        json={"username": "ann", "password": "guess"})
                    assert resp.status_code == 401
                resp = await c.post(f"{two}/api/login", json={"username": "ann", "password": "pw"})
                assert resp.status_code == 429 and int(resp.headers["retry-after"]) > 0
        finally:
            d.shutdown.set()
