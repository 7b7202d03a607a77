"""The crash test (issue 2): stop at every step of the create and delete sequences.

Each case records a baseline (three committed recordings on one stream, one on another),
then runs one sequence and "crashes" at one step: a ``SimulatedCrash`` from the faulty
directory, or from inside the commit transaction. All in-memory state is then dropped
without a flush (database and directory closed, every descriptor under the test's root
closed, as a dying process would), and the database is opened again as the daemon does.

After the crash, and again after the reopen, ``nvr check`` must be clean; every recording
committed before the crash must be there with identical rows; after the reopen every file
in the directory is a committed recording (start-up cleanup removed garbage and
never-committed files), and recording continues with the next id.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db import raw
from nvr.db.database import Database
from nvr.db.types import ListedRecording
from nvr.offline.check import check
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from nvr.testing.faults import SimulatedCrash
from tests.support.determinism import T0
from tests.support.recording import record_run, synth_frame

SEC = UNITS_PER_SEC
CRASH_FRAMES = 4  # the recording created in the create sequence: 4 frames, 4 write_alls


pytestmark = pytest.mark.usefixtures("inline_seam")


@dataclasses.dataclass(frozen=True)
class Step:
    sequence: str  # "create" or "delete"
    op: str  # a FaultyDir op to crash at, "commit" (crash inside the flush), or "none"
    call: int = 1  # which call of ``op``
    # recording ids of the first stream committed after the crash
    expected_ids: tuple[int, ...] = ()

    @property
    def garbage_at_crash(self) -> tuple[int, ...]:
        """Recording ids of the first stream in ``garbage`` when the crash happened."""
        in_garbage = self.sequence == "delete" and self.op in ("unlink", "sync", "forget")
        return (0, 1) if in_garbage else ()

    @property
    def id(self) -> str:
        suffix = f"{self.call}" if self.op in ("write_all", "unlink") else ""
        return f"{self.sequence}-{self.op}{suffix}"


CREATE_STEPS = [
    Step("create", "create_file", expected_ids=(0, 1, 2)),
    *(Step("create", "write_all", n, (0, 1, 2)) for n in range(1, CRASH_FRAMES + 1)),
    Step("create", "close_file", expected_ids=(0, 1, 2)),
    Step("create", "sync_file", expected_ids=(0, 1, 2)),
    Step("create", "sync", expected_ids=(0, 1, 2)),
    Step("create", "commit", expected_ids=(0, 1, 2)),
    Step("create", "none", expected_ids=(0, 1, 2, 3)),  # crash right after the commit
]
DELETE_STEPS = [
    Step("delete", "planned", expected_ids=(0, 1, 2)),  # planned in memory only
    Step("delete", "commit", expected_ids=(0, 1, 2)),  # the flush moving rows to garbage
    Step("delete", "unlink", 1, (2,)),
    Step("delete", "unlink", 2, (2,)),
    Step("delete", "sync", expected_ids=(2,)),  # directory fsync after the unlinks
    Step("delete", "forget", expected_ids=(2,)),  # the flush deleting the garbage rows
    Step("delete", "none", expected_ids=(2,)),  # crash right after that flush
]
STEPS = CREATE_STEPS + DELETE_STEPS


def _snapshot(db: Database) -> tuple[dict[int, list[ListedRecording]], list[dict[str, Any]]]:
    """Every committed recording: as listed, and every column of its rows."""
    listed = {
        sid: [r for r in db.list_recordings_by_time(sid, 0, 1 << 62) if r.committed]
        for sid in sorted(db.streams)
    }
    rows = [dataclasses.asdict(r) for r in db.iter_all_recordings()]
    return listed, rows


def _drop_everything(env: RecordingEnv, root: Path) -> None:
    """What a crash does to the process's state: closes the database and directory
    without flushing, and every descriptor the process still holds under ``root`` (a
    sample file a writer had open when it "died")."""
    env.close()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(str(root)):
            os.close(int(name))


def _crash_commit(*args: object) -> None:
    """Replaces ``raw.update_open``, the last statement of every flush transaction."""
    raise SimulatedCrash("commit")


async def _crash_in(step: Step, env: RecordingEnv, syncer: Syncer, clocks: SimulatedClocks,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs ``step``'s sequence up to its crash (or to its end, for op "none")."""
    db, sdir = env.db, env.sdir
    s1 = env.stream_ids[0]
    if step.sequence == "create":
        if step.op == "commit":
            monkeypatch.setattr(raw, "update_open", _crash_commit)
        elif step.op != "none":
            sdir.crash_at(step.op, step.call)
        await record_run(env, syncer, clocks, s1, frames=CRASH_FRAMES, gop=2)
        await syncer.run_once()  # fsync file, fsync dir, commit
        return

    # Delete: keep only the newest recording of s1 (the two oldest go).
    cam = db.cameras[db.streams[s1].camera_id]
    keep = sum(len(synth_frame(i).data) for i in range(60, 90))
    cfg = dataclasses.replace(db.streams[s1].config, retain_bytes=keep)
    db.update_camera(cam.id, streams={"main": (env.dir_id, cfg)})
    planned = db.plan_retention(s1)
    assert [p.composite_id for p in planned] == [s1 << 32, s1 << 32 | 1]
    if step.op == "planned":
        raise SimulatedCrash("after planning")
    if step.op == "commit":
        monkeypatch.setattr(raw, "update_open", _crash_commit)
    assert db.flush("retention").deleted == 2
    if step.op in ("unlink", "sync"):
        sdir.crash_at(step.op, step.call)
    await syncer.run_once()  # unlinks both files, fsyncs the directory
    assert sdir.list_files()[0] == [s1 << 32 | 2, env.stream_ids[1] << 32]
    if step.op == "forget":
        monkeypatch.setattr(raw, "update_open", _crash_commit)
    assert db.flush("forget garbage").garbage_removed == 2


@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
async def test_crash_at_every_step(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    step: Step,
) -> None:
    create_env(tmp_path, streams=2, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    s1, s2 = env.stream_ids
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    # Baseline: s1 has recordings 0, 1, 2 (1 s each), s2 has recording 0; all committed.
    await record_run(env, syncer, clocks, s1, frames=90, rotate_every=SEC)
    await record_run(env, syncer, clocks, s2, frames=30)
    await syncer.run_once()
    assert env.db.streams[s1].cum_recordings == 3
    assert env.db.streams[s2].cum_recordings == 1
    assert not env.db.has_unflushed_work()
    baseline = _snapshot(env.db)

    crashed = True
    with monkeypatch.context() as m:
        try:
            await _crash_in(step, env, syncer, clocks, m)
            crashed = False
        except SimulatedCrash:
            pass
    assert crashed == (step.op != "none")
    # A crash inside a flush rolled its transaction back: nothing of it is committed.
    assert not env.db._conn.in_transaction
    at_crash = _snapshot(env.db)
    assert env.db.list_garbage(env.dir_id) == [s1 << 32 | i for i in step.garbage_at_crash]
    _drop_everything(env, tmp_path)

    # The state the crash left is consistent as it is...
    report = check(tmp_path / "db", hash_files=True)
    assert report.problems == []
    committed_ids = [r.recording_id for r in at_crash[0][s1]]
    assert committed_ids == list(step.expected_ids)
    assert report.recordings == len(step.expected_ids) + 1

    # ... and the daemon's start-up makes it tidy without losing a committed recording.
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    assert _snapshot(env.db) == at_crash
    if step.sequence == "create" and step.op != "none":
        assert at_crash == baseline
    rows = {r.composite_id for sid in (s1, s2)
            for r in env.db.list_recordings_by_time(sid, 0, 1 << 62)}
    assert env.sdir.list_files() == (sorted(rows), [])
    assert env.db.list_garbage(env.dir_id) == []
    assert not env.db.has_unflushed_work()

    # Recording goes on with the next id: no leftover file is in its way. (With room
    # for everything: the delete sequence made s1's retention tight.)
    db = env.db
    cfg = dataclasses.replace(db.streams[s1].config, retain_bytes=1 << 40)
    db.update_camera(db.streams[s1].camera_id, streams={"main": (env.dir_id, cfg)})
    next_id = env.db.streams[s1].cum_recordings
    assert next_id == (4 if step.id == "create-none" else 3)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    await record_run(env, syncer, clocks, s1, frames=30)
    await syncer.run_once()
    assert [r.recording_id for r in env.db.list_recordings_by_time(s1, 0, 1 << 62)] == [
        *step.expected_ids, next_id
    ]
    env.close()
    report = check(tmp_path / "db", hash_files=True)
    assert report.problems == []
    assert (report.recordings, report.files) == (len(step.expected_ids) + 2,) * 2
