"""The ``video_index`` codec (docs/design.md, "On-disk formats"): golden vector, validation,
and the agreement of the incremental encoder, the pure-Python decoder and the numpy
decoder."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvr.base.errors import DataLoss, InvalidArgument
from nvr.db.recording import (
    MAX_FRAME_BYTES,
    MAX_FRAME_DURATION_90K,
    FrameEntry,
    IndexTotals,
    VideoIndexEncoder,
    decode_video_index,
    iter_video_index,
)

Frame = tuple[int, int, bool]  # (duration_90k, bytes, is_key), as VideoIndexEncoder.add takes

GOLDEN_FRAMES: list[Frame] = [
    (10, 1000, True),
    (9, 10, False),
    (11, 15, False),
    (10, 12, False),
    (10, 1050, True),
]
GOLDEN_BYTES = bytes.fromhex("29 d0 0f 02 14 08 0a 02 05 01 64")


def encode(frames: list[Frame]) -> bytes:
    encoder = VideoIndexEncoder()
    for frame in frames:
        encoder.add(*frame)
    return encoder.data


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def raw_frame(duration_delta: int, size_delta: int, is_key: bool) -> bytes:
    """One frame's varints written by hand (no validation), from its deltas."""
    return varint(zigzag(duration_delta) << 1 | is_key) + varint(zigzag(size_delta))


def expected_entries(frames: list[Frame]) -> list[FrameEntry]:
    entries = []
    start = offset = 0
    for duration, size, is_key in frames:
        entries.append(FrameEntry(duration, size, is_key, start, offset))
        start += duration
        offset += size
    return entries


def decode_slow(data: bytes) -> list[FrameEntry]:
    return list(iter_video_index(data))


def decode_fast(data: bytes) -> list[FrameEntry]:
    return decode_video_index(data).frames()


DECODERS = [pytest.param(decode_slow, id="python"), pytest.param(decode_fast, id="numpy")]


def outcome(decode: Callable[[bytes], list[FrameEntry]], data: bytes) -> object:
    try:
        return decode(data)
    except DataLoss as e:
        return f"DataLoss: {e}"


# --- golden vector ----------------------------------------------------------------------------


def test_golden_vector_encodes_to_the_documented_bytes() -> None:
    assert encode(GOLDEN_FRAMES) == GOLDEN_BYTES


@pytest.mark.parametrize("decode", DECODERS)
def test_golden_vector_decodes(decode: Callable[[bytes], list[FrameEntry]]) -> None:
    assert decode(GOLDEN_BYTES) == [
        FrameEntry(10, 1000, True, 0, 0),
        FrameEntry(9, 10, False, 10, 1000),
        FrameEntry(11, 15, False, 19, 1010),
        FrameEntry(10, 12, False, 30, 1025),
        FrameEntry(10, 1050, True, 40, 1037),
    ]


def test_golden_vector_arrays_and_totals() -> None:
    arrays = decode_video_index(GOLDEN_BYTES)
    assert arrays.durations.tolist() == [10, 9, 11, 10, 10]
    assert arrays.sizes.tolist() == [1000, 10, 15, 12, 1050]
    assert arrays.is_key.tolist() == [True, False, False, False, True]
    assert arrays.starts.tolist() == [0, 10, 19, 30, 40]
    assert arrays.offsets.tolist() == [0, 1000, 1010, 1025, 1037]
    assert arrays.totals == IndexTotals(frames=5, key_frames=2, bytes=2087, media_duration_90k=50)
    assert arrays.sizes.astype(">u4").tobytes() == struct.pack(">5I", 1000, 10, 15, 12, 1050)


def test_encoder_counters() -> None:
    encoder = VideoIndexEncoder()
    for frame in GOLDEN_FRAMES:
        encoder.add(*frame)
    assert (encoder.frames, encoder.key_frames) == (5, 2)
    assert (encoder.media_duration, encoder.total_bytes) == (50, 2087)
    assert encoder.totals == IndexTotals(5, 2, 2087, 50)


@pytest.mark.parametrize("decode", DECODERS)
def test_empty_index_has_no_frames(decode: Callable[[bytes], list[FrameEntry]]) -> None:
    assert decode(b"") == []
    assert decode_video_index(b"").totals == IndexTotals(0, 0, 0, 0)
    assert VideoIndexEncoder().data == b""


# --- the encoder refuses what no decoder would accept -----------------------------------------


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([(10, 100, False)], "frame 0: the first frame must be a key frame"),
        ([(-1, 100, True)], "frame 0: duration -1 is outside [0, 2147483647]"),
        ([(2**31, 100, True)], "frame 0: duration 2147483648 is outside [0, 2147483647]"),
        ([(10, 0, True)], "frame 0: size 0 is outside [1, 4294967295]"),
        ([(10, 100, True), (10, -5, False)], "frame 1: size -5 is outside [1, 4294967295]"),
        ([(10, 2**32, True)], "frame 0: size 4294967296 is outside [1, 4294967295]"),
        (
            [(10, 100, True), (0, 5, False), (10, 5, False)],
            "frame 2: follows frame 1 of duration 0 (only the last frame may have duration 0)",
        ),
    ],
)
def test_encoder_rejects(frames: list[Frame], message: str) -> None:
    encoder = VideoIndexEncoder()
    for frame in frames[:-1]:
        encoder.add(*frame)
    before = encoder.data
    with pytest.raises(InvalidArgument) as info:
        encoder.add(*frames[-1])
    assert str(info.value) == f"video_index {message}"
    assert encoder.data == before
    assert encoder.frames == len(frames) - 1


def test_encoder_accepts_the_limits_and_a_trailing_zero() -> None:
    frames: list[Frame] = [
        (MAX_FRAME_DURATION_90K, MAX_FRAME_BYTES, True),
        (1, 1, False),
        (0, MAX_FRAME_BYTES, False),
    ]
    data = encode(frames)
    assert decode_slow(data) == expected_entries(frames)
    assert decode_fast(data) == expected_entries(frames)


# --- decoding errors on handcrafted bytes -----------------------------------------------------

KEY_10_100 = raw_frame(10, 100, True)  # a valid first frame: duration 10, key, 100 bytes
TEN_BYTE_2_63 = b"\x80" * 9 + b"\x01"  # the largest varint length: 2**63, still 64 bits

BAD_INDEXES = [
    pytest.param(b"\x29", "frame 0: truncated varint (the index ends inside it)", id="one-varint"),
    pytest.param(b"\x29\xd0", "frame 0: truncated varint (the index ends inside it)", id="cut"),
    pytest.param(
        GOLDEN_BYTES + b"\x80\x80",
        "frame 5: truncated varint (the index ends inside it)",
        id="trailing-garbage",
    ),
    pytest.param(
        GOLDEN_BYTES + b"\x02",
        "frame 5: truncated varint (the index ends inside it)",
        id="trailing-half-frame",
    ),
    pytest.param(
        b"\xff" * 10 + b"\x01" + b"\x02", "frame 0: varint longer than 64 bits", id="11-bytes"
    ),
    pytest.param(
        KEY_10_100 + b"\x80" * 9 + b"\x02" + b"\x02",
        "frame 1: varint longer than 64 bits",
        id="10-bytes-over-2**64",
    ),
    pytest.param(
        KEY_10_100 + b"\x02" + b"\x80" * 10,
        "frame 1: varint longer than 64 bits",
        id="unterminated-10-bytes",
    ),
    pytest.param(
        KEY_10_100 + b"\x02" + b"\x80" * 9,
        "frame 1: truncated varint (the index ends inside it)",
        id="unterminated-9-bytes",
    ),
    pytest.param(
        raw_frame(10, 100, False), "frame 0: the first frame is not a key frame", id="not-key"
    ),
    pytest.param(
        raw_frame(-1, 100, True), "frame 0: duration -1 is outside [0, 2147483647]", id="neg"
    ),
    pytest.param(
        KEY_10_100 + raw_frame(-11, 5, False),
        "frame 1: duration -1 is outside [0, 2147483647]",
        id="negative-later",
    ),
    pytest.param(
        KEY_10_100 + raw_frame(2**31 - 10, 5, False),
        "frame 1: duration 2147483648 is outside [0, 2147483647]",
        id="duration-too-long",
    ),
    pytest.param(
        raw_frame(0, 100, True) + raw_frame(10, 5, False),
        "frame 0: duration 0 on a frame that is not the last",
        id="zero-duration-first",
    ),
    pytest.param(
        KEY_10_100 + raw_frame(-10, 5, False) + b"\x80",
        "frame 1: duration 0 on a frame that is not the last",
        id="zero-duration-before-garbage",
    ),
    pytest.param(raw_frame(10, 0, True), "frame 0: size 0 is outside [1, 4294967295]", id="size-0"),
    pytest.param(
        KEY_10_100 + raw_frame(0, -1, False),
        "frame 1: size -1 is outside [1, 4294967295]",
        id="size-negative",
    ),
    pytest.param(
        KEY_10_100 + raw_frame(0, 7, False) + raw_frame(0, -7, False),
        "frame 2: size 0 is outside [1, 4294967295]",
        id="non-key-chain",
    ),
    pytest.param(
        KEY_10_100 + raw_frame(0, 7, False) + raw_frame(0, -100, True),
        "frame 2: size 0 is outside [1, 4294967295]",
        id="key-chain",
    ),
    pytest.param(
        raw_frame(10, 2**32, True),
        "frame 0: size 4294967296 is outside [1, 4294967295]",
        id="size-too-big",
    ),
    pytest.param(
        b"\x15" + TEN_BYTE_2_63,  # size zigzag(2**62) = 2**63
        "frame 0: size 4611686018427387904 is outside [1, 4294967295]",
        id="size-2**62",
    ),
    pytest.param(
        KEY_10_100 + raw_frame(0, 2**63 - 1, True),  # the running size overflows int64
        "frame 1: size 9223372036854775907 is outside [1, 4294967295]",
        id="size-past-int64",
    ),
    pytest.param(
        KEY_10_100 + raw_frame(0, 2**63 - 1, True) + b"\x80" * 20,
        "frame 1: size 9223372036854775907 is outside [1, 4294967295]",
        id="size-past-int64-before-garbage",
    ),
]


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize(("data", "message"), BAD_INDEXES)
def test_decoders_reject(
    decode: Callable[[bytes], list[FrameEntry]], data: bytes, message: str
) -> None:
    with pytest.raises(DataLoss) as info:
        decode(data)
    assert str(info.value) == f"video_index {message}"


@pytest.mark.parametrize("decode", DECODERS)
def test_trailing_zero_duration_is_accepted(decode: Callable[[bytes], list[FrameEntry]]) -> None:
    data = KEY_10_100 + raw_frame(-10, 5, False)
    assert decode(data) == [FrameEntry(10, 100, True, 0, 0), FrameEntry(0, 5, False, 10, 100)]


@pytest.mark.parametrize("decode", DECODERS)
def test_overlong_but_64_bit_varints_are_accepted(
    decode: Callable[[bytes], list[FrameEntry]],
) -> None:
    # Non-minimal encodings of 0x29 and 2000 (protobuf readers accept them too).
    data = b"\xa9\x80\x80\x00" + b"\xd0\x8f\x80\x80\x80\x80\x80\x80\x80\x00"
    assert decode(data) == [FrameEntry(10, 1000, True, 0, 0)]


GOLDEN_TOTALS = IndexTotals(frames=5, key_frames=2, bytes=2087, media_duration_90k=50)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (GOLDEN_TOTALS._replace(frames=6), "frames 5 (row says 6)"),
        (GOLDEN_TOTALS._replace(key_frames=1), "key_frames 2 (row says 1)"),
        (
            GOLDEN_TOTALS._replace(bytes=2000, media_duration_90k=51),
            "bytes 2087 (row says 2000), media_duration_90k 50 (row says 51)",
        ),
    ],
)
def test_totals_that_differ_from_the_row_are_rejected(expected: IndexTotals, message: str) -> None:
    full = f"video_index does not match its recording: {message}"
    with pytest.raises(DataLoss) as slow:
        list(iter_video_index(GOLDEN_BYTES, expected))
    assert str(slow.value) == full
    with pytest.raises(DataLoss) as fast:
        decode_video_index(GOLDEN_BYTES, expected)
    assert str(fast.value) == full


def test_matching_totals_are_accepted() -> None:
    assert len(list(iter_video_index(GOLDEN_BYTES, GOLDEN_TOTALS))) == 5
    assert decode_video_index(GOLDEN_BYTES, GOLDEN_TOTALS).totals == GOLDEN_TOTALS


def test_decoders_take_any_bytes_like() -> None:
    for data in (bytearray(GOLDEN_BYTES), memoryview(GOLDEN_BYTES)):
        assert list(iter_video_index(data)) == decode_video_index(data).frames()
        assert decode_video_index(data).totals == GOLDEN_TOTALS


# --- incremental reads ------------------------------------------------------------------------


def test_data_read_while_growing_decodes_to_the_prefix() -> None:
    frames = GOLDEN_FRAMES * 3
    encoder = VideoIndexEncoder()
    for count, frame in enumerate(frames, start=1):
        encoder.add(*frame)
        snapshot = encoder.data
        assert encoder.data is snapshot  # cached until the next add
        assert decode_slow(snapshot) == expected_entries(frames[:count])
        assert decode_fast(snapshot) == expected_entries(frames[:count])


def test_snapshot_is_not_changed_by_later_adds() -> None:
    encoder = VideoIndexEncoder()
    encoder.add(10, 1000, True)
    snapshot = encoder.data
    encoder.add(9, 10, False)
    assert snapshot == bytes.fromhex("29 d0 0f")
    assert encoder.data == bytes.fromhex("29 d0 0f 02 14")


# --- properties -------------------------------------------------------------------------------

durations = st.one_of(st.integers(1, 6000), st.integers(1, MAX_FRAME_DURATION_90K))
sizes = st.one_of(st.integers(1, 200_000), st.integers(1, MAX_FRAME_BYTES))


@st.composite
def frame_lists(draw: st.DrawFn, max_size: int = 300) -> list[Frame]:
    frames: list[Frame] = draw(
        st.lists(st.tuples(durations, sizes, st.booleans()), max_size=max_size)
    )
    if frames:
        duration, size, _ = frames[0]
        frames[0] = (duration, size, True)
        if draw(st.booleans()):  # an unclean close: the trailing zero
            _, size, is_key = frames[-1]
            frames[-1] = (0, size, is_key)
    return frames


@given(frame_lists())
def test_round_trip(frames: list[Frame]) -> None:
    encoder = VideoIndexEncoder()
    for frame in frames:
        encoder.add(*frame)
    want = expected_entries(frames)
    assert decode_slow(encoder.data) == want
    arrays = decode_video_index(encoder.data, encoder.totals)
    assert arrays.frames() == want
    assert arrays.totals == encoder.totals
    assert arrays.totals == IndexTotals(
        len(frames),
        sum(is_key for _, _, is_key in frames),
        sum(size for _, size, _ in frames),
        sum(duration for duration, _, _ in frames),
    )


@settings(max_examples=10, deadline=None)
@given(frame_lists(max_size=5000))
def test_round_trip_long(frames: list[Frame]) -> None:
    data = encode(frames)
    assert decode_fast(data) == decode_slow(data) == expected_entries(frames)


def test_round_trip_a_day_of_random_frames() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    frames: list[Frame] = list(
        zip(
            rng.integers(1, MAX_FRAME_DURATION_90K, n, endpoint=True).tolist(),
            rng.integers(1, MAX_FRAME_BYTES, n, endpoint=True).tolist(),
            (rng.random(n) < 0.3).tolist(),
            strict=True,
        )
    )
    frames[0] = (frames[0][0], frames[0][1], True)
    data = encode(frames)
    arrays = decode_video_index(data)
    assert arrays.durations.tolist() == [f[0] for f in frames]
    assert arrays.sizes.tolist() == [f[1] for f in frames]
    assert arrays.is_key.tolist() == [f[2] for f in frames]
    assert arrays.frames() == decode_slow(data)


@settings(max_examples=1000)
@given(st.binary(max_size=64))
def test_decoders_agree_on_arbitrary_bytes(data: bytes) -> None:
    assert outcome(decode_fast, data) == outcome(decode_slow, data)


@settings(max_examples=500)
@given(frame_lists(max_size=30), st.data())
def test_decoders_agree_on_damaged_indexes(frames: list[Frame], draw: st.DataObject) -> None:
    data = bytearray(encode(frames))
    for _ in range(draw.draw(st.integers(1, 3))):
        where = draw.draw(st.integers(0, len(data)))
        edit = draw.draw(st.sampled_from(["cut", "flip", "insert"]))
        if edit == "cut":
            del data[where:]
        elif edit == "flip" and where < len(data):
            data[where] ^= 1 << draw.draw(st.integers(0, 7))
        elif edit == "insert":
            data[where:where] = draw.draw(st.binary(min_size=1, max_size=12))
    assert outcome(decode_fast, bytes(data)) == outcome(decode_slow, bytes(data))
