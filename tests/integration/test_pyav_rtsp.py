"""nvr.ingest's PyAV reader (pyav_source, demuxer) against the GStreamer RTSP test camera:
live and file paths, the first packet without pts, server death and stalls, credentials,
cancellation of a blocked read; and against a fake camera (``tests/support/fake_rtsp.py``)
that trickles its handshake, and a host that does not resolve."""

from __future__ import annotations

import itertools
import socket

import pytest
import trio

from nvr.base.clock import RealClocks
from nvr.base.errors import NotFound, Unauthenticated, Unavailable
from nvr.base.time90k import UNITS_PER_SEC
from nvr.codec import h264, nal
from nvr.ingest.demuxer import INTERRUPT_MARGIN
from nvr.ingest.pyav_source import PyAvOpener, PyAvSource
from nvr.ingest.source import OpenOptions, Packet
from nvr.ingest.thread_watch import ThreadWatch
from nvr.testing.replay import load_packets
from tests.support.daemon import poll
from tests.support.fake_rtsp import FakeCamera
from tests.support.paths import FIXTURES
from tests.support.rtsp import RtspServer, ServerFactory

pytestmark = pytest.mark.rtsp


FRAME = 3000
TIMEOUT = UNITS_PER_SEC  # 1 s read timeout


def opener(read_pause: float = 0.15) -> PyAvOpener:
    return PyAvOpener(RealClocks(), trio.CapacityLimiter(4), read_pause=read_pause)


async def read_packets(source: PyAvSource, count: int) -> list[Packet]:
    packets: list[Packet] = []
    with trio.fail_after(20):
        while len(packets) < count:
            batch = await source.next_batch()
            assert batch, "unexpected end of stream"
            packets += batch
    return packets


async def test_live_stream(rtsp_server: RtspServer) -> None:
    source = await opener().open(rtsp_server.url("live"), OpenOptions(read_timeout=TIMEOUT))
    packets = await read_packets(source, 65)
    await source.aclose()
    assert packets[0].is_key
    assert [b.pts - a.pts for a, b in itertools.pairwise(packets[:65])] == [FRAME] * 64
    assert [i for i, p in enumerate(packets[:61]) if p.is_key] == [0, 30, 60]
    entry = packets[0].sample_entry
    assert (entry.width, entry.height, entry.codec_box_type) == (640, 360, b"avcC")
    assert entry.rfc6381_codec.startswith("avc1.")
    assert all(p.sample_entry is entry for p in packets)
    for packet in packets:
        types = {h264.nal_type(n) for n in nal.split_length_prefixed(packet.data)}
        assert not types & {7, 8, 9}


async def test_live_batches_are_gops(rtsp_server: RtspServer) -> None:
    source = await opener().open(rtsp_server.url("live"), OpenOptions(read_timeout=TIMEOUT))
    with trio.fail_after(20):
        batches = [await source.next_batch() for _ in range(4)]
    await source.aclose()
    assert [len(b) for b in batches[1:]] == [30, 30, 30]
    assert all(b[0].is_key for b in batches)


async def test_a_caught_up_reader_reads_in_bursts_and_loses_nothing(
    rtsp_server: RtspServer,
) -> None:
    """With a 0.5 s pause the reader takes frames in bursts: its read times (the packets'
    ``received`` stamps) show the pauses, and back-to-back reads in between; without
    pausing every frame is read as it arrives. Either way no frame is missing."""
    gaps = {}
    for pause in (0.5, 0.0):
        source = await opener(pause).open(
            rtsp_server.url("live"), OpenOptions(read_timeout=TIMEOUT)
        )
        packets = await read_packets(source, 95)
        await source.aclose()
        assert [b.pts - a.pts for a, b in itertools.pairwise(packets)] == [FRAME] * (
            len(packets) - 1
        )
        gaps[pause] = [b.received - a.received for a, b in itertools.pairwise(packets[5:])]
    paused = gaps[0.5]
    assert sum(g > 0.35 for g in paused) >= 3  # ~2 a second
    assert sum(g < 0.01 for g in paused) > len(paused) / 2  # most read back to back
    assert not any(g > 0.35 for g in gaps[0.0])
    assert sum(g < 0.01 for g in gaps[0.0]) < len(gaps[0.0]) / 2


async def test_drain_reads_on_to_the_live_edge(rtsp_server: RtspServer) -> None:
    """A reader in a long pause has up to a pause of frames waiting in its socket: at
    shutdown ``drain`` ends the pause and reads them all, up to the live edge."""
    source = await opener(2.0).open(rtsp_server.url("live"), OpenOptions(read_timeout=TIMEOUT))
    connected = trio.current_time()
    first = await read_packets(source, 1)
    await trio.sleep(1.0)
    with trio.fail_after(5):
        drained = await source.drain(UNITS_PER_SEC)
    stopped = trio.current_time()
    got = first + drained
    assert [b.pts - a.pts for a, b in itertools.pairwise(got)] == [FRAME] * (len(got) - 1)
    # the camera sent frames for (stopped - connected) seconds; all but the last few
    # (the edge's slack, scheduling) were recorded
    covered = (got[-1].pts - got[0].pts) / UNITS_PER_SEC
    assert covered > stopped - connected - 0.3, (covered, stopped - connected)


@pytest.mark.parametrize("clip_name", ["h264-640x360", "hevc-640x360"])
async def test_file_stream_carries_the_clips_frames(
    rtsp_server: RtspServer, clip_name: str
) -> None:
    clip = load_packets(str(FIXTURES / f"{clip_name}.mp4"))
    source = await opener().open(
        rtsp_server.url(f"file/{clip_name}"), OpenOptions(read_timeout=TIMEOUT)
    )
    packets = await read_packets(source, 90)
    await source.aclose()
    assert packets[0].sample_entry == clip[0].sample_entry
    # From the second GOP on (the clip's first frame may gain an SEI the mp4 kept in its
    # sample entry), the frames are the clip's, byte for byte, looping at its end
    second_gop = packets[30:90]
    first = next(i for i, p in enumerate(clip) if p.data == second_gop[0].data)
    expected = [clip[(first + i) % len(clip)] for i in range(len(second_gop))]
    assert [(p.data, p.is_key) for p in second_gop] == [(p.data, p.is_key) for p in expected]


async def test_killed_server_ends_the_stream(rtsp_server: RtspServer) -> None:
    source = await opener().open(rtsp_server.url("live"), OpenOptions(read_timeout=TIMEOUT))
    await read_packets(source, 5)
    rtsp_server.kill()
    with trio.fail_after(5):
        try:
            while await source.next_batch():
                pass
        except Unavailable as e:
            assert str(e).startswith(rtsp_server.url("live"))
    await source.aclose()


async def test_frozen_server_is_unavailable_within_a_few_timeouts(rtsp_server: RtspServer) -> None:
    source = await opener().open(rtsp_server.url("live"), OpenOptions(read_timeout=TIMEOUT))
    await read_packets(source, 5)
    rtsp_server.freeze()
    started = trio.current_time()
    with trio.fail_after(10), pytest.raises(Unavailable) as info:
        while await source.next_batch():
            pass
    elapsed = trio.current_time() - started
    assert 0.9 < elapsed < 3.5
    assert str(info.value).startswith(rtsp_server.url("live") + ": ")
    await source.aclose()


async def test_cancelling_a_blocked_read_returns_promptly(rtsp_server: RtspServer) -> None:
    source = await opener().open(
        rtsp_server.url("live"), OpenOptions(read_timeout=30 * UNITS_PER_SEC)
    )
    await read_packets(source, 5)
    rtsp_server.freeze()
    started = trio.current_time()
    with trio.move_on_after(0.3) as scope:
        await source.next_batch()
    await source.aclose()
    assert scope.cancelled_caught
    assert trio.current_time() - started < 0.6
    with pytest.raises(Unavailable, match="source is closed"):
        await source.next_batch()


async def test_credentials(rtsp_server_factory: ServerFactory) -> None:
    server = rtsp_server_factory(user="cam", password="s3cret/pw")
    url = server.url("live")
    good = OpenOptions(username="cam", password="s3cret/pw", read_timeout=TIMEOUT)
    source = await opener().open(url, good)
    assert (await read_packets(source, 1))[0].is_key
    await source.aclose()
    bad = OpenOptions(username="cam", password="wr0ng/pw", read_timeout=TIMEOUT)
    with pytest.raises(Unauthenticated) as info:
        await opener().open(url, bad)
    assert str(info.value) == f"{url}: Server returned 401 Unauthorized (authorization failed)"
    with pytest.raises(Unauthenticated) as info:
        await opener().open(server.url("live", user="cam", password="wr0ng/pw"), OpenOptions())
    assert "wr0ng" not in str(info.value) and "cam@" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


async def test_unknown_path_is_not_found(rtsp_server: RtspServer) -> None:
    with pytest.raises(NotFound, match="404"):
        await opener().open(rtsp_server.url("nope"), OpenOptions(read_timeout=TIMEOUT))


async def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"rtsp://127.0.0.1:{port}/live"
    with pytest.raises(Unavailable, match=f"^{url}: "):
        await opener().open(url, OpenOptions(read_timeout=TIMEOUT))


async def test_a_trickled_handshake_ends_at_the_connect_deadline() -> None:
    """A camera that answers RTSP a byte at a time (issue 12, point 6: one every 2 s) would
    hold a connect for ever; FFmpeg's interrupt ends it at the connect deadline, so the
    thread its caller abandoned returns then and is never overdue."""
    camera = FakeCamera(byte_delay=0.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(camera.serve)
        threads = ThreadWatch(RealClocks())
        trickled = PyAvOpener(RealClocks(), trio.CapacityLimiter(4), threads=threads)
        options = OpenOptions(connect_timeout=UNITS_PER_SEC // 2)
        with trio.move_on_after(0.5):  # the streamer gives up at the same deadline
            await trickled.open(camera.url, options)
            pytest.fail("connected to a camera that trickles its answer")
        abandoned = trio.current_time()
        assert [t.name for t in threads.running()] == [f"nvr connect {camera.url}"]
        with trio.fail_after(10):
            await poll(lambda: not threads.running())
        # the interrupt comes INTERRUPT_MARGIN after the deadline (measured: 1.02 s)
        assert trio.current_time() - abandoned < INTERRUPT_MARGIN / UNITS_PER_SEC + 0.5
        assert camera.requests == ["OPTIONS"]
        nursery.cancel_scope.cancel()


async def test_an_unresolvable_host_says_so() -> None:
    """FFmpeg reports a DNS failure as "Input/output error" (issue 12, point 9)."""
    url = "rtsp://nvr-test-host.invalid/live"
    with pytest.raises(Unavailable) as info:
        await opener().open(url, OpenOptions(read_timeout=TIMEOUT))
    assert str(info.value).startswith(
        f"{url}: cannot resolve host nvr-test-host.invalid: "
    ), str(info.value)
