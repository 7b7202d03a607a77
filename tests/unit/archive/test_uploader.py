"""The uploader on ``MockClock`` with an in-process store: what it writes (two objects per
recording, checksums the store verifies, a self-describing JSON), the database state,
retries with exact backoff times, the rate cap, and recordings deleted before upload."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.archive.layout import recording_keys
from nvr.archive.uploader import Uploader
from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.archives import ArchiveConfig
from nvr.storage.reader import SampleFile
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.memstore import MemoryStore
from tests.support.recording import record_run, record_seconds

SEC = UNITS_PER_SEC


pytestmark = pytest.mark.usefixtures("inline_seam")


async def _recorded(tmp_path: Path, clocks: SimulatedClocks, *, seconds: int = 150,
                    **cfg: object) -> RecordingEnv:
    """An env whose one stream committed ``seconds`` of 1 fps video (3 recordings for
    150 s), with an archive ``a`` copying it."""
    create_env(tmp_path, streams=1, flush_if_sec=0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    await record_seconds(env, clocks, seconds)
    env.db.add_archive("a", ArchiveConfig("http://127.0.0.1:9", "bkt", prefix="p",
                                          access_key="k", secret_key="s", **cfg))  # type: ignore[arg-type]
    return env


def _uploader(env: RecordingEnv, store: MemoryStore, clocks: SimulatedClocks) -> Uploader:
    def open_sample(cid: int) -> SampleFile:
        return env.sdir.open_for_reading(cid)

    return Uploader(env.db, env.db.archive_by_name("a").id, store, open_sample, clocks)


async def test_uploads_each_recording_as_two_verified_objects(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks)
    aid = env.db.archive_by_name("a").id
    recs = env.db.list_recordings_by_time(env.stream_ids[0], 0, 1 << 62)
    assert len(recs) == 3
    assert env.db.archive_backlog(aid).recordings == 3
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    assert await up.run_once()
    assert not await up.run_once()
    cam = env.db.cameras[env.db.streams[env.stream_ids[0]].camera_id]
    for r in recs:
        sample_key, desc_key = recording_keys("p/", cam.uuid, "main", r.composite_id)
        data = store.objects[sample_key]
        assert data == (env.sample_dir / f"{r.composite_id:016x}").read_bytes()
        doc = json.loads(store.objects[desc_key])
        assert doc["compositeId"] == r.composite_id and doc["camera"]["uuid"] == str(cam.uuid)
        assert doc["sampleFileSha256"] == hashlib.sha256(data).hexdigest()
        assert doc["row"]["startTime90k"] == r.start_time_90k
        assert doc["row"]["sampleFileBytes"] == len(data)
        assert base64.b64decode(doc["videoIndex"]) == env.db.get_video_index(r.composite_id)
        assert doc["sampleEntry"]["rfc6381Codec"] == "avc1.64001e"
    assert set(store.puts.values()) == {1} and len(store.puts) == 6
    held = env.db.archived_in(aid, env.stream_ids[0])
    assert [h.composite_id for h in held] == [r.composite_id for r in recs]
    assert env.db.archive_backlog(aid).recordings == 0
    assert up.uploaded == 3 and up.status.value.ok
    env.close()


async def test_failures_are_retried_with_capped_backoff_and_nothing_is_marked_early(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks)
    aid = env.db.archive_by_name("a").id
    store = MemoryStore()
    store.faults = [errors.Unavailable("server down")] * 4
    up = _uploader(env, store, clocks)
    seen: list[tuple[int, int, bool]] = []  # (virtual seconds, attempts, archived rows)

    async def watch() -> None:
        async for s in up.status.eventual_values():
            seen.append((round(trio.current_time()), s.attempts,
                         bool(env.db.archived_in(aid, env.stream_ids[0]))))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await trio.testing.wait_all_tasks_blocked()
        await up.run_once()
        nursery.cancel_scope.cancel()
    # attempts at +0, +1, +3, +7 (backoff 1, 2, 4 s), success at +15
    assert [(t - round(start), a) for t, a, _ in seen] == [
        (0, 0), (0, 1), (1, 2), (3, 3), (7, 4), (15, 0)]
    assert not any(archived for _, _, archived in seen[:-1])
    assert up.uploaded == 3 and set(store.puts.values()) == {1}
    failures = [r for r in caplog.records if "will retry" in r.message]
    assert len(failures) == 1  # at most one line a minute
    assert "server down" in failures[0].message
    env.close()


async def test_a_checksum_the_server_refuses_is_retried_and_never_recorded(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks, seconds=30)
    aid = env.db.archive_by_name("a").id
    store = MemoryStore()
    store.faults = [errors.DataLoss("PUT x: BadDigest")]
    up = _uploader(env, store, clocks)
    await up.run_once()
    assert env.db.archive_backlog(aid).recordings == 0
    assert up.status.value.ok and store.calls == 3  # refused once, then both objects
    env.close()


async def test_the_rate_cap_spaces_uploads(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks, max_rate=10_000)
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    start = trio.current_time()
    await up.run_once()
    sizes = [len(v) for v in store.objects.values()]
    # the last upload starts once the first two's bytes have gone at 10 kB/s
    first_two = sum(sizes[:4])
    assert trio.current_time() - start == pytest.approx(first_two / 10_000, abs=0.01)
    env.close()


async def test_a_recording_deleted_before_upload_is_counted_and_skipped(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks)
    sid = env.stream_ids[0]
    oldest = env.db.list_recordings_by_time(sid, 0, 1 << 62)[0]
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    batch = env.db.unarchived(up.archive_id, 10)
    env.db.plan_delete_all_recordings(sid)
    env.db.flush("test")
    for cid in sorted(env.db.dirs[env.dir_id].garbage_needs_unlink):
        env.sdir.unlink(cid)
    assert env.db.never_archived == {up.archive_id: 3}
    with caplog.at_level(logging.INFO):
        for u in batch:
            await up._retry("upload", lambda u=u: up._upload(u))  # type: ignore[misc]
    assert up.uploaded == 0 and not store.objects
    assert f"{oldest.composite_id:016x} was deleted before it was archived" in caplog.text
    env.close()


async def test_archive_retention_deletes_each_streams_oldest_first(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks, seconds=5 * 60 + 10)
    aid = env.db.archive_by_name("a").id
    sid = env.stream_ids[0]
    recs = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    assert len(recs) == 6
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    while await up.run_once():
        pass
    assert len(store.objects) == 12
    budget = sum(r.sample_file_bytes for r in recs[-2:])
    a = env.db.archives[aid]
    env.db.update_archive(aid, config=dataclasses.replace(a.config, retain_bytes=budget))
    assert await up.apply_retention() == 4
    held = [h.composite_id for h in env.db.archived_in(aid, sid)]
    assert held == [r.composite_id for r in recs[-2:]]
    cam = env.db.cameras[env.db.streams[sid].camera_id]
    assert sorted(store.objects) == sorted(
        k for r in recs[-2:] for k in recording_keys("p/", cam.uuid, "main", r.composite_id))
    # what retention deleted while it is still local is not uploaded again
    puts = sum(store.puts.values())
    assert not await up.run_once() and sum(store.puts.values()) == puts
    assert env.db.archive_backlog(aid).recordings == 0
    # by age: a day later with retain_days=1, everything goes
    a = env.db.archives[aid]
    env.db.update_archive(aid, config=dataclasses.replace(a.config, retain_days=1))
    await clocks.sleep(86_400 * SEC)
    assert await up.apply_retention() == 2
    assert not store.objects and not env.db.archived_in(aid, sid)
    assert env.db.list_recordings_by_time(sid, 0, 1 << 62) == recs  # local copies untouched
    assert not await up.run_once() and sum(store.puts.values()) == puts
    assert env.db.archive_backlog(aid).recordings == 0
    # ... and after a restart (it is in the database)
    env.close()
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    up = _uploader(env, store, clocks)
    assert env.db.archive_backlog(aid).recordings == 0
    assert not await up.run_once() and sum(store.puts.values()) == puts
    env.db.flush_listeners.clear()
    env.close()


async def test_a_deleted_cameras_archived_recordings_age_out_by_archive_retention(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks)
    aid = env.db.archive_by_name("a").id
    sid = env.stream_ids[0]
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    while await up.run_once():
        pass
    assert len(store.objects) == 6
    # the camera's recordings are deleted locally (they stay archived), then the camera
    cam_id = env.db.streams[sid].camera_id
    for s in list(env.db.cameras[cam_id].streams.values()):
        env.db.plan_delete_all_recordings(s)
    env.db.flush("test")
    env.db.delete_camera(cam_id)
    assert sid not in env.db.streams and len(env.db.archived_in(aid, sid)) == 3
    a = env.db.archives[aid]
    env.db.update_archive(aid, config=dataclasses.replace(a.config, retain_days=1))
    assert await up.apply_retention() == 0  # not old enough yet
    await clocks.sleep(86_400 * SEC)
    assert await up.apply_retention() == 3
    assert not store.objects and not env.db.archived_in(aid, sid)
    env.close()


async def test_uploads_run_concurrently_and_each_object_is_put_once_despite_faults(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks, seconds=5 * 60 + 10)
    aid = env.db.archive_by_name("a").id
    recs = env.db.list_recordings_by_time(env.stream_ids[0], 0, 1 << 62)
    assert len(recs) == 6
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    up._server_verifies_sha256 = True  # probed: not this test's subject
    # the second call fails: one worker's sample PUT, retried after 1 s by that worker
    store.faults = [None, errors.Unavailable("reset"), None]  # type: ignore[list-item]
    faults = store.faults
    orig = store._fault

    def fault() -> None:
        store.calls += 1
        if faults:
            f = faults.pop(0)
            if f is not None:
                raise f

    store._fault = fault  # type: ignore[method-assign]
    start = trio.current_time()
    assert await up.run_once()
    store._fault = orig  # type: ignore[method-assign]
    samples = [k for k, _ in store.put_log if k.endswith(".sample")]
    # four in flight: the first four samples go before any description
    first_desc = next(i for i, (k, _) in enumerate(store.put_log) if k.endswith(".json"))
    assert first_desc >= 3
    assert len(samples) == 6 and set(store.puts.values()) == {1} and len(store.puts) == 12
    assert trio.current_time() - start == 1  # the failed one waited its 1 s backoff alone
    held = [h.composite_id for h in env.db.archived_in(aid, env.stream_ids[0])]
    assert held == [r.composite_id for r in recs]
    assert env.db.archive_backlog(aid).recordings == 0
    env.close()


@pytest.mark.parametrize("verifies", [True, False])
async def test_the_writers_sha256_goes_to_a_server_that_verifies_it_without_hashing_again(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, verifies: bool
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks, seconds=30)
    store = MemoryStore()
    store.verifies_sha256 = verifies
    up = _uploader(env, store, clocks)
    assert await up.run_once()
    # the probe's object is refused (it verifies) or deleted (it does not)
    assert not any(k.endswith(".nvr-checksum-probe") for k in store.objects)
    sample = next(with_md5 for k, with_md5 in store.put_log if k.endswith(".sample"))
    assert sample is (not verifies)  # MD5 only for a server that ignores the SHA-256
    assert up.uploaded == 1
    env.close()


@pytest.mark.parametrize("verifies", [True, False])
async def test_a_changed_local_file_is_skipped_with_an_alarm_not_retried_forever(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture,
    verifies: bool,
) -> None:
    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks)
    aid = env.db.archive_by_name("a").id
    recs = env.db.list_recordings_by_time(env.stream_ids[0], 0, 1 << 62)
    bad = recs[1].composite_id
    path = env.sample_dir / f"{bad:016x}"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    store = MemoryStore()
    store.verifies_sha256 = verifies
    up = _uploader(env, store, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(up.run)
        await trio.testing.wait_all_tasks_blocked()
        assert up.uploaded == 2 and list(up.skipped) == [bad]
        assert "no longer has the SHA-256" in up.skipped[bad].reason
        assert up.status.value.ok  # not retrying: an alarm, not a failure
        assert env.db.archive_backlog(aid).recordings == 1  # still not archived
        await clocks.sleep(150 * SEC)  # the alarm is logged once a minute while it lasts
        nursery.cancel_scope.cancel()
    lines = [r for r in caplog.records if "not archiving it" in r.message
             or "recordings not archived" in r.message]
    assert len(lines) == 3, [r.message for r in lines]  # at +0, +60, +120
    assert not any(k.startswith(f"{bad:016x}") for k in store.objects)
    assert bad not in {h.composite_id for h in env.db.archived_in(aid, env.stream_ids[0])}
    env.close()


async def test_the_backlog_is_kept_in_memory_and_matches_the_database(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nvr.db import raw_archive

    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks, seconds=5 * 60 + 10)
    aid = env.db.archive_by_name("a").id
    sid = env.stream_ids[0]
    recs = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    loads = []
    real = raw_archive.list_backlog
    monkeypatch.setattr(raw_archive, "list_backlog", lambda *a: loads.append(1) or real(*a))

    def sql_backlog() -> tuple[int, int, int | None]:
        rows = real(env.db._conn, aid)
        return (len(rows), sum(r[2] for r in rows), min((r[1] for r in rows), default=None))

    b = env.db.archive_backlog(aid)
    assert (b.recordings, b.bytes, b.oldest_start_90k) == sql_backlog()
    assert b.recordings == 6 and b.oldest_start_90k == recs[0].start_time_90k
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    up._batch = 2
    await up.run_once()
    for _ in range(100):  # the API and metrics ask often: no query
        b = env.db.archive_backlog(aid)
    assert (b.recordings, b.bytes, b.oldest_start_90k) == sql_backlog()
    assert b.recordings == 4 and b.oldest_start_90k == recs[2].start_time_90k
    # local deletion of an unarchived recording
    env.db.plan_delete_all_recordings(sid)
    env.db.flush("test")
    b = env.db.archive_backlog(aid)
    assert (b.recordings, b.bytes, b.oldest_start_90k) == sql_backlog() == (0, 0, None)
    assert len(loads) == 1
    env.close()


async def test_the_backlog_in_memory_follows_commits_and_redactions(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    from nvr.db import raw_archive

    clocks = SimulatedClocks(T0)
    env = await _recorded(tmp_path, clocks)
    aid = env.db.archive_by_name("a").id
    sid = env.stream_ids[0]
    assert env.db.archive_backlog(aid).recordings == 3  # loaded now
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, sid, frames=130, gop=2, frame_ticks=SEC)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    rows = raw_archive.list_backlog(env.db._conn, aid)
    b = env.db.archive_backlog(aid)
    assert b.recordings == len(rows) > 3 and b.bytes == sum(r[2] for r in rows)
    recs = env.db.list_recordings_by_time(sid, 0, 1 << 62)
    env.db.add_redaction(sid, recs[0].start_time_90k, recs[0].start_time_90k + 1, "face",
                         user_id=None, username=None)
    b = env.db.archive_backlog(aid)
    assert b.recordings == len(rows) - 1 and b.oldest_start_90k == recs[1].start_time_90k
    env.close()
