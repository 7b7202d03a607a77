"""nvr.codec.h265: SPS parsing, the hvcC box and the codec string."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nvr.base.errors import DataLoss
from nvr.codec import h265
from tests.support.encode import encode_and_probe

# SPS NAL units written by libx265 (through PyAV), with what FFmpeg's decoder reports.
SPS_636X358 = bytes.fromhex(
    "42010101600000030090000003000003003fa005020169dd6592a4932b9a020000030002000003003c10"
)
SPS_640X360_SAR_5_7 = bytes.fromhex(
    "42010101600000030090000003000003003fa0050201696592a4932bffc0014001da020000030002000003003c10"
)
SPS_MAIN10_320X240 = bytes.fromhex(
    "42010102200000030090000003000003003ca00a080f136592a4932b9a020000030002000003003c10"
)


def test_parse_sps_conformance_window() -> None:
    info = h265.parse_sps(SPS_636X358)
    assert (info.width, info.height, info.pixel_aspect) == (636, 358, (1, 1))
    assert (info.chroma_format_idc, info.bit_depth_luma_minus8, info.max_sub_layers) == (1, 0, 1)
    assert info.temporal_id_nesting
    assert info.ptl == h265.ProfileTierLevel(
        profile_space=0,
        tier_flag=0,
        profile_idc=1,
        compatibility_flags=0x60000000,
        constraint_flags=0x900000000000,
        level_idc=63,
    )
    assert info.rfc6381_codec == "hvc1.1.6.L63.90"


def test_parse_sps_vui_extended_sar() -> None:
    info = h265.parse_sps(SPS_640X360_SAR_5_7)
    assert (info.width, info.height, info.pixel_aspect) == (640, 360, (5, 7))


def test_parse_sps_main10() -> None:
    info = h265.parse_sps(SPS_MAIN10_320X240)
    assert (info.width, info.height, info.bit_depth_luma_minus8, info.bit_depth_chroma_minus8) == (
        320,
        240,
        2,
        2,
    )
    assert info.rfc6381_codec == "hvc1.2.4.L60.90"


def test_parse_sps_rejects_other_nal_types_and_truncation() -> None:
    with pytest.raises(DataLoss, match=r"not an H\.265 SPS"):
        h265.parse_sps(bytes.fromhex("4001 0c01"))
    with pytest.raises(DataLoss, match="truncated"):
        h265.parse_sps(SPS_636X358[:12])


@pytest.mark.parametrize(
    ("ptl", "suffix"),
    [
        (h265.ProfileTierLevel(0, 0, 1, 0x60000000, 0x900000000000, 93), "1.6.L93.90"),
        (h265.ProfileTierLevel(0, 1, 2, 0x20000000, 0xB00000000000, 153), "2.4.H153.B0"),
        (h265.ProfileTierLevel(1, 0, 1, 0x40000000, 0, 120), "A1.2.L120"),
        (
            h265.ProfileTierLevel(3, 0, 4, 0x08000000, 0x0000FF000001, 30),
            "C4.10.L30.00.00.FF.00.00.01",
        ),
    ],
)
def test_codec_string(ptl: h265.ProfileTierLevel, suffix: str) -> None:
    assert ptl.codec_suffix == suffix


def test_hvcc_box_layout() -> None:
    vps = bytes.fromhex("40010c01ffff016000000300900000030000030078959809")
    pps = bytes.fromhex("4401c172b46240")
    box = h265.hvcc_box(vps, SPS_636X358, pps)
    assert box[:8] == len(box).to_bytes(4, "big") + b"hvcC"
    header = bytes.fromhex("01 01 60000000 900000000000 3f f000 fc fd f8 f8 0000 0f 03")
    arrays = (
        bytes.fromhex("a0 0001") + len(vps).to_bytes(2, "big") + vps
        + bytes.fromhex("a1 0001") + len(SPS_636X358).to_bytes(2, "big") + SPS_636X358
        + bytes.fromhex("a2 0001") + len(pps).to_bytes(2, "big") + pps
    )  # fmt: skip
    assert box[8:] == header + arrays
    nals, length_size = h265.parse_hvcc_record(box[8:])
    assert (nals, length_size) == ({32: vps, 33: SPS_636X358, 34: pps}, 4)


def test_parse_hvcc_record_truncated() -> None:
    box = h265.hvcc_box(b"\x40\x01\x0c", SPS_636X358, b"\x44\x01\xc1")
    with pytest.raises(DataLoss, match="truncated hvcC"):
        h265.parse_hvcc_record(box[8:-2])


def encode_hevc_mp4(
    width: int, height: int, *, sar: Fraction | None = None, pix: str = "yuv420p"
) -> tuple[bytes, tuple[int, int, Fraction | None]]:
    """Encodes 3 frames with libx265 into an in-memory mp4; returns FFmpeg's hvcC record
    and what FFmpeg's decoder reports (width, height, sample aspect ratio)."""
    return encode_and_probe(
        "libx265", width, height, {"x265-params": "bframes=0:log-level=error"}, sar=sar, pix=pix
    )


@pytest.mark.parametrize(
    ("width", "height", "sar", "pix"),
    [
        (1920, 1080, None, "yuv420p"),
        (714, 402, Fraction(4, 3), "yuv420p"),
        (320, 240, None, "yuv420p10le"),
    ],
)
def test_sample_entry_matches_ffmpeg(
    width: int, height: int, sar: Fraction | None, pix: str
) -> None:
    record, (dec_width, dec_height, dec_sar) = encode_hevc_mp4(width, height, sar=sar, pix=pix)
    nals, _ = h265.parse_hvcc_record(record)
    entry = h265.sample_entry(nals[32], nals[33], nals[34])
    assert (entry.width, entry.height) == (dec_width, dec_height) == (width, height)
    if sar is not None:
        assert dec_sar == sar
        assert (entry.pasp_h_spacing, entry.pasp_v_spacing) == (sar.numerator, sar.denominator)
    else:
        assert (entry.pasp_h_spacing, entry.pasp_v_spacing) == (1, 1)
    # FFmpeg's record has the same fixed fields (it also carries an SEI array: 4 arrays)
    assert entry.data[8:30] == record[:22]
    assert entry.data[30] == 3
    assert entry.codec_box_type == b"hvcC"
    assert h265.parse_hvcc_record(entry.data[8:])[0] == {t: nals[t] for t in (32, 33, 34)}
