"""The box writer and reader, and a byte-for-byte golden ``.mp4`` built from synthetic
recordings (no database, no fixture clip): its header bytes, size and ETag are pinned, so
any change of layout is deliberate (bump ``FORMAT_VERSION`` and update the pins)."""

from __future__ import annotations

import struct

import pytest
import trio

from nvr.db.recording import VideoIndexEncoder, VideoSampleEntry, decode_video_index
from nvr.db.types import ListedRecording
from nvr.mp4.boxes import BoxWriter, format_box_tree, mdat_header, walk_boxes
from nvr.mp4.fragment import build_m4s
from nvr.mp4.movie import build_init, build_mp4
from nvr.mp4.selection import Segment
from nvr.mp4.virtual import FORMAT_VERSION
from nvr.testing.env import TEST_SAMPLE_ENTRY

# --- the writer -------------------------------------------------------------------------------


def test_nested_boxes_get_their_sizes_patched() -> None:
    w = BoxWriter()
    with w.box(b"moov"):
        with w.full_box(b"mvhd", 1, 0x000203):
            w.u64(2**40)
        with w.box(b"abcd"):
            w.u16(0xABCD)
            w.i16(-2)
            w.i32(-3)
            w.fixed16_16(640.5)
            w.zeros(2)
    w.raw_box(b"free", b"xy")
    assert w.getvalue().hex() == (
        "00000032" "6d6f6f76"  # moov, 50 bytes
        "00000014" "6d766864" "01000203" "0000010000000000"  # mvhd v1 flags 0x203
        "00000016" "61626364" "abcd" "fffe" "fffffffd" "02808000" "0000"  # trak
        "0000000a" "66726565" "7879"  # free
    )
    assert [(b.box_type, b.offset, b.size, b.depth) for b in walk_boxes(w.getvalue())] == [
        (b"moov", 0, 50, 0), (b"mvhd", 8, 20, 1), (b"abcd", 28, 22, 1), (b"free", 50, 10, 0),
    ]
    assert format_box_tree(w.getvalue())[1] == "  mvhd @8 size 20"


def test_uint_is_wide_only_when_asked() -> None:
    w = BoxWriter()
    w.uint(5, wide=False)
    w.uint(5, wide=True)
    assert w.getvalue() == bytes.fromhex("00000005" "0000000000000005")


def test_mdat_header_switches_to_largesize() -> None:
    assert mdat_header(100) == bytes.fromhex("0000006c6d646174")
    assert mdat_header(2**32 - 9) == bytes.fromhex("ffffffff6d646174")
    assert mdat_header(2**32 - 8) == bytes.fromhex("000000016d646174" "0000000100000008")
    # the reader understands both and stops at a box that extends past the data
    boxes = list(walk_boxes(mdat_header(2**32 - 8)))
    assert boxes == [(b"mdat", 0, 2**32 + 8, 0)]


def test_walk_boxes_rejects_a_bad_size() -> None:
    with pytest.raises(ValueError, match="bad size 4"):
        list(walk_boxes(bytes.fromhex("0000000466726565")))


# --- the golden file --------------------------------------------------------------------------

OTHER_ENTRY = VideoSampleEntry(
    480, 360, "avc1.64001e", TEST_SAMPLE_ENTRY.data, pasp_h_spacing=4, pasp_v_spacing=3
)
ENTRIES = {1: TEST_SAMPLE_ENTRY, 7: OTHER_ENTRY}


def _recording(cid: int, entry_id: int, frames: list[tuple[int, int, bool]],
               start: int) -> tuple[ListedRecording, bytes]:
    enc = VideoIndexEncoder()
    for duration, size, key in frames:
        enc.add(duration, size, key)
    totals = enc.totals
    rec = ListedRecording(
        composite_id=cid, open_id=3, start_time_90k=start,
        wall_duration_90k=totals.media_duration_90k,
        media_duration_90k=totals.media_duration_90k, video_samples=totals.frames,
        video_sync_samples=totals.key_frames, video_sample_entry_id=entry_id,
        sample_file_bytes=totals.bytes, run_offset=0, flags=0, prev_media_duration_90k=0,
        prev_runs=0,
    )
    return rec, enc.data


def golden_segments() -> list[Segment]:
    a, a_index = _recording(1 << 32 | 1, 1, [
        (3000, 100, True), (3000, 10, False), (3000, 11, False), (3000, 90, True),
        (3000, 12, False),
    ], start=1_700_000_000 * 90_000)
    b, b_index = _recording(1 << 32 | 2, 7, [
        (3000, 80, True), (3003, 9, False), (2997, 8, False), (3000, 7, False),
    ], start=a.end_time_90k)
    return [
        Segment(a, decode_video_index(a_index), 4_000, 15_000),
        Segment(b, decode_video_index(b_index), 0, 9_000),
    ]


async def synthetic_reader(cid: int, offset: int, length: int) -> bytes:
    return bytes((cid + offset + i) % 251 for i in range(length))


GOLDEN_HEADER = (
    "000000206674797069736f6d0000020069736f6d69736f32617663316d7034310000038d6d6f6f760000006c6d766864"
    "00000000000000000000000000015f9000004e2000010000010000000000000000000000000100000000000000000000"
    "000000000001000000000000000000000000000040000000000000000000000000000000000000000000000000000000"
    "00000002000003197472616b0000005c746b6864000000070000000000000000000000010000000000004e2000000000"
    "000000000000000000000000000100000000000000000000000000000001000000000000000000000000000040000000"
    "028000000168000000000024656474730000001c656c7374000000000000000100004e2000000fa00001000000000291"
    "6d646961000000206d64686400000000000000000000000000015f9000005dc055c400000000002168646c7200000000"
    "000000007669646500000000000000000000000000000002486d696e6600000014766d68640000000100000000000000"
    "000000002464696e660000001c6472656600000000000000010000000c75726c2000000001000002087374626c000001"
    "487374736400000000000000020000009c61766331000000000000000100000000000000000000000000000000028001"
    "680048000000480000000000000001000000000000000000000000000000000000000000000000000000000000000000"
    "18ffff00000036617663430164001effe100196764001eacd940a02ff9610000030001000003003c0f162d9601000668"
    "ebe3cb22c0fdf8f800000000107061737000000001000000010000009c61766331000000000000000100000000000000"
    "00000000000000000001e001680048000000480000000000000001000000000000000000000000000000000000000000"
    "00000000000000000000000018ffff00000036617663430164001effe100196764001eacd940a02ff961000003000100"
    "0003003c0f162d9601000668ebe3cb22c0fdf8f800000000107061737000000004000000030000002873747473000000"
    "00000000030000000600000bb80000000100000bbb0000000100000bb500000028737473630000000000000002000000"
    "010000000500000001000000020000000300000002000000347374737a00000000000000000000000800000064000000"
    "0a0000000b0000005a0000000c000000500000000900000008000000187374636f0000000000000002000003b5000004"
    "940000001c737473730000000000000003000000010000000400000006000001486d646174"
)
GOLDEN_SIZE = 1269
GOLDEN_ETAG = '"5b7eea90ddc0fd3cc32b205c92445ef2270ddf9c"'
M4S_ETAG = '"09a0e8e6bd09a619cd84da720d70b6e54511ebf3"'  # mfhd 2: recording 1 (issue 12)
M4S_SIZE = 379
INIT_ETAG = '"a04dc9ae4f20ef5158350186b58c035c2da269f7"'  # stsz before stco (issue 12)
INIT_SIZE = 669


def test_golden_mp4() -> None:
    """Two recordings, two sample entries (the second with a 4:3 pixel aspect ratio, so
    both display 640 wide), a start inside the first GOP: ftyp, moov with an edit list of
    one merged edit (skip 4 000 ticks, play 20 000), stts runs (6 x 3000, 3003, 2997), two
    stsc rows naming descriptions 1 and 2, stco at 949 and 1172, stss 1 4 6; then mdat."""
    vf = build_mp4(golden_segments(), ENTRIES)
    assert vf.header.hex() == "".join(GOLDEN_HEADER)
    assert (FORMAT_VERSION, vf.size, vf.etag) == (1, GOLDEN_SIZE, GOLDEN_ETAG)
    assert [(s.file_offset, s.length, s.sample_offset) for s in vf.slices] == [
        (949, 223, 0), (1172, 97, 0)
    ]
    whole = trio.run(vf.read_all, synthetic_reader)
    a, b = vf.slices
    assert whole == (
        vf.header
        + trio.run(synthetic_reader, a.composite_id, 0, 223)
        + trio.run(synthetic_reader, b.composite_id, 0, 97)
    )
    elst = next(x for x in walk_boxes(vf.header) if x.box_type == b"elst")
    assert struct.unpack(">IIIIi", vf.header[elst.offset + 8 : elst.offset + 28]) == (
        0, 1, 20_000, 4_000, 0x10000
    )
    assert vf.last_modified_90k == 1_700_000_000 * 90_000 + 27_000


def test_golden_m4s_and_init() -> None:
    m4s = build_m4s(golden_segments()[:1], ENTRIES)
    init = build_init(1, TEST_SAMPLE_ENTRY)
    assert (m4s.size, m4s.etag, init.size, init.etag) == (M4S_SIZE, M4S_ETAG, INIT_SIZE, INIT_ETAG)
    trun = next(x for x in walk_boxes(m4s.header) if x.box_type == b"trun")
    fields = struct.unpack(">IIi", m4s.header[trun.offset + 8 : trun.offset + 20])
    # flags: data offset, per-sample duration/size/flags; 5 samples; data right after moof
    assert fields == (0x000701, 5, len(m4s.header))
    first_sample = struct.unpack(">III", m4s.header[trun.offset + 20 : trun.offset + 32])
    assert first_sample == (3000, 100, 0x02000000)
    assert m4s.leading_media_duration_90k == 4_000


def test_large_files_use_co64_largesize_and_version_1_times() -> None:
    """Offsets past 4 GiB need ``co64`` and a 64-bit ``mdat`` size; durations past 2^32
    ticks need version-1 ``mvhd``/``tkhd``/``mdhd``/``elst``. Sizes only: nothing is read."""
    big = 2**31 - 1
    a, a_index = _recording(1 << 32 | 1, 1, [(big, 2**32 - 1, True), (big, 2**31, False),
                                             (big, 5, False)], start=0)
    b, b_index = _recording(1 << 32 | 2, 1, [(3000, 2**31, True), (3000, 7, False)],
                            start=a.end_time_90k)
    vf = build_mp4([Segment(a, decode_video_index(a_index), 1, 3 * big),
                    Segment(b, decode_video_index(b_index), 0, 6000)], ENTRIES)
    boxes = {x.box_type: x for x in walk_boxes(vf.header)}
    assert b"stco" not in boxes
    co64 = boxes[b"co64"]
    payload_start = len(vf.header)
    first_len = 2**32 - 1 + 2**31 + 5
    assert struct.unpack(">IIQQ", vf.header[co64.offset + 8 : co64.offset + 32]) == (
        0, 2, payload_start, payload_start + first_len
    )
    mdat = boxes[b"mdat"]
    assert vf.header[mdat.offset : mdat.offset + 8] == b"\x00\x00\x00\x01mdat"
    assert mdat.size == 16 + first_len + 2**31 + 7 == vf.size - mdat.offset
    for box_type in (b"mvhd", b"tkhd", b"mdhd", b"elst"):
        assert vf.header[boxes[box_type].offset + 8] == 1, box_type
    mvhd = boxes[b"mvhd"].offset
    assert struct.unpack(">IQ", vf.header[mvhd + 28 : mvhd + 40]) == (90_000, 3 * big - 1 + 6000)
