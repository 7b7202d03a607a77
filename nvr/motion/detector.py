"""The motion detector: per analysed picture, how much of each cell of a grid changed
against a slowly adapting background. Pure numpy; no ``trio``, no ``av``.

Input: the luma plane already scaled to ``ANALYSIS_WIDTH`` x ``ANALYSIS_HEIGHT`` (the
decoder asks FFmpeg for that size, area-averaged, which also averages away most sensor
noise). Per picture:

1. ``diff = picture - background``; its median is the picture's global brightness shift,
   subtracted so that gradual light changes and compression flicker (small uniform
   shifts) are not motion;
2. the noise level is estimated robustly (median absolute deviation of ``diff``); a
   pixel changed if ``|diff - median|`` exceeds ``max(floor, k * noise)``, with ``floor``
   and ``k`` from the sensitivity;
3. a cell's value is the fraction of its pixels that changed; a cell *moved* if that
   fraction reaches the sensitivity's cell threshold; masked cells are always 0;
4. a *global change* (lights on, IR switching, the camera moved): the median shift is
   large, or most unmasked pixels changed. It is flagged, no cell is reported, and the
   background is reset to the picture so the detector settles at once;
5. the background follows the picture: quickly where nothing changed
   (``ALPHA_STILL``), slowly where something is moving (``ALPHA_CHANGED``), and fast where a
   pixel differs from the background but not from the previous picture
   (``ALPHA_SETTLED``): an object that stopped, or the place it left, fades into the
   background within about a second of analysed pictures instead of moving forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: the grid is GRID x GRID cells
GRID = 16
CELLS = GRID * GRID
ANALYSIS_WIDTH = GRID * 10
ANALYSIS_HEIGHT = GRID * 6
#: background adaptation per analysed picture where pixels changed / did not change
ALPHA_CHANGED = 0.02
ALPHA_STILL = 0.1
ALPHA_SETTLED = 0.25
#: a median shift above this many luma levels is a global change
GLOBAL_SHIFT = 24.0
#: more than this fraction of unmasked pixels changed is a global change
GLOBAL_FRACTION = 0.6
MIN_SENSITIVITY, MAX_SENSITIVITY, DEFAULT_SENSITIVITY = 1, 10, 5

Luma = npt.NDArray[np.uint8]
Cells = npt.NDArray[np.float32]  # shape (CELLS,), fraction of each cell changed, 0..1


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """Thresholds derived from a sensitivity of 1 (least) to 10 (most sensitive)."""

    pixel_floor: float  # luma levels a pixel must change by at least
    noise_factor: float  # ... and at least this many noise levels
    cell_fraction: float  # a cell moved if this fraction of its pixels changed

    @staticmethod
    def of(level: int) -> Sensitivity:
        if not MIN_SENSITIVITY <= level <= MAX_SENSITIVITY:
            raise ValueError(f"sensitivity {level} is not within 1..10")
        less = MAX_SENSITIVITY - level  # 0 (most sensitive) .. 9
        return Sensitivity(
            pixel_floor=8.0 + 2.0 * less, noise_factor=4.0 + 0.5 * less,
            cell_fraction=0.04 + 0.02 * less,
        )


@dataclass(frozen=True, slots=True)
class Analysis:
    """One analysed picture: ``cells`` is each cell's changed fraction (0 where masked or
    on a global change); ``moved`` the cells at or over the sensitivity's threshold."""

    cells: Cells
    moved: npt.NDArray[np.bool_]
    global_change: bool

    @property
    def motion(self) -> bool:
        return bool(self.moved.any())


def mask_from_cells(cells: frozenset[int] | set[int]) -> npt.NDArray[np.bool_]:
    """A boolean (CELLS,) array, True for ignored cells (row-major: cell = row * GRID + col)."""
    mask = np.zeros(CELLS, dtype=np.bool_)
    for c in cells:
        if not 0 <= c < CELLS:
            raise ValueError(f"cell {c} is not within 0..{CELLS - 1}")
        mask[c] = True
    return mask


class Detector:
    """Keeps the background of one camera; ``analyse`` takes pictures in order."""

    def __init__(self, sensitivity: int = DEFAULT_SENSITIVITY,
                 mask: frozenset[int] = frozenset()) -> None:
        self.sensitivity = Sensitivity.of(sensitivity)
        self.mask = mask_from_cells(mask)
        self._pixel_mask = np.repeat(
            np.repeat(self.mask.reshape(GRID, GRID), ANALYSIS_HEIGHT // GRID, axis=0),
            ANALYSIS_WIDTH // GRID, axis=1,
        )
        self._unmasked = max(1, int((~self._pixel_mask).sum()))
        self._background: npt.NDArray[np.float32] | None = None
        self._previous: npt.NDArray[np.float32] | None = None

    def reset(self) -> None:
        """Forgets the background (a new session, a new picture size)."""
        self._background = self._previous = None

    def analyse(self, luma: Luma) -> Analysis:
        if luma.shape != (ANALYSIS_HEIGHT, ANALYSIS_WIDTH):
            raise ValueError(f"picture of shape {luma.shape}, expected "
                             f"{(ANALYSIS_HEIGHT, ANALYSIS_WIDTH)}")
        picture = luma.astype(np.float32)
        background, previous = self._background, self._previous
        self._previous = picture
        if background is None or previous is None:
            self._background = picture.copy()
            return _still(global_change=False)
        diff = picture - background
        shift = float(np.median(diff))
        deviation = np.abs(diff - shift)
        noise = float(np.median(deviation)) * 1.4826
        s = self.sensitivity
        threshold = max(s.pixel_floor, s.noise_factor * noise)
        changed = deviation > threshold
        changed &= ~self._pixel_mask
        if abs(shift) > GLOBAL_SHIFT or changed.sum() > GLOBAL_FRACTION * self._unmasked:
            self._background = picture.copy()
            return _still(global_change=True)
        cells = _cell_fractions(changed)
        settled = np.abs(picture - previous - shift) <= threshold
        alpha = np.where(
            changed,
            np.where(settled, np.float32(ALPHA_SETTLED), np.float32(ALPHA_CHANGED)),
            np.float32(ALPHA_STILL),
        )
        # The global shift is followed at once (a gradual light change never builds up
        # a lag), the rest at each pixel's rate.
        background += shift + alpha * (diff - shift)
        return Analysis(cells, cells >= s.cell_fraction, False)


def _cell_fractions(changed: npt.NDArray[np.bool_]) -> Cells:
    ch, cw = ANALYSIS_HEIGHT // GRID, ANALYSIS_WIDTH // GRID
    counts = changed.reshape(GRID, ch, GRID, cw).sum(axis=(1, 3), dtype=np.int32)
    fractions: Cells = (counts.reshape(CELLS) / np.float32(ch * cw)).astype(np.float32)
    return fractions


def _still(*, global_change: bool) -> Analysis:
    cells = np.zeros(CELLS, dtype=np.float32)
    return Analysis(cells, np.zeros(CELLS, dtype=np.bool_), global_change)
