"""A small ISO BMFF (ISO/IEC 14496-12) box writer, and a box-tree reader for debug dumps.

``BoxWriter`` appends big-endian fields to a ``bytearray``; ``with w.box(b"moov"):`` and
``with w.full_box(b"mvhd", version, flags):`` write a box header and patch its 32-bit size
when the block ends, so nested boxes need no size bookkeeping by the caller. Small arrays
are appended as ready-made bytes (numpy ``astype(">u4").tobytes()``). Large ones need not
exist yet: ``w.virtual(item, length)`` reserves ``length`` bytes that someone else produces
later, and ``w.pieces()`` returns the result as in-memory bytes interleaved with those
placeholders, so a 30 MB ``moov`` can be laid out (sizes, offsets) without being built.
The writer records every box it writes (``w.boxes``), which is how a debug dump lists the
box tree of a file whose tables were never generated. ``mdat_header`` makes the header of
a box whose payload is not held in memory (64-bit ``largesize`` when it must).
``walk_boxes`` lists the boxes of serialized data, descending into the container types
this package writes; ``format_box_tree`` renders that as text.

Nothing here knows about recordings or the database: only bytes.
"""

from __future__ import annotations

import bisect
import contextlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_HEADER = struct.Struct(">I4s")
_LARGE_HEADER = struct.Struct(">I4sQ")

U32_MAX = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class Virtual:
    """``length`` bytes of a ``BoxWriter``'s output that ``item`` stands for (made later)."""

    item: object
    length: int


class BoxWriter:
    """Builds serialized boxes in memory (see the module docstring)."""

    __slots__ = ("_base", "_pieces", "_stack", "_starts", "boxes", "buf")

    def __init__(self) -> None:
        self.buf = bytearray()  # the bytes after the last placeholder
        self._base = 0  # output offset of ``buf``
        self._pieces: list[bytearray | Virtual] = []  # finished pieces before ``buf``
        self._starts: list[int] = []  # their output offsets
        self._stack: list[bytes] = []  # types of the open boxes
        self.boxes: list[BoxInfo] = []  # every box ``walk_boxes`` would list, in closing order

    def __len__(self) -> int:
        return self._base + len(self.buf)

    def getvalue(self) -> bytes:
        """The output, which must hold no placeholder."""
        if any(isinstance(p, Virtual) for p in self._pieces):
            raise ValueError("the output has placeholders: use pieces()")
        return b"".join([*self._pieces, self.buf])  # type: ignore[list-item]

    def virtual(self, item: object, length: int) -> None:
        """Reserves ``length`` bytes of output for ``item``."""
        self._flush()
        self._starts.append(self._base)
        self._pieces.append(Virtual(item, length))
        self._base += length

    def pieces(self) -> list[bytes | Virtual]:
        """The output: in-memory bytes and placeholders, in order (no empty bytes)."""
        self._flush()
        return [p if isinstance(p, Virtual) else bytes(p) for p in self._pieces]

    def patch(self, pos: int, data: bytes) -> None:
        """Overwrites already written in-memory bytes at output offset ``pos``."""
        if pos >= self._base:
            self.buf[pos - self._base : pos - self._base + len(data)] = data
            return
        i = bisect.bisect_right(self._starts, pos) - 1
        piece, at = self._pieces[i], pos - self._starts[i]
        if isinstance(piece, Virtual) or at + len(data) > len(piece):
            raise ValueError(f"cannot patch {len(data)} bytes at {pos}")
        piece[at : at + len(data)] = data

    def _flush(self) -> None:
        if self.buf:
            self._starts.append(self._base)
            self._pieces.append(self.buf)
            self._base += len(self.buf)
            self.buf = bytearray()

    def _visible(self) -> bool:
        return all(t in CONTAINERS for t in self._stack)

    # --- fields -------------------------------------------------------------------------------

    def u8(self, value: int) -> None:
        self.buf.append(value)

    def u16(self, value: int) -> None:
        self.buf += _U16.pack(value)

    def i16(self, value: int) -> None:
        self.buf += _I16.pack(value)

    def u32(self, value: int) -> None:
        self.buf += _U32.pack(value)

    def i32(self, value: int) -> None:
        self.buf += _I32.pack(value)

    def u64(self, value: int) -> None:
        self.buf += _U64.pack(value)

    def uint(self, value: int, wide: bool) -> None:
        """A u64 when ``wide`` (version-1 fields), else a u32."""
        if wide:
            self.u64(value)
        else:
            self.u32(value)

    def fixed16_16(self, value: float) -> None:
        """An unsigned 16.16 fixed-point number (``tkhd`` width/height)."""
        self.u32(round(value * 65536))

    def zeros(self, count: int) -> None:
        self.buf += bytes(count)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data

    def write_boxes(self, data: bytes) -> None:
        """Writes ready-made boxes (a stored ``avcC``), recording them as boxes."""
        if self._visible():
            self.boxes += walk_boxes(data, len(self), len(self._stack))
        self.buf += data

    def mdat_header(self, payload_size: int) -> None:
        """Writes the header of an ``mdat`` whose payload follows outside this writer."""
        header = mdat_header(payload_size)
        self.boxes.append(BoxInfo(b"mdat", len(self), len(header) + payload_size,
                                  len(self._stack)))
        self.buf += header

    # --- boxes --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def box(self, box_type: bytes) -> Iterator[None]:
        """Writes a box header, the block's fields, then patches the box's size."""
        start, visible, depth = len(self), self._visible(), len(self._stack)
        self.buf += _HEADER.pack(0, box_type)
        self._stack.append(box_type)
        yield
        self._stack.pop()
        size = len(self) - start
        if size > U32_MAX:
            raise ValueError(f"{box_type!r} box of {size} bytes needs a largesize header")
        self.patch(start, _U32.pack(size))
        if visible:
            self.boxes.append(BoxInfo(box_type, start, size, depth))

    @contextlib.contextmanager
    def full_box(self, box_type: bytes, version: int = 0, flags: int = 0) -> Iterator[None]:
        """A box whose payload starts with a version byte and 24 bits of flags."""
        with self.box(box_type):
            self.u32(version << 24 | flags)
            yield

    def raw_box(self, box_type: bytes, payload: bytes | bytearray) -> None:
        """A whole box from its payload."""
        if self._visible():
            self.boxes.append(BoxInfo(box_type, len(self), 8 + len(payload), len(self._stack)))
        self.buf += _HEADER.pack(8 + len(payload), box_type)
        self.buf += payload


# trun sample_flags (ISO/IEC 14496-12 8.8.3.1): depends_on=2 (I), or depends_on=1 + non-sync
SAMPLE_FLAGS_KEY = 0x0200_0000
SAMPLE_FLAGS_NON_KEY = 0x0101_0000


def mdat_header(payload_size: int) -> bytes:
    """The header of an ``mdat`` holding ``payload_size`` bytes: 8 bytes, or 16 with a
    64-bit ``largesize`` when the box would not fit a u32."""
    if payload_size + _HEADER.size <= U32_MAX:
        return _HEADER.pack(payload_size + _HEADER.size, b"mdat")
    return _LARGE_HEADER.pack(1, b"mdat", payload_size + _LARGE_HEADER.size)


# --- reading back (debug dumps, tests) ---------------------------------------------------------

#: container box type -> bytes between its header and its first child
CONTAINERS: dict[bytes, int] = {
    b"moov": 0, b"trak": 0, b"edts": 0, b"mdia": 0, b"minf": 0, b"dinf": 0, b"stbl": 0,
    b"mvex": 0, b"moof": 0, b"traf": 0,
    b"stsd": 8,  # version/flags, entry_count
    b"dref": 8,
    b"avc1": 78, b"hvc1": 78,  # VisualSampleEntry fields
}


class BoxInfo(NamedTuple):
    """One box found by ``walk_boxes``: its type, file offset, total size, nesting depth."""

    box_type: bytes
    offset: int
    size: int
    depth: int


def walk_boxes(
    data: bytes | bytearray | memoryview, base: int = 0, depth: int = 0, end: int | None = None
) -> Iterator[BoxInfo]:
    """The boxes in ``data[:end]`` in file order, descending into ``CONTAINERS``.

    A box may extend past the data (an ``mdat`` whose payload is not in memory): it is
    listed, not descended into, and ends the walk. ``base`` is added to every offset.
    """
    view = memoryview(data)
    pos, limit = 0, len(view) if end is None else end
    while pos + _HEADER.size <= limit:
        size, box_type = _HEADER.unpack_from(view, pos)
        header = _HEADER.size
        if size == 1:
            size = _U64.unpack_from(view, pos + 8)[0]
            header = _LARGE_HEADER.size
        elif size == 0:
            size = len(view) - pos
        if size < header:
            raise ValueError(f"box {box_type!r} at {base + pos} has bad size {size}")
        yield BoxInfo(box_type, base + pos, size, depth)
        skip = CONTAINERS.get(box_type)
        if skip is not None and pos + size <= len(view):
            inner = view[pos + header + skip : pos + size]
            yield from walk_boxes(inner, base + pos + header + skip, depth + 1)
        pos += size


def format_box_tree(data: bytes | bytearray | memoryview, base: int = 0) -> list[str]:
    """One line per box: indented type, ``@offset`` and size."""
    return format_boxes(walk_boxes(data, base))


def format_boxes(boxes: Iterable[BoxInfo]) -> list[str]:
    """``format_box_tree``'s lines for boxes listed in file order (``BoxWriter.boxes``,
    sorted by offset)."""
    return [
        f"{'  ' * b.depth}{b.box_type.decode('latin-1')} @{b.offset} size {b.size}"
        for b in boxes
    ]
