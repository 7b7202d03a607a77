"""NAL unit framing, the same in H.264 and H.265: Annex B byte streams and length-prefixed data.

Splitting an Annex B stream (3- and 4-byte start codes) or length-prefixed data into NAL
units, turning a camera's frame into the form nvr stores (4-byte big-endian length
prefixes, the payload of an ``.mp4`` ``mdat``) while setting aside the units a caller drops
(``SplitFrame``), and joining units back length-prefixed. Which units to drop and how to
read a unit's type are the caller's (``nvr.codec.h264``/``h265`` say); nothing here parses
a unit's contents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nvr.base.errors import DataLoss

#: a frame's bytes: ``bytes``, or a ``bytearray`` filled in place to save a copy (no one
#: changes it afterwards)
FrameBytes = bytes | bytearray


def is_annex_b(data: bytes) -> bool:
    """True when ``data`` starts with a 3- or 4-byte start code."""
    return data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")


def split_annex_b(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes.

    Zero bytes before a start code (the 4-byte form, trailing_zero_8bits) are not part of
    the NAL unit: by the spec a NAL unit never ends in a zero byte.
    """
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        end = data.find(b"\x00\x00\x01", begin)
        nal = data[begin : len(data) if end < 0 else end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        start = end
    return nals


@dataclass(slots=True)
class SplitFrame:
    """A frame's NAL units after dropping some: ``payload`` is the kept ones, 4-byte
    length-prefixed (the ``mdat`` form); ``kept_types`` their types in order; ``dropped``
    the others (parameter sets, delimiters), for the caller to look at."""

    payload: FrameBytes
    kept_types: list[int]
    dropped: list[bytes]


def split_annex_b_frame(
    data: FrameBytes, nal_type: Callable[[FrameBytes], int],
    drop_types: frozenset[int],
) -> SplitFrame:
    """An Annex B frame as a ``SplitFrame``, leaving out NAL units whose ``nal_type`` is in
    ``drop_types``.

    This runs for every frame a camera sends, so it copies as little as it can: ``data``
    is copied once into a ``bytearray`` and, in the usual case (every NAL unit behind a
    4-byte start code, the dropped ones first, as FFmpeg's RTP depacketizer and encoders
    write them), each start code is overwritten with its unit's length and the dropped
    prefix cut off, in place. Other layouts are rebuilt by joining the kept units.
    """
    buf = bytearray(data)
    find = buf.find
    units: list[tuple[int, int, int]] = []  # (start code's first byte, unit begin, unit end)
    code = find(b"\x00\x00\x01")
    while code >= 0:
        begin = code + 3
        nxt = find(b"\x00\x00\x01", begin)
        end = len(buf) if nxt < 0 else nxt
        while end > begin and buf[end - 1] == 0:  # trailing_zero_8bits, a 4-byte code's 00
            end -= 1
        if end > begin:
            units.append((code - 1 if code > 0 and buf[code - 1] == 0 else code, begin, end))
        code = nxt
    kept_types: list[int] = []
    dropped: list[bytes] = []
    first_kept = -1
    in_place = True  # every start code is 4 bytes and directly follows the previous unit
    prev_end = 0
    for i, (start, begin, end) in enumerate(units):
        kind = nal_type(buf[begin : begin + 1])
        if kind in drop_types:
            dropped.append(bytes(buf[begin:end]))
            in_place = in_place and first_kept < 0
        else:
            kept_types.append(kind)
            if first_kept < 0:
                first_kept = i
        in_place = in_place and begin - start == 4 and start == prev_end
        prev_end = end
    if first_kept < 0:
        return SplitFrame(b"", kept_types, dropped)
    if not in_place:
        kept = [bytes(buf[b:e]) for s, b, e in units if nal_type(buf[b : b + 1]) not in drop_types]
        return SplitFrame(to_length_prefixed(kept), kept_types, dropped)
    for start, begin, end in units[first_kept:]:
        buf[start:begin] = (end - begin).to_bytes(4, "big")
    del buf[prev_end:]
    del buf[: units[first_kept][0]]
    return SplitFrame(buf, kept_types, dropped)


def split_length_prefixed(data: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of ``length_size``-byte big-endian length-prefixed data.

    Raises ``DataLoss`` when a length runs past the end of ``data``.
    """
    nals: list[bytes] = []
    pos = 0
    while pos < len(data):
        header_end = pos + length_size
        length = int.from_bytes(data[pos:header_end], "big")
        end = header_end + length
        if header_end > len(data) or end > len(data):
            raise DataLoss(
                f"length-prefixed NAL unit at byte {pos} claims {length} bytes, "
                f"only {len(data) - header_end} left"
            )
        nals.append(data[header_end:end])
        pos = end
    return nals


def split_length_prefixed_frame(
    data: bytes, length_size: int, nal_type: Callable[[FrameBytes], int],
    drop_types: frozenset[int],
) -> SplitFrame:
    """A length-prefixed frame as a ``SplitFrame`` (see ``split_annex_b_frame``); ``data``
    itself is the payload when it is 4-byte prefixed and nothing is dropped."""
    nals = split_length_prefixed(data, length_size)
    types = [nal_type(nal) for nal in nals]
    kept = [nal for nal, kind in zip(nals, types, strict=True) if kind not in drop_types]
    kept_types = [kind for kind in types if kind not in drop_types]
    dropped = [nal for nal, kind in zip(nals, types, strict=True) if kind in drop_types]
    if length_size == 4 and not dropped:
        return SplitFrame(data, kept_types, dropped)
    return SplitFrame(to_length_prefixed(kept) if kept else b"", kept_types, dropped)


def to_length_prefixed(nals: list[bytes]) -> bytes:
    """NAL units joined with 4-byte big-endian length prefixes (the ``mdat`` form)."""
    return b"".join(len(nal).to_bytes(4, "big") + nal for nal in nals)

