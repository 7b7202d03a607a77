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
    limit: int | None = None,
) -> list[Span]:
    """Spans in ``[start, end)``, newest first, at most ``limit`` (see the module
    docstring)."""
    if region.shape != (CELLS,) or not region.any():
        raise ValueError("the region must name at least one cell")
    if not rows:
        return []
    region_bits = np.frombuffer(cells_to_bitmap(region), dtype=np.uint8)
    cids_t, starts_t, walls_t, unions_t, blobs_t = zip(*rows, strict=True)
    unions = np.frombuffer(b"".join(unions_t), dtype=np.uint8).reshape(len(rows), -1)
    hit = np.flatnonzero((unions & region_bits).any(axis=1))
    if not len(hit):
        return []
    blobs = [blobs_t[i] for i in hit.tolist()]
    sizes = np.array([len(b) for b in blobs], dtype=np.int64) // ENTRY.itemsize
    # each entry as one little-endian uint32: second | cell << 16 | level << 24 (ENTRY)
    packed = np.frombuffer(b"".join(blobs), dtype="<u4")
    all_ids = np.array(cids_t, dtype=np.int64) & ID_MASK
    ids, starts, walls = all_ids[hit], np.array(starts_t, np.int64)[hit], np.array(
        walls_t, np.int64)[hit]
    row_of = np.repeat(np.arange(len(hit), dtype=np.int32), sizes)
    if not region.all():
        inside = region[(packed >> 16) & 0xFF]
        packed, row_of = packed[inside], row_of[inside]
    if not len(packed):
        return []
    key = row_of.astype(np.int64) << 16 | (packed & 0xFFFF).astype(np.int64)
    weight = (packed >> 24).astype(np.float64) / (255.0 * int(region.sum()))
    if len(key) > 1 and not (key[1:] >= key[:-1]).all():  # stored sorted; never trust it
        order = np.argsort(key, kind="stable")
        key, weight = key[order], weight[order]
    # one (recording, second) per run of equal keys
    heads = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    keys = key[heads]
    fraction = np.add.reduceat(weight, heads)
    moving = fraction >= min_fraction
    keys, fraction = keys[moving], fraction[moving]
    if not len(keys):
        return []
    rows_idx = keys >> 16
    t0 = starts[rows_idx] + (keys & 0xFFFF) * UNITS_PER_SEC
    t1 = np.minimum(t0 + UNITS_PER_SEC, starts[rows_idx] + walls[rows_idx])
    t0, t1 = np.maximum(t0, start), np.minimum(t1, end)
    ok = t1 > t0
    t0, t1, fraction, rows_idx = t0[ok], t1[ok], fraction[ok], rows_idx[ok]
    if not len(t0):
        return []
    if not (t0[1:] >= t0[:-1]).all():  # overlapping recordings (a clock step)
        order = np.argsort(t0, kind="stable")
        t0, t1, fraction, rows_idx = t0[order], t1[order], fraction[order], rows_idx[order]
    reach = np.maximum.accumulate(t1)
    first = np.concatenate(([0], np.flatnonzero(t0[1:] > reach[:-1] + MERGE_GAP) + 1))
    last = np.concatenate((first[1:], [len(t0)])) - 1
    span_start, span_end = t0[first], reach[last]
    peak = np.maximum.reduceat(fraction, first)
    keep = np.flatnonzero(span_end - span_start >= min_duration)[::-1]  # newest first
    if limit is not None:
        keep = keep[:limit]
    spans = []
    for k in keep.tolist():
        recs = ids[np.unique(rows_idx[first[k] : last[k] + 1])]
        spans.append(Span(int(span_start[k]), int(span_end[k]),
                          tuple(recs.tolist()), float(peak[k])))
    return spans
