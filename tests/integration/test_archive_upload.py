"""The uploader against a real SeaweedFS: the server killed while uploads run and started
again (every recording ends up archived exactly once, with its checksum), wrong
credentials and a deleted bucket (clear state, nothing marked, recordings untouched);
``nvr check --archive`` on an archive with missing, extra and altered objects; a
redaction's tombstone reaching the archive before the bytes it covers leave it.

Recordings are made first on a mock clock (``_record``, its own trio run); uploads run in
real time with worker threads, as in the daemon."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.archive.check import check_archive
from nvr.archive.client import S3Store
from nvr.archive.layout import recording_keys
from nvr.archive.tombstones import list_tombstones
from nvr.archive.uploader import Uploader, sample_opener
from nvr.base.blocking import inline_blocking
from nvr.base.clock import RealClocks, SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.cli import main
from nvr.db.archives import ArchiveConfig
from nvr.db.database import Database
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.daemon import poll
from tests.support.recording import record_run
from tests.support.seaweed import SeaweedServer, ServerFactory

T0 = 1_700_000_000 * UNITS_PER_SEC
SEC = UNITS_PER_SEC
RECORDINGS = 12


def _record(root: Path) -> None:
    """``RECORDINGS`` recordings of 1 fps video (60 s each), committed."""

    async def main() -> None:
        clocks = SimulatedClocks(T0)
        env = open_env(root, now=clocks.realtime, monotonic=clocks.monotonic)
        syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
        with inline_blocking():
            async with trio.open_nursery() as nursery:
                await nursery.start(syncer.run)
                await record_run(env, syncer, clocks, env.stream_ids[0],
                                 frames=60 * RECORDINGS + 10, gop=2, frame_ticks=SEC)
                await clocks.sleep(SEC)
                nursery.cancel_scope.cancel()
        env.close()

    create_env(root, streams=1, flush_if_sec=0)
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def _open(root: Path, server: SeaweedServer, bucket: str) -> tuple[RecordingEnv, int]:
    env = open_env(root, now=RealClocks().realtime)
    cfg = server.config(bucket)
    a = env.db.add_archive("s", ArchiveConfig(
        cfg.endpoint, bucket, prefix="site", access_key=cfg.access_key,
        secret_key=cfg.secret_key))
    return env, a.id


def _uploader(env: RecordingEnv, aid: int, store: S3Store) -> Uploader:
    return Uploader(env.db, aid, store, sample_opener(env.db, {env.dir_id: env.sdir}),
                    RealClocks(), initial_backoff=SEC // 5, max_backoff=SEC, batch=4)


async def _until(cond: Callable[[], bool]) -> None:
    with trio.fail_after(60):
        await poll(cond)


def _check_archive(env: RecordingEnv, aid: int, store: S3Store) -> None:
    """Every recording archived once: one row each, both objects, the right bytes."""
    sid = env.stream_ids[0]
    recs = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    held = env.db.archived_in(aid, sid)
    assert [h.composite_id for h in held] == [r.composite_id for r in recs]
    cam = env.db.cameras[env.db.streams[sid].camera_id]
    keys = []
    for r, h in zip(recs, held, strict=True):
        data = (env.sample_dir / f"{r.composite_id:016x}").read_bytes()
        assert h.sample_file_sha256 == hashlib.sha256(data).digest()
        sample_key, desc_key = recording_keys("site/", cam.uuid, "main", r.composite_id)
        assert store.get_range(sample_key, 0, len(data)) == data
        info = store.head(sample_key)
        assert info is not None and info.size == len(data)
        desc = store.head(desc_key)
        assert desc is not None
        doc = json.loads(store.get_range(desc_key, 0, desc.size))
        assert doc["sampleFileSha256"] == h.sample_file_sha256.hex()
        keys += [sample_key, desc_key]
    assert sorted(o.key for o in store.list("site/")) == sorted(keys)


async def test_server_killed_mid_upload_then_restarted(
    tmp_path: Path, seaweed_factory: ServerFactory
) -> None:
    await trio.to_thread.run_sync(_record, tmp_path)
    server = seaweed_factory()
    bucket = server.bucket()
    env, aid = _open(tmp_path, server, bucket)
    store = server.store(bucket)
    up = _uploader(env, aid, store)
    async with trio.open_nursery() as nursery:
        await nursery.start(up.run)
        await _until(lambda: up.uploaded >= 3)
        await trio.to_thread.run_sync(server.kill)
        await _until(lambda: up.status.value.attempts >= 2)
        assert up.status.value.last_error is not None
        assert "Unavailable" in up.status.value.last_error or "upload" in up.status.value.last_error
        stuck = env.db.archive_backlog(aid).recordings
        assert 0 < stuck < RECORDINGS
        await trio.to_thread.run_sync(server.start)
        await _until(lambda: env.db.archive_backlog(aid).recordings == 0)
        await _until(lambda: up.status.value.ok)
        nursery.cancel_scope.cancel()
    assert up.uploaded == env.db.count_recordings()
    _check_archive(env, aid, store)
    env.close()


async def test_wrong_credentials_then_a_deleted_bucket(
    tmp_path: Path, seaweed: SeaweedServer
) -> None:
    await trio.to_thread.run_sync(_record, tmp_path)
    bucket = seaweed.bucket()
    env, aid = _open(tmp_path, seaweed, bucket)
    files = sorted(p.name for p in env.sample_dir.iterdir())
    bad = S3Store(dataclasses.replace(seaweed.config(bucket), secret_key="wrong-secret-0"))
    up = _uploader(env, aid, bad)
    async with trio.open_nursery() as nursery:
        await nursery.start(up.run)
        await _until(lambda: up.status.value.attempts >= 2)
        nursery.cancel_scope.cancel()
    st = up.status.value
    err = st.last_error or ""
    assert not st.ok and any(
        code in err for code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"))
    print("wrong credentials:", err)
    assert "wrong-secret-0" not in (st.last_error or "")
    assert env.db.archive_backlog(aid).recordings == env.db.count_recordings()

    missing = seaweed.store("no-such-bucket-" + bucket[-8:])
    up = _uploader(env, aid, missing)
    async with trio.open_nursery() as nursery:
        await nursery.start(up.run)
        await _until(lambda: up.status.value.attempts >= 2)
        nursery.cancel_scope.cancel()
    assert "bucket does not exist" in (up.status.value.last_error or "")
    print("missing bucket:", up.status.value.last_error)
    assert env.db.archive_backlog(aid).recordings == env.db.count_recordings()
    assert sorted(p.name for p in env.sample_dir.iterdir()) == files  # recordings untouched
    env.close()


async def test_check_archive_finds_missing_extra_and_wrong_objects(
    tmp_path: Path, seaweed: SeaweedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await trio.to_thread.run_sync(_record, tmp_path)
    bucket = seaweed.bucket()
    env, aid = _open(tmp_path, seaweed, bucket)
    store = seaweed.store(bucket)
    up = _uploader(env, aid, store)
    while await up.run_once():
        pass
    assert check_archive(env.db, aid, store, hash_objects=True).problems == []
    sid = env.stream_ids[0]
    cam = env.db.cameras[env.db.streams[sid].camera_id]
    held = env.db.archived_in(aid, sid)
    gone, _ = recording_keys("site/", cam.uuid, "main", held[0].composite_id)
    _, desc = recording_keys("site/", cam.uuid, "main", held[1].composite_id)
    bad, _ = recording_keys("site/", cam.uuid, "main", held[2].composite_id)
    store.delete(gone)
    store.delete(desc)
    other = b"x" * held[2].sample_file_bytes
    store.put(bad, io.BytesIO(other), len(other), md5=hashlib.md5(other).digest(),
              sha256=hashlib.sha256(other).digest())
    store.put("site/stray", io.BytesIO(b"1"), 1, md5=hashlib.md5(b"1").digest(),
              sha256=hashlib.sha256(b"1").digest())
    problems = check_archive(env.db, aid, store, hash_objects=True).problems
    assert sorted(p.split(":")[0] for p in problems) == [
        "extra", "missing", "missing", "wrong checksum"]
    env.close()
    assert main(["--db-dir", str(tmp_path / "db"), "check", "--archive", "s", "--hash"]) == 1
    out = capsys.readouterr()
    assert out.out.count("\n") == 4 and "4 problems" in out.err


async def test_a_redaction_reaches_the_archive_as_a_tombstone_then_its_bytes_go(
    tmp_path: Path, seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await trio.to_thread.run_sync(_record, tmp_path)
    bucket = seaweed.bucket()
    env, aid = _open(tmp_path, seaweed, bucket)
    db = env.db
    store = seaweed.store(bucket)
    up = _uploader(env, aid, store)
    while await up.run_once():
        pass
    sid = env.stream_ids[0]
    cam = db.cameras[db.streams[sid].camera_id]
    recs = db.list_recordings_by_time(sid, 0, 1 << 62)
    saved = {}
    for rec in (recs[2], recs[3]):
        for key in recording_keys("site/", cam.uuid, "main", rec.composite_id):
            info = store.head(key)
            assert info is not None
            saved[key] = store.get_range(key, 0, info.size)
    # a range over the end of the 3rd recording and the start of the 4th
    r = db.add_redaction(sid, recs[3].start_time_90k - SEC, recs[3].start_time_90k + SEC,
                         "a licence plate", user_id=None, username="ann")
    # until the uploader runs, check says the archive still shows it
    problems = check_archive(db, aid, store).problems
    assert sorted(p.split(":")[0] for p in problems) == [
        "missing tombstone", "redacted, still in the archive", "redacted, still in the archive"]
    assert not await up.run_once()
    (t,) = await trio.to_thread.run_sync(list_tombstones, store, "site/")
    assert (t.redaction_id, t.camera_uuid, t.stream_type, t.reason) == (
        r.id, cam.uuid, "main", "a licence plate")
    keys = {o.key for o in store.list("site/")}
    for rec in recs:
        covered = rec in (recs[2], recs[3])
        for key in recording_keys("site/", cam.uuid, "main", rec.composite_id):
            assert (key in keys) is not covered, key
    assert [h.composite_id for h in db.archived_in(aid, sid)] == [
        rec.composite_id for rec in recs if rec not in (recs[2], recs[3])]
    assert check_archive(db, aid, store, hash_objects=True).problems == []
    # a restart (nothing in memory) writes nothing again and uploads nothing covered
    up2 = _uploader(env, aid, store)
    assert not await up2.run_once()
    assert {o.key for o in store.list("site/")} == keys
    env.close()
    # a restore from the archive never brings a covered recording back, even with its
    # objects put back (a copy of the bucket made before the redaction)
    for key, data in saved.items():
        store.put(key, io.BytesIO(data), len(data), md5=None,
                  sha256=hashlib.sha256(data).digest())
    cfg = seaweed.config(bucket)
    monkeypatch.setattr("sys.stdin", io.StringIO(cfg.secret_key + "\n"))
    assert await trio.to_thread.run_sync(lambda: main([
        "--db-dir", str(tmp_path / "restored"), "archive", "restore", "s",
        "--endpoint", cfg.endpoint, "--bucket", bucket, "--prefix", "site",
        "--access-key", cfg.access_key, "--secret-key-stdin"])) == 0
    assert "2 under tombstones" in capsys.readouterr().err
    with Database.open(tmp_path / "restored", tz=dt.UTC, now=RealClocks().realtime) as rdb:
        (rsid,) = list(rdb.streams)
        got = [r.composite_id for r in rdb.list_recordings_by_time(rsid, 0, 1 << 62)]
    assert got == [rec.composite_id for rec in recs if rec not in (recs[2], recs[3])]
