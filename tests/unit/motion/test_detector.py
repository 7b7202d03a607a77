"""The detector and summaries on the fixture scenes (fixtures/make_fixtures.py,
``motion_clip``), decoded by the real decoder at 5 pictures/s of the 30 fps clips."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.make_fixtures import (
    GLOBAL_FRAME,
    SQUARE_SIZE,
    SQUARE_START_FRAME,
    SQUARE_TOP,
    motion_clip,
    square_x,
)
from nvr.motion.decode import LumaDecoder
from nvr.motion.detector import (
    ANALYSIS_HEIGHT,
    ANALYSIS_WIDTH,
    CELLS,
    GRID,
    Analysis,
    Detector,
    Sensitivity,
)
from nvr.motion.summary import SummaryBuilder, bitmap_to_cells
from nvr.testing.replay import load_packets

EVERY = 6  # 30 fps / 5 analysed pictures a second
CELL_W, CELL_H = 320 // GRID, 192 // GRID


def analyse(scene: str, detector: Detector | None = None) -> list[tuple[int, Analysis]]:
    """(frame number, analysis) for every analysed frame of a scene."""
    packets = load_packets(str(motion_clip(scene)))
    decoder = LumaDecoder(packets[0].sample_entry)
    pictures = decoder.decode([(bytes(p.data), i % EVERY == 0) for i, p in enumerate(packets)])
    assert decoder.errors == 0
    detector = detector or Detector()
    return [(i, detector.analyse(p)) for i, p in enumerate(pictures) if p is not None]


def crossed_cells(first: int, last: int) -> set[int]:
    """Cells the square of the ``square`` scene covers in frames first..last."""
    h, w = SQUARE_SIZE
    cells = set()
    for f in range(first, last + 1):
        x = square_x(f)
        for row in range(SQUARE_TOP // CELL_H, (SQUARE_TOP + h - 1) // CELL_H + 1):
            for col in range(x // CELL_W, (x + w - 1) // CELL_W + 1):
                cells.add(row * GRID + col)
    return cells


@pytest.mark.parametrize("scene", ["static", "noise", "gradual"])
def test_no_motion_in_still_scenes(scene: str) -> None:
    results = analyse(scene)
    assert len(results) == 30
    assert not any(a.motion or a.global_change for _, a in results)
    # noise is seen but stays far below the cell threshold
    assert max(float(a.cells.max()) for _, a in results) < Sensitivity.of(5).cell_fraction / 2


def test_global_change_is_flagged_not_motion() -> None:
    results = analyse("global")
    flagged = [i for i, a in results if a.global_change]
    assert flagged == [GLOBAL_FRAME]
    assert not any(a.motion for _, a in results)


def test_square_moves_exactly_in_the_cells_it_crosses() -> None:
    results = analyse("square")
    moving = [i for i, a in results if a.motion]
    # the first analysed picture after the square starts moving sees it
    assert moving[0] == SQUARE_START_FRAME + EVERY
    union = set()
    for i, a in results:
        cells = set(np.flatnonzero(a.moved).tolist())
        # only where the square is or was in the last 2 s (the place it left fades)
        assert cells <= crossed_cells(max(0, i - 60), i), i
        union |= cells
    assert union == crossed_cells(0, 179)
    assert not any(a.global_change for _, a in results)


def test_masked_cells_never_report() -> None:
    masked = {8 * GRID + 5, 9 * GRID + 5, 8 * GRID + 6}
    results = analyse("square", Detector(mask=frozenset(masked)))
    union = set()
    for _, a in results:
        cells = set(np.flatnonzero(a.moved).tolist())
        assert not cells & masked
        assert not a.cells[list(masked)].any()
        union |= cells
    assert union == crossed_cells(0, 179) - masked


def test_sensitivity_bounds() -> None:
    with pytest.raises(ValueError):
        Sensitivity.of(0)
    with pytest.raises(ValueError):
        Detector(mask=frozenset({CELLS}))
    d = Detector()
    with pytest.raises(ValueError):
        d.analyse(np.zeros((ANALYSIS_HEIGHT, ANALYSIS_WIDTH + 1), np.uint8))


def test_summary_of_the_square() -> None:
    builder = SummaryBuilder()
    for i, a in analyse("square"):
        builder.add(i * 3000, a)
    s = builder.finish()
    assert s.frames == 30
    assert set(np.flatnonzero(bitmap_to_cells(s.cells)).tolist()) == crossed_cells(0, 179)
    entries = s.entry_array()
    assert sorted(set(entries["second"].tolist())) == [2, 3, 4, 5]
    assert s.motion_seconds == 4
    assert entries["level"].min() >= 1
    assert s.global_seconds == b""
    assert s.nbytes < 400


def test_summary_of_the_global_change() -> None:
    builder = SummaryBuilder()
    for i, a in analyse("global"):
        builder.add(i * 3000, a)
    s = builder.finish()
    assert np.frombuffer(s.global_seconds, "<u2").tolist() == [2]
    assert s.entries == b"" and s.motion_seconds == 0
    assert not bitmap_to_cells(s.cells).any()
