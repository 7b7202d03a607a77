"""nvr.testing.replay: scripted sessions delivered at exact virtual times on MockClock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from nvr.base.clock import SimulatedClocks
from nvr.base.errors import DataLoss, NotFound, Unavailable
from nvr.base.time90k import UNITS_PER_SEC
from nvr.db.recording import VideoSampleEntry
from nvr.ingest.source import OpenOptions, Packet
from nvr.testing.replay import OpenRecord, ReplayOpener, Session, load_packets
from tests.support.paths import FIXTURES

START = 161_580_771_000_000
URL = "rtsp://camera/main"
ENTRY = VideoSampleEntry(640, 360, "avc1.64001e", b"\x00\x00\x00\x08avcC")
FRAME = 3000  # 30 fps


def packets(count: int, gop: int = 3) -> list[Packet]:
    """``count`` synthetic frames 1/30 s apart starting at pts 1000, a key frame every ``gop``."""
    return [
        Packet(bytes([i % 256]) * 4, 1000 + i * FRAME, i % gop == 0, ENTRY) for i in range(count)
    ]


async def collect(
    opener: ReplayOpener, clocks: SimulatedClocks, url: str = URL
) -> list[tuple[int, list[int]]]:
    """(virtual time, pts list) of every batch up to EOF."""
    source = await opener.open(url, OpenOptions())
    out = []
    while batch := await source.next_batch():
        out.append((clocks.monotonic(), [p.pts for p in batch]))
    await source.aclose()
    return out


async def test_batches_arrive_when_their_last_packet_is_due(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    opener = ReplayOpener(clocks, {URL: [Session(packets(10), batch=4)]})
    await clocks.sleep(500)
    assert await collect(opener, clocks) == [
        (500 + 3 * FRAME, [1000, 4000, 7000, 10000]),
        (500 + 7 * FRAME, [13000, 16000, 19000, 22000]),
        (500 + 9 * FRAME, [25000, 28000]),
    ]
    assert clocks.monotonic() == 500 + 9 * FRAME
    assert opener.opens == [OpenRecord(URL, 500)]


async def test_packets_keep_data_key_flag_and_sample_entry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    script = packets(4)
    source = await ReplayOpener(clocks, {URL: [Session(script, batch=10)]}).open(URL, OpenOptions())
    assert await source.next_batch() == script
    assert await source.next_batch() == []


async def test_loops_continue_timestamps(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    opener = ReplayOpener(clocks, {URL: [Session(packets(3), loops=3, batch=3)]})
    assert await collect(opener, clocks) == [
        (2 * FRAME, [1000, 4000, 7000]),
        (5 * FRAME, [10000, 13000, 16000]),
        (8 * FRAME, [19000, 22000, 25000]),
    ]


async def test_loops_forever(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    opener = ReplayOpener(clocks, {URL: [Session(packets(3), loops=None, batch=2)]})
    source = await opener.open(URL, OpenOptions())
    seen: list[int] = []
    while len(seen) < 1000:
        seen += [p.pts for p in await source.next_batch()]
    assert seen == [1000 + i * FRAME for i in range(1000)]
    assert clocks.monotonic() == 999 * FRAME


async def test_open_errors_and_open_times_follow_the_script(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    refused = Unavailable("rtsp://camera/main: Connection refused")
    opener = ReplayOpener(
        clocks,
        {
            URL: [
                Session(open_error=refused),
                Session(open_error=refused, open_delay=2 * UNITS_PER_SEC),
                Session(packets(2)),
            ]
        },
    )
    with pytest.raises(Unavailable, match="Connection refused"):
        await opener.open(URL, OpenOptions())
    await clocks.sleep(UNITS_PER_SEC)
    with pytest.raises(Unavailable, match="Connection refused"):
        await opener.open(URL, OpenOptions())
    assert clocks.monotonic() == 3 * UNITS_PER_SEC
    await clocks.sleep(4 * UNITS_PER_SEC)
    for _ in range(2):  # the last script repeats
        opened_at = clocks.monotonic()
        assert await collect(opener, clocks) == [(opened_at + FRAME, [1000, 4000])]
    assert opener.open_times(URL) == [
        0,
        UNITS_PER_SEC,
        7 * UNITS_PER_SEC,
        7 * UNITS_PER_SEC + FRAME,
    ]


async def test_unknown_url_is_not_found(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(NotFound, match="rtsp://other: no replay script"):
        await ReplayOpener(SimulatedClocks(START), {}).open("rtsp://other", OpenOptions())


async def test_end_after_gives_eof(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    opener = ReplayOpener(clocks, {URL: [Session(packets(10), end_after=5, batch=3)]})
    assert await collect(opener, clocks) == [
        (2 * FRAME, [1000, 4000, 7000]),
        (4 * FRAME, [10000, 13000]),
    ]


async def test_stall_never_delivers(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    opener = ReplayOpener(clocks, {URL: [Session(packets(10), stall_after=2, batch=5)]})
    source = await opener.open(URL, OpenOptions())
    assert [p.pts for p in await source.next_batch()] == [1000, 4000]
    with trio.move_on_after(3600) as scope:
        await source.next_batch()
    assert scope.cancelled_caught
    assert clocks.monotonic() == FRAME + 3600 * UNITS_PER_SEC


async def test_stall_raises_after_read_timeout(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    opener = ReplayOpener(
        clocks, {URL: [Session(packets(10), stall_after=2, stall_raises=True, batch=5)]}
    )
    source = await opener.open(URL, OpenOptions(read_timeout=5 * UNITS_PER_SEC))
    await source.next_batch()
    with pytest.raises(Unavailable, match="rtsp://camera/main: read timed out"):
        await source.next_batch()
    assert clocks.monotonic() == FRAME + 5 * UNITS_PER_SEC


async def test_error_mid_stream(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    session = Session(packets(10), error_after=(4, DataLoss("bad NAL")), batch=3)
    source = await ReplayOpener(clocks, {URL: [session]}).open(URL, OpenOptions())
    assert len(await source.next_batch()) == 3
    assert len(await source.next_batch()) == 1
    with pytest.raises(DataLoss, match="bad NAL"):
        await source.next_batch()
    assert clocks.monotonic() == 3 * FRAME


async def test_pts_shifts_change_timestamps_not_pacing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    shifts = {3: 20 * UNITS_PER_SEC, 5: -FRAME, 7: -10 * FRAME}  # jump, repeat, backwards
    opener = ReplayOpener(clocks, {URL: [Session(packets(9), batch=3, pts_shifts=shifts)]})
    jump = 20 * UNITS_PER_SEC
    assert await collect(opener, clocks) == [
        (2 * FRAME, [1000, 4000, 7000]),
        (5 * FRAME, [10000 + jump, 13000 + jump, 13000 + jump]),
        (8 * FRAME, [19000 + jump - FRAME, 22000 + jump - 11 * FRAME, 25000 + jump - 11 * FRAME]),
    ]


async def test_closed_source_refuses_reads(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    source = await ReplayOpener(clocks, {URL: [Session(packets(3))]}).open(URL, OpenOptions())
    await source.aclose()
    with pytest.raises(Unavailable, match="source is closed"):
        await source.next_batch()


def test_session_validation() -> None:
    with pytest.raises(ValueError, match="at least two packets"):
        Session(packets(1), loops=2)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        Session(packets(3), batch=0)


async def test_fixture_clip_replays_at_its_pace(autojump_clock: trio.testing.MockClock) -> None:
    clocks = SimulatedClocks(START)
    clip = load_packets(str(FIXTURES / "h264-640x360.mp4"))
    assert len(clip) == 600
    opener = ReplayOpener(clocks, {URL: [Session(clip, loops=2, batch=30)]})
    batches = await collect(opener, clocks)
    pts = [p for _, ps in batches for p in ps]
    assert pts == [i * FRAME for i in range(1200)]
    assert [t for t, _ in batches] == [(30 * i + 29) * FRAME for i in range(40)]
    assert clocks.monotonic() == 1199 * FRAME
