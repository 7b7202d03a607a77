"""nvr.ingest.framing without PyAV: packets to stored frames, parameter sets to sample
entries, and the start-of-run rules."""

from __future__ import annotations

import pytest

from nvr.base.errors import DataLoss
from nvr.codec import h264, nal
from nvr.db.recording import VideoSampleEntry
from nvr.ingest.framing import CODECS, PendingFrame, RunStart, StreamFraming
from tests.unit.codec.test_h264 import PPS_1080P, SPS_1080P, SPS_BASELINE

FRAME = 3000
START_CODE = b"\x00\x00\x00\x01"
IDR = b"\x65\x88\x84"
NON_IDR = b"\x41\x9a\x02"


def annex_b(*nals: bytes) -> bytes:
    return b"".join(START_CODE + n for n in nals)


def test_annex_b_packets_become_length_prefixed_frames_without_parameter_sets() -> None:
    framing = StreamFraming(CODECS["h264"], annex_b(SPS_1080P, PPS_1080P))
    framed = framing.frame(annex_b(b"\x09\x10", SPS_1080P, PPS_1080P, IDR))
    assert framed is not None
    assert bytes(framed.payload) == nal.to_length_prefixed([IDR])
    assert framed.is_key
    assert framed.sample_entry == h264.sample_entry(SPS_1080P, PPS_1080P)
    later = framing.frame(annex_b(NON_IDR))
    assert later is not None and not later.is_key
    assert later.sample_entry is framed.sample_entry  # shared until the parameter sets change


def test_in_band_parameter_sets_make_and_change_the_sample_entry() -> None:
    framing = StreamFraming(CODECS["h264"])
    assert framing.frame(annex_b(IDR)) is None  # no sample entry known yet
    first = framing.frame(annex_b(SPS_1080P, PPS_1080P, IDR))
    assert first is not None and first.sample_entry.width == 1920
    assert framing.frame(annex_b(SPS_1080P, PPS_1080P)) is None  # no picture
    changed = framing.frame(annex_b(SPS_BASELINE, IDR))
    assert changed is not None and changed.sample_entry.width == 176


def test_length_prefixed_packets_with_an_avcc_record() -> None:
    record = h264.avcc_box(SPS_1080P, PPS_1080P)[8:]
    framing = StreamFraming(CODECS["h264"], record)
    packet = nal.to_length_prefixed([IDR])
    framed = framing.frame(packet)
    assert framed is not None and framed.payload is packet and framed.is_key


ENTRY = VideoSampleEntry(640, 360, "avc1.64001e", b"\x00\x00\x00\x08avcC")


def frame(pts: int | None, key: bool, duration: int = 0) -> PendingFrame:
    return PendingFrame(b"\x00\x00\x00\x01\x65", pts, duration, key, ENTRY)


def test_run_start_fixes_first_key_frame_without_pts() -> None:
    start = RunStart(frame_interval=FRAME)
    assert start.admit(frame(None, True, duration=3003)) == []
    assert [(p.pts, p.is_key) for p in start.admit(frame(9000, False))] == [
        (9000 - 3003, True),
        (9000, False),
    ]
    assert [p.pts for p in start.admit(frame(12000, False))] == [12000]


def test_run_start_falls_back_to_next_duration_then_frame_interval() -> None:
    start = RunStart(frame_interval=FRAME)
    start.admit(frame(None, True))
    assert [p.pts for p in start.admit(frame(9000, False, duration=3600))] == [5400, 9000]
    start = RunStart(frame_interval=FRAME)
    start.admit(frame(None, True))
    assert [p.pts for p in start.admit(frame(9000, False))] == [6000, 9000]


def test_run_start_drops_until_key_frame_with_pts_when_interval_unknown() -> None:
    start = RunStart(frame_interval=0)
    assert start.admit(frame(None, True)) == []
    assert start.admit(frame(3000, False)) == []
    assert start.admit(frame(6000, False)) == []
    assert [(p.pts, p.is_key) for p in start.admit(frame(9000, True))] == [(9000, True)]
    assert start.started


def test_run_start_drops_leading_non_key_frames_without_pts() -> None:
    start = RunStart(frame_interval=FRAME)
    assert start.admit(frame(None, False)) == []
    assert start.admit(frame(3000, False)) == []
    assert not start.started


def test_run_start_rejects_missing_pts_mid_stream() -> None:
    start = RunStart(frame_interval=FRAME)
    start.admit(frame(0, True))
    with pytest.raises(DataLoss, match="without a timestamp"):
        start.admit(frame(None, False))

