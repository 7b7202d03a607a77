"""``nvr config dir|camera ...``: what a person types, what they see, what the database holds."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import trio
import trio.testing

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.time90k import UNITS_PER_SEC
from nvr.base.units import format_size
from nvr.cli import main
from nvr.offline import admin
from nvr.offline.check import check
from nvr.storage.space import DiskSpace
from nvr.syncer import Syncer
from nvr.testing.env import open_env
from tests.support.recording import record_run


def nvr(
    root: Path, *args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None
) -> int:
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--db-dir", str(root / "db"), *args])


def setup_camera(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert nvr(root, "init") == 0
    assert nvr(root, "config", "dir", "add", str(root / "sample")) == 0
    assert (
        nvr(
            root,
            "config",
            "camera",
            "add",
            "--name",
            "front",
            "--main-url",
            "rtsp://192.0.2.1/main",
            "--sub-url",
            "rtsp://192.0.2.1/sub",
            "--dir",
            str(root / "sample"),
            "--retain-bytes",
            "10GiB",
            "--username",
            "admin",
            "--password-stdin",
            stdin="hunter2\n",
            monkeypatch=monkeypatch,
        )
        == 0
    )


def test_add_and_list_a_camera(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_camera(tmp_path, monkeypatch)
    capsys.readouterr()
    assert nvr(tmp_path, "config", "camera", "list") == 0
    out = capsys.readouterr().out
    assert "front" in out and "rtsp://192.0.2.1/main" in out and "keep 10 GiB" in out
    assert "keep 1 GiB" in out  # the sub stream keeps a tenth by default
    assert "hunter2" not in out
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        cam = db.camera_by_name("front")
        assert (cam.config.username, cam.config.password) == ("admin", "hunter2")
        main_stream = db.streams[cam.streams["main"]]
        assert main_stream.config.retain_bytes == 10 << 30
        assert main_stream.config.flush_if_sec == 60


def test_edit_changes_only_what_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup_camera(tmp_path, monkeypatch)
    assert (
        nvr(
            tmp_path,
            "config",
            "camera",
            "edit",
            "front",
            "--name",
            "back",
            "--retain-bytes",
            "5G",
            "--flush-if-sec",
            "120",
        )
        == 0
    )
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        cam = db.camera_by_name("back")
        main_cfg = db.streams[cam.streams["main"]].config
        sub_cfg = db.streams[cam.streams["sub"]].config
        assert (main_cfg.retain_bytes, sub_cfg.retain_bytes) == (5_000_000_000, 1 << 30)
        assert main_cfg.flush_if_sec == sub_cfg.flush_if_sec == 120
        assert main_cfg.url == "rtsp://192.0.2.1/main"
        assert cam.config.password == "hunter2"


def add_args(name: str, url: str, dir_: str, size: str) -> list[str]:
    return ["config", "camera", "add", "--name", name, "--main-url", url, "--dir", dir_,
            "--retain-bytes", size]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["config", "dir", "add", "/"], 1, "is not empty"),
        (add_args("front", "rtsp://x/", "{root}/sample", "1G"), 1, "already exists"),
        (add_args("x", "http://x/", "{root}/sample", "1G"), 2, "must be rtsp://"),
        (add_args("x", "rtsp://x/", "{root}/else", "1G"), 1, "is not a sample file directory"),
        (add_args("x", "rtsp://x/", "{root}/sample", "lots"), 2, "unparseable size"),
        (["config", "camera", "edit", "nobody", "--name", "y"], 1, "no camera named 'nobody'"),
    ],
)
def test_mistakes_give_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    status: int,
    message: str,
) -> None:
    setup_camera(tmp_path, monkeypatch)
    capsys.readouterr()
    assert nvr(tmp_path, *[a.format(root=tmp_path) for a in args]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_while_another_process_holds_the_database_list_works_and_changes_say_why_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_camera(tmp_path, monkeypatch)
    with admin.open_db(tmp_path / "db"):  # a process that is not a daemon: no control socket
        capsys.readouterr()
        assert nvr(tmp_path, "config", "camera", "list") == 0
        assert "rtsp://192.0.2.1/main" in capsys.readouterr().out
        assert nvr(tmp_path, "config", "dir", "list") == 0
        assert nvr(tmp_path, "config", "camera", "edit", "front", "--flush-if-sec", "5") == 1
    err = capsys.readouterr().err
    assert "locked by another nvr process, and no daemon answers" in err and err.count("\n") == 1


async def test_remove_refuses_recordings_unless_told(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    autojump_clock: trio.testing.MockClock,
) -> None:
    setup_camera(tmp_path, monkeypatch)
    clocks = SimulatedClocks(1_700_000_000 * UNITS_PER_SEC)
    with inline_blocking():
        env = open_env(tmp_path, now=clocks.realtime, monotonic=clocks.monotonic)
        syncer = Syncer(env.db, env.dir_id, env.sdir, clocks)
        async with trio.open_nursery() as nursery:
            await nursery.start(syncer.run)
            await record_run(env, syncer, clocks, env.stream_ids[0], frames=150 * 30)
            nursery.cancel_scope.cancel()
        env.close()
    capsys.readouterr()
    assert nvr(tmp_path, "config", "camera", "remove", "front") == 1
    err = capsys.readouterr().err
    assert "has 3 recordings;" in err and "--delete-recordings" in err
    assert nvr(tmp_path, "config", "camera", "remove", "front", "--delete-recordings") == 0
    assert "removed camera front and 3 recordings" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "sample").iterdir()] == ["meta"]
    assert check(tmp_path / "db").problems == []


def test_run_http_replaces_the_configured_binds(tmp_path: Path) -> None:
    from nvr.cli.command import build_parser
    from nvr.cli.run import load_run_config
    from nvr.config import BindConfig

    config = tmp_path / "nvr.toml"
    config.write_text(
        '[[binds]]\naddress = "0.0.0.0:8080"\nallow_unauthenticated = ["viewVideo"]\n'
        '[[binds]]\naddress = "127.0.0.1:9180"\n'
    )
    args = build_parser().parse_args(
        ["--db-dir", str(tmp_path / "db"), "run", "--config", str(config), "--http", "[::1]:0"]
    )
    cfg = load_run_config(args)
    assert cfg.binds == (BindConfig(address="[::1]:0", allow_unauthenticated=("viewVideo",)),)
    without = build_parser().parse_args(["run", "--config", str(config)])
    assert [b.address for b in load_run_config(without).binds] == [
        "0.0.0.0:8080",
        "127.0.0.1:9180",
    ]


def test_run_with_a_bad_http_address_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert nvr(tmp_path, "run", "--http", "nowhere") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nvr run: ") and "--http" in err, err


def test_budgets_more_than_the_disk_are_accepted_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: a budget larger than the disk was accepted silently."""
    setup_camera(tmp_path, monkeypatch)
    sample = tmp_path / "sample"
    disk = DiskSpace.of(os.statvfs(sample)).total_bytes
    capsys.readouterr()
    # main's budget alone fits, with the sub stream's the directory's do not
    edit = ("config", "camera", "edit", "front", "--retain-bytes")
    assert nvr(tmp_path, *edit, str(disk), "--sub-retain-bytes", "1K") == 0
    out, err = capsys.readouterr()
    assert out == (  # (and the storage forecast of each stream)
        "updated camera front\n"
        f"  main: keep {format_size(disk)}: nothing recorded in the last day, so no forecast yet\n"
        "  sub: keep 1 kB: nothing recorded in the last day, so no forecast yet\n"
    )
    assert err == (
        f"warning: {sample}: the streams' budgets ({format_size(disk + 1000)}) are more than "
        f"the disk holds ({format_size(disk)}): the disk will fill up before retention "
        "deletes anything\n"
    )
    with admin.open_db(tmp_path / "db", read_only=True) as db:  # accepted all the same
        assert db.streams[db.camera_by_name("front").streams["main"]].config.retain_bytes == disk
    assert nvr(tmp_path, *edit, "1M", "--sub-retain-bytes", "1K") == 0
    assert capsys.readouterr().err == ""


def test_motion_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_camera(tmp_path, monkeypatch)
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        assert db.camera_by_name("front").config.motion is None  # off unless asked
    assert nvr(tmp_path, "config", "camera", "edit", "front", "--motion", "sub",
               "--motion-sensitivity", "7", "--motion-mask", "0-3,17") == 0  # fmt: skip
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        cfg = db.camera_by_name("front").config
        assert (cfg.motion, cfg.motion_sensitivity, cfg.motion_mask) == ("sub", 7, [0, 1, 2, 3, 17])
        assert cfg.password == "hunter2"
    # a bitmap, as the API takes it; the rest stays
    assert nvr(tmp_path, "config", "camera", "edit", "front",
               "--motion-mask", "03" + "00" * 31) == 0  # fmt: skip
    capsys.readouterr()
    assert nvr(tmp_path, "config", "camera", "list") == 0
    assert "motion on sub, sensitivity 7, 2 cells masked" in capsys.readouterr().out
    assert nvr(tmp_path, "config", "camera", "edit", "front", "--motion", "off") == 0
    with admin.open_db(tmp_path / "db", read_only=True) as db:
        assert db.camera_by_name("front").config.motion is None
    for bad in (["--motion-sensitivity", "11"], ["--motion-mask", "256"],
                ["--motion-mask", "x"], ["--motion", "both"]):  # fmt: skip
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            nvr(tmp_path, "config", "camera", "edit", "front", *bad)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("nvr"), err
