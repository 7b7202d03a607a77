"""nvr.ingest's PyAV reader (demuxer, pyav_source) on local files: packets equal the fixture
frame tables; sample entries, start-of-run rules, batching, realtime pacing (on MockClock,
inline), looping, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import pytest
import trio
import trio.testing

from nvr.base.blocking import inline_blocking
from nvr.base.clock import SimulatedClocks
from nvr.base.errors import DataLoss, NotFound
from nvr.base.time90k import UNITS_PER_SEC
from nvr.codec import h264, nal
from nvr.ingest.demuxer import read_file_packets
from nvr.ingest.pyav_source import PyAvOpener
from nvr.ingest.source import OpenOptions, Packet, scrub_userinfo
from tests.support.paths import FIXTURES

START = 161_580_771_000_000
FRAME = 3000


def frame_table(clip: str) -> dict[str, Any]:
    table: dict[str, Any] = json.loads((FIXTURES / clip).with_suffix(".frames.json").read_text())
    return table


def relative(packets: list[Packet]) -> list[tuple[int, bool, int, int]]:
    first = packets[0].pts
    return [(p.pts - first, p.is_key, p.sample_entry.width, p.sample_entry.height) for p in packets]


def expected(table: dict[str, Any]) -> list[tuple[int, bool, int, int]]:
    return [(f["pts_90k"], f["is_key"], f["width"], f["height"]) for f in table["frames"]]


@pytest.mark.parametrize(
    ("clip", "codec"),
    [
        ("h264-640x360.mp4", "avc1.64001e"),
        ("h264-1920x1080.mp4", "avc1.640028"),
        ("hevc-640x360.mp4", "hvc1.1.6.L63.90"),
    ],
)
def test_mp4_clips_equal_their_frame_tables(clip: str, codec: str) -> None:
    packets = read_file_packets(str(FIXTURES / clip))
    table = frame_table(clip)
    assert len(packets) == table["frame_count"]
    assert relative(packets) == expected(table)
    assert [len(p.data) for p in packets] == [f["bytes"] for f in table["frames"]]
    entries = {id(p.sample_entry) for p in packets}
    assert len(entries) == 1
    assert packets[0].sample_entry.rfc6381_codec == codec
    assert packets[0].sample_entry.codec_box_type == (b"hvcC" if codec[:4] == "hvc1" else b"avcC")


def test_mp4_sample_entry_is_ffmpegs_record() -> None:
    path = FIXTURES / "h264-640x360.mp4"
    with av.open(str(path), "r") as container:
        record = bytes(container.streams.video[0].codec_context.extradata or b"")
    entry = read_file_packets(str(path))[0].sample_entry
    assert entry.data[8:] == record
    assert (entry.width, entry.height, entry.pasp_h_spacing, entry.pasp_v_spacing) == (
        640,
        360,
        1,
        1,
    )


def test_frames_are_length_prefixed_nal_units_without_parameter_sets() -> None:
    for clip in ("h264-640x360.mp4", "h264-res-change.ts"):
        for packet in read_file_packets(str(FIXTURES / clip))[:40]:
            types = [h264.nal_type(n) for n in nal.split_length_prefixed(packet.data)]
            assert types and not set(types) & {7, 8, 9}
            assert (5 in types) == packet.is_key


def test_resolution_change_gives_two_sample_entries() -> None:
    packets = read_file_packets(str(FIXTURES / "h264-res-change.ts"))
    table = frame_table("h264-res-change.ts")
    assert relative(packets) == expected(table)
    first, second = packets[0].sample_entry, packets[-1].sample_entry
    assert (first.width, first.height, second.width, second.height) == (640, 360, 320, 240)
    assert first != second
    change = next(i for i, p in enumerate(packets) if p.sample_entry is second)
    assert change == 90 and packets[change].is_key
    assert all(p.sample_entry is first for p in packets[:change])
    assert all(p.sample_entry is second for p in packets[change:])
    # Annex B with an AUD per frame and SPS+PPS in-band before each key frame: the frames
    # keep the other NAL units, each with a 4-byte length instead of its start code
    with av.open(str(FIXTURES / "h264-res-change.ts")) as container:
        raw = [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]
    for packet, raw_packet, row in zip(packets, raw, table["frames"], strict=True):
        assert len(raw_packet) == row["bytes"]
        kept = [n for n in nal.split_annex_b(raw_packet) if h264.nal_type(n) not in {7, 8, 9}]
        assert packet.data == nal.to_length_prefixed(kept)


def cut_ts(source: Path, target: Path, first: int) -> None:
    """Copies the packets of ``source`` from index ``first`` on into an MPEG-TS file."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format="mpegts") as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        for i, packet in enumerate(p for p in inp.demux(in_stream) if p.size):
            if i >= first:
                packet.stream = out_stream
                out.mux(packet)


def test_leading_non_key_frames_are_dropped(tmp_path: Path) -> None:
    cut = tmp_path / "cut.ts"
    cut_ts(FIXTURES / "h264-res-change.ts", cut, first=10)
    packets = read_file_packets(str(cut))
    table = frame_table("h264-res-change.ts")["frames"]
    assert len(packets) == len(table) - 30
    assert packets[0].is_key
    assert relative(packets) == [
        (f["pts_90k"] - 30 * FRAME, f["is_key"], f["width"], f["height"]) for f in table[30:]
    ]


async def test_opener_batches_end_before_key_frames() -> None:
    path = str(FIXTURES / "h264-640x360.mp4")
    opener = PyAvOpener(SimulatedClocks(START), trio.CapacityLimiter(2))
    source = await opener.open(path, OpenOptions())
    batches = []
    while batch := await source.next_batch():
        batches.append(batch)
    await source.aclose()
    assert [len(b) for b in batches] == [30] * 20
    assert all(b[0].is_key and not any(p.is_key for p in b[1:]) for b in batches)
    flat = [p for b in batches for p in b]
    assert [(p.pts, p.is_key, p.data) for p in flat] == [
        (p.pts, p.is_key, p.data) for p in read_file_packets(path)
    ]


async def test_opener_caps_batches_at_max_batch() -> None:
    opener = PyAvOpener(SimulatedClocks(START), trio.CapacityLimiter(1), max_batch=10 * FRAME)
    source = await opener.open(f"file://{FIXTURES / 'h264-640x360.mp4'}", OpenOptions())
    assert [len(await source.next_batch()) for _ in range(4)] == [10, 10, 10, 10]
    await source.aclose()


async def test_realtime_paces_packets_at_their_timestamps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clocks = SimulatedClocks(START)
    await clocks.sleep(12345)
    with inline_blocking():
        opener = PyAvOpener(clocks, trio.CapacityLimiter(1))
        source = await opener.open(str(FIXTURES / "hevc-640x360.mp4"), OpenOptions(realtime=True))
        arrivals = []
        while batch := await source.next_batch():
            arrivals += [(clocks.monotonic(), p.pts) for p in batch]
        await source.aclose()
    assert arrivals == [(12345 + i * FRAME, i * FRAME) for i in range(150)]


async def test_loop_continues_timestamps() -> None:
    opener = PyAvOpener(SimulatedClocks(START), trio.CapacityLimiter(1))
    source = await opener.open(str(FIXTURES / "h264-1920x1080.mp4"), OpenOptions(loop=True))
    packets: list[Packet] = []
    while len(packets) < 150:
        packets += await source.next_batch()
    await source.aclose()
    assert [p.pts for p in packets[:150]] == [i * FRAME for i in range(150)]
    assert [i for i, p in enumerate(packets[:150]) if p.is_key] == [0, 30, 60, 90, 120]
    assert len({id(p.sample_entry) for p in packets}) == 1


async def test_closed_source_refuses_reads() -> None:
    opener = PyAvOpener(SimulatedClocks(START), trio.CapacityLimiter(1))
    source = await opener.open(str(FIXTURES / "h264-1920x1080.mp4"), OpenOptions())
    await source.aclose()
    with pytest.raises(Exception, match="source is closed"):
        await source.next_batch()


async def test_drain_hands_over_everything_read_and_stops_the_reader() -> None:
    opener = PyAvOpener(SimulatedClocks(START), trio.CapacityLimiter(1))
    source = await opener.open(str(FIXTURES / "h264-640x360.mp4"), OpenOptions(loop=True))
    first = await source.next_batch()
    with trio.fail_after(5):
        drained = await source.drain(5 * UNITS_PER_SEC)
    # whatever the reader had queued ahead, plus the batch it cut short after the packet
    # being read: an unbroken prefix of the stream, never a gap
    got = first + drained
    assert drained
    assert [p.pts for p in got] == [i * FRAME for i in range(len(got))]
    assert source._thread.join(5) is None and not source._thread.is_alive()
    with pytest.raises(Exception, match="source is closed"):
        await source.next_batch()
    await source.aclose()


async def test_missing_file_is_not_found(tmp_path: Path) -> None:
    opener = PyAvOpener(SimulatedClocks(START), trio.CapacityLimiter(1))
    missing = tmp_path / "missing.mp4"
    with pytest.raises(NotFound) as info:
        await opener.open(str(missing), OpenOptions())
    assert str(info.value) == f"{missing}: No such file or directory"


def test_garbage_file_is_data_loss(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(DataLoss, match=f"^{garbage}: "):
        read_file_packets(str(garbage))


def test_scrub_userinfo() -> None:
    text = "rtsp://admin:s3cr%2Ft@10.0.0.5:554/live failed; password s3cr/t"
    assert scrub_userinfo(text, "s3cr/t") == "rtsp://10.0.0.5:554/live failed; password ***"
    assert scrub_userinfo("'rtsp://u@h/x'") == "'rtsp://h/x'"


async def test_drain_of_a_blocked_reader_returns_what_was_read_within_the_grace(
    tmp_path: Path,
) -> None:
    """A camera that went quiet: the reader is blocked in FFmpeg with batches queued.
    ``drain`` hands those over once its grace is up, without blocking the event loop."""
    import fcntl
    import os
    import termios
    import threading

    fifo = tmp_path / "camera.ts"
    os.mkfifo(fifo)
    data = (FIXTURES / "h264-res-change.ts").read_bytes()
    done, all_read = threading.Event(), threading.Event()

    def camera() -> None:
        with open(fifo, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            unread = bytearray(4)
            while not done.wait(0.01):  # until FFmpeg has read all of it
                fcntl.ioctl(f.fileno(), termios.FIONREAD, unread)
                if int.from_bytes(unread, "little") == 0:
                    all_read.set()
            # then stays silent, the pipe open

    writer = threading.Thread(target=camera, daemon=True)
    writer.start()
    try:
        opener = PyAvOpener(SimulatedClocks(START), trio.CapacityLimiter(1))
        source = await opener.open(str(fifo), OpenOptions())
        first = await source.next_batch()
        with trio.fail_after(10):
            await trio.to_thread.run_sync(all_read.wait)
        await trio.sleep(0.2)  # and has demuxed what it read: it waits in a read now
        ticks = 0

        async def tick() -> None:  # the event loop keeps running during the drain
            nonlocal ticks
            while True:
                await trio.sleep(0.01)
                ticks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(tick)
            started = trio.current_time()
            drained = await source.drain(UNITS_PER_SEC * 3 // 10)
            waited = trio.current_time() - started
            nursery.cancel_scope.cancel()
        got = first + drained
        assert [p.pts - got[0].pts for p in got] == [i * FRAME for i in range(len(got))]
        assert len(got) > 30
        assert 0.3 <= waited < 2 and ticks >= 10
    finally:
        done.set()
        writer.join(10)
