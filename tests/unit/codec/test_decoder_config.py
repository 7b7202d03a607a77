"""nvr.codec.decoder_config: a sample entry's avcC/hvcC record back to its parameter sets."""

from __future__ import annotations

import pytest

from nvr.base.errors import DataLoss, InvalidArgument
from nvr.codec import decoder_config, h264, h265
from tests.unit.codec.test_h264 import PPS_1080P, SPS_1080P
from tests.unit.codec.test_h265 import SPS_636X358

VPS = bytes.fromhex("40010c01ffff016000000300900000030000030078959809")
PPS_H265 = bytes.fromhex("4401c172b46240")


def test_avcc_record_gives_sps_then_pps() -> None:
    record = h264.avcc_box(SPS_1080P, PPS_1080P)[8:]
    assert decoder_config.parameter_sets(b"avcC", record) == ([SPS_1080P, PPS_1080P], 4)


def test_hvcc_record_gives_vps_sps_pps() -> None:
    record = h265.hvcc_box(VPS, SPS_636X358, PPS_H265)[8:]
    assert decoder_config.parameter_sets(b"hvcC", record) == ([VPS, SPS_636X358, PPS_H265], 4)


def test_truncated_and_unknown_records() -> None:
    record = h264.avcc_box(SPS_1080P, PPS_1080P)[8:]
    with pytest.raises(DataLoss, match="truncated avcC"):
        decoder_config.parameter_sets(b"avcC", record[:10])
    with pytest.raises(InvalidArgument, match="mp4v"):
        decoder_config.parameter_sets(b"mp4v", record)
