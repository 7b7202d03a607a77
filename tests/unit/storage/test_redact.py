"""Redaction's byte removal (``nvr.storage.redact`` driven by the syncer): which frames
survive, the new files and rows, and a crash at every step of the cut.

The stream: 30 frames a second (3000 ticks each), a key frame every 10 frames, recordings
of 2 s (60 frames) starting at the run's start; frame ``g`` of the run is
``synth_frame(g, gop=10)``, so a piece's bytes can be compared with the frames it must hold.
"""

from __future__ import annotations

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
from nvr.db.recording import decode_video_index
from nvr.db.redactions import PIECE_BASE
from nvr.db.types import ListedRecording
from nvr.offline.check import check
from nvr.storage.redact import plan_cut
from nvr.syncer import Syncer
from nvr.testing.env import RecordingEnv, create_env, open_env
from nvr.testing.faults import SimulatedCrash
from tests.support.determinism import T0
from tests.support.recording import record_run, synth_frame

SEC = UNITS_PER_SEC
FRAME = 3000
GOP = 10
PER_REC = 60  # frames per recording

pytestmark = pytest.mark.usefixtures("inline_seam")


async def _setup(tmp_path: Path, frames: int = 3 * PER_REC
                 ) -> tuple[RecordingEnv, Syncer, SimulatedClocks, list[ListedRecording]]:
    create_env(tmp_path, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    await record_run(env, syncer, clocks, env.stream_ids[0], frames=frames,
                     rotate_every=2 * SEC, gop=GOP)
    await syncer.run_once()
    recs = env.db.list_recordings_by_time(env.stream_ids[0], 0, 1 << 62)
    assert [r.video_samples for r in recs] == [PER_REC] * (frames // PER_REC)
    assert all(r.wall_duration_90k == r.media_duration_90k for r in recs)
    return env, syncer, clocks, recs


def _frames_of(env: RecordingEnv, r: ListedRecording) -> list[int]:
    """The run's frame numbers a recording holds, read back from its file and index
    (each synthetic frame names itself)."""
    idx = decode_video_index(env.db.get_video_index(r.composite_id))
    f = env.sdir.open_for_reading(r.composite_id)
    try:
        data = f.pread(0, r.sample_file_bytes)
    finally:
        f.close()
    out = []
    for off, size in zip(idx.offsets.tolist(), idx.sizes.tolist(), strict=True):
        g = int.from_bytes(data[off + 1 : off + 5], "big")
        assert data[off : off + size] == synth_frame(g, gop=GOP).data
        out.append(g)
    return out


def _visible(db: Database) -> list[ListedRecording]:
    return db.list_recordings_by_time(next(iter(db.streams)), 0, 1 << 62)


async def test_a_cut_inside_one_recording_keeps_both_sides(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    env, syncer, _, recs = await _setup(tmp_path)
    sid, r1 = env.stream_ids[0], recs[1]
    # frames 15..35 of recording 1 (run frames 75..95) overlap the range
    t = env.db.add_redaction(sid, r1.start_time_90k + 15 * FRAME + 100,
                             r1.start_time_90k + 36 * FRAME, "privacy", user_id=None,
                             username=None)
    assert [r.recording_id for r in _visible(env.db)] == [0, 2]  # hidden whole until cut
    await syncer.run_once()
    got = _visible(env.db)
    before, after = PIECE_BASE + 2 * t.id, PIECE_BASE + 2 * t.id + 1
    assert [r.recording_id for r in got] == [0, before, after, 2]
    assert _frames_of(env, got[1]) == list(range(60, 75))  # up to the range: a GOP prefix
    # after the range: from the first key frame at or after its end (frame 40 of the
    # recording); frames 36..39 depended on redacted ones
    assert _frames_of(env, got[2]) == list(range(100, 120))
    assert got[1].start_time_90k == r1.start_time_90k
    assert got[1].end_time_90k == r1.start_time_90k + 15 * FRAME <= t.start_time_90k
    assert got[2].start_time_90k == r1.start_time_90k + 40 * FRAME >= t.end_time_90k
    assert got[2].end_time_90k == r1.end_time_90k
    assert (got[1].end_reason, got[2].end_reason) == ("redacted", r1.end_reason)
    assert got[2].prev_media_duration_90k == r1.prev_media_duration_90k + 40 * FRAME
    assert not env.db.redaction_work(env.dir_id)
    files = env.sdir.list_files()[0]
    assert r1.composite_id not in files  # the old file went by the garbage path
    assert sorted(files) == sorted(r.composite_id for r in got)
    await syncer.run_once()
    env.close()
    report = check(tmp_path / "db", hash_files=True)
    assert report.problems == []
    assert (report.recordings, report.files, report.redacted) == (4, 4, 0)


async def test_a_range_over_three_recordings(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The recording wholly inside is deleted; the first keeps its head, the last its
    tail from the first key frame after the range."""
    env, syncer, _, recs = await _setup(tmp_path)
    sid = env.stream_ids[0]
    t = env.db.add_redaction(sid, recs[0].start_time_90k + 50 * FRAME,
                             recs[2].start_time_90k + 3 * FRAME, "privacy", user_id=None,
                             username=None)
    await syncer.run_once()
    got = _visible(env.db)
    assert [r.recording_id for r in got] == [PIECE_BASE + 2 * t.id, PIECE_BASE + 2 * t.id + 1]
    assert _frames_of(env, got[0]) == list(range(0, 50))
    assert _frames_of(env, got[1]) == list(range(130, 180))
    assert env.db.streams[sid].committed.num_recordings == 2
    env.close()
    report = check(tmp_path / "db", hash_files=True)
    assert report.problems == [] and report.files == 2


async def test_two_ranges_in_one_recording_and_a_whole_one(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    env, syncer, _, recs = await _setup(tmp_path)
    sid, r = env.stream_ids[0], recs[1]
    kw: dict[str, Any] = {"user_id": None, "username": None}
    t1 = env.db.add_redaction(sid, r.start_time_90k + 5 * FRAME, r.start_time_90k + 8 * FRAME,
                              "a", **kw)
    t2 = env.db.add_redaction(sid, r.start_time_90k + 25 * FRAME,
                              r.start_time_90k + 41 * FRAME, "b", **kw)
    t3 = env.db.add_redaction(sid, recs[2].start_time_90k,
                              recs[2].end_time_90k + 10, "c", **kw)
    await syncer.run_once()
    got = _visible(env.db)
    assert [x.recording_id for x in got] == [
        0, PIECE_BASE + 2 * t1.id, PIECE_BASE + 2 * t1.id + 1, PIECE_BASE + 2 * t2.id + 1]
    assert _frames_of(env, got[1]) == list(range(60, 65))
    assert _frames_of(env, got[2]) == list(range(70, 85))  # key frame 10, up to t2
    assert _frames_of(env, got[3]) == list(range(110, 120))  # key frame 50 after t2
    assert t3.id  # recording 2 is gone whole
    env.close()
    assert check(tmp_path / "db", hash_files=True).problems == []


async def test_check_reports_a_redacted_recording_still_on_disk(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    env, _, _, recs = await _setup(tmp_path)
    env.db.add_redaction(env.stream_ids[0], recs[1].start_time_90k + 10,
                         recs[1].start_time_90k + 20, "x", user_id=None, username=None)
    env.close()
    report = check(tmp_path / "db")
    assert report.redacted == 1
    (line,) = report.problems
    assert "overlaps redaction 1: redacted frames are still on disk" in line


def test_plan_cut_drops_the_gop_tail_and_rounds_away_from_the_range() -> None:
    """Pure planning on a recording whose wall time runs 500 ppm slow of its media."""
    from nvr.db.recording import VideoIndexEncoder
    from nvr.db.redactions import Redaction

    enc = VideoIndexEncoder()
    for i in range(60):
        enc.add(FRAME, 100 + i, i % GOP == 0)
    media = 60 * FRAME
    wall = media - media * 500 // 1_000_000
    rec = ListedRecording((7 << 32) | 3, 1, T0, wall, media, 60, 6, 1, enc.totals.bytes, 2, 0,
                          1000, 4, None)

    def tomb(rid: int, a: int, b: int) -> Redaction:
        return Redaction(rid, 7, a, b, "r", None, None, T0)

    ts = [tomb(5, T0 + 20 * FRAME, T0 + 20 * FRAME + 1)]
    pieces = plan_cut(rec, enc.data, ts, open_id=9)
    assert [(p.row.composite_id & 0xFFFFFFFF, p.row.video_samples) for p in pieces] == [
        (PIECE_BASE + 10, 20), (PIECE_BASE + 11, 30)]  # frames 20 (scaled: 59970) to 29 go
    for p in pieces:
        end = p.row.start_time_90k + p.row.wall_duration_90k
        assert end <= ts[0].start_time_90k or p.row.start_time_90k >= ts[0].end_time_90k
        tol = (p.row.wall_duration_90k + p.row.media_duration_delta_90k) * 500 // 1_000_000
        assert abs(p.row.media_duration_delta_90k) <= tol
        assert (p.row.run_offset, p.row.open_id) == (0, 9)
    assert pieces[0].offset == 0 and pieces[1].offset == sum(100 + i for i in range(30))
    # everything redacted: nothing survives
    assert plan_cut(rec, enc.data, [tomb(6, T0 - 1, T0 + wall + 1)], open_id=9) == []


# -- crash at every step --------------------------------------------------------------------

# The cut of recording 1 by a range inside it: two pieces. The syncer's file operations,
# in order: per piece unlink (a stale leftover), open_for_reading, create_file, write_all,
# close_file, sync_file; then sync (the directory); the commit; unlink (the old file),
# sync; a later flush forgets the garbage row.
STEPS = [
    ("unlink", 1), ("create_file", 1), ("write_all", 1), ("sync_file", 1),
    ("create_file", 2), ("write_all", 2), ("sync_file", 2), ("sync", 1),
    ("commit", 1), ("unlink", 3), ("sync", 2), ("forget", 1), ("none", 0),
]


def _crash(*args: object) -> None:
    raise SimulatedCrash("commit")


def _drop_everything(env: RecordingEnv, root: Path) -> None:
    env.close()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(str(root)):
            os.close(int(name))



@pytest.mark.parametrize(("op", "call"), STEPS, ids=[f"{o}{c}" for o, c in STEPS])
async def test_crash_at_every_step_of_a_cut(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch,
    op: str, call: int,
) -> None:
    env, syncer, clocks, recs = await _setup(tmp_path)
    sid, r1 = env.stream_ids[0], recs[1]
    t = env.db.add_redaction(sid, r1.start_time_90k + 15 * FRAME + 100,
                             r1.start_time_90k + 36 * FRAME, "privacy", user_id=None,
                             username=None)
    pieces = {sid << 32 | (PIECE_BASE + 2 * t.id), sid << 32 | (PIECE_BASE + 2 * t.id + 1)}
    outside = [r.composite_id for r in (recs[0], recs[2])]
    crashed = True
    with monkeypatch.context() as m:
        if op == "commit":
            m.setattr(raw, "move_recording_to_garbage", _crash)
        elif op == "forget":
            m.setattr(raw, "update_open", _crash)
        elif op != "none":
            env.sdir.crash_at(op, call)
        try:
            await syncer.run_once()  # the cut, and the old file's unlink
            if op == "forget":
                env.db.flush("forget garbage")
            crashed = False
        except SimulatedCrash:
            pass
    assert crashed == (op != "none")
    assert not env.db._conn.in_transaction
    committed = {r.recording.composite_id for r in env.db.iter_all_recordings()}
    _drop_everything(env, tmp_path)

    # The crash left the old recording (hidden) or both pieces, never a mix or neither.
    assert committed in ({*outside, r1.composite_id}, {*outside, *pieces})
    report = check(tmp_path / "db", hash_files=True)
    if r1.composite_id in committed:
        assert report.redacted == 1 and len(report.problems) == 1, report.problems
    else:
        assert report.problems == []

    # Start-up: the range stays hidden; the syncer finishes the cut.
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    shown = _visible(env.db)
    assert not any(env.db.is_hidden(sid, r.start_time_90k, r.end_time_90k) for r in shown)
    assert {r.composite_id for r in shown} >= set(outside)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    await syncer.run_once()
    shown = _visible(env.db)
    assert [r.composite_id for r in shown] == [
        outside[0], *sorted(pieces), outside[1]]
    assert _frames_of(env, shown[1]) == list(range(60, 75))
    assert _frames_of(env, shown[2]) == list(range(100, 120))
    assert sorted(env.sdir.list_files()[0]) == sorted(r.composite_id for r in shown)
    await syncer.run_once()
    env.close()
    report = check(tmp_path / "db", hash_files=True)
    assert report.problems == []
    assert (report.recordings, report.files, report.garbage) == (4, 4, 0)


async def test_retention_deletes_pieces_in_time_order(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Pieces have ids above every recording of the stream, yet retention takes them
    where their time puts them: oldest first."""
    import dataclasses

    env, syncer, _, recs = await _setup(tmp_path, frames=4 * PER_REC)
    sid, r1 = env.stream_ids[0], recs[1]
    env.db.add_redaction(sid, r1.start_time_90k + 15 * FRAME + 100,
                         r1.start_time_90k + 36 * FRAME, "privacy", user_id=None,
                         username=None)
    await syncer.run_once()
    got = _visible(env.db)
    assert len(got) == 5
    db = env.db
    # keep the last two recordings only: recording 0 and both pieces go, in that order
    cfg = dataclasses.replace(db.streams[sid].config,
                              retain_bytes=sum(r.sample_file_bytes for r in got[3:]))
    db.update_camera(db.streams[sid].camera_id, streams={"main": (env.dir_id, cfg)})
    planned = db.plan_retention(sid)
    assert [p.composite_id for p in planned] == [r.composite_id for r in got[:3]]
    db.flush("retention")
    await syncer.run_once()
    assert [r.composite_id for r in _visible(db)] == [r.composite_id for r in got[3:]]
    assert not db.plan_retention(sid)
    env.close()
    assert check(tmp_path / "db", hash_files=True).problems == []
