"""Tiny in-memory clips encoded with PyAV, for checking parameter-set parsing against
what FFmpeg itself says about the same stream."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np


def encode_and_probe(
    codec: str,
    width: int,
    height: int,
    options: dict[str, str],
    *,
    sar: Fraction | None = None,
    pix: str = "yuv420p",
) -> tuple[bytes, tuple[int, int, Fraction | None]]:
    """Encodes 3 noise frames with ``codec`` (``libx264``/``libx265``) into an in-memory
    mp4; returns FFmpeg's codec record (avcC/hvcC payload) and what FFmpeg's decoder
    reports: (width, height, sample aspect ratio)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, pix
        stream.options = options
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        rng = np.random.default_rng(1)
        for i in range(3):
            pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf, "r") as container:
        video = container.streams.video[0]
        record = bytes(video.codec_context.extradata or b"")
        picture = next(container.decode(video))
        return record, (picture.width, picture.height, video.codec_context.sample_aspect_ratio)


def escape_rbsp(rbsp: bytes) -> bytes:
    """Inserts emulation-prevention bytes (the inverse of ``unescape_rbsp``)."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)
