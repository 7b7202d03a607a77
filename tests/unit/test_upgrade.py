"""``nvr upgrade``: the step machinery with injected synthetic steps, and the rule that
every schema version after 1 has a step and a test (see ``nvr/db/upgrade/__init__.py``).

A future step ``vN_to_vN+1`` gets ``test_vN_to_vN+1`` here: build ``fixture_db(root, N)``
(the frozen ``tests/support/schemas/vN.sql``, every table filled by ``fill_vN``), run
``upgrade`` with the real steps, and compare ``row_counts`` before and after.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nvr import cli
from nvr.base import errors
from nvr.check import check
from nvr.db import raw
from nvr.db import upgrade as upgrade_pkg
from nvr.db.database import Database
from nvr.db.upgrade import BASE_VERSION, discover_steps, newest_target, upgrade

SCHEMAS = Path(__file__).parents[1] / "support" / "schemas"
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
            """insert into recording values (?, 1, 1, ?, 0, 1000, ?, ?, 0, 90000, 0, 30, 1, 1,
               null)""", (cid, i, T0 + i * 90000, i * 90000))
        conn.execute("insert into recording_integrity (composite_id) values (?)", (cid,))
        conn.execute("insert into recording_playback values (?, ?)", (cid, b"\x01\x02"))
    conn.execute("insert into garbage values (1, ?)", (1 << 32 | 9,))
    conn.execute("insert into user (id, username) values (1, 'admin')")
    conn.execute("""insert into user_session (session_id_hash, user_id, seed, flags,
                    creation_time_sec) values (?, 1, ?, 1, ?)""", (bytes(32), bytes(32), NOW))


FILLERS: dict[int, Callable[[sqlite3.Connection], None]] = {1: fill_v1}


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
    with (Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0),
          pytest.raises(errors.Unavailable, match="locked")):
        upgrade(db_dir, now_sec=NOW, steps={1: add_camera_notes}, target=2)
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

    monkeypatch.setattr(upgrade_pkg, "discover_steps", lambda: {0: v0_to_v1})
    assert cli.main(["--db-dir", str(db_dir), "upgrade", "--no-vacuum"]) == 0
    out = capsys.readouterr().out
    assert out == (f"upgraded from schema version 0 to 1; the old database is copied to "
                   f"{db_dir / 'db.v0.bak'}. Verify with `nvr run --read-only`.\n")
    assert row_counts(db_dir / "db") == before
    with Database.open(db_dir, read_only=True, tz=dt.UTC, now=lambda: T0) as db:
        assert [c.short_name for c in db.cameras.values()] == ["cam"]
        assert db.streams[1].committed.num_recordings == 3
    assert check(db_dir).recordings == 3
    assert cli.main(["--db-dir", str(db_dir), "upgrade"]) == 0
    assert capsys.readouterr().out == (
        "database is already at schema version 1; nothing to do\n")


def test_cli_bad_journal_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--db-dir", str(tmp_path), "upgrade", "--preset-journal", "bogus"])
    assert e.value.code == 2
    assert "--preset-journal" in capsys.readouterr().err
