"""``nvr config archive ...``: what a person types, sees, and the database holds (the
secret key never on the command line and never shown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvr.offline import admin
from tests.unit.cli.test_cli_config import nvr, setup_camera

ADD = ("config", "archive", "add", "offsite", "--endpoint", "http://127.0.0.1:8333",
       "--bucket", "nvr-bkt", "--prefix", "site1", "--access-key", "AK1",
       "--secret-key-stdin", "--retain-days", "90", "--retain-bytes", "1T")


def test_add_list_edit_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_camera(tmp_path, monkeypatch)
    assert nvr(tmp_path, *ADD, stdin="s3cr3t-value\n", monkeypatch=monkeypatch) == 0
    assert "copying 1 streams" in capsys.readouterr().out
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        a = db.archive_by_name("offsite")
        cam = db.camera_by_name("front")
        assert a.streams == {cam.streams["main"]}
        assert a.config.prefix == "site1/" and a.config.secret_key == "s3cr3t-value"
        assert a.config.retain_bytes == 10**12 and a.config.retain_days == 90
        assert "s3cr3t" not in repr(a) and "AK1" not in repr(a)
        assert "AK1" not in str(a.config.public())
    assert nvr(tmp_path, "config", "archive", "list") == 0
    out = capsys.readouterr().out
    assert out.split("\t")[0] == "offsite" and "front/main" in out
    assert "s3cr3t" not in out and "AK1" not in out
    assert nvr(tmp_path, "config", "archive", "edit", "offsite", "--stream", "front/sub",
               "--stream", "front", "--max-rate", "5M", "--require-archived") == 0
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        a = db.archive_by_name("offsite")
        assert a.streams == set(db.camera_by_name("front").streams.values())
        assert a.config.max_rate == 5 * 10**6 and a.config.require_archived
        assert a.config.secret_key == "s3cr3t-value"  # kept
    capsys.readouterr()
    # refusals: one line each, nothing changed
    for args, stdin, code, text in [
        (ADD, "x\n", 1, "already exists"),
        (ADD[:-5], None, 2, "--secret-key-stdin"),
        ((*ADD[:3], "b", *ADD[4:]), "\n", 2, "nothing on standard input"),
        ((*ADD[:3], "c", "--endpoint", "http://u:p@h/", *ADD[6:]), "x\n", 2,
         "credentials go in"),
        ((*ADD[:3], "d", *ADD[4:6], "--bucket", "A!", *ADD[8:]), "x\n", 2, "bucket must"),
        (("config", "archive", "edit", "offsite", "--stream", "back"), None, 1,
         "no camera named 'back'"),
        (("config", "archive", "remove", "nope"), None, 1, "no archive named 'nope'"),
    ]:
        assert nvr(tmp_path, *args, stdin=stdin, monkeypatch=monkeypatch) == code, args
        err = capsys.readouterr().err
        assert text in err and err.count("\n") == 1, (args, err)
        assert "x\n" not in err
    assert nvr(tmp_path, "config", "archive", "remove", "offsite") == 0
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        assert db.archives == {}
