"""``nvr check``: a clean recorded database passes; each corruption gives exactly one line.
Also the command line: ``init``, ``check``, ``ts`` and bad flags."""

from __future__ import annotations

import calendar
import os
import re
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr import cli
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.frames_summary import summarize_index
from nvr.offline.check import check
from nvr.storage.dir import META_FILE, DirMeta, file_name
from nvr.syncer import Syncer
from nvr.testing.env import create_env, open_env
from tests.support.determinism import T0
from tests.support.recording import record_run, synth_frame

SEC = UNITS_PER_SEC


pytestmark = pytest.mark.usefixtures("inline_seam")


@dataclass
class Recorded:
    """A closed database with three committed 1 s recordings (ids 0, 1, 2) of one run."""

    root: Path
    db_dir: Path
    sample_dir: Path
    stream_id: int
    sizes: list[int]

    def cid(self, rec_id: int) -> int:
        return self.stream_id << 32 | rec_id

    def path(self, rec_id: int) -> Path:
        return self.sample_dir / file_name(self.cid(rec_id))

    def sql(self, statement: str, *params: object) -> None:
        conn = sqlite3.connect(self.db_dir / "db")
        with conn:
            cur = conn.execute(statement, params)
            assert cur.rowcount == 1, statement
        conn.close()

    def blob(self, query: str, *params: object) -> bytes:
        conn = sqlite3.connect(self.db_dir / "db")
        (v,) = conn.execute(query, params).fetchone()
        conn.close()
        return bytes(v)

    def value(self, query: str, *params: object) -> int:
        conn = sqlite3.connect(self.db_dir / "db")
        (v,) = conn.execute(query, params).fetchone()
        conn.close()
        return int(v)


@pytest.fixture
async def recorded(tmp_path: Path, autojump_clock: trio.testing.MockClock) -> Recorded:
    create_env(tmp_path, streams=1, flush_if_sec=0)
    clocks = SimulatedClocks(T0)
    env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
    syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
    (sid,) = env.stream_ids
    await record_run(env, syncer, clocks, sid, frames=90, rotate_every=SEC)
    await syncer.run_once()
    assert env.db.streams[sid].cum_recordings == 3
    env.close()
    sizes = [sum(len(synth_frame(i).data) for i in range(30 * n, 30 * n + 30)) for n in range(3)]
    return Recorded(tmp_path, env.db_dir, env.sample_dir, sid, sizes)


async def test_clean(
    autojump_clock: trio.testing.MockClock, recorded: Recorded
) -> None:
    for hash_files in (False, True):
        report = check(recorded.db_dir, hash_files=hash_files)
        assert report.problems == []
        assert report.ok
        assert (report.recordings, report.files, report.garbage, report.uncommitted_files) == (
            3, 3, 0, 0)


async def test_garbage_and_uncommitted_files_are_fine(
    autojump_clock: trio.testing.MockClock, recorded: Recorded
) -> None:
    # Recording 0 moved to garbage (its file not unlinked yet); a never-committed file.
    cid0 = recorded.cid(0)
    dir_id = recorded.value("select id from sample_file_dir")
    conn = sqlite3.connect(recorded.db_dir / "db")
    with conn:
        for table in ("recording_playback", "recording_integrity", "recording"):
            conn.execute(f"delete from {table} where composite_id = ?", (cid0,))
        conn.execute("insert into garbage values (?, ?)", (dir_id, cid0))
    conn.close()
    recorded.path(3).write_bytes(b"half a recording")
    report = check(recorded.db_dir)
    assert report.problems == []
    assert (report.recordings, report.files, report.garbage, report.uncommitted_files) == (
        2, 4, 1, 1)


# Each corruption: (change, the one problem line it must give). ``R`` is the fixture.
Corruption = Callable[[Recorded], str]


def _missing(r: Recorded) -> str:
    r.path(1).unlink()
    return f"recording {file_name(r.cid(1))}: sample file is missing"


def _truncated(r: Recorded) -> str:
    os.truncate(r.path(1), r.sizes[1] - 1)
    return (f"recording {file_name(r.cid(1))}: sample file is {r.sizes[1] - 1} bytes, "
            f"row says {r.sizes[1]}")


def _extra_byte(r: Recorded) -> str:
    with open(r.path(2), "ab") as f:
        f.write(b"\0")
    return (f"recording {file_name(r.cid(2))}: sample file is {r.sizes[2] + 1} bytes, "
            f"row says {r.sizes[2]}")


def _orphan(r: Recorded) -> str:
    # The row of recording 1 is gone, not to garbage: its file, with an id below
    # cum_recordings, belongs to nothing.
    for table in ("recording_playback", "recording_integrity", "recording"):
        r.sql(f"delete from {table} where composite_id = ?", r.cid(1))
    return f"dir {r.sample_dir}: file {file_name(r.cid(1))} has no recording row"


def _unknown_stream(r: Recorded) -> str:
    (r.sample_dir / file_name(77 << 32 | 5)).write_bytes(b"x" * 10)
    return f"dir {r.sample_dir}: file {file_name(77 << 32 | 5)} of unknown stream 77"


def _bad_index(r: Recorded) -> str:
    r.sql("update recording_playback set video_index = ? where composite_id = ?",
          b"\xff", r.cid(1))
    return (f"recording {file_name(r.cid(1))}: video_index frame 0: truncated varint "
            "(the index ends inside it)")


def _samples_disagree(r: Recorded) -> str:
    r.sql("update recording set video_samples = 31 where composite_id = ?", r.cid(0))
    return (f"recording {file_name(r.cid(0))}: video_index does not match its recording: "
            "frames 30 (row says 31)")


def _summary_differs(r: Recorded) -> str:
    r.sql("update recording set index_digest = zeroblob(16), duration_runs = 7 "
          "where composite_id = ?", r.cid(2))
    actual = summarize_index(r.blob("select video_index from recording_playback "
                                    "where composite_id = ?", r.cid(2)))
    return (f"recording {file_name(r.cid(2))}: stored index summary does not match its "
            f"video_index: runs 7 (index says {actual.runs}), digest {'00' * 16} "
            f"(index says {actual.digest.hex()})")


def _summary_missing(r: Recorded) -> str:
    r.sql("update recording set duration_runs = null, first_duration_90k = null, "
          "first_duration_frames = null, last_duration_90k = null, index_digest = null "
          "where composite_id = ?", r.cid(0))
    return f"recording {file_name(r.cid(0))}: no stored index summary"


def _prev_media(r: Recorded) -> str:
    # Recording 2 claims 1 tick more before it; the stream's total agrees with it, so
    # only the step from recording 1 to 2 is wrong.
    r.sql("update recording set prev_media_duration_90k = prev_media_duration_90k + 1 "
          "where composite_id = ?", r.cid(2))
    r.sql("update stream set cum_media_duration_90k = cum_media_duration_90k + 1 "
          "where id = ?", r.stream_id)
    return (f"recording {file_name(r.cid(2))}: prev_media_duration_90k {2 * SEC + 1} != "
            f"previous recording's {SEC} + {SEC}")


def _gap_in_run(r: Recorded) -> str:
    r.sql("update recording set start_time_90k = start_time_90k + 90 where composite_id = ?",
          r.cid(2))
    return (f"recording {file_name(r.cid(2))}: starts at {T0 + 2 * SEC + 90} but the previous "
            f"recording of its run ends at {T0 + 2 * SEC}")


def _wall_too_far(r: Recorded) -> str:
    # 46 ticks is just over 500 ppm of 1 s (45 ticks); the media duration stays.
    r.sql("update recording set wall_duration_90k = wall_duration_90k + 46, "
          "media_duration_delta_90k = media_duration_delta_90k - 46 where composite_id = ?",
          r.cid(2))
    return (f"recording {file_name(r.cid(2))}: wall duration {SEC + 46} differs from media "
            f"duration {SEC} by more than 500 ppm")


def _other_database_meta(r: Recorded) -> str:
    meta_path = r.sample_dir / META_FILE
    meta = DirMeta.decode(meta_path.read_bytes(), "x")
    stranger = uuid.UUID("12345678-1234-5678-1234-567812345678")
    meta_path.write_bytes(DirMeta(stranger, meta.dir_uuid, meta.last_complete_open).encode())
    return (f"dir {r.sample_dir}: sample file directory {r.sample_dir} belongs to another "
            f"database (its meta names database {stranger}, this database is {meta.db_uuid})")


def _signal(r: Recorded, *changes: tuple[int, int]) -> None:
    """A door signal (states 1 closed, 2 open) tied to the camera, with ``changes``."""
    conn = sqlite3.connect(r.db_dir / "db")
    with conn:
        conn.execute("insert into signal_type (id, uuid, short_name) values (7, ?, 'door')",
                     (bytes(range(16)),))
        conn.executemany("insert into signal_type_state (type_id, value, name) values (7, ?, ?)",
                         [(1, "closed"), (2, "open")])
        conn.execute("insert into signal (id, uuid, type_id, short_name) values (3, ?, 7, 'front')",
                     (bytes(range(1, 17)),))
        conn.execute("insert into signal_camera (signal_id, camera_id, relation) "
                     "select 3, id, 'indirect' from camera")
        conn.executemany("insert into signal_change (signal_id, time_90k, state) values (3, ?, ?)",
                         changes)
        # behind the totals' back: the next open builds them (only the changes are wrong)
        conn.execute("delete from event_total_zone")
    conn.close()


def _motion_total_differs(r: Recorded) -> str:
    conn = sqlite3.connect(r.db_dir / "db")
    with conn:
        sid = conn.execute("select min(id) from stream").fetchone()[0]
        conn.execute("insert into motion_hour values (?, '2000-01-01', 5, 7)", (sid,))
    conn.close()
    return (f"motion totals of stream {sid}: 1 row(s) differ from a recomputation, the first "
            f"on 2000-01-01 hour 5 (stored 7, recomputed 0)")


def _signal_unknown_state(r: Recorded) -> str:
    start = r.value("select min(start_time_90k) from recording")
    _signal(r, (start, 1), (start + SEC, 3), (start + 2 * SEC, 2), (start + 3 * SEC, 4))
    return (f"signal front: 2 change(s) to a state its type does not have, the first at "
            f"time90k={start + SEC} (to state 3)")


def _signal_repeats(r: Recorded) -> str:
    start = r.value("select min(start_time_90k) from recording")
    _signal(r, (start, 1), (start + SEC, 1), (start + 2 * SEC, 0), (start + 3 * SEC, 2))
    return (f"signal front: 1 change(s) repeating the state before them, the first at "
            f"time90k={start + SEC} (to state 1)")


def _signal_first_unknown(r: Recorded) -> str:
    start = r.value("select min(start_time_90k) from recording")
    _signal(r, (start, 0), (start + SEC, 2))
    return (f"signal front: 1 change(s) repeating the state before them, the first at "
            f"time90k={start} (to state 0)")


def _signal_older_than_recordings(r: Recorded) -> str:
    start = r.value("select min(start_time_90k) from recording")
    _signal(r, (start - 10 * SEC, 1), (start - SEC, 2), (start, 1))
    return (f"signal front: 2 change(s) before the oldest recording of its cameras, the first "
            f"at time90k={start - 10 * SEC}")


CORRUPTIONS: dict[str, Corruption] = {
    "signal_unknown_state": _signal_unknown_state,
    "signal_repeats": _signal_repeats,
    "signal_first_unknown": _signal_first_unknown,
    "signal_older_than_recordings": _signal_older_than_recordings,
    "motion_total_differs": _motion_total_differs,
    "missing": _missing,
    "truncated": _truncated,
    "extra_byte": _extra_byte,
    "orphan": _orphan,
    "unknown_stream": _unknown_stream,
    "bad_index": _bad_index,
    "samples_disagree": _samples_disagree,
    "summary_differs": _summary_differs,
    "summary_missing": _summary_missing,
    "prev_media": _prev_media,
    "gap_in_run": _gap_in_run,
    "wall_too_far": _wall_too_far,
    "other_database_meta": _other_database_meta,
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
async def test_each_corruption_gives_one_line(
    autojump_clock: trio.testing.MockClock, recorded: Recorded, name: str
) -> None:
    expected = CORRUPTIONS[name](recorded)
    for hash_files in (False, True):
        report = check(recorded.db_dir, hash_files=hash_files)
        assert len(report.problems) == 1, report.problems
        (line,) = report.problems
        assert "\n" not in line
        assert line == expected


async def test_live_check_leaves_stale_signal_changes_to_the_daemon(
    autojump_clock: trio.testing.MockClock, recorded: Recorded
) -> None:
    """A running daemon prunes changes older than its recordings after its flushes: a live
    check does not report them; the other signal invariants it does."""
    _signal_older_than_recordings(recorded)
    assert check(recorded.db_dir, live=True).problems == []
    assert len(check(recorded.db_dir).problems) == 1


async def test_wrong_sha256_needs_hash_files(
    autojump_clock: trio.testing.MockClock, recorded: Recorded
) -> None:
    data = bytearray(recorded.path(1).read_bytes())
    data[100] ^= 0xFF  # same size, different content
    recorded.path(1).write_bytes(bytes(data))
    assert check(recorded.db_dir).problems == []
    assert check(recorded.db_dir, hash_files=True).problems == [
        f"recording {file_name(recorded.cid(1))}: sample file's SHA-256 differs from the row's"
    ]


# ----------------------------------------------------------------------------- the CLI


def test_cli_init_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_dir = tmp_path / "new"
    assert cli.main(["--db-dir", str(db_dir), "init"]) == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(rf"created database [0-9a-f-]{{36}} in {re.escape(str(db_dir))}\n", out)
    assert err == ""
    before = (db_dir / "db").read_bytes()
    assert cli.main(["--db-dir", str(db_dir), "init"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"nvr init: a database already exists at {db_dir / 'db'}; "
                   "refusing to touch it\n")
    assert (db_dir / "db").read_bytes() == before
    # The option may follow the subcommand too.
    assert cli.main(["init", "--db-dir", str(db_dir)]) == 1
    assert capsys.readouterr().err.startswith(f"nvr init: a database already exists at {db_dir}")
    assert cli.main(["--db-dir", str(tmp_path / "ignored"), "init", "--db-dir",
                     str(tmp_path / "other")]) == 0
    assert capsys.readouterr().out.endswith(f" in {tmp_path / 'other'}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "other"]


async def test_cli_check(
    autojump_clock: trio.testing.MockClock, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--db-dir", str(recorded.db_dir), "check"]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "checked 3 recordings, 3 files (0 garbage, 0 never committed): 0 problems\n"

    data = bytearray(recorded.path(0).read_bytes())
    data[0] ^= 1
    recorded.path(0).write_bytes(bytes(data))
    assert cli.main(args) == 0  # sizes still match
    capsys.readouterr()
    assert cli.main([*args, "--hash"]) == 1
    out, err = capsys.readouterr()
    assert out == (f"recording {file_name(recorded.cid(0))}: sample file's SHA-256 differs "
                   "from the row's\n")
    assert err == "checked 3 recordings, 3 files (0 garbage, 0 never committed): 1 problems\n"

    recorded.path(2).unlink()
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    assert out == f"recording {file_name(recorded.cid(2))}: sample file is missing\n"
    assert err == "checked 3 recordings, 2 files (0 garbage, 0 never committed): 1 problems\n"


def test_cli_check_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--db-dir", str(tmp_path / "none"), "check"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"nvr check: no database at {tmp_path / 'none' / 'db'}; "
                   "create one with `nvr init`\n")


def test_cli_ts_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    # 2026-11-22T11:05:00.123+01:00 is 10:05:00.123 UTC.
    t = calendar.timegm((2026, 11, 22, 10, 5, 0, 0, 0, 0)) * SEC + 123 * 90
    assert cli.main(["ts", "2026-11-22T11:05:00.123+01:00", "--tz", "Europe/Paris"]) == 0
    assert capsys.readouterr().out == f"{t} = 2026-11-22T11:05:00.123+01:00\n"
    assert cli.main(["ts", str(t), "--tz", "Europe/Paris"]) == 0
    assert capsys.readouterr().out == f"{t} = 2026-11-22T11:05:00.123+01:00\n"
    assert cli.main(["ts", str(t), str(t + 1), "--tz", "UTC"]) == 0
    assert capsys.readouterr().out == (
        f"{t} = 2026-11-22T10:05:00.123+00:00\n{t + 1} = 2026-11-22T10:05:00:11071+00:00\n"
    )
    assert cli.main(["ts", "2026-11-22T10:05:00:11071Z", "--tz", "UTC"]) == 0
    assert capsys.readouterr().out == f"{t + 1} = 2026-11-22T10:05:00:11071+00:00\n"


def test_cli_ts_bad_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ts", "yesterday", "--tz", "UTC"]) == 2  # bad input, like a bad flag
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("nvr ts: unparseable time 'yesterday'")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv", [["--bogus", "init"], ["init", "--bogus"], [], ["frobnicate"], ["ts"]],
    ids=["global", "subcommand", "none", "unknown_command", "missing_argument"],
)
def test_cli_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: nvr")


# ----------------------------------------------------------------------------- repairs


async def test_repairs_only_behind_flags(
    autojump_clock: trio.testing.MockClock, recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    _missing(recorded)  # recording 1's file is gone
    recorded.sql("delete from recording_playback where composite_id = ?", recorded.cid(2))
    recorded.sql("delete from recording_integrity where composite_id = ?", recorded.cid(2))
    recorded.sql("delete from recording where composite_id = ?", recorded.cid(2))
    stranger = recorded.sample_dir / file_name(77 << 32 | 5)
    stranger.write_bytes(b"x" * 10)
    # a file of the same name already in the trash is kept
    (recorded.sample_dir / "trash").mkdir()
    (recorded.sample_dir / "trash" / stranger.name).write_bytes(b"older")
    before = check(recorded.db_dir).problems
    assert len(before) == 3
    args = ["--db-dir", str(recorded.db_dir), "check"]
    assert cli.main(args) == 1
    capsys.readouterr()

    assert cli.main([*args, "--delete-orphan-rows"]) == 1  # the orphan files remain
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"recording {file_name(recorded.cid(1))}: sample file is missing; row deleted",
        f"dir {recorded.sample_dir}: file {file_name(recorded.cid(2))} has no recording row",
        f"dir {recorded.sample_dir}: file {stranger.name} of unknown stream 77",
    ]
    assert err.endswith(": 3 problems, 1 repaired\n")
    assert recorded.value("select count(*) from recording") == 1

    assert cli.main([*args, "--trash-orphan-files"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"dir {recorded.sample_dir}: file {file_name(recorded.cid(2))} has no recording row; "
        f"moved to trash/{file_name(recorded.cid(2))}",
        f"dir {recorded.sample_dir}: file {stranger.name} of unknown stream 77; "
        f"moved to trash/{stranger.name}.1",
    ]
    assert err.endswith(": 2 problems, 2 repaired\n")
    trash = recorded.sample_dir / "trash"
    assert sorted(p.name for p in trash.iterdir()) == sorted(
        [file_name(recorded.cid(2)), stranger.name, stranger.name + ".1"])
    assert (trash / stranger.name).read_bytes() == b"older"
    assert (trash / f"{stranger.name}.1").read_bytes() == b"x" * 10
    assert (trash / file_name(recorded.cid(2))).stat().st_size == recorded.sizes[2]
    report = check(recorded.db_dir)
    assert report.problems == []
    assert (report.recordings, report.files) == (1, 1)


async def test_progress_bar(
    autojump_clock: trio.testing.MockClock, recorded: Recorded
) -> None:
    import io

    out = io.StringIO()
    assert check(recorded.db_dir, progress=out).problems == []
    text = out.getvalue()
    lines = text.split("\n")
    assert lines[-1] == ""
    assert [line.rsplit("\r", 1)[-1].split()[0:3] for line in lines[:-1]] == [
        ["scanning", "dir", "1"], ["checking", "recordings", "[" + "#" * 30 + "]"]]
    assert lines[0].endswith("3/3 100%")
    assert lines[1].endswith("3/3 100%")
    assert "0/3   0%" in lines[1]


async def test_live_check_ignores_what_the_daemon_changes_during_the_scan(
    autojump_clock: trio.testing.MockClock, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``live=True`` (the daemon holds the locks): recording 0 is deleted (row, then file)
    after the files were listed, as retention does; a file without a row that is still
    there, and a row whose file is gone, are still problems."""
    from nvr.offline import admin
    from nvr.offline.check import _Checker

    open_dirs = _Checker.open_dirs

    def then_retention_runs(self: _Checker) -> None:
        open_dirs(self)
        conn = sqlite3.connect(recorded.db_dir / "db")
        with conn:
            for table in ("recording_playback", "recording_integrity", "recording"):
                conn.execute(f"delete from {table} where composite_id = ?", (recorded.cid(0),))
        conn.close()
        recorded.path(0).unlink()

    with admin.open_db(recorded.db_dir):  # the daemon's exclusive lock
        monkeypatch.setattr(_Checker, "open_dirs", then_retention_runs)
        report = check(recorded.db_dir, live=True)
        assert report.problems == [] and report.recordings == 2
        monkeypatch.setattr(_Checker, "open_dirs", open_dirs)
        recorded.path(1).unlink()
        recorded.path(4).write_bytes(b"")  # above cum_recordings: being written
        report = check(recorded.db_dir, live=True)
        assert report.problems == [f"recording {file_name(recorded.cid(1))}: sample file is "
                                   "missing"]  # fmt: skip
        with pytest.raises(Exception, match="repairs need the daemon stopped"):
            check(recorded.db_dir, live=True, delete_orphan_rows=True)
