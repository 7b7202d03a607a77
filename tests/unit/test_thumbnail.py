"""``nvr.thumbnail``: which frame a thumbnail shows and what must be decoded for it, the
thumbnail's size, and the JPEG of a decoded run of frames (H.264 1080p and H.265)."""

from __future__ import annotations

import dataclasses
import io
from typing import cast

import av
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.make_fixtures import read_frame_number
from nvr.base.errors import DataLoss
from nvr.db.recording import VideoIndexArrays, VideoIndexEncoder, decode_video_index
from nvr.ingest.source import Packet
from nvr.testing.replay import load_packets
from nvr.thumbnail import (
    LOOKAHEAD,
    Continuation,
    Decoders,
    Pick,
    pick,
    picture_size,
    render,
    render_continuing,
)
from tests.support.paths import FIXTURES

FRAME = 3000
H264_1080P = str(FIXTURES / "h264-1920x1080.mp4")  # 60 frames, key frames 0 and 30
HEVC = str(FIXTURES / "hevc-640x360.mp4")  # 150 frames, a key frame every 30


def index_of(packets: tuple[Packet, ...]) -> VideoIndexArrays:
    enc = VideoIndexEncoder()
    for p in packets:
        enc.add(FRAME, len(p.data), p.is_key)
    return decode_video_index(enc.data)


def frames_of(packets: tuple[Packet, ...], chosen: Pick) -> bytes:
    data = b"".join(bytes(p.data) for p in packets)
    return data[chosen.offset : chosen.offset + chosen.length]


def luma(jpeg: bytes) -> npt.NDArray[np.uint8]:
    with av.open(io.BytesIO(jpeg), "r") as container:
        (frame,) = list(container.decode(video=0))
    return cast(npt.NDArray[np.uint8], frame.to_ndarray(format="gray"))


def test_pick_covers_the_offset_from_its_key_frame() -> None:
    packets = load_packets(H264_1080P)
    index = index_of(packets)
    chosen = pick(index, 45 * FRAME + 1)
    assert (chosen.key, chosen.target, chosen.exact, chosen.is_key) == (30, 45, True, False)
    assert chosen.start_90k == 45 * FRAME
    assert chosen.sizes == tuple(len(p.data) for p in packets[30:46])
    assert chosen.offset == sum(len(p.data) for p in packets[:30])
    assert chosen.length == sum(chosen.sizes)
    assert pick(index, 45 * FRAME).digest == chosen.digest
    assert pick(index, 46 * FRAME).digest != chosen.digest
    # the start of a frame is that frame; past the end, the last frame
    assert pick(index, 30 * FRAME).target == 30
    assert pick(index, 30 * FRAME - 1).target == 29
    assert pick(index, 10**12).target == 59


def test_pick_key_frame_and_the_decoding_bounds() -> None:
    index = index_of(load_packets(H264_1080P))
    key = pick(index, 45 * FRAME, key_frame=True)
    assert (key.key, key.target, key.exact, key.is_key) == (30, 30, False, True)
    assert len(key.sizes) == 1
    assert pick(index, 30 * FRAME, key_frame=True).exact  # the key frame covers it
    # a frame further from its key frame than the bounds allow: its key frame, said so
    far = pick(index, 45 * FRAME, max_frames=15)
    assert (far.target, far.exact) == (30, False)
    assert pick(index, 44 * FRAME, max_frames=15).target == 44
    few_bytes = pick(index, 45 * FRAME, max_bytes=key.length)
    assert (few_bytes.target, few_bytes.exact) == (30, False)


def test_the_rendered_picture_is_the_target_frame_1080p() -> None:
    packets = load_packets(H264_1080P)
    entry = packets[0].sample_entry
    chosen = pick(index_of(packets), 45 * FRAME)
    jpeg = render(entry, frames_of(packets, chosen), chosen.sizes, (1920, 1080))
    assert jpeg[:2] == b"\xff\xd8"
    picture = luma(jpeg)
    assert picture.shape == (1080, 1920)
    assert read_frame_number(picture) == 45


def test_the_rendered_picture_is_the_target_frame_h265() -> None:
    packets = load_packets(HEVC)
    entry = packets[0].sample_entry
    assert entry.codec_box_type == b"hvcC"
    chosen = pick(index_of(packets), 100 * FRAME)
    assert (chosen.key, chosen.target) == (90, 100)
    picture = luma(render(entry, frames_of(packets, chosen), chosen.sizes, (320, 180)))
    assert picture.shape == (180, 320)
    full = luma(render(entry, frames_of(packets, chosen), chosen.sizes, (640, 360)))
    assert read_frame_number(full) == 100


def test_a_continued_decoder_shows_each_later_frame_as_a_new_one_does() -> None:
    """From key frame 30: frame 33 (fed ``LOOKAHEAD`` frames past it), then 45 and 46
    going on, then the last frame, 59 (with frame threads the decoder is drained, not
    kept); each the JPEG a new decoder makes."""
    packets = load_packets(H264_1080P)
    entry = packets[0].sample_entry
    data = [bytes(p.data) for p in packets]
    cont: Continuation | None = None
    first = 30
    for target in (33, 45, 46, 59):
        last = min(target + LOOKAHEAD, 59)  # fed past the target only with frame threads
        sizes = tuple(len(d) for d in data[first : last + 1])
        jpeg, cont = render_continuing(entry, "rec", cont, first, b"".join(data[first : last + 1]),
                                       sizes, target, (640, 360))
        chosen = pick(index_of(packets), target * FRAME)
        assert jpeg == render(entry, frames_of(packets, chosen), chosen.sizes, (640, 360))
        assert read_frame_number(luma(jpeg)) == target
        if target == 59 and LOOKAHEAD:
            assert cont is None
        else:
            assert cont is not None and (cont.fed, cont.shown) == (last, target)
            first = last + 1
    with pytest.raises(ValueError, match="fed up to"):
        render_continuing(entry, "rec", Continuation("rec", None, 10), 30, b"", (), 30,  # type: ignore[arg-type]
                          (64, 36))


def test_decoders_keep_the_last_used_that_reach_a_frame() -> None:
    d = Decoders(max_decoders=2)
    a, b, c = (Continuation(s, object(), fed, shown)  # type: ignore[arg-type]
               for s, fed, shown in (("r1", 10, 9), ("r1", 40, 39), ("r2", 5, 4)))
    assert d.put(a) == [] and d.put(b) == []
    assert d.put(c) == [a]  # a, the least recently used, handed back to be closed
    assert len(d) == 2
    assert d.take("r1", 0, 8) is None  # b has shown 39 already
    assert d.take("r1", 30, 45) is b and len(d) == 1
    assert d.take("r2", 60, 70) is None  # key frame 60 is nearer than frame 6
    assert d.take("r2", 0, 6) is c and len(d) == 0
    d.put(a)
    assert d.take_all() == [a] and len(d) == 0
    a.decoder = None  # closed: it reaches nothing any more
    d.put(a)
    assert d.take("r1", 0, 10) is None


def test_frames_that_do_not_decode_are_data_loss() -> None:
    packets = load_packets(H264_1080P)
    entry = packets[0].sample_entry
    with pytest.raises(DataLoss, match="bytes of frames"):
        render(entry, b"\x00" * 10, (11,), (64, 36))
    # length-prefixed garbage: no picture comes out
    garbage = b"\x00\x00\x00\x06" + b"\x65\xff\xff\xff\xff\xff"
    with pytest.raises(DataLoss):
        render(entry, garbage, (len(garbage),), (64, 36))
    odd = dataclasses.replace(entry, data=entry.data[:4] + b"xxxx" + entry.data[8:])
    with pytest.raises(DataLoss, match="no decoder"):
        render(odd, b"", (), (64, 36))


def test_picture_size_keeps_the_display_aspect() -> None:
    entry = load_packets(H264_1080P)[0].sample_entry
    assert picture_size(entry, None) == (1920, 1080)
    assert picture_size(entry, 320) == (320, 180)
    assert picture_size(entry, 100_000) == (1920, 1080)  # never wider than the picture
    assert picture_size(entry, 1) == (1, 1)
    anamorphic = dataclasses.replace(entry, width=1440, height=1080, pasp_h_spacing=4,
                                     pasp_v_spacing=3)
    assert picture_size(anamorphic, None) == (1920, 1080)
    assert picture_size(anamorphic, 960) == (960, 540)


@st.composite
def indexes(draw: st.DrawFn) -> VideoIndexArrays:
    """An index of 1-200 frames: the first a key frame, others key frames at random."""
    n = draw(st.integers(1, 200))
    enc = VideoIndexEncoder()
    for i in range(n):
        enc.add(draw(st.integers(1, 9000)), draw(st.integers(1, 50_000)),
                i == 0 or draw(st.booleans().map(lambda b: b and draw(st.booleans()))))
    return decode_video_index(enc.data)


@given(index=indexes(), offset=st.integers(-10, 2_000_000), key_frame=st.booleans(),
       max_frames=st.integers(1, 400), max_bytes=st.integers(1, 3_000_000))
@settings(max_examples=300, deadline=None)
def test_pick_properties(index: VideoIndexArrays, offset: int, key_frame: bool,
                         max_frames: int, max_bytes: int) -> None:
    starts, is_key = index.starts.tolist(), index.is_key.tolist()
    covering = max([0, *(i for i, s in enumerate(starts) if s <= offset)])
    key = max(i for i in range(covering + 1) if is_key[i])
    if index.sizes.tolist()[key] > max_bytes:
        with pytest.raises(DataLoss, match=f"key frame {key} has"):
            pick(index, offset, key_frame=key_frame, max_frames=max_frames,
                 max_bytes=max_bytes)
        return
    chosen = pick(index, offset, key_frame=key_frame, max_frames=max_frames,
                  max_bytes=max_bytes)
    # decoding starts at the last key frame at or before the covering frame, and shows
    # the covering frame when asked and within the bounds, else that key frame
    assert chosen.key == key and is_key[chosen.key]
    within = (covering - key + 1 <= max_frames
              and sum(index.sizes.tolist()[key : covering + 1]) <= max_bytes)
    assert chosen.target == (covering if within and not key_frame else key)
    assert chosen.exact == (chosen.target == covering)
    assert chosen.start_90k == starts[chosen.target]
    assert chosen.sizes == tuple(index.sizes.tolist()[key : chosen.target + 1])
    assert chosen.offset == index.offsets.tolist()[key]
    assert chosen.length == sum(chosen.sizes)
