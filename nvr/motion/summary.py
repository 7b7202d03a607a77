"""Per-recording motion summaries: what the detector saw, per second of a recording's
media time, kept small enough to store with every recording and to search a month of
them without decoding any video. Pure numpy; no ``trio``, no ``av``.

Stored form (table ``recording_motion``, docs/design.md, "Motion"):

- ``cells``: 32 bytes, the union over the recording of the cells that moved (bit ``c % 8``
  of byte ``c // 8`` for cell ``c = row * 16 + col``), so a search skips recordings that
  never moved in its region without reading their entries;
- ``entries``: 4 bytes per (second, moved cell): the second from the recording's start
  (uint16 LE), the cell (uint8) and its level (uint8, 1..255: the largest fraction of the
  cell that changed in any analysed picture of that second, times 255, rounded up);
  sorted by second then cell;
- ``global_seconds``: uint16 LE seconds in which a global change was flagged;
- ``motion_seconds``: seconds with at least one moved cell; ``frames``/``skipped``: the
  pictures analysed and those skipped because analysis fell behind.

A quiet minute is ~50 bytes; a minute with a person crossing is a few hundred; the
worst case (every cell moving every second of a 5-minute recording) is 300 KB, which
``MAX_ENTRY_BYTES`` caps by keeping the strongest cells of each second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nvr.motion.detector import CELLS, Analysis

UNITS_PER_SEC = 90_000
ENTRY = np.dtype([("second", "<u2"), ("cell", "u1"), ("level", "u1")])
#: at most this many cells are kept per second (the strongest)
MAX_CELLS_PER_SECOND = 64


@dataclass(frozen=True, slots=True)
class MotionSummary:
    cells: bytes
    entries: bytes
    global_seconds: bytes
    motion_seconds: int
    frames: int
    skipped: int

    @property
    def nbytes(self) -> int:
        return len(self.cells) + len(self.entries) + len(self.global_seconds) + 12

    def entry_array(self) -> npt.NDArray[np.void]:
        return np.frombuffer(self.entries, dtype=ENTRY)


def cells_to_bitmap(cells: npt.NDArray[np.bool_]) -> bytes:
    """(CELLS,) booleans -> 32 bytes, bit ``c % 8`` of byte ``c // 8``."""
    return np.packbits(cells.astype(np.uint8), bitorder="little").tobytes()


def bitmap_to_cells(bitmap: bytes) -> npt.NDArray[np.bool_]:
    if len(bitmap) != CELLS // 8:
        raise ValueError(f"a cell bitmap has {CELLS // 8} bytes, not {len(bitmap)}")
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits.astype(np.bool_)


def parse_cells(text: str) -> list[int]:
    """Cells from text: 64 hex digits (the bitmap of ``cells_to_bitmap``, as the API takes
    it), or comma-separated cell numbers and ranges (``0-15,32``); "" or "none": no cells.
    Raises ``ValueError`` with a one-line reason."""
    text = text.strip().lower()
    if text in ("", "none"):
        return []
    if len(text) == CELLS // 4 and all(c in "0123456789abcdef" for c in text):
        return [int(c) for c in np.flatnonzero(bitmap_to_cells(bytes.fromhex(text)))]
    cells: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            a, b = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a cell number or range") from None
        if not 0 <= a <= b < CELLS:
            raise ValueError(f"cells must be within 0..{CELLS - 1} (and ranges ascending)")
        cells.update(range(a, b + 1))
    return sorted(cells)


@dataclass(slots=True)
class SummaryBuilder:
    """Accumulates one recording's analysed pictures (in order) into a ``MotionSummary``."""

    _second: int = -1
    _levels: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(CELLS, np.uint8))
    _union: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(CELLS, np.bool_))
    _chunks: list[npt.NDArray[np.void]] = field(default_factory=list)
    _global: list[int] = field(default_factory=list)
    _motion_seconds: int = 0
    frames: int = 0
    skipped: int = 0

    def add(self, media_offset_90k: int, analysis: Analysis) -> None:
        """One analysed picture, ``media_offset_90k`` after the recording's start."""
        second = min(max(media_offset_90k, 0) // UNITS_PER_SEC, 0xFFFF)
        if second != self._second:
            self._end_second()
            self._second = second
        self.frames += 1
        if analysis.global_change:
            if not self._global or self._global[-1] != second:
                self._global.append(second)
            return
        if analysis.motion:
            levels = np.where(
                analysis.moved, np.ceil(analysis.cells * 255), 0).astype(np.uint8)
            np.maximum(self._levels, levels, out=self._levels)

    def _end_second(self) -> None:
        if self._second < 0 or not self._levels.any():
            return
        cells = np.flatnonzero(self._levels)
        if len(cells) > MAX_CELLS_PER_SECOND:
            strongest = np.argsort(self._levels[cells], kind="stable")[-MAX_CELLS_PER_SECOND:]
            cells = np.sort(cells[strongest])
        chunk = np.empty(len(cells), dtype=ENTRY)
        chunk["second"] = self._second
        chunk["cell"] = cells
        chunk["level"] = self._levels[cells]
        self._chunks.append(chunk)
        self._union[cells] = True
        self._motion_seconds += 1
        self._levels[:] = 0

    def finish(self) -> MotionSummary:
        self._end_second()
        self._second = -1
        entries = np.concatenate(self._chunks) if self._chunks else np.empty(0, ENTRY)
        return MotionSummary(
            cells=cells_to_bitmap(self._union),
            entries=entries.tobytes(),
            global_seconds=np.array(self._global, dtype="<u2").tobytes(),
            motion_seconds=self._motion_seconds,
            frames=self.frames,
            skipped=self.skipped,
        )
