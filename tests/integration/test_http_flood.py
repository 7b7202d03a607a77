"""Issue 12's attack on the real daemon: many anonymous connections that each send
``GET /api/`` and go quiet, more than the daemon has file descriptors. ``nvr run`` runs as
a process under a lowered ``RLIMIT_NOFILE`` (256, soft and hard, so it cannot raise it),
recording the GStreamer test camera (30 frames/s) with a 1 s rotation; the bind has no
per-address limit (the attack stands for many addresses), so what protects recording is
the descriptor reserve (``nvr.base.descriptors``) and the idle timeout. Recording must
go on at the camera's full rate with a new sample file every rotation, the API must
answer a new client, and the log must stay quiet. Traffic only to 127.0.0.1."""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from pathlib import Path

import httpx

from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.recording import decode_video_index
from tests.support.daemon import (
    CameraSpec,
    Rec,
    by_stream,
    check_stream_recordings,
    committed_recordings,
    create_db,
    now_90k,
)
from tests.support.process import NvrProcess
from tests.support.rtsp import RtspServer

OPEN_FILES = 256
ATTACKERS = 800  # connections: more than the daemon has descriptors
ATTACK_SEC = 4.0
FPS = 30  # the test camera's rate (tests.support.rtsp.ServerOptions)
REQUEST = b"GET /api/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def frames_between(recs: list[Rec], start: int, end: int) -> int:
    """Committed frames that start in [start, end) (90 kHz wall times)."""
    n = 0
    for rec in recs:
        t = rec.start_time_90k
        for frame in decode_video_index(rec.video_index).frames():
            n += start <= t < end
            t += frame.duration_90k
    return n


class Attack:
    """``ATTACKERS`` non-blocking connections; each sends ``REQUEST`` once its connect
    completes and then never reads nor writes again."""

    def __init__(self, port: int) -> None:
        self.pending: list[socket.socket] = []
        self.sent: list[socket.socket] = []
        for _ in range(ATTACKERS):
            s = socket.socket()
            s.setblocking(False)
            code = s.connect_ex(("127.0.0.1", port))
            assert code in (0, errno.EINPROGRESS), os.strerror(code)
            self.pending.append(s)

    def send_requests(self) -> None:
        """Sends the request on every connection whose connect has completed."""
        if not self.pending:
            return
        _, writable, _ = select.select([], self.pending, [], 0)
        for s in writable:
            self.pending.remove(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                try:
                    s.send(REQUEST)
                    self.sent.append(s)
                except OSError:
                    pass

    def close(self) -> None:
        for s in self.pending + self.sent:
            s.close()


def test_connection_flood_leaves_recording_and_the_api_alone(
    tmp_path: Path, shared_rtsp_server: RtspServer
) -> None:
    layout = create_db(tmp_path, {"cam": CameraSpec(shared_rtsp_server.url("live"))})
    (stream_id,) = layout.stream_ids.values()
    config = tmp_path / "nvr.toml"
    config.write_text(
        "rotate_interval_sec = 1\n"
        "http_idle_timeout_sec = 2.0\n"
        "[[binds]]\n"
        'address = "127.0.0.1:0"\n'
        "max_connections = 100000\n"
        "max_connections_per_address = 0\n"
        "metrics = true\n"
    )
    proc = NvrProcess(layout.db_dir, config, tmp_path / "run.log", open_files=OPEN_FILES)
    attack: Attack | None = None
    try:
        base = proc.wait_serving()
        port = int(base.rsplit(":", 1)[1])
        proc.wait_until(lambda: len(layout.sample_files()) >= 2, 20, "the first rotation")
        pid = proc.process.pid
        before = open_descriptors(pid)
        files_before = layout.sample_files()

        start = now_90k()
        attack = Attack(port)
        peak = before
        deadline = time.monotonic() + ATTACK_SEC
        while time.monotonic() < deadline:
            attack.send_requests()
            peak = max(peak, open_descriptors(pid))
            proc.keeps_running_for(0.02)
        end = now_90k()
        requests_sent = len(attack.sent)

        # a new client is answered (once the quiet ones ahead of it timed out)
        asked = time.monotonic()
        with httpx.Client(timeout=20) as client:
            assert client.get(f"{base}/api/").status_code == 401  # answered: no login
            answered_after = time.monotonic() - asked
            metrics = client.get(f"{base}/metrics").text.splitlines()
        files_during = layout.sample_files() - files_before
        attack.close()
        attack = None
        proc.wait_until(
            lambda: open_descriptors(pid) <= before + 2, 10, "the attack's descriptors back"
        )
        after = open_descriptors(pid)
        assert proc.stop(15) == 0
    finally:
        if attack is not None:
            attack.close()
        proc.close()

    recs = by_stream(committed_recordings(layout.db_dir))[stream_id]
    check_stream_recordings(recs)
    assert len({r.prev_runs for r in recs}) == 1, "recording restarted during the attack"
    window_sec = (end - start) / UNITS_PER_SEC
    expected = window_sec * FPS
    committed = frames_between(recs, start, end)
    log = proc.log
    attack_lines = [
        line for line in log.splitlines()
        if "open files" in line.lower() or "accept" in line.lower()
    ]
    print(
        f"\ndescriptors: {before} before, {peak} at most during the attack, {after} after "
        f"(limit {OPEN_FILES}); requests sent {requests_sent} of {ATTACKERS} connections; "
        f"frames committed in {window_sec:.2f} s: {committed} (camera: {expected:.0f}); "
        f"sample files created during it: {len(files_during)}; new client answered after "
        f"{answered_after:.2f} s; log lines about it: {len(attack_lines)}: {attack_lines}"
    )
    assert requests_sent > OPEN_FILES - before  # the attack exceeded the limit
    assert peak < OPEN_FILES
    assert committed >= expected - FPS / 10  # full rate (the window's edges aside)
    assert len(files_during) >= ATTACK_SEC - 1  # rotations went on
    assert "Too many open files" not in log
    assert "nvr_open_files_limit 256.0" in metrics
    assert "nvr_http_connections_daemon_max 90.0" in metrics
    paused = f'nvr_http_accept_paused_total{{bind="127.0.0.1:{port}",reason="descriptor limit"}}'
    assert f"{paused} 0.0" not in metrics and any(m.startswith(paused) for m in metrics)
    assert "ERROR" not in log and "Traceback" not in log, log
    # the start-up line saying the budget; nothing per connection
    assert len(attack_lines) <= 2, attack_lines
