"""The archive through the real daemon: a real RTSP camera recorded, an archive added with
``nvr config archive add`` pointing at a real SeaweedFS, the daemon's uploader copying
every committed recording; ``/api/`` and ``/metrics`` show its state and backlog."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import httpx
import pytest
import trio

from nvr.cli import main
from nvr.config import BindConfig
from nvr.offline import admin
from tests.support.daemon import CameraSpec, create_db, poll, running
from tests.support.rtsp import RtspServer
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer


async def test_the_daemon_archives_what_it_records(
    tmp_path: Path, shared_rtsp_server: RtspServer, seaweed: SeaweedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layout = create_db(tmp_path, {"cam": CameraSpec(shared_rtsp_server.url("live"))})
    bucket = seaweed.bucket()
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_KEY + "\n"))
    assert main(["--db-dir", str(layout.db_dir), "config", "archive", "add", "site",
                 "--endpoint", seaweed.endpoint, "--bucket", bucket, "--prefix", "a",
                 "--access-key", ACCESS_KEY, "--secret-key-stdin"]) == 0
    config = dataclasses.replace(
        layout.config(), binds=(BindConfig(address="127.0.0.1:0", metrics=True,
                                           allow_unauthenticated=("viewVideo",)),))
    async with running(config) as d:
        (url,) = d.http_addresses
        aid = d.db.archive_by_name("site").id
        with trio.fail_after(60):
            await poll(lambda: d.uploaders[aid].uploaded >= 3)
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            (archive,) = (await c.get("/api/")).json()["archives"]
            metrics = (await c.get("/metrics")).text
        assert archive["shortName"] == "site" and archive["status"]["state"] == "ok"
        assert archive["status"]["uploadedRecordings"] >= 3
        assert 'nvr_archive_ok{archive="site"} 1.0' in metrics
        assert "nvr_archive_backlog_recordings" in metrics
        assert SECRET_KEY not in metrics and ACCESS_KEY not in str(archive)
    with admin.open_db(layout.db_dir, read_only=True) as db:
        sid = layout.stream_ids["cam"]
        held = {h.composite_id: h for h in db.archived_in(aid, sid)}
        assert len(held) >= 3
        store = seaweed.store(bucket)
        for cid, h in held.items():
            data = (layout.sample_dir / f"{cid:016x}").read_bytes()
            assert hashlib.sha256(data).digest() == h.sample_file_sha256
        keys = [o.key for o in store.list("a/")]
        assert len(keys) == 2 * len(held)
