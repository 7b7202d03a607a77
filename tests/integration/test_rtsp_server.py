"""The RTSP test camera serves what the ingest tests assume, read with PyAV over TCP.

Checks ``/live`` (GOP, frame rate, size), ``/file/<clip>`` against the clip's
``.frames.json`` across a loop boundary, the shared pipeline, digest authentication,
and the breakages the fixtures offer: ``freeze()`` stalls a reader until its timeout,
``kill()`` ends it, ``restart()`` serves again on the same port.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import pytest

from fixtures.make_fixtures import FIXTURES_DIR, read_frame_number
from tests.support.rtsp import RtspServer, RtspServerError, ServerFactory

pytestmark = pytest.mark.rtsp

READ_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class Received:
    """One frame as PyAV gives it: pts in 90k (None for the first after connecting),
    the key flag, the decoded size and the frame number drawn in the picture."""

    pts: int | None
    is_key: bool
    width: int
    height: int
    number: int


def open_rtsp(url: str, timeout_s: float = 5.0) -> Any:
    return av.open(
        url,
        options={
            "rtsp_transport": "tcp",
            "timeout": str(int(timeout_s * 1_000_000)),
            "probesize": "32",
            "analyzeduration": "0",
        },
    )


def read_frames(url: str, count: int) -> list[Received]:
    """Reads and decodes ``count`` frames, starting at the first key frame."""
    with open_rtsp(url) as container:
        frames = list(itertools.islice(decoded_frames(container), count))
    assert len(frames) == count, f"{url}: stream ended after {len(frames)} frames"
    return frames


def decoded_frames(container: Any) -> Iterator[Received]:
    """Decodes an open RTSP stream from its first key frame on."""
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1  # one frame out per packet in, no delay
    assert stream.time_base == Fraction(1, 90_000)
    started = False
    for packet in container.demux(stream):
        started = started or packet.is_keyframe
        if not started:
            continue
        (frame,) = packet.decode()
        number = read_frame_number(frame.to_ndarray(format="gray"))
        yield Received(packet.pts, packet.is_keyframe, frame.width, frame.height, number)


def pts_deltas(frames: list[Received]) -> list[int]:
    """Differences between consecutive pts, from the second frame on (the first frame
    after connecting has none)."""
    pts = [f.pts for f in frames[1:] if f.pts is not None]
    assert len(pts) == len(frames) - 1
    return [b - a for a, b in itertools.pairwise(pts)]


def count_packets(container: Any, count: int) -> int:
    read = 0
    for _ in container.demux(video=0):
        read += 1
        if read == count:
            break
    return read


def frame_table(clip: str) -> dict[str, Any]:
    table: dict[str, Any] = json.loads((FIXTURES_DIR / f"{clip}.frames.json").read_text())
    return table


def test_live_has_requested_gop_rate_and_size(rtsp_server_factory: ServerFactory) -> None:
    server = rtsp_server_factory(width=320, height=240, fps=25, gop=10, fixtures=False)

    frames = read_frames(server.url("live"), 61)

    keys = [i for i, f in enumerate(frames) if f.is_key]
    assert keys == [0, 10, 20, 30, 40, 50, 60]
    assert set(pts_deltas(frames)) == {90_000 // 25}
    assert {(f.width, f.height) for f in frames} == {(320, 240)}


@pytest.mark.parametrize("clip", ["h264-1920x1080", "hevc-640x360", "h264-res-change"])
def test_file_loops_with_frame_table(rtsp_server: RtspServer, clip: str) -> None:
    table = frame_table(clip)
    loop = table["frame_count"]

    started = time.monotonic()

    # The first client of a fresh pipeline starts at the clip's first frame.
    frames = read_frames(rtsp_server.url(f"file/{clip}"), loop + 2)

    # Paced in real time (a second of slack for buffering), not sent in a burst.
    assert time.monotonic() - started > table["duration_90k"] / 90_000 - 1.0

    assert [f.number for f in frames] == [*range(loop), 0, 1]
    expected = table["frames"] + table["frames"][:2]
    assert [f.is_key for f in frames] == [e["is_key"] for e in expected]
    assert [(f.width, f.height) for f in frames] == [(e["width"], e["height"]) for e in expected]
    # pts continue across the loop: each delta is the previous frame's duration.
    durations = table["durations_90k"] + table["durations_90k"][:1]
    assert pts_deltas(frames) == durations[1 : loop + 1]


def test_file_pipeline_is_shared_between_clients(shared_rtsp_server: RtspServer) -> None:
    url = shared_rtsp_server.url("file/h264-1920x1080")

    def pipelines() -> int:
        return shared_rtsp_server.stderr_text().count("pipeline started for h264-1920x1080")

    with open_rtsp(url) as first:
        first_frames = decoded_frames(first)
        seen = [f.number for f in itertools.islice(first_frames, 15)]
        started = pipelines()
        assert started >= 1

        joined = read_frames(url, 3)

        seen.append(next(first_frames).number)
        # The second client joins the running pipeline (no pipeline of its own) at a key
        # frame (every 30 frames, looping at 60): which one depends on how long its
        # connection took, so only that it is one is asserted.
        assert pipelines() == started
    assert seen[:15] == list(range(seen[0], seen[0] + 15))
    assert joined[0].number % 30 == 0 and joined[0].is_key
    assert [f.number for f in joined] == [joined[0].number + i for i in range(3)]


def test_digest_auth_refuses_without_right_credentials(
    rtsp_server_factory: ServerFactory,
) -> None:
    server = rtsp_server_factory(user="alice", password="pa:ss w@rd", fixtures=False)

    with pytest.raises(av.error.HTTPUnauthorizedError):
        open_rtsp(server.url("live"))
    with pytest.raises(av.error.HTTPUnauthorizedError):
        open_rtsp(server.url("live", user="alice", password="wrong"))
    with open_rtsp(server.url("live", user="alice", password="pa:ss w@rd")) as container:
        assert count_packets(container, 10) == 10
    assert describe_challenge(server).startswith("Digest ")


def describe_challenge(server: RtspServer) -> str:
    """Sends an unauthenticated DESCRIBE; returns the 401's WWW-Authenticate value."""
    request = f"DESCRIBE {server.url('live')} RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(request.encode())
        response = conn.recv(4096).decode()
    status, *headers = response.split("\r\n")
    assert status == "RTSP/1.0 401 Unauthorized"
    challenge = [h.split(":", 1)[1].strip() for h in headers if h.startswith("WWW-Authenticate")]
    assert len(challenge) == 1
    return challenge[0]


def test_freeze_makes_a_read_time_out(rtsp_server: RtspServer) -> None:
    with open_rtsp(rtsp_server.url("live"), timeout_s=READ_TIMEOUT_S) as container:
        count_packets(container, 5)
        rtsp_server.freeze()
        started = time.monotonic()

        with pytest.raises(av.error.TimeoutError):
            count_packets(container, 1000)

        stalled = time.monotonic() - started
        rtsp_server.thaw()
    assert READ_TIMEOUT_S <= stalled < 3 * READ_TIMEOUT_S


def test_kill_ends_the_stream_and_restart_serves_again(rtsp_server: RtspServer) -> None:
    port = rtsp_server.port
    with open_rtsp(rtsp_server.url("live")) as container:
        count_packets(container, 5)
        rtsp_server.kill()
        started = time.monotonic()

        # What was in flight, then EOF (or a connection error): either way the loop ends.
        with contextlib.suppress(av.error.FFmpegError):
            count_packets(container, 1000)
        assert time.monotonic() - started < 1.0

    rtsp_server.restart()

    assert rtsp_server.port == port
    with open_rtsp(rtsp_server.url("live")) as container:
        assert count_packets(container, 5) == 5


def test_missing_clip_is_a_clear_start_error(rtsp_server_factory: ServerFactory) -> None:
    with pytest.raises(RtspServerError, match=r"no such clip: /nonexistent\.mp4"):
        rtsp_server_factory(files={"x": Path("/nonexistent.mp4")})
