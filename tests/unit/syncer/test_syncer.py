"""The syncer on a mock clock: flush windows, retention, retries of every step with
bounded logging, and the final flush on cancellation."""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db import raw
from nvr.db.types import PendingRecording
from nvr.offline.check import check
from nvr.storage.writer import RecordingSink
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import record_run

SEC = UNITS_PER_SEC


pytestmark = pytest.mark.usefixtures("inline_seam")


def _open(tmp_path: Path, clocks: SimulatedClocks) -> RecordingEnv:
    return open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)


async def _record_streams(env: RecordingEnv, syncer: RecordingSink, clocks: SimulatedClocks, *,
                          seconds: int, stagger: int = 0, gop: int = 2) -> None:
    """Every stream records ``seconds`` of 1 fps video (a key frame every ``gop`` s),
    stream k starting ``k * stagger`` later; recordings rotate at the first key frame
    60 s or more after their start."""

    async def one(k: int, sid: int) -> None:
        await clocks.sleep(k * stagger)
        await record_run(env, syncer, clocks, sid, frames=seconds, gop=gop, frame_ticks=SEC)

    async with trio.open_nursery() as nursery:
        for k, sid in enumerate(env.stream_ids):
            nursery.start_soon(one, k, sid)


async def test_one_stream_records_and_commits(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, env.stream_ids[0], frames=30 * 150)
        await clocks.sleep(SEC)
        nursery.cancel_scope.cancel()
    s = env.db.streams[env.stream_ids[0]]
    assert s.cum_recordings == 3 and not s.pending
    recs = env.db.list_recordings_by_time(s.id, 0, 1 << 62)
    assert [r.media_duration_90k for r in recs] == [60 * SEC, 60 * SEC, 30 * SEC]
    assert recs[0].start_time_90k == T0
    assert [r.start_time_90k for r in recs[1:]] == [recs[0].end_time_90k, recs[1].end_time_90k]
    env.close()
    assert check(tmp_path / "db").problems == []


def flush_windows(ends: list[int], flush_if: int) -> list[int]:
    """The rule of docs/design.md ("Recording, syncing and retention"), independently: a window
    opens at the first recording not yet committed and commits everything ended by its
    end + ``flush_if``."""
    commits = []
    pending = sorted(ends)
    while pending:
        deadline = pending[0] + flush_if
        commits.append(deadline)
        pending = [e for e in pending if e > deadline]
    return commits


@pytest.mark.parametrize(
    ("flush_if_sec", "commits"),
    [
        # 8 streams staggered by 7.5 s, 7 s GOPs so recordings last 63 s: 464 recordings.
        (0, 464),  # every recording is its own flush window
        (60, 58),
        (120, 29),  # the figure for the issue note: 29 commits for 464 recordings
    ],
)
async def test_one_commit_per_flush_window(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, flush_if_sec: int, commits: int
) -> None:
    create_env(tmp_path, streams=8, flush_if_sec=flush_if_sec)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    commit_times: list[int] = []
    env.db.flush_listeners.append(lambda: commit_times.append(clocks.monotonic()))
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await _record_streams(env, syncer, clocks, seconds=3600, stagger=SEC * 15 // 2, gop=7)
        await clocks.sleep(200 * SEC)
        nursery.cancel_scope.cancel()
    recs = [r for sid in env.stream_ids
            for r in env.db.list_recordings_by_time(sid, 0, 1 << 62)]
    assert len(recs) == 464
    # Recording ends in monotonic time: the clock started at 0 when T0 was the wall time.
    ends = [r.end_time_90k - T0 for r in recs]
    assert commit_times == flush_windows(ends, flush_if_sec * SEC)
    assert syncer.commits == commits == len(commit_times)


async def test_retention_deletes_exactly_enough_oldest_first(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    retain = 300_000
    create_env(tmp_path, streams=1, retain_bytes=retain, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    sid = env.stream_ids[0]
    sizes: dict[int, int] = {}  # recording id -> bytes, as each finished recording is handed over

    class SizeNotingSink:
        async def submit(self, rec: PendingRecording) -> None:
            sizes[rec.recording_id] = rec.sample_file_bytes
            await syncer.submit(rec)

    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await _record_streams(env, SizeNotingSink(), clocks, seconds=20 * 60)
        await clocks.sleep(10 * SEC)
        nursery.cancel_scope.cancel()
    stream = env.db.streams[sid]
    assert stream.cum_recordings == 20
    kept = [r.recording_id for r in env.db.list_recordings_by_time(sid, 0, 1 << 62)]
    deleted = 20 - len(kept)
    # The oldest were deleted, each exactly once, and exactly enough of them: the rest
    # fits, and keeping one more would not.
    assert kept == list(range(deleted, 20))
    assert env.sdir.calls["unlink"] == deleted
    assert sum(sizes[i] for i in kept) <= retain < sum(sizes[i] for i in range(deleted - 1, 20))
    assert stream.committed.sample_file_bytes == sum(sizes[i] for i in kept)
    ids, _ = env.sdir.list_files()
    assert [cid & 0xFFFFFFFF for cid in ids] == kept
    assert env.db.all_garbage() == set()
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_retention_never_deletes_pending_recordings(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=1, retain_bytes=1, flush_if_sec=120)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await _record_streams(env, syncer, clocks, seconds=10 * 60)
        nursery.cancel_scope.cancel()  # the final flush commits what is pending
    stream = env.db.streams[env.stream_ids[0]]
    assert stream.cum_recordings == 10
    remaining = env.db.list_recordings_by_time(stream.id, 0, 1 << 62)
    # Recordings 8 and 9 were still pending when the last retention pass ran.
    assert [r.recording_id for r in remaining] == [8, 9]
    env.close()
    assert check(tmp_path / "db").problems == []


FAILING_STEPS = ["sync_file", "sync", "unlink", "commit"]


@pytest.mark.parametrize("step", FAILING_STEPS)
async def test_every_step_is_retried_in_order_without_loss(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    create_env(tmp_path, streams=2, retain_bytes=200_000, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    failing = True
    if step == "commit":
        real = raw.update_open

        def broken(*args: object) -> None:
            if failing:
                raise sqlite3.OperationalError("disk I/O error")
            real(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(raw, "update_open", broken)
    else:
        env.sdir.fail(step, errno.EIO)
    statuses = []

    async def heal_later() -> None:
        nonlocal failing
        await clocks.sleep(10 * 60 * SEC)
        statuses.append(syncer.status.value)
        failing = False
        env.sdir.heal()

    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        nursery.start_soon(heal_later)
        await _record_streams(env, syncer, clocks, seconds=20 * 60, stagger=20 * SEC)
        await clocks.sleep(120 * SEC)
        nursery.cancel_scope.cancel()
    assert not statuses[0].ok and statuses[0].failing_step is not None
    assert syncer.status.value.ok
    for sid in env.stream_ids:
        s = env.db.streams[sid]
        assert s.cum_recordings == 20 and not s.pending
        ids = [r.recording_id for r in env.db.list_recordings_by_time(sid, 0, 1 << 62)]
        assert ids == list(range(20 - len(ids), 20))  # a contiguous newest suffix
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_an_hour_of_failure_logs_once_a_minute(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    env.sdir.fail("sync_file", errno.EIO)
    caplog.set_level(logging.WARNING, logger="nvr.syncer")
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await record_run(env, syncer, clocks, env.stream_ids[0], frames=10, gop=2,
                         frame_ticks=SEC)
        await clocks.sleep(3600 * SEC - 10 * SEC)
        errors_in_hour = [r for r in caplog.records if r.levelno == logging.ERROR]
        env.sdir.heal()
        await clocks.sleep(120 * SEC)
        nursery.cancel_scope.cancel()
    # Failing attempts at 10, 11, 13, 17, 25, 41 s, then every 60 s from 73 s to 3553 s
    # (59 more), then the one that succeeds. Logged: the first, then one a minute (73 s
    # onwards), the second line saying how many were held back.
    assert len(errors_in_hour) == 60
    assert "5 similar messages suppressed" in errors_in_hour[1].getMessage()
    assert env.sdir.calls["sync_file"] == 6 + 59 + 1
    assert env.db.streams[env.stream_ids[0]].cum_recordings == 1
    env.close()


async def test_cancellation_flushes_everything_received(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    create_env(tmp_path, streams=3, flush_if_sec=120)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await _record_streams(env, syncer, clocks, seconds=150)
        assert all(s.cum_recordings == 0 for s in env.db.streams.values())
        nursery.cancel_scope.cancel()
    assert [s.cum_recordings for s in env.db.streams.values()] == [3, 3, 3]
    assert syncer.commits == 1
    env.close()
    assert check(tmp_path / "db").problems == []


async def test_retention_prunes_signal_changes_with_the_recordings(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A camera's motion signal keeps its changes as long as the camera's oldest
    recording: when retention deletes recordings, the flush that commits it prunes the
    older changes, keeping the state at the new oldest recording."""
    create_env(tmp_path, streams=1, retain_bytes=300_000, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = _open(tmp_path, clocks)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    sid = env.stream_ids[0]
    sig = env.db.motion_signal(env.db.streams[sid].camera_id)
    for m in range(20):  # moving for the first 10 s of every minute, still for the rest
        env.db.update_signals([sig.id], [2], T0 + m * 60 * SEC, T0 + m * 60 * SEC + 10 * SEC)
        env.db.update_signals([sig.id], [1], T0 + m * 60 * SEC + 10 * SEC, T0 + (m + 1) * 60 * SEC)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await _record_streams(env, syncer, clocks, seconds=20 * 60)
        await clocks.sleep(10 * SEC)
        nursery.cancel_scope.cancel()
    oldest = env.db.streams[sid].committed.range_start
    assert oldest is not None and oldest > T0 + 5 * 60 * SEC  # retention deleted some
    changes = env.db.signal_changes(0, 1 << 62)
    assert changes.times[0] == oldest  # pruned up to it; its state kept there
    assert changes.states[0] == (2 if (oldest - T0) % (60 * SEC) < 10 * SEC else 1)
    later = sorted(t for m in range(20)
                   for t in (T0 + m * 60 * SEC, T0 + m * 60 * SEC + 10 * SEC) if t > oldest)
    assert changes.times[1:] == [*later, T0 + 20 * 60 * SEC]
    assert env.db.signals[sig.id].first_change == oldest
    env.close()
    assert check(tmp_path / "db").problems == []
