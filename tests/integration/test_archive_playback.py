"""Playback from a real SeaweedFS archive through the real daemon (issue 18, points 4 and
5): recordings local retention deleted after they were archived are served by
``view.mp4``/``view.m4s`` with the bytes and ETags they had when local (PyAV decodes every
frame), alone and across local ones; the archive killed before a download ends the body
short after its headers, logged once; then the disk lost (database and sample directory
deleted), ``nvr archive restore`` from the archive alone, and a read-only daemon on the
restored database serves every recording byte for byte as before.

Recordings are made first on a mock clock (their own trio run); uploads and the daemons
run in real time."""

from __future__ import annotations

import io
import logging
import shutil
from pathlib import Path

import av
import httpx
import pytest
import trio
import trio.testing

from nvr import daemon
from nvr.archive.uploader import Uploader, sample_opener
from nvr.base.clock import RealClocks
from nvr.cli import main
from nvr.config import BindConfig, Config
from nvr.db.archives import ArchiveConfig
from nvr.testing.env import open_env
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, ServerFactory
from tests.support.web import record

BIND = BindConfig(address="127.0.0.1:0", allow_unauthenticated=("viewVideo",))
QUERIES: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("mp4", {"s": "0-2"}, {}),  # archived 0 and 1, local 2
    ("mp4", {"s": "0"}, {}),
    ("mp4", {"s": "0-1.90000-"}, {}),
    ("mp4", {"s": "0-2"}, {"Range": "bytes=1000-3000000"}),
    ("m4s", {"s": "1"}, {}),
    ("mp4", {"s": "3"}, {}),
]


def _record(root: Path) -> str:
    """The web tests' recording (4 recordings, two runs) under ``root``; the camera uuid."""

    async def go() -> str:
        r = await record(root)
        r.env.close()
        return r.camera_uuid

    return trio.run(go, clock=trio.testing.MockClock(autojump_threshold=0))


async def _serve(db_dir: Path, camera_uuid: str
                 ) -> tuple[list[tuple[int, str, bytes]], list[dict[str, object]]]:
    """Every query's (status, ETag, body) and the recordings list, from a read-only
    daemon on ``db_dir``."""
    config = Config(db_dir=db_dir, binds=(BIND,), time_zone="UTC")
    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(lambda task_status: daemon.run(
            config, read_only=True, handle_signals=False, task_status=task_status))
        try:
            (url,) = d.http_addresses
            base = f"/api/cameras/{camera_uuid}/main"
            out = []
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                for kind, q, headers in QUERIES:
                    r = await c.get(f"{base}/view.{kind}", params=q, headers=headers)
                    out.append((r.status_code, r.headers["ETag"], r.content))
                rows = (await c.get(f"{base}/recordings", params={"split90k": "1"})
                        ).json()["recordings"]
            return out, rows
        finally:
            d.shutdown.set()


def _frames(mp4: bytes) -> int:
    with av.open(io.BytesIO(mp4)) as f:
        return sum(1 for _ in f.decode(video=0))


async def test_archived_recordings_play_then_restore_after_the_disk_is_lost(
    tmp_path: Path, seaweed_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "site"
    camera_uuid = await trio.to_thread.run_sync(_record, root)
    before, rows = await _serve(root / "db", camera_uuid)
    assert [s for s, _, _ in before] == [200, 200, 200, 206, 200, 200]
    assert {r["nvrLocation"] for r in rows} == {"local"}

    server = seaweed_factory()
    bucket = server.bucket()
    cfg = server.config(bucket)
    env = open_env(root, now=RealClocks().realtime)
    try:
        a = env.db.add_archive("s", ArchiveConfig(
            cfg.endpoint, bucket, prefix="site", access_key=cfg.access_key,
            secret_key=cfg.secret_key))
        up = Uploader(env.db, a.id, server.store(bucket),
                      sample_opener(env.db, {env.dir_id: env.sdir}), RealClocks())
        while await up.run_once():
            pass
        sid = env.stream_ids[0]
        dels = list(env.db.iter_unplanned_oldest(sid))[:2]
        env.db.add_planned_deletions(sid, dels)
        env.db.flush("test")
        for d in dels:  # as the syncer would
            assert env.sdir.unlink(d.composite_id)
    finally:
        env.close()

    after, rows = await _serve(root / "db", camera_uuid)
    assert [r["nvrLocation"] for r in rows] == ["archive", "archive", "local", "local"]
    assert [(s, e) for s, e, _ in after] == [(s, e) for s, e, _ in before]
    assert [b for _, _, b in after] == [b for _, _, b in before]
    frames = sum(int(r["videoSamples"]) for r in rows[:2])  # type: ignore[call-overload]
    assert _frames(after[0][2]) == frames + int(rows[2]["videoSamples"])  # type: ignore[call-overload]

    # the archive goes away: headers, then the body ends short; one line logged
    await trio.to_thread.run_sync(server.kill)
    caplog.set_level(logging.WARNING, "nvr.web.view")
    config = Config(db_dir=root / "db", binds=(BIND,), time_zone="UTC")
    async with trio.open_nursery() as nursery:
        d: daemon.Daemon = await nursery.start(lambda task_status: daemon.run(
            config, read_only=True, handle_signals=False, task_status=task_status))
        (url,) = d.http_addresses
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            async with c.stream("GET", f"/api/cameras/{camera_uuid}/main/view.mp4",
                                params={"s": "0-1"}) as r:
                assert r.status_code == 200
                got = 0
                with pytest.raises(httpx.RemoteProtocolError):
                    async for chunk in r.aiter_bytes():
                        got += len(chunk)
                assert 0 < got < int(r.headers["Content-Length"])
            # the server is still there for the next request
            assert (await c.get("/api/")).status_code == 200
        d.shutdown.set()
    ended = [x for x in caplog.records if "response ended" in x.getMessage()]
    assert len(ended) == 1
    assert not [x for x in caplog.records if x.levelno >= logging.ERROR]
    await trio.to_thread.run_sync(server.start)

    # the disk is lost: restore from the archive alone
    shutil.rmtree(root / "db")
    shutil.rmtree(root / "sample")
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_KEY + "\n"))
    assert await trio.to_thread.run_sync(lambda: main([
        "--db-dir", str(tmp_path / "restored"), "archive", "restore", "s",
        "--endpoint", cfg.endpoint, "--bucket", bucket, "--prefix", "site",
        "--access-key", ACCESS_KEY, "--secret-key-stdin"])) == 0
    restored, rows = await _serve(tmp_path / "restored", camera_uuid)
    # every archived recording (0 to 3) plays as before, from the archive
    assert [r["nvrLocation"] for r in rows] == ["archive"] * 4
    assert [(s, e) for s, e, _ in restored] == [(s, e) for s, e, _ in before]
    assert [b for _, _, b in restored] == [b for _, _, b in before]
