"""``nvr config signal|signal-type ...``: what a person types, sees, and the database holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvr.offline import admin
from tests.unit.cli.test_cli_config import nvr, setup_camera


def test_signal_types_and_signals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_camera(tmp_path, monkeypatch)
    assert nvr(tmp_path, "config", "signal-type", "add", "door", "--state", "1:closed:#00ff00",
               "--state", "2:open:motion:#ff8888") == 0
    assert nvr(tmp_path, "config", "signal", "add", "front door", "--type", "door",
               "--camera", "front:indirect") == 0
    assert nvr(tmp_path, "config", "signal", "add", "front motion", "--camera", "front") == 0
    capsys.readouterr()
    assert nvr(tmp_path, "config", "signal-type", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in out] == ["door", "motion"]
    assert out[0].endswith("1:closed:#00ff00, 2:open:motion:#ff8888")
    assert out[1].endswith("1:still:#888888, 2:moving:motion:#ff8888")
    assert nvr(tmp_path, "config", "signal", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1:2] + line.split("\t")[3:] for line in out] == [
        ["front door", "door", "front (indirect)", "no changes"],
        ["front motion", "motion", "front (direct)", "no changes"]]
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        cam = db.camera_by_name("front")
        assert db.motion_signal(cam.id).short_name == "front motion"  # found, not made

    # refusals: one line each, nothing changed
    for args, code, text in [
        (("signal-type", "remove", "door"), 1, "used by signals front door"),
        (("signal", "add", "x", "--type", "nope"), 1, "no signal type named 'nope'"),
        (("signal", "add", "x", "--camera", "back"), 1, "no camera named 'back'"),
        (("signal", "add", "front door"), 1, "already exists"),
        (("signal-type", "add", "bad"), 2, "at least one --state"),
        (("signal-type", "add", "bad", "--state", "0:zero"), 2, "1 to 255"),
    ]:
        assert nvr(tmp_path, "config", *args) == code, args
        err = capsys.readouterr().err
        assert text in err and err.count("\n") == 1, (args, err)
    with pytest.raises(SystemExit):
        nvr(tmp_path, "config", "signal-type", "add", "bad", "--state", "x")

    assert nvr(tmp_path, "config", "signal", "remove", "front door") == 0
    assert nvr(tmp_path, "config", "signal-type", "remove", "door") == 0
    # a camera removed unties its signals, which stay
    assert nvr(tmp_path, "config", "camera", "remove", "front") == 0
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        assert [(s.short_name, s.cameras) for s in db.signals.values()] == [("front motion", {})]
        assert [t.short_name for t in db.signal_types.values()] == ["motion"]


def test_a_cameras_motion_signal_is_named_in_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_camera(tmp_path, monkeypatch)
    assert nvr(tmp_path, "config", "camera", "edit", "front", "--motion-signal", "gate") == 0
    assert nvr(tmp_path, "config", "camera", "edit", "front", "--username", "root") == 0
    with admin.open_db(tmp_path / "db") as db:
        cam = db.camera_by_name("front")
        assert (cam.config.motion_signal, cam.config.username) == ("gate", "root")  # both kept
        sig = db.motion_signal(cam.id)  # what the motion detector asks for: made, by that name
        assert sig.short_name == "gate" and sig.cameras == {cam.id: "direct"}
    assert nvr(tmp_path, "config", "camera", "edit", "front", "--motion-signal", "") == 0
    with admin.open_db(tmp_path / "db") as db:
        cam = db.camera_by_name("front")
        assert cam.config.motion_signal is None
        assert db.motion_signal(cam.id).short_name == "gate"  # nvr's type, tied directly
