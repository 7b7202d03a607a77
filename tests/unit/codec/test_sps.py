"""nvr.codec.sps: RBSP unescaping and the exp-Golomb bit reader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.base.errors import DataLoss
from nvr.codec.sps import BitReader, unescape_rbsp
from tests.support.encode import escape_rbsp


@given(st.binary(max_size=200))
def test_unescape_inverts_escape(rbsp: bytes) -> None:
    escaped = escape_rbsp(rbsp)
    for forbidden in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert forbidden not in escaped
    assert unescape_rbsp(escaped) == rbsp


def test_unescape_known_vector() -> None:
    assert unescape_rbsp(bytes.fromhex("0000030100000300")) == bytes.fromhex("000001000000")


def test_bit_reader_exp_golomb() -> None:
    bits = "101001100100100000001010"  # ue 0, 1, 2, 3; flag; u(7); u(4)
    r = BitReader(int(bits, 2).to_bytes(3, "big"))
    assert [r.ue(), r.ue(), r.ue(), r.ue(), r.flag(), r.u(7), r.u(4)] == [0, 1, 2, 3, True, 0, 10]


def test_bit_reader_signed_values() -> None:
    bits = "0100110010000101"  # ue codes 1, 2, 3, 4 are se +1, -1, +2, -2
    r = BitReader(int(bits, 2).to_bytes(2, "big"))
    assert [r.se(), r.se(), r.se(), r.se()] == [1, -1, 2, -2]


def test_bit_reader_past_end_is_data_loss() -> None:
    r = BitReader(b"\x00")
    with pytest.raises(DataLoss, match="truncated"):
        r.ue()
