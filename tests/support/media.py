"""Looking inside served media: frames as PyAV decodes them, the edit list, ffprobe."""

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
