"""Configuring the real daemon while it records GStreamer test cameras, through ``nvr
config`` and the control socket: an edited camera's run ends "reconfigured" and its new
settings record within seconds; the two cameras not changed keep one run without a gap;
an added camera records, and removed with its recordings leaves nothing. ``nvr check``
passes while all this happens. The same commands against a stopped daemon give the same
configuration."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest
import trio

from nvr.cli import main
from nvr.config import control_socket_path
from nvr.offline import admin
from tests.support.daemon import (
    CameraSpec,
    Layout,
    by_stream,
    check_recording,
    check_stream_recordings,
    committed_recordings,
    create_db,
    now_90k,
    poll,
    running,
    runs_of,
)
from tests.support.rtsp import RtspServer

pytestmark = pytest.mark.rtsp


def nvr(db_dir: Path, *args: str) -> int:
    return main(["--db-dir", str(db_dir), *args])


#: each camera reads a path of its own: the test camera serves every client of a path from
#: one pipeline, and a client joining a path makes its timestamps go back for the others
PATHS = {"cam0": "live", "cam1": "file/h264-640x360", "cam2": "file/h264-res-change"}
NEW_CAM2, CAM3 = "file/h264-1920x1080", "file/hevc-640x360"


def commands(server: RtspServer, sample: Path) -> list[list[str]]:
    """The changes, in order: edit cam2 (a new URL and budget), add cam3, remove cam3 and
    its recordings, then a user's life and directories."""
    return [
        ["config", "camera", "edit", "cam2", "--main-url", server.url(NEW_CAM2),
         "--retain-bytes", "2GiB"],
        ["config", "camera", "add", "--name", "cam3", "--main-url", server.url(CAM3),
         "--dir", str(sample), "--retain-bytes", "1GiB", "--flush-if-sec", "0"],
        ["config", "camera", "remove", "cam3", "--delete-recordings"],
        ["config", "user", "add", "bob", "--perms", "viewVideo,adminConfig"],
        ["config", "user", "add", "eve"],
        ["config", "user", "perms", "bob", "viewVideo,readCameraConfigs"],
        ["config", "user", "disable", "bob"],
        ["config", "user", "remove", "eve"],
        ["config", "dir", "add", str(sample.parent / "second")],
        ["config", "dir", "add", str(sample.parent / "third")],
        ["config", "dir", "remove", str(sample.parent / "third")],
        ["config", "signal-type", "add", "door", "--state", "1:closed:#00ff00",
         "--state", "2:open:motion"],
        ["config", "signal-type", "add", "gone", "--state", "1:x"],
        ["config", "signal-type", "remove", "gone"],
        ["config", "signal", "add", "front door", "--type", "door", "--camera", "cam0:indirect"],
        ["config", "signal", "add", "cam1 motion", "--camera", "cam1"],
        ["config", "signal", "add", "doomed"],
        ["config", "signal", "remove", "doomed"],
        ["config", "user", "add", "script", "--perms", "viewVideo,updateSignals"],
        ["login", "script", "--perms", "updateSignals", "--description", "door sensor"],
    ]  # fmt: skip


def configuration(db_dir: Path) -> str:
    """The cameras, streams, directories, users and their sessions' descriptions and
    permissions, signals and signal types as configured (ids, uuids, session ids and the
    test's root aside)."""
    with admin.open_db(db_dir, read_only=True, lock=False) as db:
        root = str(db_dir.parent)
        cameras = sorted(
            (c.short_name, c.description, c.config.to_json(),
             sorted((t, db.streams[sid].config.to_json()) for t, sid in c.streams.items()))
            for c in db.cameras.values())  # fmt: skip
        dirs = sorted(d.path.removeprefix(root) for d in db.dirs.values())
        types = sorted((t.short_name, [repr(s) for s in t.states])
                       for t in db.signal_types.values())  # fmt: skip
        signals = sorted(
            (s.short_name, db.signal_types[s.type_id].short_name,
             sorted((db.cameras[c].short_name, rel) for c, rel in s.cameras.items()))
            for s in db.signals.values())  # fmt: skip
    users = sorted((u.username, sorted(u.permissions), u.disabled, n)
                   for u, n in admin.list_users(db_dir))  # fmt: skip
    with sqlite3.connect(f"file:{db_dir / 'db'}?mode=ro", uri=True) as conn:
        sessions = sorted(conn.execute(
            "select u.username, s.description, s.permissions, s.flags, s.revocation_time_sec"
            " from user_session s join user u on u.id = s.user_id"))  # fmt: skip
    return json.dumps([cameras, dirs, users, types, signals, sessions]).replace(root, "<root>")


def three_cameras(root: Path, server: RtspServer) -> Layout:
    return create_db(root, {name: CameraSpec(server.url(path)) for name, path in PATHS.items()})


async def test_add_edit_and_remove_a_camera_while_two_others_record(
    tmp_path: Path, shared_rtsp_server: RtspServer, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = three_cameras(tmp_path / "live", shared_rtsp_server)
    db_dir, sid = layout.db_dir, layout.stream_ids
    changes = commands(shared_rtsp_server, layout.sample_dir)
    async with running(layout.config(rotate_interval_sec=2)) as d:
        sock = control_socket_path(db_dir)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        with trio.fail_after(20):
            await poll(lambda: all(s.counters.recordings >= 2 for s in d.streamers.values()))
        # read-only commands work while it runs
        assert await trio.to_thread.run_sync(nvr, db_dir, "config", "camera", "list") == 0
        old = d.streamers[sid["cam2"]]
        asked, asked_90k = time.monotonic(), now_90k()
        assert await trio.to_thread.run_sync(nvr, db_dir, *changes[0]) == 0
        answered = time.monotonic()
        assert d.streamers[sid["cam2"]] is not old
        new = d.streamers[sid["cam2"]]
        c = new.counters  # they carry across the restart: count from here
        base, written = c.recordings, c.frames - c.frames_dropped
        with trio.fail_after(10):
            await poll(lambda: c.frames - c.frames_dropped > written)
        first_written = time.monotonic() - asked
        # a camera added records at once
        assert await trio.to_thread.run_sync(nvr, db_dir, *changes[1]) == 0
        cam3 = d.db.camera_by_name("cam3").streams["main"]
        with trio.fail_after(20):
            await poll(lambda: d.streamers[cam3].counters.recordings >= 2)
            await poll(lambda: new.counters.recordings >= base + 2)
        # ... and once removed with its recordings, leaves nothing
        for args in changes[2:]:
            assert await trio.to_thread.run_sync(nvr, db_dir, *args) == 0, args
        assert set(d.streamers) == {sid["cam0"], sid["cam1"], sid["cam2"]}
        await trio.sleep(2)  # more recordings of the others after the changes
        # nvr check reads what the daemon committed while it records and deletes
        for _ in range(3):
            assert await trio.to_thread.run_sync(nvr, db_dir, "check") == 0
        assert await trio.to_thread.run_sync(nvr, db_dir, "check", "--delete-orphan-rows") == 1
        # a mistake is refused with its reason, and changes nothing
        before = configuration(db_dir)
        assert await trio.to_thread.run_sync(
            nvr, db_dir, "config", "camera", "edit", "cam0", "--name", "cam1") == 1
        assert configuration(db_dir) == before
    running_result = configuration(db_dir)
    out = capsys.readouterr()
    assert out.err.count("the daemon runs: checking what it has committed") == 3
    assert out.err.count(" 0 problems") == 3, out.err
    assert "stop it to repair" in out.err

    recs = by_stream(committed_recordings(db_dir))
    assert set(recs) == set(sid.values())  # cam3's recordings are gone
    for stream_recs in recs.values():
        check_stream_recordings(stream_recs)
        for r in stream_recs:
            check_recording(r, layout.sample_dir)
    committed = {r.composite_id for rs in recs.values() for r in rs}
    assert layout.sample_files() == committed, (  # seen once at load 30: say which and why
        sorted(f"{c:016x}" for c in layout.sample_files() ^ committed),
        {s: (rs[-1].recording_id, rs[-1].end_reason) for s, rs in recs.items()},
        out.err[-3000:],
    )
    # cam0 and cam1 were not interrupted: one run each, no gap, ended by the shutdown
    for name in ("cam0", "cam1"):
        runs = runs_of(recs[sid[name]])
        assert len(runs) == 1, (name, [(r[-1].end_reason, len(r)) for r in runs])
        assert runs[0][-1].end_reason == "shutdown"
    # cam2: the old URL's run ended "reconfigured", the new one began within seconds
    before_edit, after_edit = runs_of(recs[sid["cam2"]])
    assert before_edit[-1].end_reason == "reconfigured" and before_edit[-1].trailing_zero
    assert after_edit[-1].end_reason == "shutdown"
    # a run starts at its first frame's arrival (less its media offset): wall time
    first_frame = (after_edit[0].start_time_90k - asked_90k) / 90_000
    with capsys.disabled():
        print(f"\nreconfiguration: answered in {answered - asked:.3f} s; the first frame with "
              f"the new settings arrived {first_frame:.3f} s after the request and was "
              f"written after {first_written:.3f} s")
    assert 0 < first_frame < 5
    gap = after_edit[0].start_time_90k - before_edit[-1].end_time_90k
    assert 0 <= gap < 5 * 90_000, gap
    with admin.open_db(db_dir, read_only=True) as db:
        cam2 = db.streams[sid["cam2"]].config
        assert (cam2.url, cam2.retain_bytes) == (shared_rtsp_server.url(NEW_CAM2), 2 << 30)

    # The same commands with the daemon stopped: the same configuration.
    stopped = three_cameras(tmp_path / "stopped", shared_rtsp_server)
    for args in commands(shared_rtsp_server, stopped.sample_dir):
        assert nvr(stopped.db_dir, *args) == 0, args
    assert configuration(stopped.db_dir) == running_result
