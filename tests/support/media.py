"""Looking inside served media: frames as PyAV decodes them, the edit list, a media
segment's sequence number and decode time, ffprobe."""

from __future__ import annotations

import io
import json
import struct
import subprocess
from fractions import Fraction

import av
import numpy as np

from fixtures.make_fixtures import read_frame_number
from nvr.mp4.boxes import walk_boxes

FFPROBE = "/usr/bin/ffprobe"


def decoded_frames(data: bytes, *, ignore_editlist: bool) -> list[tuple[int, int, int]]:
    """(pts in 90k units, the picture's frame number, width) of every decoded frame."""
    options = {"ignore_editlist": "1"} if ignore_editlist else {}
    out = []
    with av.open(io.BytesIO(data), options=options) as container:
        stream = container.streams.video[0]
        assert stream.time_base == Fraction(1, 90_000)
        for frame in container.decode(stream):
            plane = frame.planes[0]
            luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
            assert frame.pts is not None
            out.append((int(frame.pts), read_frame_number(luma[:, : frame.width]), frame.width))
    return out


def edit_list(data: bytes) -> list[tuple[int, int]]:
    """(media_time, duration) of each entry of the (only) video track's ``elst``; [] when
    the file has none."""
    boxes = [b for b in walk_boxes(data) if b.box_type == b"elst"]
    if not boxes:
        return []
    assert len(boxes) == 1
    payload = data[boxes[0].offset + 8 : boxes[0].offset + boxes[0].size]
    version, count = payload[0], struct.unpack(">I", payload[4:8])[0]
    fmt = ">QqHH" if version == 1 else ">IiHH"
    size = struct.calcsize(fmt)
    out = []
    for i in range(count):
        duration, media_time, rate, _ = struct.unpack_from(fmt, payload, 8 + i * size)
        assert rate == 1
        out.append((media_time, duration))
    return out


def fragment_header(segment: bytes) -> tuple[int, int]:
    """A media segment's ``mfhd`` sequence number and ``tfdt`` decode time (one track)."""
    boxes = {b.box_type: b for b in walk_boxes(segment)}
    mfhd, tfdt = boxes[b"mfhd"].offset, boxes[b"tfdt"].offset
    (sequence,) = struct.unpack_from(">I", segment, mfhd + 12)
    fmt = ">Q" if segment[tfdt + 8] == 1 else ">I"
    (decode_time,) = struct.unpack_from(fmt, segment, tfdt + 12)
    return sequence, decode_time


_TRUN_FIELDS = (0x100, 0x200, 0x400, 0x800)  # per sample: duration, size, flags, cto


def appended_at_the_end(init: bytes, segments: list[bytes]) -> bytes:
    """The init segment and media segments as a client that appends each segment at the
    end of what it has buffered sees them (Moonfire NVR's UI sets
    ``SourceBuffer.timestampOffset`` to the buffered end before each append): each
    segment's ``tfdt`` moved by that offset, in one file for PyAV. (FFmpeg itself always
    places a media segment at its ``tfdt``.) One track, one ``trun`` per segment with
    per-sample durations."""
    out, end = bytearray(init), 0
    for segment in segments:
        seg = bytearray(segment)
        boxes = {b.box_type: b for b in walk_boxes(seg)}
        tfdt, trun = boxes[b"tfdt"].offset, boxes[b"trun"].offset
        fmt = ">Q" if seg[tfdt + 8] == 1 else ">I"
        (decode_time,) = struct.unpack_from(fmt, seg, tfdt + 12)
        struct.pack_into(fmt, seg, tfdt + 12, decode_time + end)
        flags, count = struct.unpack_from(">II", seg, trun + 8)
        assert flags & 0x100, "per-sample durations"
        pos = trun + 16 + 4 * bool(flags & 0x1) + 4 * bool(flags & 0x4)
        stride = 4 * sum(bool(flags & f) for f in _TRUN_FIELDS)
        durations = [struct.unpack_from(">I", seg, pos + i * stride)[0] for i in range(count)]
        end += decode_time + sum(durations)
        out += seg
    return bytes(out)


def ffprobe(data: bytes) -> dict[str, object]:
    """ffprobe's ``-show_format -show_streams`` of ``data`` (fed on stdin)."""
    result = subprocess.run(
        [FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json", "-i", "pipe:0"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stderr == b"", result.stderr.decode(errors="replace")
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed
