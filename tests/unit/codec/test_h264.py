"""nvr.codec.h264: SPS parsing, avcC and the codec string."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nvr.base.errors import DataLoss
from nvr.codec import h264
from nvr.codec.sps import BitReader, unescape_rbsp
from tests.support.encode import encode_and_probe

# Parameter sets written by libx264 (through PyAV), with what FFmpeg's decoder reports.
SPS_1080P = bytes.fromhex("67640028acd940780227e584000003000400000300f03c60c658")
PPS_1080P = bytes.fromhex("68ebe3cb22c0")
SPS_INTERLACED_1080 = bytes.fromhex("67640028ace401e0113f7080000003008000001e0f8b1724")
SPS_SCALING_MATRIX = bytes.fromhex("6764001eacb201405ff2c2000003000200000300781e2c5c90")
SPS_EXTENDED_SAR = bytes.fromhex("6764000dacb202c12dff8002800388000003000800000301e078a15240")
SPS_BASELINE = bytes.fromhex("6742c00bd902c4e840000003004000000f03c50a92")
SPS_HIGH10 = bytes.fromhex("676e000da6cb20283f42000003000200000300781e285490")


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
    r = BitReader(unescape_rbsp(SPS_1080P[1:]))
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
