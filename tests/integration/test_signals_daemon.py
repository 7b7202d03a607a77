"""Signals through the real daemon over real sockets: a signal made by the command line,
driven by an external program's requests as in Moonfire's reference (session, CSRF), read
back by ``/api/signals`` and ``/api/``, and still there after the daemon stops."""

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
from nvr.offline import admin

MINUTE = 60 * 90_000


async def test_an_external_program_drives_a_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_dir = str(tmp_path / "db")
    Database.create(db_dir, RealClocks().realtime())
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert main(["--db-dir", db_dir, "config", "user", "add", "alarm", "--password-stdin",
                 "--perms", "viewVideo,updateSignals"]) == 0
    assert main(["--db-dir", db_dir, "config", "signal-type", "add", "zone",
                 "--state", "1:quiet", "--state", "2:tripped:motion:#ff0000"]) == 0
    assert main(["--db-dir", db_dir, "config", "signal", "add", "garden", "--type", "zone"]) == 0
    config = Config(db_dir=tmp_path / "db", binds=(BindConfig(address="127.0.0.1:0"),))
    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(
            lambda task_status: daemon.run(config, handle_signals=False, task_status=task_status)
        )
        try:
            (url,) = d.http_addresses
            async with httpx.AsyncClient(base_url=url, timeout=10) as c:
                body = {"signalIds": [1], "states": [2], "start": {"base": "now", "rel90k": 0},
                        "end": {"base": "now", "rel90k": MINUTE}}
                assert (await c.post("/api/signals", json=body)).status_code == 401
                resp = await c.post("/api/login", json={"username": "alarm", "password": "pw"})
                assert resp.status_code == 204
                top = (await c.get("/api/")).json()
                csrf = top["user"]["session"]["csrf"]
                assert top["signalTypes"][0]["states"][1] == {
                    "value": 2, "name": "tripped", "motion": True, "color": "#ff0000"}
                resp = await c.post("/api/signals", json=body)
                assert resp.status_code == 403  # no CSRF token
                t1 = (await c.post("/api/signals", json={**body, "csrf": csrf})).json()["time90k"]
                extend = {**body, "csrf": csrf, "start": {"base": "epoch", "rel90k": t1}}
                t2 = (await c.post("/api/signals", json=extend)).json()["time90k"]
                quiet = {**body, "csrf": csrf, "states": [1]}
                t3 = (await c.post("/api/signals", json=quiet)).json()["time90k"]
                assert t1 < t2 < t3
                listed = (await c.get("/api/signals")).json()
                assert listed == {"signalIds": [1, 1, 1], "states": [2, 1, 0],
                                  "times90k": [t1, t3, t3 + MINUTE]}
                resp = await c.post("/api/signals", json={**quiet, "signalIds": [1, 1],
                                                          "states": [1, 1]})
                assert resp.status_code == 400 and resp.text.count("\n") == 1
                (sig,) = (await c.get("/api/", params={"days": "true"})).json()["signals"]
                assert sig["shortName"] == "garden" and sig["cameras"] == {}
                assert sum(sum(day["states"]) for day in sig["days"].values()) == t3 + MINUTE - t1
        finally:
            d.shutdown.set()
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        changes = db.signal_changes(0, 1 << 62)
        assert changes.states[-1] == 0 and changes.times[0] == t1
