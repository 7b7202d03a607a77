"""Recording value types and the ``video_index`` codec (docs/design.md, "On-disk formats").

``VideoSampleEntry`` describes the codec parameters of a run of frames (what an ``.mp4``'s
``stsd`` needs). The ``video_index`` of a recording stores, per frame, its duration, size
and key-frame flag in two protobuf-style varints, deltas against the previous frame.
``VideoIndexEncoder`` builds it frame by frame (the recording writer); ``iter_video_index``
decodes it frame by frame in plain Python, and ``decode_video_index`` decodes it whole into
numpy arrays (what every ``.mp4`` is built from). The two decoders return the same frames
and reject corrupt data with the same ``DataLoss`` message, naming the first bad frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from nvr.base.errors import DataLoss, InvalidArgument


@dataclass(frozen=True, slots=True)
class VideoSampleEntry:
    """Codec parameters shared by consecutive frames.

    ``data`` is the complete ``avcC`` (H.264) or ``hvcC`` (H.265) box, header included.
    ``width``/``height`` are the displayed size after SPS cropping; ``pasp_*`` the pixel
    aspect ratio (1:1 when the SPS does not say). ``rfc6381_codec`` is e.g. ``avc1.64001f``.
    """

    width: int
    height: int
    rfc6381_codec: str
    data: bytes
    pasp_h_spacing: int = 1
    pasp_v_spacing: int = 1

    @property
    def codec_box_type(self) -> bytes:
        """``b"avcC"`` or ``b"hvcC"``: the four-character type of ``data``."""
        return self.data[4:8]


# --- the video_index codec ------------------------------------------------------------------
#
# Per frame, two protobuf varints (little-endian 7-bit groups, high bit = "more follows"):
#   1. zigzag(duration - prev_duration) << 1 | is_key
#   2. zigzag(bytes - prev_bytes_of_same_kind)   (key and non-key frames keep separate "prev")
# All "prev" values start at 0. A frame's duration is in 90k units; only the last frame may
# have duration 0 (the "trailing zero" of an unclean close).

MAX_FRAME_DURATION_90K = 2**31 - 1
"""Largest duration of one frame (i32, ~6.6 hours: far beyond any real recording)."""

MAX_FRAME_BYTES = 2**32 - 1
"""Largest size of one frame: what an ``.mp4`` ``stsz`` entry (u32) can hold."""

_MAX_VARINT_BYTES = 10  # ceil(64 / 7)
_U64_LIMIT = 2**64


class IndexTotals(NamedTuple):
    """Whole-recording figures of an index; the ``recording`` row stores the same ones
    (``video_samples``, ``video_sync_samples``, ``sample_file_bytes``, media duration)."""

    frames: int
    key_frames: int
    bytes: int
    media_duration_90k: int


class FrameEntry(NamedTuple):
    """One decoded frame, with where it starts in the recording's time and sample file."""

    duration_90k: int
    bytes: int
    is_key: bool
    start_90k: int
    offset: int


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _append_varint(buf: bytearray, value: int) -> None:
    while value >= 0x80:
        buf.append((value & 0x7F) | 0x80)
        value >>= 7
    buf.append(value)


class VideoIndexEncoder:
    """Builds a ``video_index`` one frame at a time, as the recording writer learns them.

    ``data`` may be read at any point (a growing recording is served while it grows); it
    is cached between ``add`` calls, so repeated reads cost nothing.
    """

    __slots__ = (
        "_buf",
        "_data",
        "_prev_bytes",
        "_prev_duration",
        "frames",
        "key_frames",
        "media_duration",
        "total_bytes",
    )

    def __init__(self) -> None:
        self._buf = bytearray()
        self._data: bytes | None = b""
        self._prev_duration = 0
        self._prev_bytes = [0, 0]  # indexed by is_key
        self.frames = 0
        self.key_frames = 0
        self.media_duration = 0
        self.total_bytes = 0

    def add(self, duration_90k: int, bytes_: int, is_key: bool) -> None:
        """Appends one frame. Raises ``InvalidArgument`` for a frame no decoder would accept."""
        self._check_frame(duration_90k, bytes_, is_key)
        kind = int(is_key)
        _append_varint(self._buf, _zigzag(duration_90k - self._prev_duration) << 1 | kind)
        _append_varint(self._buf, _zigzag(bytes_ - self._prev_bytes[kind]))
        self._data = None
        self._prev_duration = duration_90k
        self._prev_bytes[kind] = bytes_
        self.frames += 1
        self.key_frames += kind
        self.media_duration += duration_90k
        self.total_bytes += bytes_

    def _check_frame(self, duration_90k: int, bytes_: int, is_key: bool) -> None:
        frame = self.frames
        if frame == 0 and not is_key:
            raise InvalidArgument("video_index frame 0: the first frame must be a key frame")
        if frame > 0 and self._prev_duration == 0:
            raise InvalidArgument(
                f"video_index frame {frame}: follows frame {frame - 1} of duration 0 "
                "(only the last frame may have duration 0)"
            )
        if not 0 <= duration_90k <= MAX_FRAME_DURATION_90K:
            raise InvalidArgument(
                f"video_index frame {frame}: duration {duration_90k} is outside "
                f"[0, {MAX_FRAME_DURATION_90K}]"
            )
        if not 0 < bytes_ <= MAX_FRAME_BYTES:
            raise InvalidArgument(
                f"video_index frame {frame}: size {bytes_} is outside [1, {MAX_FRAME_BYTES}]"
            )

    @property
    def data(self) -> bytes:
        """The index of the frames added so far."""
        if self._data is None:
            self._data = bytes(self._buf)
        return self._data

    @property
    def totals(self) -> IndexTotals:
        return IndexTotals(self.frames, self.key_frames, self.total_bytes, self.media_duration)


# --- decoding: the shared error messages ------------------------------------------------------
#
# Both decoders check each frame in the same order and report the first failing frame with
# the same message, so a differential test can compare them exactly. Per frame: its first
# varint, its second varint, then: starts with a key frame, duration in range, size in
# range, zero duration only when no byte follows.


def _frame_error(frame: int, reason: str) -> DataLoss:
    return DataLoss(f"video_index frame {frame}: {reason}")


_TRUNCATED = "truncated varint (the index ends inside it)"
_TOO_LONG = "varint longer than 64 bits"
_NOT_KEY = "the first frame is not a key frame"
_ZERO_DURATION = "duration 0 on a frame that is not the last"


def _bad_duration(duration: int) -> str:
    return f"duration {duration} is outside [0, {MAX_FRAME_DURATION_90K}]"


def _bad_size(size: int) -> str:
    return f"size {size} is outside [1, {MAX_FRAME_BYTES}]"


def _check_decoded_frame(
    frame: int, is_key: bool, duration: int, size: int, more_follows: bool
) -> None:
    if frame == 0 and not is_key:
        raise _frame_error(frame, _NOT_KEY)
    if not 0 <= duration <= MAX_FRAME_DURATION_90K:
        raise _frame_error(frame, _bad_duration(duration))
    if not 0 < size <= MAX_FRAME_BYTES:
        raise _frame_error(frame, _bad_size(size))
    if duration == 0 and more_follows:
        raise _frame_error(frame, _ZERO_DURATION)


def check_totals(actual: IndexTotals, expected: IndexTotals) -> None:
    """Raises ``DataLoss`` naming every figure of a decoded index that differs from the
    recording row's."""
    differences = [
        f"{name} {got} (row says {want})"
        for name, got, want in zip(IndexTotals._fields, actual, expected, strict=True)
        if got != want
    ]
    if differences:
        raise DataLoss("video_index does not match its recording: " + ", ".join(differences))


# --- decoding: the clear form -----------------------------------------------------------------


def _read_varint(data: bytes, pos: int, frame: int) -> tuple[int, int]:
    """Returns the varint at ``pos`` and the position after it."""
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise _frame_error(frame, _TRUNCATED)
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if value >= _U64_LIMIT:
                raise _frame_error(frame, _TOO_LONG)
            return value, pos + i + 1
    raise _frame_error(frame, _TOO_LONG)


def iter_video_index(
    data: bytes | bytearray | memoryview, expected: IndexTotals | None = None
) -> Iterator[FrameEntry]:
    """Decodes ``data`` one frame at a time. Raises ``DataLoss`` (naming the frame) when it
    does not decode, and, once exhausted, when its totals differ from ``expected``."""
    data = bytes(data)
    pos = frame = start = offset = key_frames = 0
    duration = 0
    prev_size = [0, 0]  # indexed by is_key
    while pos < len(data):
        first, pos = _read_varint(data, pos, frame)
        second, pos = _read_varint(data, pos, frame)
        is_key = bool(first & 1)
        duration += _unzigzag(first >> 1)
        size = prev_size[is_key] + _unzigzag(second)
        _check_decoded_frame(frame, is_key, duration, size, more_follows=pos < len(data))
        yield FrameEntry(duration, size, is_key, start, offset)
        prev_size[is_key] = size
        start += duration
        offset += size
        key_frames += is_key
        frame += 1
    if expected is not None:
        check_totals(IndexTotals(frame, key_frames, offset, start), expected)


# --- decoding: the fast form ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoIndexArrays:
    """A decoded index as arrays, one element per frame (all ``int64`` but ``is_key``).

    ``starts`` is each frame's start in 90k units from the recording's start, ``offsets``
    its byte offset in the sample file. An ``.mp4`` ``stsz`` is ``sizes.astype(">u4")``.
    """

    durations: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]
    is_key: npt.NDArray[np.bool_]
    starts: npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int64]
    totals: IndexTotals

    def frames(self) -> list[FrameEntry]:
        """The same frames as ``iter_video_index`` yields (for tests and debug output)."""
        return [
            FrameEntry(*row)
            for row in zip(
                self.durations.tolist(),
                self.sizes.tolist(),
                self.is_key.tolist(),
                self.starts.tolist(),
                self.offsets.tolist(),
                strict=True,
            )
        ]


# After the padding, a word of up to 8 bytes can be read from any byte of the index.
_PADDING = bytes(8)


@dataclass(frozen=True, slots=True)
class _WordLayout:
    """How ``_varint_values`` reads varints of up to ``width`` bytes as one machine word."""

    dtype: np.dtype[np.unsignedinteger[Any]]
    keep_payload: npt.NDArray[np.unsignedinteger[Any]]  # by varint length: its 7-bit groups
    squeeze_steps: tuple[tuple[int, int], ...]  # (mask of the upper halves, shift)

    @property
    def width(self) -> int:
        return self.dtype.itemsize


def _word_layout(dtype: str, squeeze_steps: tuple[tuple[int, int], ...]) -> _WordLayout:
    width = np.dtype(dtype).itemsize
    payload = int.from_bytes(b"\x7f" * width, "little")
    keep = [payload & ((1 << (8 * min(n, width))) - 1) for n in range(_MAX_VARINT_BYTES + 1)]
    return _WordLayout(np.dtype(dtype), np.array(keep, dtype=dtype), squeeze_steps)


# 4 bytes (28 bits) hold every varint of a real camera's index; 8 bytes need one more step.
_WORD_4 = _word_layout("<u4", ((0x7F007F00, 1), (0x3FFF0000, 2)))
_WORD_8 = _word_layout(
    "<u8", ((0x7F007F007F007F00, 1), (0x3FFF00003FFF0000, 2), (0x0FFFFFFF00000000, 4))
)


def decode_video_index(
    data: bytes | bytearray | memoryview, expected: IndexTotals | None = None
) -> VideoIndexArrays:
    """Decodes a whole index at once with numpy: the same frames, and the same ``DataLoss``
    for the same first bad frame, as ``iter_video_index``."""
    padded = np.frombuffer(bytes(data) + _PADDING, dtype=np.uint8)
    size = len(padded) - len(_PADDING)
    ends = np.flatnonzero(padded[:size] < 0x80)
    lengths = np.diff(ends, prepend=-1)
    broken = _first_broken_varint(padded, size, ends, lengths)
    decodable = 2 * ((len(ends) if broken is None else broken[0]) // 2)
    values = _varint_values(padded, ends[:decodable], lengths[:decodable])
    arrays = _frames_from_varints(values)
    _raise_first_bad_frame(arrays, values[1::2], more_follows_last=broken is not None)
    if broken is not None:
        varint, reason = broken
        raise _frame_error(varint // 2, reason)
    if expected is not None:
        check_totals(arrays.totals, expected)
    return arrays


def _first_broken_varint(
    padded: npt.NDArray[np.uint8],
    size: int,
    ends: npt.NDArray[np.intp],
    lengths: npt.NDArray[np.intp],
) -> tuple[int, str] | None:
    """The index and reason of the first varint that is too long or cut off, if any."""
    too_long = (lengths > _MAX_VARINT_BYTES) | ((lengths == _MAX_VARINT_BYTES) & (padded[ends] > 1))
    if too_long.any():
        return int(too_long.argmax()), _TOO_LONG
    tail = size - (int(ends[-1]) + 1 if len(ends) else 0)
    if tail >= _MAX_VARINT_BYTES:
        return len(ends), _TOO_LONG
    if tail > 0 or len(ends) % 2:
        return len(ends), _TRUNCATED
    return None


def _varint_values(
    padded: npt.NDArray[np.uint8], ends: npt.NDArray[np.intp], lengths: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint64]:
    """The values of well-formed varints (at most 64 bits each), given where they end.

    Each varint's first bytes are read as one little-endian word; the bytes of later
    varints and the continuation bits are masked off, then the 7-bit groups are squeezed
    together in place (8x7 -> 4x14 -> 2x28 -> 56 bits). Bytes beyond the word are added
    one position at a time, for the few varints that long.
    """
    longest = int(lengths.max()) if len(lengths) else 0
    layout = _WORD_4 if longest <= _WORD_4.width else _WORD_8
    starts = ends - lengths
    starts += 1
    every_word: npt.NDArray[np.unsignedinteger[Any]] = np.ndarray(
        shape=(len(padded) - layout.width + 1,),
        dtype=layout.dtype,
        buffer=padded.data,
        strides=(1,),
    )
    words: npt.NDArray[np.unsignedinteger[Any]] = every_word[starts]
    words &= layout.keep_payload[lengths]
    upper = np.empty_like(words)
    for mask, shift in layout.squeeze_steps:
        np.bitwise_and(words, layout.dtype.type(mask), out=upper)
        words ^= upper
        upper >>= layout.dtype.type(shift)
        words |= upper
    values = words.astype(np.uint64, copy=False)
    for position in range(layout.width, longest):
        longer = np.flatnonzero(lengths > position)
        group = padded[starts[longer] + position].astype(np.uint64) & np.uint64(0x7F)
        values[longer] |= group << np.uint64(7 * position)
    return values


def _unzigzag_array(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    return (values >> np.uint64(1)).view(np.int64) ^ -(values & np.uint64(1)).view(np.int64)


def _frames_from_varints(values: npt.NDArray[np.uint64]) -> VideoIndexArrays:
    """Frame arrays from pairs of varints. Sums wrap on absurd input; the first frame that
    wraps is always out of range (see ``_raise_first_bad_frame``), so it is never returned."""
    first, second = values[0::2], values[1::2]
    is_key = (first & np.uint64(1)).astype(np.bool_)
    durations = np.cumsum(_unzigzag_array(first >> np.uint64(1)))
    size_deltas = _unzigzag_array(second)
    key_sizes = np.cumsum(np.where(is_key, size_deltas, 0))
    non_key_sizes = np.cumsum(np.where(is_key, 0, size_deltas))
    sizes = np.where(is_key, key_sizes, non_key_sizes)
    ends_90k = np.cumsum(durations)
    end_offsets = np.cumsum(sizes)
    totals = IndexTotals(
        frames=len(durations),
        key_frames=int(np.count_nonzero(is_key)),
        bytes=int(end_offsets[-1]) if len(sizes) else 0,
        media_duration_90k=int(ends_90k[-1]) if len(durations) else 0,
    )
    return VideoIndexArrays(
        durations, sizes, is_key, ends_90k - durations, end_offsets - sizes, totals
    )


def _raise_first_bad_frame(
    arrays: VideoIndexArrays, size_varints: npt.NDArray[np.uint64], more_follows_last: bool
) -> None:
    """Raises the error of the first frame that fails a value check, like
    ``_check_decoded_frame`` would.

    A running sum stays exact up to the first frame out of range: the previous value is
    small and non-negative, so a sum that overflows int64 wraps to a negative number, which
    is out of range too. Only that frame's size is recomputed exactly for the message.
    """
    durations, sizes, is_key = arrays.durations, arrays.sizes, arrays.is_key
    n = len(durations)
    if n == 0:
        return
    bad = durations.view(np.uint64) > np.uint64(MAX_FRAME_DURATION_90K)
    bad |= (sizes - 1).view(np.uint64) >= np.uint64(MAX_FRAME_BYTES)
    bad[:-1] |= durations[:-1] == 0
    bad[-1] |= bool(durations[-1] == 0) and more_follows_last
    bad[0] |= not is_key[0]
    if not bad.any():
        return
    frame = int(bad.argmax())
    delta = _unzigzag(int(size_varints[frame]))
    exact_size = _as_int64(int(sizes[frame]) - delta) + delta
    _check_decoded_frame(
        frame,
        bool(is_key[frame]),
        int(durations[frame]),
        exact_size,
        more_follows=frame < n - 1 or more_follows_last,
    )
    raise AssertionError(f"video_index frame {frame} flagged but passes the checks")


def _as_int64(value: int) -> int:
    """``value`` wrapped to int64, as numpy arithmetic wraps it."""
    return (value + 2**63) % 2**64 - 2**63
