"""The follower (a read-only second site keeping up with another site's archive) on
``MockClock`` with an in-process store: its first pass adds every recording (camera,
stream, sample entry); each later pass, exactly one interval after the last, adds the
recordings uploaded since and forgets those a new tombstone covers; an idle pass lists a
bounded window per stream, not the archive; a failing pass is tried again at the next
interval."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.archive import follow
from nvr.archive.follow import Follower
from nvr.archive.uploader import Uploader
from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.archives import ArchiveConfig
from nvr.db.database import Database
from nvr.db.types import ListedRecording
from nvr.storage.reader import SampleFile
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.memstore import MemoryStore
from tests.support.recording import record_seconds

SEC = UNITS_PER_SEC
INTERVAL = 60 * SEC
CFG = ArchiveConfig("http://127.0.0.1:9", "bkt", prefix="p", access_key="k", secret_key="s")

pytestmark = pytest.mark.usefixtures("inline_seam")




def _uploader(env: RecordingEnv, store: MemoryStore, clocks: SimulatedClocks) -> Uploader:
    def open_sample(cid: int) -> SampleFile:
        return env.sdir.open_for_reading(cid)

    return Uploader(env.db, env.db.archive_by_name("a").id, store, open_sample, clocks)


async def _upload_all(up: Uploader) -> None:
    while await up.run_once():
        pass


def _site2(tmp_path: Path, clocks: SimulatedClocks) -> Database:
    Database.create(tmp_path / "two", T0)
    db = Database.open(tmp_path / "two", tz=dt.UTC, now=clocks.realtime)
    db.add_archive("a", CFG, [])
    return db


def _same(r: ListedRecording) -> tuple[object, ...]:
    """What a view's bytes and ETag depend on."""
    return (r.composite_id, r.open_id, r.start_time_90k, r.wall_duration_90k,
            r.media_duration_90k, r.sample_file_bytes, r.video_samples, r.run_offset,
            r.flags, r.prev_media_duration_90k, r.prev_runs)


async def test_each_pass_adds_what_was_uploaded_since_and_hides_what_was_redacted(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clocks = SimulatedClocks(T0)
    create_env(tmp_path / "one", streams=1, flush_if_sec=0)
    env = open_env(tmp_path / "one", now=clocks.realtime, monotonic=clocks.monotonic)
    await record_seconds(env, clocks, 150)
    env.db.add_archive("a", CFG)
    store = MemoryStore()
    up = _uploader(env, store, clocks)
    await _upload_all(up)
    sid = env.stream_ids[0]
    cam = env.db.cameras[env.db.streams[sid].camera_id]

    db2 = _site2(tmp_path, clocks)
    a2 = db2.archive_by_name("a").id
    f = Follower(db2, a2, store, clocks, INTERVAL)
    passes: list[tuple[float, int]] = []  # (virtual seconds since start, recordings there)
    start = trio.current_time()

    async def wait_pass() -> None:
        await f.passed.wait()
        passes.append((trio.current_time() - start,
                       len(db2.list_recordings_by_time(sid, 0, 1 << 62))))

    async with trio.open_nursery() as nursery:
        await nursery.start(f.run)
        await wait_pass()
        # site 2 has the camera (same uuid and name), its stream (same id), every recording
        assert db2.camera_by_uuid(cam.uuid).short_name == cam.short_name
        assert db2.streams[sid].type == "main"
        one = env.db.list_recordings_by_time(sid, 0, 1 << 62)
        two = db2.list_recordings_by_time(sid, 0, 1 << 62)
        assert [_same(r) for r in two] == [_same(r) for r in one] and len(one) == 3
        assert all(r.archive_only for r in two)
        assert db2.get_video_index(two[0].composite_id) == env.db.get_video_index(
            one[0].composite_id)

        # site 1 records and uploads more: the next pass, one interval later, adds it
        await record_seconds(env, clocks, 120)
        await _upload_all(up)
        await wait_pass()
        one = env.db.list_recordings_by_time(sid, 0, 1 << 62)
        assert len(one) == 5
        assert [_same(r) for r in db2.list_recordings_by_time(sid, 0, 1 << 62)] == [
            _same(r) for r in one]

        # an idle pass lists a window of the stream, not the archive
        monkeypatch.setattr(follow, "WINDOW", 1)
        store.listed_keys = 0
        await wait_pass()
        assert store.listed_keys == 2  # the last recording's two objects

        # a redaction at site 1: its tombstone is written and the bytes deleted; the next
        # pass hides the recording at site 2
        mid = one[1]
        r = env.db.add_redaction(sid, mid.start_time_90k + SEC, mid.start_time_90k + 2 * SEC,
                                 "a face", user_id=None, username="ann")
        await up.apply_tombstones()
        await wait_pass()
        assert [x.composite_id for x in db2.list_recordings_by_time(sid, 0, 1 << 62)] == [
            x.composite_id for x in one if x.composite_id != mid.composite_id]
        assert f.counters.hidden == 1 and r.id

        # the server fails: the pass is tried again at the next interval
        store.faults = [errors.Unavailable("down")]
        await wait_pass()
        assert f.counters.last_error is not None and "down" in f.counters.last_error
        await wait_pass()
        assert f.counters.last_error is None
        nursery.cancel_scope.cancel()
    t0 = passes[0][0]
    # every pass on the interval (those at +60 and +120 ran while site 1 recorded)
    assert [(round(t - t0), n) for t, n in passes] == [
        (0, 3), (180, 5), (240, 5), (300, 4), (360, 4), (420, 4)]
    db2.close()
    env.close()
