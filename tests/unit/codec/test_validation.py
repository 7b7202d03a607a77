"""What a camera sending garbage gets from the codec layer and the framing (issue 12,
point 7: random RTP payloads made undecodable recordings and sample entries of 8x10).

Garbage either raises ``DataLoss`` (which ends the camera's session) or, if it happens to
parse, yields only what a conforming stream could contain; parameter sets from a real
encoder always pass.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nvr.base.errors import DataLoss
from nvr.codec import h264, h265, nal
from nvr.codec.sps import MAX_SIDE, MIN_AREA, MIN_SIDE, PictureFormat
from nvr.ingest.framing import CODECS, StreamFraming
from tests.support.encode import encode_and_probe
from tests.unit.codec.test_h264 import PPS_1080P, SPS_1080P
from tests.unit.codec.test_h265 import SPS_636X358
from tests.unit.ingest.test_framing import IDR, annex_b


def plausible(info: PictureFormat) -> bool:
    return (
        MIN_SIDE <= info.width <= MAX_SIDE
        and MIN_SIDE <= info.height <= MAX_SIDE
        and info.width * info.height >= MIN_AREA
        and info.chroma_format_idc <= 3
    )


def rbsp(bits: str) -> bytes:
    """``bits`` with the RBSP stop bit, zero-padded to whole bytes."""
    bits += "1"
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


# -- random bytes ------------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_random_h264_sps_is_rejected_or_plausible(body: bytes) -> None:
    try:
        info = h264.parse_sps(b"\x67" + body)
    except DataLoss:
        return
    assert info.profile_idc in h264.PROFILES
    assert info.seq_parameter_set_id <= 31
    assert plausible(info)


@given(st.binary(max_size=64))
def test_random_h265_sps_is_rejected_or_plausible(body: bytes) -> None:
    try:
        info = h265.parse_sps(b"\x42\x01" + body)
    except DataLoss:
        return
    assert info.ptl.profile_space == 0
    assert info.seq_parameter_set_id <= 15 and info.max_sub_layers <= 7
    assert plausible(info)


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8))
def test_random_h264_frames_end_the_session_or_are_plausible(units: list[bytes]) -> None:
    """Frames of random NAL units after an SDP with valid parameter sets: the framing
    raises ``DataLoss``, or returns nothing, or a frame whose sample entry is plausible."""
    framing = StreamFraming(CODECS["h264"], annex_b(SPS_1080P, PPS_1080P))
    try:
        framed = framing.frame(annex_b(*units))
    except DataLoss:
        return
    if framed is not None:
        assert MIN_SIDE <= framed.sample_entry.width <= MAX_SIDE
        assert MIN_SIDE <= framed.sample_entry.height <= MAX_SIDE


@given(st.binary(min_size=1, max_size=40), st.booleans())
def test_a_unit_with_the_forbidden_bit_set_ends_the_session(unit: bytes, mp4: bool) -> None:
    bad = bytes([unit[0] | 0x80]) + unit[1:]
    framing = StreamFraming(
        CODECS["h264"],
        h264.avcc_box(SPS_1080P, PPS_1080P)[8:] if mp4 else annex_b(SPS_1080P, PPS_1080P),
    )
    packet = nal.to_length_prefixed([IDR, bad]) if mp4 else annex_b(IDR, bad)
    with pytest.raises(DataLoss, match="forbidden_zero_bit set"):
        framing.frame(packet)


# -- real encoders ---------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(st.integers(16, 960).map(lambda n: 2 * n), st.integers(16, 540).map(lambda n: 2 * n))
def test_parameter_sets_of_libx264_always_pass(width: int, height: int) -> None:
    assume(width * height >= MIN_AREA)
    record, (dec_width, dec_height, _) = encode_and_probe(
        "libx264", width, height, {"x264-params": "bframes=0"}
    )
    sps, pps, _ = h264.parse_avcc_record(record)
    entry = h264.sample_entry(sps[0], pps[0])
    assert (entry.width, entry.height) == (dec_width, dec_height) == (width, height)


@pytest.mark.parametrize(("width", "height"), [(16, 16), (32, 16), (48, 32)])
def test_a_real_but_implausibly_small_picture_is_refused(width: int, height: int) -> None:
    """Sizes that garbage parsed into (16x16, 48x32...): no camera sends them."""
    record, _ = encode_and_probe("libx264", width, height, {"x264-params": "bframes=0"})
    sps, _, _ = h264.parse_avcc_record(record)
    with pytest.raises(DataLoss, match=f"implausible picture size {width}x{height}"):
        h264.parse_sps(sps[0])


# -- each check ------------------------------------------------------------------------


def test_h264_unknown_profile() -> None:
    with pytest.raises(DataLoss, match=r"unknown profile_idc 1$"):
        h264.parse_sps(b"\x67\x01" + SPS_1080P[2:])


def test_h264_field_out_of_range() -> None:
    # High profile, level 4.0, sps id 0, chroma 1, depths 0, no bypass, no matrix, then
    # log2_max_frame_num_minus4 = 13 (at most 12)
    sps = b"\x67\x64\x00\x28" + rbsp("1" + "010" + "1" + "1" + "0" + "0" + "0001110")
    with pytest.raises(DataLoss, match="log2_max_frame_num_minus4 is 13, above 12"):
        h264.parse_sps(sps)


def test_h264_pps_must_name_the_sps() -> None:
    pps_naming_sps_1 = b"\x68" + rbsp("1" + "010" + "0")  # pps 0, sps 1, entropy flag
    assert h264.parse_pps_ids(pps_naming_sps_1) == (0, 1)
    with pytest.raises(DataLoss, match="PPS names SPS 1, the SPS is 0"):
        h264.sample_entry(SPS_1080P, pps_naming_sps_1)


def test_h264_key_slice_checks() -> None:
    framing = StreamFraming(CODECS["h264"], annex_b(SPS_1080P, PPS_1080P))
    assert h264.slice_pps_id(IDR) == 0
    naming_pps_1 = b"\x65" + rbsp("1" + "0001000" + "010")  # first mb 0, I slice, pps 1
    with pytest.raises(DataLoss, match="names picture parameter set 1, which the camera never"):
        framing.frame(annex_b(naming_pps_1))
    p_slice_idr = b"\x65" + rbsp("1" + "00110" + "1")  # slice_type 5 (P) in an IDR
    with pytest.raises(DataLoss, match="IDR slice has slice_type 5"):
        framing.frame(annex_b(p_slice_idr))
    assert framing.frame(annex_b(IDR)) is not None


def test_h265_parameter_sets_must_name_each_other() -> None:
    vps = bytes.fromhex("40010c01ffff016000000300900000030000030078959809")
    pps = bytes.fromhex("4401c172b46240")
    assert h265.parse_pps_ids(pps) == (0, 0)
    h265.sample_entry(vps, SPS_636X358, pps)
    other_vps = vps[:2] + bytes([vps[2] | 0x10]) + vps[3:]  # vps id 1
    with pytest.raises(DataLoss, match="VPS 1, SPS 0 naming VPS 0, PPS naming SPS 0"):
        h265.sample_entry(other_vps, SPS_636X358, pps)


def test_h265_unknown_profile_space() -> None:
    sps = SPS_636X358[:3] + bytes([SPS_636X358[3] | 0x40]) + SPS_636X358[4:]
    with pytest.raises(DataLoss, match="general_profile_space 1, not 0"):
        h265.parse_sps(sps)
