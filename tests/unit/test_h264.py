"""nvr.ingest.h264: NAL framing, the bit reader, SPS parsing, avcC and the codec string."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.base.errors import DataLoss
from nvr.ingest import h264
from tests.support.encode import encode_and_probe

# Parameter sets written by libx264 (through PyAV), with what FFmpeg's decoder reports.
SPS_1080P = bytes.fromhex("67640028acd940780227e584000003000400000300f03c60c658")
PPS_1080P = bytes.fromhex("68ebe3cb22c0")
SPS_INTERLACED_1080 = bytes.fromhex("67640028ace401e0113f7080000003008000001e0f8b1724")
SPS_SCALING_MATRIX = bytes.fromhex("6764001eacb201405ff2c2000003000200000300781e2c5c90")
SPS_EXTENDED_SAR = bytes.fromhex("6764000dacb202c12dff8002800388000003000800000301e078a15240")
SPS_BASELINE = bytes.fromhex("6742c00bd902c4e840000003004000000f03c50a92")
SPS_HIGH10 = bytes.fromhex("676e000da6cb20283f42000003000200000300781e285490")


def escape_rbsp(rbsp: bytes) -> bytes:
    """Inserts emulation-prevention bytes (the inverse of ``unescape_rbsp``)."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def test_split_annex_b_mixed_start_codes() -> None:
    data = bytes.fromhex("00000001 6742 000001 68ce 0000 000001 6588 0000000001 0605")
    assert h264.split_annex_b(data) == [
        bytes.fromhex("6742"),
        bytes.fromhex("68ce"),
        bytes.fromhex("6588"),
        bytes.fromhex("0605"),
    ]


def test_split_annex_b_keeps_emulation_prevention_bytes() -> None:
    assert h264.split_annex_b(bytes.fromhex("000001 65 000003 01 ff")) == [
        bytes.fromhex("65 000003 01 ff")
    ]


def test_split_length_prefixed() -> None:
    data = bytes.fromhex("00000002 6742 00000003 68cebc")
    assert h264.split_length_prefixed(data) == [bytes.fromhex("6742"), bytes.fromhex("68cebc")]
    assert h264.split_length_prefixed(bytes.fromhex("0002 6742 0001 68"), 2) == [
        bytes.fromhex("6742"),
        bytes.fromhex("68"),
    ]


def test_split_length_prefixed_rejects_overrun() -> None:
    with pytest.raises(DataLoss, match="claims 5 bytes, only 2 left"):
        h264.split_length_prefixed(bytes.fromhex("00000005 6742"))


def test_to_length_prefixed() -> None:
    assert h264.to_length_prefixed([b"\x65\x88", b"\x06"]) == bytes.fromhex(
        "00000002658800000001 06"
    )


nal_payloads = st.lists(
    st.binary(min_size=1, max_size=40).map(lambda b: escape_rbsp(b) + b"\x80"),
    min_size=0,
    max_size=8,
)


@given(nal_payloads, st.lists(st.booleans(), min_size=8, max_size=8))
def test_annex_b_round_trip(nals: list[bytes], four_byte: list[bool]) -> None:
    stream = b"".join(
        (b"\x00\x00\x00\x01" if long else b"\x00\x00\x01") + nal
        for nal, long in zip(nals, four_byte, strict=False)
    )
    assert h264.split_annex_b(stream) == nals
    assert h264.is_annex_b(stream) == bool(nals)


DROP = h264.PARAMETER_AND_DELIMITER_TYPES


def reference_split(data: bytes) -> h264.SplitFrame:
    """What ``split_annex_b_frame`` must return, from the plain building blocks."""
    nals = h264.split_annex_b(data)
    kept = [n for n in nals if h264.nal_type(n) not in DROP]
    return h264.SplitFrame(
        h264.to_length_prefixed(kept) if kept else b"",
        [h264.nal_type(n) for n in kept],
        [n for n in nals if h264.nal_type(n) in DROP],
    )


def test_split_annex_b_frame_in_place() -> None:
    # AUD, SPS, PPS, SEI, IDR behind 4-byte start codes, as FFmpeg's RTP depacketizer
    # writes them: the dropped prefix is cut off and the start codes become lengths.
    data = bytes.fromhex("00000001 0910 00000001 6742 00000001 68ce 00000001 0605 00000001 658880")
    frame = h264.split_annex_b_frame(data, h264.nal_type, DROP)
    assert isinstance(frame.payload, bytearray)
    assert bytes(frame.payload) == bytes.fromhex("00000002 0605 00000003 658880")
    assert frame.kept_types == [6, 5]
    assert frame.dropped == [bytes.fromhex("0910"), bytes.fromhex("6742"), bytes.fromhex("68ce")]


@pytest.mark.parametrize(
    "hex_data",
    [
        "000001 0605 00000001 6588",  # a 3-byte start code
        "00000001 0605 00000001 6742 00000001 6588",  # a dropped unit between kept ones
        "00000001 0605 0000 00000001 6588",  # trailing_zero_8bits between units
        "00000001 6588 00",  # a trailing zero at the end
        "ff 00000001 6588",  # bytes before the first start code
        "00000001 6742 00000001 68ce",  # nothing but parameter sets
        "",
    ],
)
def test_split_annex_b_frame_other_layouts(hex_data: str) -> None:
    data = bytes.fromhex(hex_data)
    frame = h264.split_annex_b_frame(data, h264.nal_type, DROP)
    assert (bytes(frame.payload), frame.kept_types, frame.dropped) == (
        lambda r: (bytes(r.payload), r.kept_types, r.dropped)
    )(reference_split(data))


@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 5, 6, 7, 8, 9]),
            st.binary(max_size=40).map(lambda b: escape_rbsp(b) + b"\x80"),
            st.sampled_from([b"\x00\x00\x01", b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x01"]),
        ),
        max_size=6,
    )
)
def test_split_annex_b_frame_matches_the_reference(units: list[tuple[int, bytes, bytes]]) -> None:
    data = b"".join(code + bytes([0x60 | kind]) + payload for kind, payload, code in units)
    frame = h264.split_annex_b_frame(data, h264.nal_type, DROP)
    expected = reference_split(data)
    assert bytes(frame.payload) == expected.payload
    assert frame.kept_types == expected.kept_types
    assert frame.dropped == expected.dropped


def test_split_length_prefixed_frame() -> None:
    data = bytes.fromhex("00000002 6742 00000002 6588")
    frame = h264.split_length_prefixed_frame(data, 4, h264.nal_type, DROP)
    assert (frame.payload, frame.kept_types, frame.dropped) == (
        bytes.fromhex("00000002 6588"), [5], [bytes.fromhex("6742")]
    )
    whole = bytes.fromhex("00000002 6588")
    assert h264.split_length_prefixed_frame(whole, 4, h264.nal_type, DROP).payload is whole
    short = bytes.fromhex("0002 6588")
    assert h264.split_length_prefixed_frame(short, 2, h264.nal_type, DROP).payload == whole


@given(st.lists(st.binary(min_size=0, max_size=300), max_size=8))
def test_length_prefixed_round_trip(nals: list[bytes]) -> None:
    assert h264.split_length_prefixed(h264.to_length_prefixed(nals)) == nals


@given(st.binary(max_size=200))
def test_unescape_inverts_escape(rbsp: bytes) -> None:
    escaped = escape_rbsp(rbsp)
    for forbidden in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert forbidden not in escaped
    assert h264.unescape_rbsp(escaped) == rbsp


def test_unescape_known_vector() -> None:
    assert h264.unescape_rbsp(bytes.fromhex("0000030100000300")) == bytes.fromhex("000001000000")


def test_bit_reader_exp_golomb() -> None:
    bits = "101001100100100000001010"  # ue 0, 1, 2, 3; flag; u(7); u(4)
    r = h264.BitReader(int(bits, 2).to_bytes(3, "big"))
    assert [r.ue(), r.ue(), r.ue(), r.ue(), r.flag(), r.u(7), r.u(4)] == [0, 1, 2, 3, True, 0, 10]


def test_bit_reader_signed_values() -> None:
    bits = "0100110010000101"  # ue codes 1, 2, 3, 4 are se +1, -1, +2, -2
    r = h264.BitReader(int(bits, 2).to_bytes(2, "big"))
    assert [r.se(), r.se(), r.se(), r.se()] == [1, -1, 2, -2]


def test_bit_reader_past_end_is_data_loss() -> None:
    r = h264.BitReader(b"\x00")
    with pytest.raises(DataLoss, match="truncated"):
        r.ue()


@pytest.mark.parametrize(
    ("sps", "expected"),
    [
        (SPS_1080P, (100, 0, 40, 1, 0, 0, 1920, 1080, (1, 1))),
        (SPS_INTERLACED_1080, (100, 0, 40, 1, 0, 0, 1920, 1080, (1, 1))),
        (SPS_SCALING_MATRIX, (100, 0, 30, 1, 0, 0, 640, 360, (1, 1))),
        (SPS_EXTENDED_SAR, (100, 0, 13, 1, 0, 0, 352, 288, (5, 7))),
        (SPS_BASELINE, (66, 0xC0, 11, 1, 0, 0, 176, 144, (1, 1))),
        (SPS_HIGH10, (110, 0, 13, 1, 2, 2, 320, 240, (1, 1))),
    ],
    ids=["1080p-cropped", "interlaced", "scaling-matrix", "extended-sar", "baseline", "high10"],
)
def test_parse_sps_known_vectors(sps: bytes, expected: tuple[object, ...]) -> None:
    info = h264.parse_sps(sps)
    assert (
        info.profile_idc,
        info.constraint_flags,
        info.level_idc,
        info.chroma_format_idc,
        info.bit_depth_luma_minus8,
        info.bit_depth_chroma_minus8,
        info.width,
        info.height,
        info.pixel_aspect,
    ) == expected


def test_1080p_sps_is_coded_1088_and_cropped() -> None:
    r = h264.BitReader(h264.unescape_rbsp(SPS_1080P[1:]))
    r.skip(24)  # profile, constraints, level
    for _ in range(4):  # sps id, chroma format, luma and chroma bit depths
        r.ue()
    r.skip(2)  # transform bypass, no scaling matrix
    for _ in range(4):  # frame num, poc type, poc lsb, ref frames
        r.ue()
    r.skip(1)  # gaps allowed
    assert (r.ue() + 1, r.ue() + 1) == (120, 68)  # 1920x1088 in macroblocks
    assert h264.parse_sps(SPS_1080P).height == 1080


def test_parse_sps_rejects_other_nal_types_and_truncation() -> None:
    with pytest.raises(DataLoss, match=r"not an H\.264 SPS"):
        h264.parse_sps(PPS_1080P)
    with pytest.raises(DataLoss, match="truncated"):
        h264.parse_sps(SPS_1080P[:8])


def test_avcc_box_and_codec_string_1080p() -> None:
    entry = h264.sample_entry(SPS_1080P, PPS_1080P)
    assert entry.rfc6381_codec == "avc1.640028"
    assert (entry.width, entry.height, entry.pasp_h_spacing, entry.pasp_v_spacing) == (
        1920,
        1080,
        1,
        1,
    )
    assert entry.data == (
        bytes.fromhex("00000037") + b"avcC" + bytes.fromhex("01640028ffe1001a")
        + SPS_1080P + bytes.fromhex("010006") + PPS_1080P + bytes.fromhex("fdf8f800")
    )  # fmt: skip
    assert entry.codec_box_type == b"avcC"


def test_avcc_box_baseline_has_no_extension() -> None:
    box = h264.avcc_box(SPS_BASELINE, PPS_1080P)
    assert box[8:] == (
        bytes.fromhex("0142c00bffe10015") + SPS_BASELINE + bytes.fromhex("010006") + PPS_1080P
    )
    assert h264.parse_sps(SPS_BASELINE).rfc6381_codec == "avc1.42c00b"


def test_parse_avcc_record_round_trip() -> None:
    record = h264.avcc_box(SPS_HIGH10, PPS_1080P)[8:]
    assert h264.parse_avcc_record(record) == ([SPS_HIGH10], [PPS_1080P], 4)
    with pytest.raises(DataLoss, match="truncated avcC"):
        h264.parse_avcc_record(record[:20])


def encode_mp4(
    width: int, height: int, x264_params: str, *, sar: Fraction | None = None, pix: str = "yuv420p"
) -> tuple[bytes, tuple[int, int, Fraction | None]]:
    """Encodes 3 frames with libx264 into an in-memory mp4; returns FFmpeg's avcC record
    and what FFmpeg's decoder reports (width, height, sample aspect ratio)."""
    return encode_and_probe(
        "libx264", width, height, {"x264-params": f"bframes=0:{x264_params}"}, sar=sar, pix=pix
    )


@pytest.mark.parametrize(
    ("width", "height", "params", "sar", "pix"),
    [
        (1280, 720, "", None, "yuv420p"),
        (1920, 1080, "interlaced=1:tff=1", None, "yuv420p"),
        (720, 480, "cqm=jvt", Fraction(10, 11), "yuv420p"),
        (318, 238, "", Fraction(3, 7), "yuv444p"),
        (320, 180, "", None, "yuv420p10le"),
    ],
)
def test_sample_entry_matches_ffmpeg(
    width: int, height: int, params: str, sar: Fraction | None, pix: str
) -> None:
    record, (dec_width, dec_height, dec_sar) = encode_mp4(width, height, params, sar=sar, pix=pix)
    sps_list, pps_list, length_size = h264.parse_avcc_record(record)
    entry = h264.sample_entry(sps_list[0], pps_list[0])
    assert length_size == 4
    assert (entry.width, entry.height) == (dec_width, dec_height) == (width, height)
    expected_sar = (sar.numerator, sar.denominator) if sar else (1, 1)
    assert (entry.pasp_h_spacing, entry.pasp_v_spacing) == expected_sar
    if sar is not None:
        assert dec_sar == sar
    assert entry.data[8:] == record  # FFmpeg's own avcC record, byte for byte
    assert entry.data[:8] == (len(record) + 8).to_bytes(4, "big") + b"avcC"
    assert entry.rfc6381_codec == "avc1." + record[1:4].hex()
