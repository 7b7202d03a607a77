"""Motion search over stored summaries (``nvr.motion.summary``): the spans in which a
region of the grid moved. Pure numpy, never any video; vectorised over every recording
of the range at once (a month of one-minute recordings is ~43,000 rows).

A second of a recording *moved in the region* when the region's motion fraction (the
sum over the region's cells of their level / 255, divided by the region's number of
cells) reaches ``min_fraction``. Consecutive such seconds (gaps up to ``MERGE_GAP``)
form a span, which is kept if it lasts ``min_duration`` at least. A span's ``peak`` is
its largest fraction; its recordings are the ids of the recordings it touches. Times
are wall times: a recording's start plus the second's offset (media seconds, which
differ from wall seconds by at most 500 ppm), the last second cut at the recording's
end.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nvr.motion.detector import CELLS
from nvr.motion.summary import ENTRY, cells_to_bitmap

UNITS_PER_SEC = 90_000
MERGE_GAP = UNITS_PER_SEC
ID_MASK = (1 << 32) - 1

#: (composite id, start_time_90k, wall_duration_90k, cells bitmap, entries), by start
Row = tuple[int, int, int, bytes, bytes]


@dataclass(frozen=True, slots=True)
class Span:
    start_90k: int
    end_90k: int
    recording_ids: tuple[int, ...]
    peak: float


def search(
    rows: Sequence[Row],
    region: npt.NDArray[np.bool_],
    *,
    start: int,
    end: int,
    min_fraction: float,
    min_duration: int,
) -> list[Span]:
    """Spans in ``[start, end)``, newest first (see the module docstring)."""
    if region.shape != (CELLS,) or not region.any():
        raise ValueError("the region must name at least one cell")
    if not rows:
        return []
    region_bits = np.frombuffer(cells_to_bitmap(region), dtype=np.uint8)
    unions = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.uint8).reshape(len(rows), -1)
    hit = np.flatnonzero((unions & region_bits).any(axis=1))
    if not len(hit):
        return []
    chosen = [rows[int(i)] for i in hit]
    blobs = [r[4] for r in chosen]
    sizes = (len(b) // ENTRY.itemsize for b in blobs)
    counts = np.fromiter(sizes, dtype=np.int64, count=len(blobs))
    entries = np.frombuffer(b"".join(blobs), dtype=ENTRY)
    row_of = np.repeat(np.arange(len(chosen)), counts)
    inside = region[entries["cell"]]
    entries, row_of = entries[inside], row_of[inside]
    if not len(entries):
        return []
    key = row_of.astype(np.int64) << 16 | entries["second"].astype(np.int64)
    keys, inverse = np.unique(key, return_inverse=True)
    weight = entries["level"].astype(np.float64) / (255.0 * int(region.sum()))
    fraction = np.bincount(inverse, weights=weight, minlength=len(keys))
    moving = fraction >= min_fraction
    keys, fraction = keys[moving], fraction[moving]
    if not len(keys):
        return []
    rows_idx = keys >> 16
    starts = np.fromiter((r[1] for r in chosen), dtype=np.int64, count=len(chosen))
    walls = np.fromiter((r[2] for r in chosen), dtype=np.int64, count=len(chosen))
    t0 = starts[rows_idx] + (keys & 0xFFFF) * UNITS_PER_SEC
    t1 = np.minimum(t0 + UNITS_PER_SEC, starts[rows_idx] + walls[rows_idx])
    t0, t1 = np.maximum(t0, start), np.minimum(t1, end)
    ok = t1 > t0
    t0, t1, fraction, rows_idx = t0[ok], t1[ok], fraction[ok], rows_idx[ok]
    if not len(t0):
        return []
    order = np.argsort(t0, kind="stable")
    t0, t1, fraction, rows_idx = t0[order], t1[order], fraction[order], rows_idx[order]
    reach = np.maximum.accumulate(t1)
    breaks = np.flatnonzero(t0[1:] > reach[:-1] + MERGE_GAP) + 1
    bounds = np.concatenate(([0], breaks, [len(t0)]))
    ids = np.fromiter((r[0] & ID_MASK for r in chosen), dtype=np.int64, count=len(chosen))
    spans = []
    for a, b in itertools.pairwise(bounds.tolist()):
        s, e = int(t0[a]), int(reach[b - 1])
        if e - s < min_duration:
            continue
        recs = tuple(int(i) for i in np.unique(ids[rows_idx[a:b]]))
        spans.append(Span(s, e, recs, float(fraction[a:b].max())))
    spans.reverse()
    return spans
