"""``nvr config user ...`` and ``nvr login``: what a person types, sees, and what the
database then holds."""

from __future__ import annotations

import base64
import hashlib
import io
import stat
from pathlib import Path

import pytest

from nvr.base.clock import RealClocks
from nvr.base.time90k import zone
from nvr.cli import main
from nvr.db.auth import Auth
from nvr.db.database import Database


def nvr(root: Path, *args: str, stdin: str | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--db-dir", str(root / "db"), *args])


def open_auth(root: Path) -> tuple[Database, Auth]:
    clocks = RealClocks()
    db = Database.open(root / "db", read_only=True, tz=zone("UTC"), now=clocks.realtime)
    return db, Auth(db, now=clocks.realtime)


def test_user_lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    assert nvr(tmp_path, "init") == 0
    assert nvr(tmp_path, "config", "user", "add", "alice", "--password-stdin",
               "--perms", "viewVideo,adminUsers", stdin="open sesame\n",
               monkeypatch=monkeypatch) == 0
    assert nvr(tmp_path, "config", "user", "add", "bob") == 0
    out = capsys.readouterr().out
    assert "added user alice (id 1)" in out and "no password yet" in out
    assert nvr(tmp_path, "config", "user", "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "1\talice\tviewVideo,adminUsers\tpassword set, 0 sessions",
        "2\tbob\t-\tno password, 0 sessions",
    ]
    db, a = open_auth(tmp_path)
    with db:
        alice = a.user_by_name("alice")
        assert alice.password_hash is not None and alice.password_hash.startswith("$argon2id$")
        assert a.verify_password(alice, "open sesame")
        assert not a.verify_password(alice, "open sesame\n")

    assert nvr(tmp_path, "config", "user", "perms", "bob", "readCameraConfigs") == 0
    assert nvr(tmp_path, "config", "user", "disable", "bob") == 0
    assert nvr(tmp_path, "config", "user", "passwd", "alice", "--password-stdin",
               stdin="new one\n", monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert nvr(tmp_path, "config", "user", "list") == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "2\tbob\treadCameraConfigs\tno password, disabled, 0 sessions")
    db, a = open_auth(tmp_path)
    with db:
        alice = a.user_by_name("alice")
        assert a.verify_password(alice, "new one") and alice.password_id == 1
    assert nvr(tmp_path, "config", "user", "enable", "bob") == 0
    assert nvr(tmp_path, "config", "user", "remove", "bob") == 0
    capsys.readouterr()
    assert nvr(tmp_path, "config", "user", "list") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "stdin", "status", "message"),
    [
        (("add", "carol", "--perms", "viewVideo,fly"), None, 2, "unknown permission 'fly'"),
        (("add", "carol", "--password-stdin"), "\n", 2, "must not be empty"),
        (("add", "carol", "--password-stdin"), "", 2, "nothing on standard input"),
        (("add", " carol"), None, 2, "leading or trailing spaces"),
        (("add", "alice"), None, 1, "already exists"),
        (("passwd", "nobody", "--clear"), None, 1, "no user named 'nobody'"),
        (("passwd", "alice"), None, 2, "no password"),
        (("perms", "alice", "root"), None, 2, "unknown permission 'root'"),
        (("remove", "zed"), None, 1, "no user named 'zed'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                               stdin: str | None, status: int, message: str) -> None:
    assert nvr(tmp_path, "init") == 0
    assert nvr(tmp_path, "config", "user", "add", "alice") == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin or ""))
    assert nvr(tmp_path, "config", "user", *args) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_login_prints_a_session_or_writes_a_cookie_jar(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert nvr(tmp_path, "init") == 0
    assert nvr(tmp_path, "config", "user", "add", "script",
               "--perms", "viewVideo,readCameraConfigs") == 0
    capsys.readouterr()
    assert nvr(tmp_path, "login", "script", "--perms", "viewVideo") == 0
    session_id = capsys.readouterr().out.strip()
    jar = tmp_path / "cookies.txt"
    assert nvr(tmp_path, "login", "script", "--cookie-jar", str(jar), "--domain", "nvr.lan") == 0
    assert stat.S_IMODE(jar.stat().st_mode) == 0o600
    (line,) = [x for x in jar.read_text().splitlines() if x.startswith("#HttpOnly_")]
    domain, tail, path, secure, expires, name, value = line.split("\t")
    assert (domain, tail, path, secure, name) == ("#HttpOnly_nvr.lan", "FALSE", "/", "FALSE", "s")
    assert int(expires) > 0 and value != session_id

    db, a = open_auth(tmp_path)
    with db:
        s1 = a.authenticate(session_id)
        s2 = a.authenticate(value)
        assert s1 is not None and s1.permissions == {"viewVideo"}
        assert s2 is not None and s2.permissions == {"viewVideo", "readCameraConfigs"}
    stored = (tmp_path / "db" / "db").read_bytes() + (
        (tmp_path / "db" / "db-wal").read_bytes() if (tmp_path / "db" / "db-wal").exists() else b"")
    for sid in (session_id, value):
        raw_id = base64.urlsafe_b64decode(sid + "=")
        assert sid.encode() not in stored and raw_id not in stored
        assert hashlib.sha256(raw_id).digest() in stored

    # More than the user has, or an unknown user: refused with one line.
    assert nvr(tmp_path, "login", "script", "--perms", "adminUsers") == 1
    assert "does not have adminUsers" in capsys.readouterr().err
    assert nvr(tmp_path, "login", "nobody") == 1


def test_perms_limited_to_cameras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.cli.test_cli_config import setup_camera

    setup_camera(tmp_path, monkeypatch)
    assert nvr(tmp_path, "config", "user", "add", "carol") == 0
    capsys.readouterr()
    assert nvr(tmp_path, "config", "user", "perms", "carol", "viewVideo,protectVideo",
               "--cameras", "front") == 0
    assert capsys.readouterr().out == (
        "user carol now has: protectVideo, viewVideo, only on cameras: front\n")
    db, a = open_auth(tmp_path)
    with db:
        front = db.camera_by_name("front").uuid
        assert a.user_by_name("carol").cameras == frozenset({front})
    # by uuid too; the limit stays when only the permissions change
    assert nvr(tmp_path, "config", "user", "perms", "carol", "viewVideo",
               "--cameras", str(front)) == 0
    assert nvr(tmp_path, "config", "user", "perms", "carol", "viewVideo") == 0
    capsys.readouterr()
    assert nvr(tmp_path, "config", "user", "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "1\tcarol\tviewVideo\tno password, 0 sessions, only cameras front"]
    assert nvr(tmp_path, "config", "user", "perms", "carol", "viewVideo", "--all-cameras") == 0
    assert capsys.readouterr().out == "user carol now has: viewVideo, on every camera\n"
    # an unknown camera is refused in one line, nothing changed
    assert nvr(tmp_path, "config", "user", "perms", "carol", "", "--cameras", "back") != 0
    assert "back" in capsys.readouterr().err
    db, a = open_auth(tmp_path)
    with db:
        assert a.user_by_name("carol").cameras is None
