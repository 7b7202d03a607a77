"""``nvr upgrade``: the step machinery with injected synthetic steps, and the rule that
every schema version after 1 has a step and a test (see ``nvr/db/upgrade/__init__.py``).

A future step ``vN_to_vN+1`` gets ``test_vN_to_vN+1`` here: build ``fixture_db(root, N)``
(the frozen ``tests/support/schemas/vN.sql``, every table filled by ``fill_vN``), run
``upgrade`` with the real steps, and compare ``row_counts`` before and after.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nvr import cli
from nvr.base import errors
from nvr.base.blocking import inline_blocking
from nvr.base.clock import RealClocks
from nvr.base.time90k import to_datetime
from nvr.db import raw, raw_motion
from nvr.db import upgrade as upgrade_pkg
from nvr.db.archives import ArchiveConfig
from nvr.db.connection import lock_dir
from nvr.db.database import Database
from nvr.db.frames_summary import FramesSummary, summarize_index
from nvr.db.recording import VideoIndexEncoder
from nvr.db.upgrade import BASE_VERSION, discover_steps, newest_target, upgrade
from nvr.offline.check import check
from nvr.storage.dir import open_for_database
from nvr.web.app import create_app
from nvr.web.context import WebContext
from tests.support.determinism import run_inline
from tests.support.paths import REPO
from tests.support.web import VIEW, record

SCHEMAS = REPO / "tests" / "support" / "schemas"
NOW = 1_700_000_000
T0 = NOW * 90_000


def fill_v1(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 1."""
    u = bytes(range(16))
    conn.execute("insert into open (id, uuid, start_time_90k) values (1, ?, ?)", (u, T0))
    conn.execute("insert into sample_file_dir (id, path, uuid) values (1, '/s', ?)", (u,))
    conn.execute("insert into camera (id, uuid, short_name) values (1, ?, 'cam')", (u,))
    conn.execute("""insert into stream (id, camera_id, sample_file_dir_id, type, config,
                    cum_recordings, cum_media_duration_90k, cum_runs)
                    values (1, 1, 1, 'main', '{"url": "rtsp://x/"}', 3, 270000, 1)""")
    conn.execute("""insert into video_sample_entry (id, width, height, rfc6381_codec, data)
                    values (1, 640, 360, 'avc1.64001e', ?)""", (b"0123456789",))
    for i in range(3):
        cid = 1 << 32 | i
        conn.execute(
            """insert into recording (composite_id, open_id, stream_id, run_offset, flags,
               sample_file_bytes, start_time_90k, prev_media_duration_90k, prev_runs,
               wall_duration_90k, media_duration_delta_90k, video_samples,
               video_sync_samples, video_sample_entry_id, end_reason)
               values (?, 1, 1, ?, 0, 1000, ?, ?, 0, 90000, 0, 30, 1, 1, null)""",
            (cid, i, T0 + i * 90000, i * 90000))
        conn.execute("insert into recording_integrity (composite_id) values (?)", (cid,))
        conn.execute("insert into recording_playback values (?, ?)", (cid, b"\x01\x02"))
    conn.execute("insert into garbage values (1, ?)", (1 << 32 | 9,))
    conn.execute("insert into user (id, username) values (1, 'admin')")
    conn.execute("""insert into user_session (session_id_hash, user_id, seed, flags,
                    creation_time_sec) values (?, 1, ?, 1, ?)""", (bytes(32), bytes(32), NOW))


def fill_v2(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 2 (a sound summary on one)."""
    fill_v1(conn)
    conn.execute("""update recording set duration_runs = 1, first_duration_90k = 3000,
                    first_duration_frames = 30, last_duration_90k = 3000, index_digest = ?
                    where composite_id = ?""", (bytes(range(16)), 1 << 32 | 0))


def fill_v3(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 3 (version 2's plus signals)."""
    fill_v2(conn)
    conn.execute("""insert into signal_type (id, uuid, short_name)
                    values (1, ?, 'motion')""", (bytes(range(1, 17)),))
    conn.execute("""insert into signal_type_state (type_id, value, name, motion)
                    values (1, 2, 'moving', 1)""")
    conn.execute("""insert into signal (id, uuid, type_id, short_name)
                    values (1, ?, 1, 'cam motion')""", (bytes(range(2, 18)),))
    conn.execute("""insert into signal_camera (signal_id, camera_id, relation)
                    values (1, 1, 'direct')""")
    conn.execute("""insert into signal_change (signal_id, time_90k, state)
                    values (1, ?, 2)""", (T0,))


def fill_v4(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 4 (version 3's plus a motion
    summary)."""
    fill_v3(conn)
    conn.execute("""insert into recording_motion (composite_id, cells, entries,
                        global_seconds, motion_seconds, frames, skipped)
                    values (?, ?, x'00000101', x'0000', 1, 30, 0)""", (1 << 32, bytes(32)))


def fill_v5(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 5 (version 4's plus protected
    ranges, one active and one removed)."""
    fill_v4(conn)
    conn.execute("""insert into protected_range (camera_id, start_time_90k, end_time_90k,
                        reason, created_time_90k, created_by)
                    values (1, ?, ?, 'kept', ?, 'user ''admin''')""", (T0, T0 + 90000, T0))
    conn.execute("""insert into protected_range (camera_id, start_time_90k, end_time_90k,
                        reason, created_time_90k, created_by, removed_time_90k, removed_by)
                    values (1, ?, ?, 'gone', ?, 'user ''admin''', ?, 'user ''admin''')""",
                 (T0, T0 + 90000, T0, T0 + 1))


def fill_v6(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 6 (version 5's plus an archive
    copying the stream, holding one recording)."""
    fill_v5(conn)
    conn.execute("""insert into archive (id, uuid, short_name, config)
                    values (1, ?, 'site', '{"bucket": "b"}')""", (bytes(range(3, 19)),))
    conn.execute("insert into archive_stream (archive_id, stream_id) values (1, 1)")
    conn.execute("""insert into archived_recording (archive_id, composite_id, start_time_90k,
                        wall_duration_90k, sample_file_bytes, sample_file_sha256,
                        archived_time_90k)
                    values (1, ?, ?, 90000, 1000, ?, ?)""",
                 (1 << 32, T0, bytes(32), T0 + 90000))


def fill_v7(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 7 (version 6's plus a
    redaction)."""
    fill_v6(conn)
    conn.execute("""insert into redaction (stream_id, start_time_90k, end_time_90k, reason,
                        user_id, username, creation_time_90k)
                    values (1, ?, ?, 'privacy', null, null, ?)""", (T0, T0 + 90000, T0))


def fill_v8(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 8 (version 7's plus an
    archive-only recording, a copy of the stream's recording under another id)."""
    fill_v7(conn)
    conn.execute("""insert into archive_only_recording
                    select r.composite_id + 1000, r.open_id, r.stream_id, r.run_offset,
                           r.flags, r.sample_file_bytes, r.start_time_90k - 900000,
                           r.prev_media_duration_90k, r.prev_runs, r.wall_duration_90k,
                           r.media_duration_delta_90k, r.video_samples,
                           r.video_sync_samples, r.video_sample_entry_id, r.end_reason,
                           r.duration_runs, r.first_duration_90k, r.first_duration_frames,
                           r.last_duration_90k, r.index_digest, p.video_index
                    from recording r join recording_playback p using (composite_id)
                    limit 1""")


def fill_v9(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 9 (version 8's plus a day's totals
    and their zone; the motion summary moved in cells 0, 63, 64 and 255)."""
    fill_v8(conn)
    conn.execute("""insert into recording_day (stream_id, day, recordings, duration_90k,
                        started, sample_file_bytes, fs_bytes)
                    values (1, '2023-11-14', 3, 270000, 3, 3000, 12288)""")
    conn.execute("insert into recording_day_zone (zone) values ('UTC')")
    cells = bytearray(32)
    cells[0], cells[7], cells[8], cells[31] = 0x01, 0x80, 0x01, 0x80
    conn.execute("update recording_motion set cells = ?", (bytes(cells),))


def fill_v10(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 10 (version 9's with the motion
    union as integers, and the signal back to unknown an hour after it began moving, so
    that it has a closed interval to total)."""
    fill_v9(conn)
    (cells,) = conn.execute("select cells from recording_motion").fetchone()
    conn.execute("update recording_motion set cells_0 = ?, cells_1 = ?, cells_2 = ?, "
                 "cells_3 = ?", raw_motion.cells_ints(cells))
    conn.execute("""insert into signal_change (signal_id, time_90k, state)
                    values (1, ?, 0)""", (T0 + 3600 * 90_000,))


def fill_v11(conn: sqlite3.Connection) -> None:
    """Schema version 11's tables (version 10's; its per-hour and per-day totals are
    built at the first open, so they stay empty here)."""
    fill_v10(conn)


def fill_v12(conn: sqlite3.Connection) -> None:
    """One row or more in every table of schema version 12 (version 11's plus what an
    archive's retention deleted of stream 1)."""
    fill_v11(conn)
    conn.execute("""insert into archive_stream_retention (archive_id, stream_id, camera_uuid,
                        stream_type, expired_through_id)
                    select 1, 1, uuid, 'main', 3 from camera limit 1""")


FILLERS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: fill_v1, 2: fill_v2, 3: fill_v3, 4: fill_v4, 5: fill_v5, 6: fill_v6, 7: fill_v7,
    8: fill_v8, 9: fill_v9, 10: fill_v10, 11: fill_v11, 12: fill_v12}


def frozen_db(db_dir: Path, version: int) -> Path:
    """An empty database file made with the frozen schema of ``version``."""
    db_dir.mkdir(parents=True)
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    conn.executescript((SCHEMAS / f"v{version}.sql").read_text())
    conn.close()
    return db_dir / "db"


def fixture_db(root: Path, version: int, *, as_version: int | None = None) -> Path:
    """A database made with the frozen schema of ``version``, every table filled; its
    ``version`` row says ``as_version`` (default ``version``). Returns its directory."""
    db_dir = root / "db"
    db_dir.mkdir(parents=True)
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    conn.execute("pragma journal_mode = wal")
    conn.executescript("begin;\n" + (SCHEMAS / f"v{version}.sql").read_text())
    conn.execute("insert into meta (uuid) values (?)", (bytes(16),))
    conn.execute("insert into version values (?, ?, 'created')",
                 (version if as_version is None else as_version, NOW))
    FILLERS[version](conn)
    conn.execute("commit")
    conn.close()
    return db_dir


def row_counts(db_file: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' "
            "and name != 'version'")]
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()


def old_tables(db_file: Path, before: dict[str, int]) -> dict[str, int]:
    """``row_counts`` of the tables in ``before`` (later versions add tables)."""
    return {t: n for t, n in row_counts(db_file).items() if t in before}


def versions(db_file: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        return conn.execute("select id, notes from version order by id").fetchall()
    finally:
        conn.close()


def pragma(db_file: Path, name: str) -> object:
    conn = sqlite3.connect(db_file)
    try:
        return conn.execute(f"pragma {name}").fetchone()[0]
    finally:
        conn.close()


# -- the rule ------------------------------------------------------------------------------


def test_every_version_has_a_step_and_a_test() -> None:
    steps = discover_steps()
    assert newest_target(steps) == raw.SCHEMA_VERSION, (
        f"schema version {raw.SCHEMA_VERSION} but the newest upgrade step leads to "
        f"{newest_target(steps)}: add nvr/db/upgrade/v{raw.SCHEMA_VERSION - 1}_to_"
        f"v{raw.SCHEMA_VERSION}.py"
    )
    assert sorted(steps) == list(range(BASE_VERSION, raw.SCHEMA_VERSION))
    frozen = SCHEMAS / f"v{raw.SCHEMA_VERSION}.sql"
    assert frozen.exists() and frozen.read_text() == raw.schema_sql(), (
        "nvr/db/schema.sql differs from its frozen copy: a schema change needs a new "
        "version, an upgrade step, tests/support/schemas/vN.sql and a test (see "
        "nvr/db/upgrade/__init__.py)"
    )
    here = sys.modules[__name__]
    for v in steps:
        assert (SCHEMAS / f"v{v}.sql").exists()
        assert v in FILLERS, f"no fill_v{v} for the fixture of version {v}"
        assert callable(getattr(here, f"test_v{v}_to_v{v + 1}", None)), (
            f"upgrade step {v} -> {v + 1} has no test_v{v}_to_v{v + 1}"
        )


def test_the_rule_catches_a_missing_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(raw, "SCHEMA_VERSION", raw.SCHEMA_VERSION + 1)
    with pytest.raises(AssertionError, match="newest upgrade step leads to"):
        test_every_version_has_a_step_and_a_test()


# -- the machinery, with synthetic steps ------------------------------------------------------


def add_camera_notes(conn: sqlite3.Connection) -> None:
    """A synthetic 1 -> 2 step: a new column, filled from existing data, plus scratch
    data that leaves free pages behind (so vacuum has something to do)."""
    conn.execute("alter table camera add column notes text not null default ''")
    conn.execute("update camera set notes = 'was ' || short_name")
    conn.execute("create table scratch (b blob)")
    conn.executemany("insert into scratch values (?)", [(bytes(10_000),)] * 50)
    conn.execute("drop table scratch")


def rebuild_stream(conn: sqlite3.Connection) -> None:
    """A synthetic 2 -> 3 step: a table rebuilt the way SQLite's ALTER docs say (which
    only works with foreign keys off)."""
    (ddl,) = conn.execute("select sql from sqlite_master where name = 'stream'").fetchone()
    conn.execute(ddl.replace("CREATE TABLE stream", "CREATE TABLE stream_new", 1))
    conn.execute("insert into stream_new select * from stream")
    conn.execute("drop table stream")
    conn.execute("alter table stream_new rename to stream")


def test_synthetic_steps(tmp_path: Path) -> None:
    db_dir = fixture_db(tmp_path, 1)
    db_file = db_dir / "db"
    before = row_counts(db_file)
    journals: list[object] = []

    def step1(conn: sqlite3.Connection) -> None:
        journals.append(conn.execute("pragma journal_mode").fetchone()[0])
        add_camera_notes(conn)

    result = upgrade(db_dir, now_sec=NOW, steps={1: step1, 2: rebuild_stream}, target=3,
                     preset_journal="truncate")
    assert (result.old_version, result.new_version) == (1, 3)
    assert journals == ["truncate"]
    # the backup is the untouched version 1 database, every row there
    assert result.backup == db_dir / "db.v1.bak"
    assert versions(result.backup) == [(1, "created")]
    assert row_counts(result.backup) == before
    # one version row per step; no row lost
    assert versions(db_file) == [(1, "created"), (2, "upgraded from 1"), (3, "upgraded from 2")]
    assert row_counts(db_file) == before
    conn = sqlite3.connect(db_file)
    assert conn.execute("select notes from camera").fetchall() == [("was cam",)]
    conn.close()
    assert pragma(db_file, "journal_mode") == "wal"
    assert pragma(db_file, "freelist_count") == 0  # vacuumed


def test_no_vacuum_and_backups_never_overwritten(tmp_path: Path) -> None:
    db_dir = fixture_db(tmp_path, 1)
    (db_dir / "db.v1.bak").write_bytes(b"an older backup")
    result = upgrade(db_dir, now_sec=NOW, steps={1: add_camera_notes}, target=2, vacuum=False)
    assert result.backup == db_dir / "db.v1.bak.1"
    assert (db_dir / "db.v1.bak").read_bytes() == b"an older backup"
    assert pragma(db_dir / "db", "freelist_count") != 0


def test_a_failing_step_rolls_back_only_itself(tmp_path: Path) -> None:
    db_dir = fixture_db(tmp_path, 1)
    before = row_counts(db_dir / "db")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("delete from recording_playback")
        conn.execute("select * from no_such_table")

    with pytest.raises(errors.Internal, match="no such table"):
        upgrade(db_dir, now_sec=NOW, steps={1: add_camera_notes, 2: broken}, target=3)
    # step 1 is committed, step 2 left no trace
    assert versions(db_dir / "db") == [(1, "created"), (2, "upgraded from 1")]
    assert row_counts(db_dir / "db") == before
    # fixed, it continues from version 2 (with a backup of version 2)
    result = upgrade(db_dir, now_sec=NOW, steps={1: add_camera_notes, 2: rebuild_stream},
                     target=3)
    assert (result.old_version, result.backup) == (2, db_dir / "db.v2.bak")
    assert [v for v, _ in versions(db_dir / "db")] == [1, 2, 3]


def test_a_step_breaking_foreign_keys_is_refused(tmp_path: Path) -> None:
    db_dir = fixture_db(tmp_path, 1)
    before = row_counts(db_dir / "db")

    def orphaning(conn: sqlite3.Connection) -> None:
        conn.execute("delete from camera")

    with pytest.raises(errors.DataLoss, match="stream row 1 refers to a missing camera row"):
        upgrade(db_dir, now_sec=NOW, steps={1: orphaning}, target=2)
    assert versions(db_dir / "db") == [(1, "created")]
    assert row_counts(db_dir / "db") == before


def test_refusals(tmp_path: Path) -> None:
    db_dir = fixture_db(tmp_path, 1)
    with pytest.raises(errors.FailedPrecondition, match="no upgrade step from version 2"):
        upgrade(db_dir, now_sec=NOW, steps={1: add_camera_notes}, target=3)
    with pytest.raises(errors.FailedPrecondition, match="newer than this nvr supports"):
        upgrade(db_dir, now_sec=NOW, steps={}, target=0)
    assert not list(db_dir.glob("*.bak*"))  # refused before copying or writing
    reader = lock_dir(db_dir, exclusive=False)  # what a read-only open holds
    try:
        with pytest.raises(errors.Unavailable, match="locked"):
            upgrade(db_dir, now_sec=NOW, steps={1: add_camera_notes}, target=2)
    finally:
        os.close(reader)
    assert versions(db_dir / "db") == [(1, "created")]
    with pytest.raises(errors.NotFound):
        upgrade(tmp_path / "nothing", now_sec=NOW)


def test_a_v0_to_v1_like_upgrade_then_read_only_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A "version 0" database (schema 1 without an index, version row 0) upgraded by the
    CLI with an injected step; then it opens read-only, as ``nvr run --read-only`` does,
    and ``nvr check`` reads it."""
    db_dir = fixture_db(tmp_path, 1, as_version=0)
    conn = sqlite3.connect(db_dir / "db")
    conn.execute("drop index user_session_uid")
    conn.close()
    before = row_counts(db_dir / "db")
    with pytest.raises(errors.FailedPrecondition, match="run `nvr upgrade` first"):
        Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0)

    def v0_to_v1(conn: sqlite3.Connection) -> None:
        conn.execute("create index user_session_uid on user_session (user_id)")

    real_steps = discover_steps()
    monkeypatch.setattr(upgrade_pkg, "discover_steps", lambda: {0: v0_to_v1, **real_steps})
    assert cli.main(["--db-dir", str(db_dir), "upgrade", "--no-vacuum"]) == 0
    out = capsys.readouterr().out
    assert out == (f"upgraded from schema version 0 to {raw.SCHEMA_VERSION}; the old database "
                   f"is copied to {db_dir / 'db.v0.bak'}. Verify with `nvr run --read-only`.\n")
    assert old_tables(db_dir / "db", before) == before
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as db:
        assert [c.short_name for c in db.cameras.values()] == ["cam"]
        assert db.streams[1].committed.num_recordings == 3
    assert check(db_dir).recordings == 3
    assert cli.main(["--db-dir", str(db_dir), "upgrade"]) == 0
    assert capsys.readouterr().out == (
        f"database is already at schema version {raw.SCHEMA_VERSION}; nothing to do\n")


def test_cli_bad_journal_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--db-dir", str(tmp_path), "upgrade", "--preset-journal", "bogus"])
    assert e.value.code == 2
    assert "--preset-journal" in capsys.readouterr().err


# -- the real steps ---------------------------------------------------------------------------


def table_shapes(db_file: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's and index's columns (name, type, not null, default, key), by name."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "select name from sqlite_master where type in ('table', 'index') "
            "and name not like 'sqlite_%' order by name")]
        shapes = {}
        for name in names:
            cols = conn.execute(f"pragma table_xinfo({name})").fetchall()
            shapes[name] = cols or conn.execute(f"pragma index_xinfo({name})").fetchall()
        return shapes
    finally:
        conn.close()


def summaries(db_file: Path) -> dict[int, tuple[FramesSummary | None, bytes]]:
    """composite id -> (stored summary, video_index) of every recording."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            f"""select composite_id, {", ".join(raw.SUMMARY_COLUMN_NAMES)}, video_index
                from recording join recording_playback using (composite_id)""").fetchall()
        return {r[0]: (raw.summary_from_columns(r[1:6]), bytes(r[6])) for r in rows}
    finally:
        conn.close()


def test_v1_to_v2(tmp_path: Path) -> None:
    """The fixture's three recordings have indexes that disagree with their rows: they get
    no summary (and are logged); a fourth with a sound index gets exactly the summary the
    commit path computes. No row is lost; the tables are shaped as a new database's."""
    db_dir = fixture_db(tmp_path, 1)
    enc = VideoIndexEncoder()
    for j in range(90):
        enc.add(3000 if j % 4 else 3003, 100 + j, j % 30 == 0)
    enc.add(0, 50, False)  # a trailing zero
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    sound = 1 << 32 | 3
    conn.execute(
        """insert into recording values (?, 1, 1, 3, 1, ?, ?, 270000, 0, ?, 0, ?, ?, 1,
           'disconnect')""",
        (sound, enc.total_bytes, T0 + 3 * 90000, enc.media_duration, enc.frames,
         enc.key_frames))
    conn.execute("insert into recording_playback values (?, ?)", (sound, enc.data))
    conn.execute("update stream set cum_recordings = 4")
    conn.close()
    before = row_counts(db_dir / "db")
    result = upgrade(db_dir, now_sec=NOW, target=2)
    assert (result.old_version, result.new_version) == (1, 2)
    assert versions(db_dir / "db") == [(1, "created"), (2, "upgraded from 1")]
    assert row_counts(db_dir / "db") == before
    stored = summaries(db_dir / "db")
    assert {cid: s for cid, (s, _) in stored.items()} == {
        1 << 32 | 0: None, 1 << 32 | 1: None, 1 << 32 | 2: None,
        sound: summarize_index(enc.data)}
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "fresh", 2))
    upgrade(db_dir, now_sec=NOW)  # the later steps, so nvr check can open it
    # nvr check: one line per unsound index, none for the sound one (the fixture's
    # directory does not exist, so no file is looked at)
    problems = check(db_dir).problems
    assert [p.split(": ")[1] for p in problems if p.startswith("recording")] == [
        "video_index does not match its recording"] * 3


def copy_as_v1(src: Path, db_dir: Path) -> None:
    """A version 1 database (``tests/support/schemas/v1.sql``) holding every row of the
    database file ``src`` (without the columns version 1 does not have)."""
    copy_as(1, src, db_dir)


def copy_as(version: int, src: Path, db_dir: Path) -> None:
    """A database of schema ``version`` (``tests/support/schemas/vN.sql``) holding every
    row of the database file ``src`` (without the columns and tables it does not have)."""
    db_dir.mkdir()
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    try:
        conn.execute("attach database ? as src", (f"file:{src}?mode=ro",))
        conn.executescript("begin;\n" + (SCHEMAS / f"v{version}.sql").read_text())
        tables = [r[0] for r in conn.execute(
            "select name from main.sqlite_master where type = 'table' "
            "and name not like 'sqlite_%' and name != 'version'")]
        for table in tables:
            cols = ", ".join(r[1] for r in conn.execute(f"pragma main.table_info({table})"))
            conn.execute(f"insert into main.{table} ({cols}) select {cols} from src.{table}")
        conn.execute("insert into version values (?, ?, 'created')", (version, NOW))
        conn.execute("commit")
        conn.execute("detach database src")
    finally:
        conn.close()


#: s= values served before and after the upgrade: whole recordings, runs cut inside, a
#: timestamp track, media segments
VIEWS = [("mp4", "0-2", {}), ("mp4", "3", {"ts": "true"}), ("mp4", "1-2.900000-", {}),
         ("m4s", "1", {}), ("m4s", "0.1000-2000000", {}), ("mp4.txt", "0-2", {})]


async def served(db_dir: Path, camera_uuid: str) -> list[tuple[int, str, bytes]]:
    """(status, ETag, sha256 of the body) of each of ``VIEWS``, from ``db_dir`` opened
    read-only (bodies fetched in ranges: Quart's test client buffers small)."""
    db = Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0)
    dirs = {d: open_for_database(db, d, read_only=True) for d in db.dirs}
    try:
        ctx = WebContext(db=db, dirs=dirs, clocks=RealClocks(), bind=VIEW)
        c = create_app(ctx).test_client()
        out = []
        for kind, s, extra in VIEWS:
            path = f"/api/cameras/{camera_uuid}/main/view.{kind}"
            r = await c.get(path, query_string={"s": s, **extra}, headers={"Range": "bytes=0-0"})
            etag = r.headers.get("ETag", "")
            first = await r.get_data()
            if r.status_code != 206:  # the .txt twin: no ranges
                out.append((r.status_code, etag, hashlib.sha256(first).digest()))
                continue
            size = int(r.headers["Content-Range"].split("/")[1])
            body = hashlib.sha256()
            for a in range(0, size, 4 << 20):
                part = await c.get(path, query_string={"s": s, **extra},
                                   headers={"Range": f"bytes={a}-{min(size, a + (4 << 20)) - 1}"})
                body.update(await part.get_data())
            out.append((r.status_code, etag, body.digest()))
        return out
    finally:
        for d in dirs.values():
            d.close()
        db.close()


async def test_v1_to_v2_keeps_view_etags_and_bytes(
    tmp_path: Path, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recorded database (trailing zeros included), copied into a version 1 database and
    upgraded: every stored summary is the one computed from its index, and view.mp4/m4s
    have the ETags and bytes served before the upgrade, when layouts decoded every index
    (the recorded database with its summaries cleared)."""
    monkeypatch.setattr("nvr.web.view.run_blocking", run_inline)
    recorded = await record(tmp_path / "rec")
    recorded.env.close()
    src = recorded.env.db_dir / "db"
    v1_dir = tmp_path / "v1"
    copy_as_v1(src, v1_dir)
    conn = sqlite3.connect(src)
    with conn:
        conn.execute(f"""update recording set
            {", ".join(f"{c} = null" for c in raw.SUMMARY_COLUMN_NAMES)}""")
    conn.close()
    with inline_blocking():
        before = await served(recorded.env.db_dir, recorded.camera_uuid)
        assert [status for status, _, _ in before] == [206] * 5 + [200]
        upgrade(v1_dir, now_sec=NOW)
        after = await served(v1_dir, recorded.camera_uuid)
    assert after == before
    stored = summaries(v1_dir / "db")
    assert len(stored) == 4
    for summary, index in stored.values():
        assert summary == summarize_index(index)


def dump(db_file: Path, tables: list[str]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of ``tables``, in rowid or key order."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        return {t: sorted(conn.execute(f"select * from {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def test_v2_to_v3(tmp_path: Path) -> None:
    """Signals: five new tables, empty; every row of version 2 is kept exactly; the tables
    are shaped as a new database's, and the new ones work."""
    db_dir = fixture_db(tmp_path, 2)
    v2_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v2_tables)
    result = upgrade(db_dir, now_sec=NOW, target=3)
    assert (result.old_version, result.new_version) == (2, 3)
    assert versions(db_dir / "db") == [(2, "created"), (3, "upgraded from 2")]
    assert dump(db_dir / "db", v2_tables) == before
    counts = row_counts(db_dir / "db")
    assert {t: counts[t] for t in counts if t.startswith("signal")} == {
        "signal": 0, "signal_camera": 0, "signal_change": 0, "signal_type": 0,
        "signal_type_state": 0}
    fresh = tmp_path / "fresh"
    Database.create(fresh, T0)
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v3", 3))
    upgrade(db_dir, now_sec=NOW)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        sig = db.motion_signal(1)
        db.update_signals([sig.id], [2], T0, T0 + 90000)
        assert db.signal_changes(0, T0 * 2).states == [2, 0]


def test_v3_to_v4(tmp_path: Path) -> None:
    """Motion summaries: a new empty table; every row of version 3 is kept exactly, the
    tables are shaped as a new database's, and a summary can be stored for an existing
    recording (its foreign key holds)."""
    db_dir = fixture_db(tmp_path, 3)
    v3_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v3_tables)
    result = upgrade(db_dir, now_sec=NOW, target=4)
    assert (result.old_version, result.new_version) == (3, 4)
    assert versions(db_dir / "db") == [(3, "created"), (4, "upgraded from 3")]
    assert dump(db_dir / "db", v3_tables) == before
    assert row_counts(db_dir / "db")["recording_motion"] == 0
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v4", 4))
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    conn.execute("pragma foreign_keys = on")
    conn.execute("insert into recording_motion values (?, ?, x'', x'', 0, 5, 0)",
                 (1 << 32, bytes(32)))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("insert into recording_motion values (?, ?, x'', x'', 0, 5, 0)",
                     (1 << 32 | 7, bytes(32)))
    conn.close()


def test_v4_to_v5(tmp_path: Path) -> None:
    """Protected ranges: a new, empty table; every row of version 4 is kept exactly; the
    tables are shaped as a new database's; a user without "cameras" keeps its rights."""
    db_dir = fixture_db(tmp_path, 4)
    conn = sqlite3.connect(db_dir / "db", isolation_level=None)
    conn.execute("""update user set permissions = '{"viewVideo": true}'""")
    conn.close()
    v4_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v4_tables)
    result = upgrade(db_dir, now_sec=NOW, target=5)
    assert (result.old_version, result.new_version) == (4, 5)
    assert versions(db_dir / "db") == [(4, "created"), (5, "upgraded from 4")]
    assert dump(db_dir / "db", v4_tables) == before
    assert row_counts(db_dir / "db")["protected_range"] == 0
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v5", 5))
    upgrade(db_dir, now_sec=NOW)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        from nvr.db.auth import Auth
        user = Auth(db, now=lambda: T0).user_by_name("admin")
        assert user.permissions == frozenset({"viewVideo"})
        assert user.cameras is None
        assert db.list_protected(1) == []


def test_v5_to_v6(tmp_path: Path) -> None:
    """Archive: three new tables, empty; every row of version 5 is kept exactly; the
    tables are shaped as a new database's, and the new ones work (an archive added to a
    camera of version 5 copies its main stream)."""
    db_dir = fixture_db(tmp_path, 5)
    v5_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v5_tables)
    result = upgrade(db_dir, now_sec=NOW, target=6)
    assert (result.old_version, result.new_version) == (5, 6)
    assert versions(db_dir / "db") == [(5, "created"), (6, "upgraded from 5")]
    assert dump(db_dir / "db", v5_tables) == before
    counts = row_counts(db_dir / "db")
    assert {t: counts[t] for t in counts if t.startswith("archive")} == {
        "archive": 0, "archive_stream": 0, "archived_recording": 0}
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v6", 6))
    upgrade(db_dir, now_sec=NOW)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        a = db.add_archive("site", ArchiveConfig(
            "http://127.0.0.1:9", "bkt", access_key="k", secret_key="s"))
        assert a.streams == {1}
        assert [u.recording.composite_id for u in db.unarchived(a.id, 10)] == [
            1 << 32 | i for i in range(3)]


def test_v6_to_v7(tmp_path: Path) -> None:
    """Redactions: a new, empty table; every row of version 6 is kept exactly; the tables
    are shaped as a new database's."""
    db_dir = fixture_db(tmp_path, 6)
    v6_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v6_tables)
    result = upgrade(db_dir, now_sec=NOW, target=7)
    assert (result.old_version, result.new_version) == (6, 7)
    assert versions(db_dir / "db") == [(6, "created"), (7, "upgraded from 6")]
    assert dump(db_dir / "db", v6_tables) == before
    assert row_counts(db_dir / "db")["redaction"] == 0
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v7", 7))


def test_v7_to_v8(tmp_path: Path) -> None:
    """Archive-only recordings: a new, empty table and an index; every row of version 7
    is kept exactly; the tables are shaped as a new database's."""
    db_dir = fixture_db(tmp_path, 7)
    v7_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v7_tables)
    result = upgrade(db_dir, now_sec=NOW, target=8)
    assert (result.old_version, result.new_version) == (7, 8)
    assert versions(db_dir / "db") == [(7, "created"), (8, "upgraded from 7")]
    assert dump(db_dir / "db", v7_tables) == before
    assert row_counts(db_dir / "db")["archive_only_recording"] == 0
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v8", 8))


def test_v8_to_v9(tmp_path: Path) -> None:
    """Per-day totals: two new, empty tables; every row of version 8 is kept exactly; the
    tables are shaped as a new database's; the first read-write open builds the totals
    from the recordings (in its zone), and a read-only open in the same zone reads them
    back as the same summaries."""
    db_dir = fixture_db(tmp_path, 8)
    v8_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v8_tables)
    result = upgrade(db_dir, now_sec=NOW, target=9)
    assert (result.old_version, result.new_version) == (8, 9)
    assert versions(db_dir / "db") == [(8, "created"), (9, "upgraded from 8")]
    assert dump(db_dir / "db", v8_tables) == before
    counts = row_counts(db_dir / "db")
    assert (counts["recording_day"], counts["recording_day_zone"]) == (0, 0)
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v9", 9))
    upgrade(db_dir, now_sec=NOW)  # to the newest version, which Database.open needs
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        built = {sid: s.committed for sid, s in db.streams.items()}
    assert built[1].num_recordings == row_counts(db_dir / "db")["recording"] > 0
    assert row_counts(db_dir / "db")["recording_day_zone"] == 1
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as db:
        assert {sid: s.committed for sid, s in db.streams.items()} == built


def test_v9_to_v10(tmp_path: Path) -> None:
    """The motion union as integers: every row of version 9 is kept exactly (the motion
    summaries with four more columns, computed from ``cells``); the tables are shaped as a
    new database's; search's SQL finds the summary by any of its cells, and no other."""
    db_dir = fixture_db(tmp_path, 9)
    v9_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v9_tables)
    result = upgrade(db_dir, now_sec=NOW, target=10)
    assert (result.old_version, result.new_version) == (9, 10)
    assert versions(db_dir / "db") == [(9, "created"), (10, "upgraded from 9")]
    after = dump(db_dir / "db", v9_tables)
    (old_motion,) = before.pop("recording_motion")
    (new_motion,) = after.pop("recording_motion")
    assert after == before
    assert new_motion == (*old_motion, -(1 << 63) + 1, 1, 0, -(1 << 63))
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v10", 10))
    conn = sqlite3.connect(db_dir / "db")
    try:
        for cell in range(256):
            region = bytearray(32)
            region[cell // 8] = 1 << cell % 8
            rows = raw_motion.motion_search_rows(conn, 1, bytes(region), 0, 1 << 62, 0)
            assert len(rows) == (cell in (0, 63, 64, 255)), cell
    finally:
        conn.close()


def test_v10_to_v11(tmp_path: Path) -> None:
    """Per-hour motion and per-day signal totals: three new, empty tables; every row of
    version 10 is kept exactly; the tables are shaped as a new database's; the first
    read-write open builds the totals from the summaries and changes (in its zone), which
    ``nvr check`` finds equal to a recomputation, and a read-only open in the same zone
    reads them back as the same totals without scanning."""
    db_dir = fixture_db(tmp_path, 10)
    v10_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v10_tables)
    result = upgrade(db_dir, now_sec=NOW, target=11)
    assert (result.old_version, result.new_version) == (10, 11)
    assert versions(db_dir / "db") == [(10, "created"), (11, "upgraded from 10")]
    assert dump(db_dir / "db", v10_tables) == before
    counts = row_counts(db_dir / "db")
    assert (counts["motion_hour"], counts["signal_day"], counts["event_total_zone"]) == (0, 0, 0)
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v11", 11))
    upgrade(db_dir, now_sec=NOW)  # to the newest version, which Database.open needs
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        motion = {sid: db.motion_days(sid) for sid in db.streams}
        signals = {sid: db.signal_days(sid, 0) for sid in db.signals}
        assert db.event_total_problems() == []
    counts = row_counts(db_dir / "db")
    assert (counts["motion_hour"], counts["signal_day"], counts["event_total_zone"]) == (1, 1, 1)
    assert sum(t for days in motion.values() for t, _ in days.values()) == 1
    assert signals == {1: {to_datetime(T0, dt.UTC).date().isoformat(): {2: 3600 * 90_000}}}
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as db:
        assert {sid: db.motion_days(sid) for sid in db.streams} == motion
        assert {sid: db.signal_days(sid, 0) for sid in db.signals} == signals


def test_v11_to_v12(tmp_path: Path) -> None:
    """What archive retention deleted: one new, empty table; every row of version 11 is
    kept exactly; the tables are shaped as a new database's, and it opens."""
    db_dir = fixture_db(tmp_path, 11)
    v11_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v11_tables)
    result = upgrade(db_dir, now_sec=NOW, target=12)
    assert (result.old_version, result.new_version) == (11, 12)
    assert versions(db_dir / "db") == [(11, "created"), (12, "upgraded from 11")]
    assert dump(db_dir / "db", v11_tables) == before
    assert row_counts(db_dir / "db")["archive_stream_retention"] == 0
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v12", 12))
    upgrade(db_dir, now_sec=NOW)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        assert db.archives


def test_v12_to_v13(tmp_path: Path) -> None:
    """Per-day totals of archive-only recordings: one new table; every row of version 12
    is kept exactly but the zone row (so the next read-write open builds both per-day
    tables); the tables are shaped as a new database's; that open counts the
    archive-only recording in its days, and a read-only open reads them back."""
    db_dir = fixture_db(tmp_path, 12)
    v12_tables = sorted(row_counts(db_dir / "db"))
    before = dump(db_dir / "db", v12_tables)
    result = upgrade(db_dir, now_sec=NOW, target=13)
    assert (result.old_version, result.new_version) == (12, 13)
    assert versions(db_dir / "db") == [(12, "created"), (13, "upgraded from 12")]
    after = dump(db_dir / "db", v12_tables)
    assert after.pop("recording_day_zone") == [] and before.pop("recording_day_zone")
    assert after == before
    assert table_shapes(db_dir / "db") == table_shapes(frozen_db(tmp_path / "v13", 13))
    upgrade(db_dir, now_sec=NOW)
    with Database.open(db_dir, tz=dt.UTC, now=lambda: T0) as db:
        built = {sid: s.archive_only.days for sid, s in db.streams.items()}
    n = row_counts(db_dir / "db")["archive_only_recording"]
    assert n > 0 and sum(t.started for t in built[1].values()) == n
    assert row_counts(db_dir / "db")["archive_only_day"] > 0
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as db:
        assert {sid: s.archive_only.days for sid, s in db.streams.items()} == built


async def test_v2_to_v3_keeps_view_etags_and_bytes(
    tmp_path: Path, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recorded database copied into a version 2 database and upgraded: view.mp4/m4s
    have the ETags and bytes served before, and every row of version 2's tables is
    unchanged."""
    monkeypatch.setattr("nvr.web.view.run_blocking", run_inline)
    recorded = await record(tmp_path / "rec")
    recorded.env.close()
    v2_dir = tmp_path / "v2"
    copy_as(2, recorded.env.db_dir / "db", v2_dir)
    v2_tables = sorted(row_counts(v2_dir / "db"))
    rows = dump(v2_dir / "db", v2_tables)
    with inline_blocking():
        before = await served(recorded.env.db_dir, recorded.camera_uuid)
        assert [status for status, _, _ in before] == [206] * 5 + [200]
        upgrade(v2_dir, now_sec=NOW)
        after = await served(v2_dir, recorded.camera_uuid)
    assert after == before
    assert dump(v2_dir / "db", v2_tables) == rows
