"""Playback from a real SeaweedFS archive through the real daemon (issue 18, points 4 and
5): recordings local retention deleted after they were archived are served by
``view.mp4``/``view.m4s`` with the bytes and ETags they had when local (PyAV decodes every
frame), alone and across local ones; the archive killed before a download ends the body
short after its headers, logged once; then the disk lost (database and sample directory
deleted), ``nvr archive restore`` from the archive alone, and a read-only daemon on the
restored database serves every recording byte for byte as before. A second site (point
5): restored from a recording site's archive, read-only, it plays that site's recordings
while the first keeps recording.

Recordings are made first on a mock clock (their own trio run); uploads and the daemons
run in real time."""

from __future__ import annotations

import dataclasses
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
from tests.support.daemon import CameraSpec, create_db, poll, running
from tests.support.rtsp import RtspServer
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer, ServerFactory
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


async def test_a_read_only_second_site_plays_the_first_sites_archive_while_it_records(
    tmp_path: Path, shared_rtsp_server: RtspServer, seaweed: SeaweedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Site 1 records a real RTSP camera and archives to SeaweedFS; site 2 restores from
    the archive and runs ``--read-only`` (it writes nothing to the archive) and plays site
    1's recordings with site 1's bytes and ETags, while site 1 keeps recording. Site 2
    follows by itself (``nvr.archive.follow``, every second here): a recording site 1
    makes after site 2 started plays there too, and a redaction at site 1 hides the
    recording it covers at site 2 after its next pass."""
    site1 = create_db(tmp_path / "one", {"cam": CameraSpec(shared_rtsp_server.url("live"))})
    bucket = seaweed.bucket()
    store = seaweed.store(bucket)
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_KEY + "\n"))
    assert main(["--db-dir", str(site1.db_dir), "config", "archive", "add", "s",
                 "--endpoint", seaweed.endpoint, "--bucket", bucket, "--prefix", "one",
                 "--access-key", ACCESS_KEY, "--secret-key-stdin"]) == 0
    config1 = dataclasses.replace(site1.config(), binds=(BIND,))
    async with running(config1) as d1:
        (url1,) = d1.http_addresses
        aid = d1.db.archive_by_name("s").id
        with trio.fail_after(120):
            await poll(lambda: d1.uploaders[aid].uploaded >= 2)
        objects = sorted(o.key for o in store.list("one/"))
        monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_KEY + "\n"))
        assert await trio.to_thread.run_sync(lambda: main([
            "--db-dir", str(tmp_path / "two"), "archive", "restore", "s",
            "--endpoint", seaweed.endpoint, "--bucket", bucket, "--prefix", "one",
            "--access-key", ACCESS_KEY, "--secret-key-stdin"])) == 0
        cam = str(d1.db.cameras[next(iter(d1.db.cameras))].uuid)
        sid = next(iter(d1.db.streams))
        config2 = Config(db_dir=tmp_path / "two", binds=(BIND,), time_zone="UTC",
                         archive_follow_interval_sec=1)
        async with trio.open_nursery() as nursery:
            d2: daemon.Daemon = await nursery.start(lambda task_status: daemon.run(
                config2, read_only=True, handle_signals=False, task_status=task_status))
            (url2,) = d2.http_addresses
            path = f"/api/cameras/{cam}/main"
            async with httpx.AsyncClient(timeout=60) as c:
                async def site2_ids() -> list[int]:
                    rows = (await c.get(f"{url2}{path}/recordings",
                                        params={"split90k": "1"})).json()["recordings"]
                    assert {r["nvrLocation"] for r in rows} <= {"archive"}
                    return [int(r["startId"]) for r in rows]

                async def same_view(rid: int) -> None:
                    q = {"s": str(rid)}
                    one = await c.get(f"{url1}{path}/view.mp4", params=q)
                    two = await c.get(f"{url2}{path}/view.mp4", params=q)
                    assert (two.status_code, two.headers["ETag"]) == (200, one.headers["ETag"])
                    assert two.content == one.content and _frames(two.content) > 0

                at_start = await site2_ids()
                assert len(at_start) >= 2
                for rid in at_start[:2]:
                    await same_view(rid)

                # a recording made and archived after site 2 started appears there
                follower = d2.followers[aid]
                with trio.fail_after(120):
                    while not [i for i in await site2_ids() if i > max(at_start)]:
                        await follower.passed.wait()
                new = [i for i in await site2_ids() if i > max(at_start)]
                await same_view(new[0])

                # a redaction at site 1 hides the recording at site 2 after its next pass
                (rec,) = d1.db.list_recordings_by_id(sid, new[0], new[0] + 1)
                d1.db.add_redaction(sid, rec.start_time_90k, rec.start_time_90k + 1,
                                    "a face", user_id=None, username="ann")
                with trio.fail_after(60):
                    while new[0] in await site2_ids():
                        await follower.passed.wait()
                two = await c.get(f"{url2}{path}/view.mp4", params={"s": str(new[0])})
                assert two.status_code == 404
            assert d2.followers[aid].counters.hidden == 1
            d2.shutdown.set()
        recorded = d1.db.streams[sid].cum_recordings
        with trio.fail_after(120):  # site 1 keeps recording (and archiving)
            await poll(lambda: d1.db.streams[sid].cum_recordings > recorded)
    # site 2 wrote nothing to the archive (the one tombstone is site 1's)
    assert set(objects) <= {o.key for o in store.list("one/")}
    assert not [o.key for o in store.list("") if not o.key.startswith("one/")]
    assert [o.key.split("/")[2] for o in store.list("one/tombstones/")] == [str(d1.db.uuid)]
