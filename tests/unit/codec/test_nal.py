"""nvr.codec.nal: Annex B and length-prefixed NAL framing, and frames split in place."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.base.errors import DataLoss
from nvr.codec import h264, nal
from tests.support.encode import escape_rbsp


def test_split_annex_b_mixed_start_codes() -> None:
    data = bytes.fromhex("00000001 6742 000001 68ce 0000 000001 6588 0000000001 0605")
    assert nal.split_annex_b(data) == [
        bytes.fromhex("6742"),
        bytes.fromhex("68ce"),
        bytes.fromhex("6588"),
        bytes.fromhex("0605"),
    ]


def test_split_annex_b_keeps_emulation_prevention_bytes() -> None:
    assert nal.split_annex_b(bytes.fromhex("000001 65 000003 01 ff")) == [
        bytes.fromhex("65 000003 01 ff")
    ]


def test_split_length_prefixed() -> None:
    data = bytes.fromhex("00000002 6742 00000003 68cebc")
    assert nal.split_length_prefixed(data) == [bytes.fromhex("6742"), bytes.fromhex("68cebc")]
    assert nal.split_length_prefixed(bytes.fromhex("0002 6742 0001 68"), 2) == [
        bytes.fromhex("6742"),
        bytes.fromhex("68"),
    ]


def test_split_length_prefixed_rejects_overrun() -> None:
    with pytest.raises(DataLoss, match="claims 5 bytes, only 2 left"):
        nal.split_length_prefixed(bytes.fromhex("00000005 6742"))


def test_to_length_prefixed() -> None:
    assert nal.to_length_prefixed([b"\x65\x88", b"\x06"]) == bytes.fromhex(
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
    assert nal.split_annex_b(stream) == nals
    assert nal.is_annex_b(stream) == bool(nals)


DROP = h264.PARAMETER_AND_DELIMITER_TYPES


def reference_split(data: bytes) -> nal.SplitFrame:
    """What ``split_annex_b_frame`` must return, from the plain building blocks."""
    nals = nal.split_annex_b(data)
    kept = [n for n in nals if h264.nal_type(n) not in DROP]
    return nal.SplitFrame(
        nal.to_length_prefixed(kept) if kept else b"",
        [h264.nal_type(n) for n in kept],
        [n for n in nals if h264.nal_type(n) in DROP],
    )


def test_split_annex_b_frame_in_place() -> None:
    # AUD, SPS, PPS, SEI, IDR behind 4-byte start codes, as FFmpeg's RTP depacketizer
    # writes them: the dropped prefix is cut off and the start codes become lengths.
    data = bytes.fromhex("00000001 0910 00000001 6742 00000001 68ce 00000001 0605 00000001 658880")
    frame = nal.split_annex_b_frame(data, h264.nal_type, DROP)
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
    frame = nal.split_annex_b_frame(data, h264.nal_type, DROP)
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
    frame = nal.split_annex_b_frame(data, h264.nal_type, DROP)
    expected = reference_split(data)
    assert bytes(frame.payload) == expected.payload
    assert frame.kept_types == expected.kept_types
    assert frame.dropped == expected.dropped


def test_split_length_prefixed_frame() -> None:
    data = bytes.fromhex("00000002 6742 00000002 6588")
    frame = nal.split_length_prefixed_frame(data, 4, h264.nal_type, DROP)
    assert (frame.payload, frame.kept_types, frame.dropped) == (
        bytes.fromhex("00000002 6588"), [5], [bytes.fromhex("6742")]
    )
    whole = bytes.fromhex("00000002 6588")
    assert nal.split_length_prefixed_frame(whole, 4, h264.nal_type, DROP).payload is whole
    short = bytes.fromhex("0002 6588")
    assert nal.split_length_prefixed_frame(short, 2, h264.nal_type, DROP).payload == whole


@given(st.lists(st.binary(min_size=0, max_size=300), max_size=8))
def test_length_prefixed_round_trip(nals: list[bytes]) -> None:
    assert nal.split_length_prefixed(nal.to_length_prefixed(nals)) == nals
