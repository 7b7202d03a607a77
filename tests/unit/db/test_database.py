"""The database: creation, locking, schema versions, cameras, summaries and listings."""

from __future__ import annotations

import calendar
import copy
import dataclasses
import datetime as dt
import sqlite3
import threading
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import trio
import trio.testing

from nvr.base import errors
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_HOUR, UNITS_PER_SEC, Time
from nvr.db.database import Database
from nvr.db.raw import SCHEMA_VERSION
from nvr.db.stream_summary import DayTotal, StreamSummary, day_bounds, split_by_day
from nvr.db.types import CameraConfig, ListedRecording, PendingRecording, StreamConfig
from nvr.storage.writer import RecordingWriter, Run
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import record_run, synth_frame

NY = ZoneInfo("America/New_York")
SEC = UNITS_PER_SEC
HOUR = UNITS_PER_HOUR
FRAME = 3000  # record_run's frame duration: 1/30 s


def _utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> Time:
    """A UTC wall time in 90k units, computed without nvr's own time code."""
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * UNITS_PER_SEC


def _frame_bytes(first: int, end: int) -> int:
    return sum(len(synth_frame(i).data) for i in range(first, end))


pytestmark = pytest.mark.usefixtures("inline_seam")


# ----------------------------------------------------------------------------- create / open


def test_create_twice_refuses_and_leaves_the_first_untouched(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    first = Database.create(db_dir, T0)
    before = {p.name: p.read_bytes() for p in db_dir.iterdir()}
    assert sorted(before) == ["db", "export-signing-key"]
    with pytest.raises(errors.AlreadyExists, match="already exists"):
        Database.create(db_dir, T0 + SEC)
    assert {p.name: p.read_bytes() for p in db_dir.iterdir()} == before
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        assert db.uuid == first


def test_open_missing_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound, match="nvr init"):
        Database.open(tmp_path / "nothing", tz=dt.UTC, now=lambda: T0)
    assert not (tmp_path / "nothing").exists()


def _open_in_thread(db_dir: Path, *, read_only: bool) -> BaseException | Database:
    """Opens in another thread and gives up after 10 s, so a blocking lock fails the test
    instead of hanging it."""
    result: list[BaseException | Database] = []

    def run() -> None:
        try:
            result.append(Database.open(db_dir, read_only=read_only, tz=dt.UTC, now=lambda: T0))
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    assert result, "Database.open blocked on the lock instead of failing at once"
    return result[0]


def test_second_writer_fails_at_once(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    Database.create(db_dir, T0)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as first:
        second = _open_in_thread(db_dir, read_only=False)
        assert isinstance(second, errors.Unavailable)
        assert "locked by another nvr process" in str(second)
        reader = _open_in_thread(db_dir, read_only=True)
        assert isinstance(reader, errors.Unavailable)
        assert first.open_id == 1
    # The lock went with the first database: a new writer gets in (and is open 2).
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as again:
        assert again.open_id == 2


def test_readers_share_and_exclude_writers(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    u = Database.create(db_dir, T0)
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as r1, \
            Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as r2:
        assert (r1.uuid, r2.uuid) == (u, u)
        assert (r1.open_id, r2.open_id) == (None, None)
        writer = _open_in_thread(db_dir, read_only=False)
        assert isinstance(writer, errors.Unavailable)
        with pytest.raises(errors.FailedPrecondition, match="read-only"):
            r1.add_camera("x")
    # Read-only opens are not recorded in the open table.
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as w:
        assert w.open_id == 1


def _set_version(db_dir: Path, version: int) -> None:
    conn = sqlite3.connect(db_dir / "db")
    with conn:
        conn.execute("delete from version")
        conn.execute("insert into version (id, unix_time, notes) values (?, 0, 'test')",
                     (version,))
    conn.close()


@pytest.mark.parametrize("read_only", [False, True])
def test_newer_schema_is_refused(tmp_path: Path, read_only: bool) -> None:
    db_dir = tmp_path / "db"
    Database.create(db_dir, T0)
    conn = sqlite3.connect(db_dir / "db")
    with conn:
        conn.execute("insert into version (id, unix_time, notes) values (?, 0, 'future')",
                     (SCHEMA_VERSION + 1,))
    conn.close()
    for _ in range(2):  # a refused open releases the lock: the second try says the same
        with pytest.raises(errors.FailedPrecondition) as e:
            Database.open(db_dir, read_only=read_only, tz=dt.UTC, now=lambda: T0)
        assert f"version {SCHEMA_VERSION + 1}" in str(e.value)
        assert "run a newer nvr" in str(e.value)


@pytest.mark.parametrize("read_only", [False, True])
def test_older_schema_asks_for_upgrade(tmp_path: Path, read_only: bool) -> None:
    db_dir = tmp_path / "db"
    Database.create(db_dir, T0)
    _set_version(db_dir, 0)
    for _ in range(2):
        with pytest.raises(errors.FailedPrecondition) as e:
            Database.open(db_dir, read_only=read_only, tz=dt.UTC, now=lambda: T0)
        assert "version 0" in str(e.value)
        assert "nvr upgrade" in str(e.value)


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    conn = sqlite3.connect(db_dir / "db")
    with conn:
        conn.execute("create table notes (body text)")
    conn.close()
    with pytest.raises(errors.FailedPrecondition, match="is not an nvr database"):
        Database.open(db_dir, tz=dt.UTC, now=lambda: T0)
    # The refusal left the file alone and released the lock.
    conn = sqlite3.connect(db_dir / "db")
    names = [r[0] for r in conn.execute("select name from sqlite_master")]
    conn.close()
    assert names == ["notes"]
    with pytest.raises(errors.FailedPrecondition, match="is not an nvr database"):
        Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0)


def test_non_sqlite_file_is_data_loss(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    (db_dir / "db").write_bytes(b"this is not a database, just text\n" * 100)
    with pytest.raises(errors.DataLoss, match="not a database"):
        Database.open(db_dir, tz=dt.UTC, now=lambda: T0)
    assert (db_dir / "db").read_bytes() == b"this is not a database, just text\n" * 100


# ----------------------------------------------------------------------------- cameras


async def _record(env: RecordingEnv, clocks: SimulatedClocks, stream_id: int, frames: int
                  ) -> None:
    """Records ``frames`` frames through a real syncer and lets it commit everything."""
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, stream_id, frames=frames)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    env.db.flush_listeners.clear()


def test_cameras_add_update_persist(tmp_path: Path) -> None:
    create_env(tmp_path, streams=0)
    env = open_env(tmp_path, now=lambda: T0)
    db = env.db
    main_cfg = StreamConfig(url="rtsp://a/main", retain_bytes=10_000, flush_if_sec=30)
    sub_cfg = StreamConfig(url="rtsp://a/sub", mode="live", retain_bytes=0, flush_if_sec=0,
                           rtsp_transport="udp")
    cam = db.add_camera("front", description="front door",
                        config=CameraConfig("admin", "secret", "http://a/onvif"),
                        streams={"main": (env.dir_id, main_cfg), "sub": (None, sub_cfg)})
    assert (cam.short_name, cam.description) == ("front", "front door")
    assert set(cam.streams) == {"main", "sub"}
    main = db.streams[cam.streams["main"]]
    sub = db.streams[cam.streams["sub"]]
    assert (main.camera_id, main.type, main.sample_file_dir_id, main.config) == (
        cam.id, "main", env.dir_id, main_cfg)
    assert (sub.sample_file_dir_id, sub.config) == (None, sub_cfg)
    assert (main.cum_recordings, main.cum_media_duration_90k, main.cum_runs) == (0, 0, 0)

    with pytest.raises(errors.AlreadyExists, match="'front' already exists"):
        db.add_camera("front")
    with pytest.raises(errors.InvalidArgument, match="records but has no directory"):
        db.add_camera("back", streams={"main": (None, StreamConfig())})
    assert list(db.cameras) == [cam.id]

    back = db.add_camera("back")
    with pytest.raises(errors.AlreadyExists, match="'front' already exists"):
        db.update_camera(back.id, short_name="front")

    new_main = dataclasses.replace(main_cfg, retain_bytes=20_000, retain_days=7)
    ext_cfg = StreamConfig(url="rtsp://a/ext", mode="off")
    db.update_camera(cam.id, short_name="porch", description="", config=CameraConfig("u"),
                     streams={"main": (env.dir_id, new_main), "ext": (None, ext_cfg)})
    assert db.camera_by_name("porch").id == cam.id
    with pytest.raises(errors.NotFound):
        db.camera_by_name("front")
    expected_cams = {
        c.id: (c.uuid, c.short_name, c.description, c.config, dict(c.streams))
        for c in db.cameras.values()
    }
    expected_streams = {
        s.id: (s.camera_id, s.type, s.sample_file_dir_id, s.config)
        for s in db.streams.values()
    }
    assert expected_cams[cam.id][1:] == (
        "porch", "", CameraConfig("u"), {"main": main.id, "sub": sub.id, "ext": main.id + 2}
    )
    assert expected_streams[main.id] == (cam.id, "main", env.dir_id, new_main)
    env.close()

    with Database.open(env.db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as db2:
        got_cams = {
            c.id: (c.uuid, c.short_name, c.description, c.config, dict(c.streams))
            for c in db2.cameras.values()
        }
        got_streams = {
            s.id: (s.camera_id, s.type, s.sample_file_dir_id, s.config)
            for s in db2.streams.values()
        }
    assert got_cams == expected_cams
    assert got_streams == expected_streams


async def test_delete_camera_refused_until_recordings_deleted(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=2, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    db = env.db
    sid, other = env.stream_ids
    cam_id = db.streams[sid].camera_id
    await _record(env, clocks, sid, 30 * 90)  # 2 recordings: 60 s + 30 s
    await _record(env, clocks, other, 30 * 10)
    assert db.streams[sid].committed.num_recordings == 2

    with pytest.raises(errors.FailedPrecondition, match="still has recordings"):
        db.delete_camera(cam_id)
    # Nor may a stream with recordings move to another directory.
    d2 = db.add_sample_file_dir(str(tmp_path / "other"), uuid.uuid4())
    with pytest.raises(errors.FailedPrecondition, match="cannot move"):
        db.update_camera(cam_id, streams={"main": (d2.id, db.streams[sid].config)})

    assert db.plan_delete_all_recordings(sid) == 2
    with pytest.raises(errors.FailedPrecondition, match="still has recordings"):
        db.delete_camera(cam_id)  # planned, not yet committed
    result = db.flush("delete all")
    assert (result.committed, result.deleted, result.garbage_removed) == (0, 2, 0)
    assert db.streams[sid].committed == StreamSummary()
    # The files are still garbage: deleting the camera is fine all the same (a later
    # stream never reuses this stream's id, so the garbage cannot name its files).
    db.delete_camera(cam_id)
    assert sid not in db.streams and cam_id not in db.cameras
    assert db.list_garbage(env.dir_id) == [sid << 32 | 0, sid << 32 | 1]
    assert env.sdir.list_files() == ([sid << 32 | 0, sid << 32 | 1, other << 32 | 0], [])
    env.close()

    env = open_env(tmp_path, now=clocks.realtime)  # start-up removes the garbage files
    assert sorted(env.db.streams) == [other]
    assert sorted(c.short_name for c in env.db.cameras.values()) == ["cam1"]
    assert env.db.list_garbage(env.dir_id) == []
    assert env.sdir.list_files() == ([other << 32 | 0], [])
    env.close()


async def test_new_stream_never_reuses_ids_of_garbage(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A camera deleted while its recordings' files are still garbage (not yet unlinked):
    a camera added next must not get composite ids that name those garbage files, or the
    pending unlink would delete the new camera's recordings."""
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    db = env.db
    (sid,) = env.stream_ids
    await _record(env, clocks, sid, 30 * 30)
    db.plan_delete_all_recordings(sid)
    db.flush("delete all")
    garbage = set(db.list_garbage(env.dir_id))
    assert garbage == {sid << 32}
    db.delete_camera(db.streams[sid].camera_id)
    cam = db.add_camera("new", streams={"main": (env.dir_id, StreamConfig(url="rtsp://n"))})
    new_sid = cam.streams["main"]
    assert new_sid == sid + 1
    assert new_sid << 32 | db.streams[new_sid].next_recording_id not in garbage
    db.delete_camera(cam.id)  # now the newest stream row is gone too
    env.close()
    # Not even after a restart.
    env = open_env(tmp_path, now=clocks.realtime)
    cam = env.db.add_camera("newer", streams={"main": (env.dir_id, StreamConfig(url="rtsp://m"))})
    assert cam.streams["main"] == sid + 2
    env.close()


# ----------------------------------------------------------------------------- days


def test_split_by_day_23_hour_day() -> None:
    # 2024-03-10 in New York: 00:00 EST (05:00Z) to 00:00 EDT on the 11th (04:00Z): 23 h.
    assert day_bounds("2024-03-10", NY) == (_utc(2024, 3, 10, 5), _utc(2024, 3, 11, 4))
    # 22:00 EST on the 9th (03:00Z on the 10th) for 28 h, to 03:00 EDT on the 11th.
    assert list(split_by_day(_utc(2024, 3, 10, 3), 28 * HOUR, NY)) == [
        ("2024-03-09", 2 * HOUR),
        ("2024-03-10", 23 * HOUR),
        ("2024-03-11", 3 * HOUR),
    ]
    # The whole day, exactly: one entry.
    assert list(split_by_day(_utc(2024, 3, 10, 5), 23 * HOUR, NY)) == [("2024-03-10", 23 * HOUR)]
    # Across the skipped hour (01:30 EST -> 03:30 EDT is one hour of real time).
    assert list(split_by_day(_utc(2024, 3, 10, 6, 30), HOUR, NY)) == [("2024-03-10", HOUR)]


def test_split_by_day_25_hour_day() -> None:
    # 2024-11-03 in New York: 00:00 EDT (04:00Z) to 00:00 EST on the 4th (05:00Z): 25 h.
    assert day_bounds("2024-11-03", NY) == (_utc(2024, 11, 3, 4), _utc(2024, 11, 4, 5))
    # 22:00 EDT on the 2nd (02:00Z on the 3rd) for 30 h, to 03:00 EST on the 4th.
    assert list(split_by_day(_utc(2024, 11, 3, 2), 30 * HOUR, NY)) == [
        ("2024-11-02", 2 * HOUR),
        ("2024-11-03", 25 * HOUR),
        ("2024-11-04", 3 * HOUR),
    ]
    # The repeated hour 01:00-02:00 counts twice toward the 3rd.
    assert list(split_by_day(_utc(2024, 11, 3, 5), 2 * HOUR, NY)) == [("2024-11-03", 2 * HOUR)]


def test_split_by_day_edges() -> None:
    midnight = _utc(2024, 6, 2, 4)  # 2024-06-02T00:00 EDT
    assert list(split_by_day(midnight, 0, NY)) == [("2024-06-02", 0)]
    assert list(split_by_day(midnight - 1, 0, NY)) == [("2024-06-01", 0)]
    assert list(split_by_day(midnight - 1, 1, NY)) == [("2024-06-01", 1)]
    assert list(split_by_day(midnight - 1, 2, NY)) == [("2024-06-01", 1), ("2024-06-02", 1)]
    assert list(split_by_day(midnight - HOUR, HOUR, NY)) == [("2024-06-01", HOUR)]
    # The same instant is a different day in another zone.
    assert list(split_by_day(midnight, SEC, dt.UTC)) == [("2024-06-02", SEC)]
    assert list(split_by_day(midnight - 5 * HOUR, SEC, dt.UTC)) == [("2024-06-01", SEC)]


# ----------------------------------------------------------------------------- summaries


def _counts(days: dict[str, DayTotal]) -> dict[str, tuple[int, int, int]]:
    """(recordings overlapping, recorded time, recordings starting) of each day."""
    return {d: (t.recordings, t.duration_90k, t.started) for d, t in days.items()}


def _reopen_summaries(env: RecordingEnv, tz: dt.tzinfo) -> dict[int, StreamSummary]:
    env.close()
    with Database.open(env.db_dir, read_only=True, tz=tz, now=lambda: T0) as db:
        return {sid: s.committed for sid, s in db.streams.items()}


async def test_summary_after_recording(tmp_path: Path, autojump_clock: trio.testing.MockClock
                                       ) -> None:
    create_env(tmp_path, streams=2, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic, tz=NY)
    sid, idle = env.stream_ids
    await _record(env, clocks, sid, 30 * 150)  # 60 s + 60 s + 30 s
    s = env.db.streams[sid]
    # each file rounded up to whole 4 KiB blocks
    fs = sum(-(-r.sample_file_bytes // 4096) * 4096
             for r in env.db.list_recordings_by_time(sid, 0, 1 << 62))
    assert s.committed == StreamSummary(
        num_recordings=3,
        sample_file_bytes=_frame_bytes(0, 4500),
        fs_bytes=fs,
        duration_90k=150 * SEC,
        range_start=T0,
        range_end=T0 + 150 * SEC,
        days={"2023-11-14": DayTotal(3, 150 * SEC, 3, _frame_bytes(0, 4500), fs)},
    )
    assert (s.cum_recordings, s.cum_media_duration_90k, s.cum_runs) == (3, 150 * SEC, 1)
    assert env.db.streams[idle].committed == StreamSummary()
    in_memory = {i: copy.deepcopy(st.committed) for i, st in env.db.streams.items()}
    assert _reopen_summaries(env, NY) == in_memory


@pytest.mark.parametrize(
    ("start", "before", "after"),
    [
        # 23:59:30 EST on 2024-03-09 (04:59:30Z on the 10th); the 10th has 23 hours.
        (_utc(2024, 3, 10, 4, 59, 30), "2024-03-09", "2024-03-10"),
        # 23:59:30 EDT on 2024-11-02 (03:59:30Z on the 3rd); the 3rd has 25 hours.
        (_utc(2024, 11, 3, 3, 59, 30), "2024-11-02", "2024-11-03"),
    ],
    ids=["spring", "fall"],
)
async def test_summary_days_split_at_local_midnight(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, start: Time, before: str, after: str
) -> None:
    utc_day = after  # in UTC all of it is on the later date, around 04:00-05:00Z
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(start)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic, tz=NY)
    (sid,) = env.stream_ids
    # Recordings [-30 s, 30 s), [30 s, 90 s), [90 s, 120 s) around midnight.
    await _record(env, clocks, sid, 30 * 150)
    summary = env.db.streams[sid].committed
    assert _counts(summary.days) == {before: (1, 30 * SEC, 1), after: (3, 120 * SEC, 2)}
    assert (summary.num_recordings, summary.duration_90k) == (3, 150 * SEC)
    in_memory = copy.deepcopy(summary)
    assert _reopen_summaries(env, NY) == {sid: in_memory}
    # Seen from UTC, the same recordings all fall on one day.
    with Database.open(env.db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as db:
        assert _counts(db.streams[sid].committed.days) == {utc_day: (3, 150 * SEC, 3)}


async def test_summary_follows_retention(tmp_path: Path, autojump_clock: trio.testing.MockClock
                                         ) -> None:
    r2, r3 = _frame_bytes(1800, 3600), _frame_bytes(3600, 4500)
    # Room for exactly the last two recordings: the third one pushes out the first.
    create_env(tmp_path, streams=1, flush_if_sec=0, retain_bytes=r2 + r3)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic, tz=NY)
    (sid,) = env.stream_ids
    await _record(env, clocks, sid, 30 * 150)
    s = env.db.streams[sid]
    assert s.committed == StreamSummary(
        num_recordings=2,
        sample_file_bytes=r2 + r3,
        fs_bytes=-(-r2 // 4096) * 4096 + -(-r3 // 4096) * 4096,
        duration_90k=90 * SEC,
        range_start=T0 + 60 * SEC,
        range_end=T0 + 150 * SEC,
        days={"2023-11-14": DayTotal(2, 90 * SEC, 2, r2 + r3,
                                     -(-r2 // 4096) * 4096 + -(-r3 // 4096) * 4096)},
    )
    assert [r.recording_id for r in env.db.list_recordings_by_time(sid, 0, 1 << 62)] == [1, 2]
    assert env.sdir.list_files() == ([sid << 32 | 1, sid << 32 | 2], [])
    in_memory = copy.deepcopy(s.committed)
    assert _reopen_summaries(env, NY) == {sid: in_memory}

    # Delete the rest too: the summary empties, with no days left over.
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic, tz=NY)
    assert env.db.streams[sid].committed == in_memory
    assert env.db.plan_delete_all_recordings(sid) == 2
    env.db.flush("delete all")
    assert env.db.streams[sid].committed == StreamSummary()
    assert _reopen_summaries(env, NY) == {sid: StreamSummary()}


# ----------------------------------------------------------------------------- listing


class _Collect:
    """A sink that keeps finished recordings instead of syncing them (they stay pending)."""

    def __init__(self) -> None:
        self.recs: list[PendingRecording] = []

    async def submit(self, rec: PendingRecording) -> None:
        self.recs.append(rec)


async def test_list_recordings_by_time(tmp_path: Path, autojump_clock: trio.testing.MockClock
                                       ) -> None:
    create_env(tmp_path, streams=2, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    db = env.db
    sid, other = env.stream_ids
    await _record(env, clocks, sid, 30 * 120)  # A [T0, T0+60 s), B [T0+60 s, T0+120 s)
    await _record(env, clocks, other, 30 * 10)  # another stream at [T0+121 s, T0+131 s)
    # C: closed but never synced (pending, done), starting at T0 + 132 s.
    c_start = clocks.realtime()
    assert c_start == T0 + 132 * SEC
    sink = _Collect()
    await record_run(env, sink, clocks, sid, frames=30 * 10)
    # D: still growing: 3 frames written, so 2 are in the index.
    d_start = clocks.realtime()
    writer = RecordingWriter(db=db, sdir=env.sdir, sink=sink, stream_id=sid, run=Run(),
                             video_sample_entry_id=env.entry_id)
    for i in range(3):
        await writer.write([synth_frame(i)], clocks.realtime())
        await clocks.sleep(FRAME)

    assert db.open_id is not None
    a = ListedRecording(
        composite_id=sid << 32, open_id=db.open_id, start_time_90k=T0, wall_duration_90k=60 * SEC,
        media_duration_90k=60 * SEC, video_samples=1800, video_sync_samples=60,
        video_sample_entry_id=env.entry_id, sample_file_bytes=_frame_bytes(0, 1800),
        run_offset=0, flags=0, prev_media_duration_90k=0, prev_runs=0,
    )
    b = dataclasses.replace(
        a, composite_id=sid << 32 | 1, start_time_90k=T0 + 60 * SEC,
        sample_file_bytes=_frame_bytes(1800, 3600), run_offset=1,
        prev_media_duration_90k=60 * SEC, video_samples=1800, video_sync_samples=60,
        end_reason="end of test",
    )
    c = dataclasses.replace(
        a, composite_id=sid << 32 | 2, start_time_90k=c_start, wall_duration_90k=10 * SEC,
        media_duration_90k=10 * SEC, video_samples=300, video_sync_samples=10,
        sample_file_bytes=_frame_bytes(0, 300), prev_media_duration_90k=120 * SEC,
        prev_runs=1, committed=False, end_reason="end of test",
    )
    d = dataclasses.replace(
        a, composite_id=sid << 32 | 3, start_time_90k=d_start, wall_duration_90k=2 * FRAME,
        media_duration_90k=2 * FRAME, video_samples=2, video_sync_samples=1,
        sample_file_bytes=_frame_bytes(0, 2), prev_media_duration_90k=130 * SEC,
        prev_runs=2, committed=False, growing=True, end_reason=None,
    )
    assert db.list_recordings_by_time(sid, 0, 1 << 62) == [a, b, c, d]
    assert db.list_recordings_by_id(sid, 0, 10) == [a, b, c, d]
    assert db.list_recordings_by_id(sid, 1, 3) == [b, c]
    # Half-open ranges: a recording ending where the range starts is outside it, one
    # starting where it ends is outside too.
    assert db.list_recordings_by_time(sid, T0, T0 + 60 * SEC) == [a]
    assert db.list_recordings_by_time(sid, T0 + 60 * SEC, T0 + 60 * SEC + 1) == [b]
    assert db.list_recordings_by_time(sid, T0 + 59 * SEC, T0 + 61 * SEC) == [a, b]
    assert db.list_recordings_by_time(sid, T0 + 120 * SEC, c_start) == []
    assert db.list_recordings_by_time(sid, c_start + SEC, c_start + 2 * SEC) == [c]
    assert db.list_recordings_by_time(sid, d_start + FRAME, d_start + FRAME + 1) == [d]
    assert db.list_recordings_by_time(sid, d_start + 2 * FRAME, 1 << 62) == []
    assert db.list_recordings_by_time(sid, 0, T0) == []
    assert db.list_recordings_by_time(sid, T0 - 10 * 60 * SEC, T0 + 1) == [a]
    assert [r.composite_id for r in db.list_recordings_by_time(other, 0, 1 << 62)] == [
        other << 32
    ]
    await writer.close(None)
    env.close()


def _plans(conn: sqlite3.Connection, sqls: list[str]) -> list[str]:
    out = []
    for sql in sqls:
        out.append(" | ".join(row[3] for row in conn.execute("explain query plan " + sql)))
    return out


async def test_listing_and_summary_scan_use_the_covering_index(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    (sid,) = env.stream_ids
    await _record(env, clocks, sid, 30 * 90)
    conn: sqlite3.Connection = env.db._conn
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    assert len(env.db.list_recordings_by_time(sid, T0, T0 + 10 * SEC)) == 1
    conn.set_trace_callback(None)
    listing = [s for s in seen if "from recording" in s]
    assert len(listing) == 1, seen
    (plan,) = _plans(conn, listing)
    assert "USING COVERING INDEX recording_cover" in plan, plan
    assert "stream_id=? AND start_time_90k>? AND start_time_90k<?" in plan, plan
    env.close()

    # The scan that builds the per-day totals in another zone reads only the index too.
    with Database.open(env.db_dir, read_only=True, tz=NY, now=lambda: T0) as db:
        seen.clear()
        db._conn.set_trace_callback(seen.append)
        db._load()
        db._conn.set_trace_callback(None)
        scans = [s for s in seen if "wall_duration_90k, sample_file_bytes" in s
                 and "archive_only_recording" not in s]
        assert len(scans) == 1, seen
        (plan,) = _plans(db._conn, scans)
        assert "USING COVERING INDEX recording_cover" in plan, plan
