"""The archive through the real daemon: a real RTSP camera recorded, an archive added with
``nvr config archive add`` pointing at a real SeaweedFS, the daemon's uploader copying
every committed recording; ``/api/`` and ``/metrics`` show its state and backlog; archives
added, changed and removed while it runs."""

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
from tests.support.daemon import (
    CameraSpec,
    by_stream,
    committed_recordings,
    create_db,
    poll,
    running,
    runs_of,
)
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


def _cli(db_dir: Path, *args: str) -> int:
    return main(["--db-dir", str(db_dir), *args])


async def test_archives_added_changed_and_removed_while_it_records_and_uploads(
    tmp_path: Path, shared_rtsp_server: RtspServer, seaweed: SeaweedServer,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """``nvr config archive add|edit|remove|list`` against the running daemon (over its
    control socket): the new archive uploads at once, the edited one restarts alone with
    its new prefix, the removed one stops; the camera keeps one run and archive ``one``
    keeps uploading with the same uploader throughout."""
    layout = create_db(tmp_path, {"cam": CameraSpec(shared_rtsp_server.url("live"))})
    db_dir, bucket = layout.db_dir, seaweed.bucket()
    add = ["config", "archive", "add", "--endpoint", seaweed.endpoint, "--bucket", bucket,
           "--access-key", ACCESS_KEY, "--secret-key-stdin"]
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_KEY + "\n"))
    assert _cli(db_dir, *add[:3], "one", *add[3:], "--prefix", "one") == 0
    async with running(layout.config(rotate_interval_sec=2)) as d:
        one = d.db.archive_by_name("one").id
        up_one = d.uploaders[one]
        with trio.fail_after(60):
            await poll(lambda: up_one.uploaded >= 2)
        monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_KEY + "\n"))
        assert await trio.to_thread.run_sync(
            _cli, db_dir, *add[:3], "two", *add[3:], "--prefix", "two") == 0
        two = d.db.archive_by_name("two").id
        with trio.fail_after(60):
            await poll(lambda: two in d.uploaders and d.uploaders[two].uploaded >= 2)
        up_two = d.uploaders[two]
        # refused, nothing changed, the key never in the message
        monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_KEY + "\n"))
        assert await trio.to_thread.run_sync(
            _cli, db_dir, *add[:3], "two", *add[3:]) == 1
        err = capsys.readouterr().err
        assert "archive 'two' already exists" in err and SECRET_KEY not in err
        assert d.uploaders[two] is up_two
        # edit: only two's uploader restarts; its new objects go under the new prefix
        assert await trio.to_thread.run_sync(
            _cli, db_dir, "config", "archive", "edit", "two", "--prefix", "two-b") == 0
        assert d.uploaders[two] is not up_two and d.uploaders[one] is up_one
        with trio.fail_after(60):
            await poll(lambda: d.uploaders[two].uploaded >= 1)
        assert d.db.archives[two].config.prefix == "two-b/"
        assert await trio.to_thread.run_sync(_cli, db_dir, "config", "archive", "list") == 0
        listed = capsys.readouterr().out
        assert f"{bucket}/two-b/" in listed and SECRET_KEY not in listed
        # remove: two's uploader stops; one goes on
        assert await trio.to_thread.run_sync(
            _cli, db_dir, "config", "archive", "remove", "two") == 0
        assert two not in d.uploaders and two not in d.db.archives
        before = up_one.uploaded
        with trio.fail_after(60):
            await poll(lambda: up_one.uploaded >= before + 2)
        assert d.uploaders[one] is up_one and up_one.status.value.ok
    store = seaweed.store(bucket)
    assert any(o.key.startswith("two-b/") for o in store.list("two-b/"))
    recs = by_stream(committed_recordings(db_dir))[layout.stream_ids["cam"]]
    (run,) = runs_of(recs)  # the camera was never interrupted
    assert run[-1].end_reason == "shutdown"
