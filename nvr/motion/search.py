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

``search_newest`` answers a paginated request (newest first, at most ``limit``) without
reading the whole range when it does not need to: it asks for the recordings that moved
in the region (the stored per-recording union, tested where they are stored) one time
window at a time going back from ``end``, each window twice as long as the one before,
and stops as soon as the ``limit`` newest spans can no longer change (``settled``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nvr.motion.detector import CELLS
from nvr.motion.summary import ENTRY, cells_to_bitmap

UNITS_PER_SEC = 90_000
MERGE_GAP = UNITS_PER_SEC
ID_MASK = (1 << 32) - 1
#: the first time window ``search_newest`` reads (then 2x, 4x...): a few hours of a busy
#: camera usually hold a page of spans; a quiet one costs a few more (cheap) windows
FIRST_WINDOW = 6 * 3600 * UNITS_PER_SEC

#: (composite id, start_time_90k, wall_duration_90k, cells bitmap, entries), by start
Row = tuple[int, int, int, bytes, bytes]


@dataclass(frozen=True, slots=True)
class Span:
    start_90k: int
    end_90k: int
    recording_ids: tuple[int, ...]
    peak: float


@dataclass(frozen=True, slots=True)
class Seconds:
    """The seconds of some rows that moved in the region, as parallel arrays: wall time
    ``[t0, t1)`` (clipped to the search's range), the region's fraction, and the index of
    the row (in the rows given, which are by start) holding it; ``ids`` are the rows'
    recording ids."""

    t0: npt.NDArray[np.int64]
    t1: npt.NDArray[np.int64]
    fraction: npt.NDArray[np.float64]
    row: npt.NDArray[np.int64]
    ids: npt.NDArray[np.int64]


def _none(ids: npt.NDArray[np.int64]) -> Seconds:
    e = np.empty(0, np.int64)
    return Seconds(e, e, np.empty(0, np.float64), e, ids)


def moving_seconds(
    rows: Sequence[Row],
    region: npt.NDArray[np.bool_],
    *,
    start: int,
    end: int,
    min_fraction: float,
) -> Seconds:
    """The seconds of ``rows`` in ``[start, end)`` whose region fraction reaches
    ``min_fraction`` (the costly part of a search: one pass over the entries)."""
    if region.shape != (CELLS,) or not region.any():
        raise ValueError("the region must name at least one cell")
    if not rows:
        return _none(np.empty(0, np.int64))
    region_bits = np.frombuffer(cells_to_bitmap(region), dtype=np.uint8)
    cids_t, starts_t, walls_t, unions_t, blobs_t = zip(*rows, strict=True)
    all_ids = np.array(cids_t, dtype=np.int64) & ID_MASK
    unions = np.frombuffer(b"".join(unions_t), dtype=np.uint8).reshape(len(rows), -1)
    hit = np.flatnonzero((unions & region_bits).any(axis=1))
    if not len(hit):
        return _none(all_ids)
    blobs = [blobs_t[i] for i in hit.tolist()]
    sizes = np.array([len(b) for b in blobs], dtype=np.int64) // ENTRY.itemsize
    # each entry as one little-endian uint32: second | cell << 16 | level << 24 (ENTRY)
    packed = np.frombuffer(b"".join(blobs), dtype="<u4")
    starts, walls = np.array(starts_t, np.int64)[hit], np.array(walls_t, np.int64)[hit]
    row_of = np.repeat(np.arange(len(hit), dtype=np.int32), sizes)
    if not region.all():
        inside = region[(packed >> 16) & 0xFF]
        packed, row_of = packed[inside], row_of[inside]
    if not len(packed):
        return _none(all_ids)
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
    rows_idx = keys >> 16
    t0 = starts[rows_idx] + (keys & 0xFFFF) * UNITS_PER_SEC
    t1 = np.minimum(t0 + UNITS_PER_SEC, starts[rows_idx] + walls[rows_idx])
    t0, t1 = np.maximum(t0, start), np.minimum(t1, end)
    ok = t1 > t0
    return Seconds(t0[ok], t1[ok], fraction[ok], hit[rows_idx[ok]], all_ids)


def spans_of(parts: Sequence[Seconds], *, min_duration: int, limit: int | None) -> list[Span]:
    """The spans (newest first, at most ``limit``) of the moving seconds of consecutive
    groups of rows (``parts``, oldest group first)."""
    offsets = np.cumsum([0] + [len(p.ids) for p in parts])
    t0 = np.concatenate([p.t0 for p in parts])
    if not len(t0):
        return []
    t1 = np.concatenate([p.t1 for p in parts])
    fraction = np.concatenate([p.fraction for p in parts])
    rows_idx = np.concatenate([p.row + off for p, off in zip(parts, offsets, strict=False)])
    ids = np.concatenate([p.ids for p in parts])
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
    seconds = moving_seconds(rows, region, start=start, end=end, min_fraction=min_fraction)
    return spans_of([seconds], min_duration=min_duration, limit=limit)


#: ``(lo, hi) -> rows``: the recordings that start in ``[lo, hi)``, end after the search's
#: start and moved in its region (a ``Row`` each, by start)
Fetch = Callable[[int, int], Sequence[Row]]
Run = Callable[[Callable[[], list[Span]]], Awaitable[list[Span]]]


def settled(spans: Sequence[Span], read_from: int, max_wall: int) -> bool:
    """Whether the (newest first) ``spans``, found from every recording that starts at or
    after ``read_from``, stay exactly as they are whatever older recordings hold. An older
    recording ends before ``read_from + max_wall``: its seconds can reach (merge into,
    extend, add a recording or a peak to) only a span starting at most ``MERGE_GAP``
    after that; later spans are final."""
    return bool(spans) and spans[-1].start_90k > read_from + max_wall + MERGE_GAP


async def search_newest(
    fetch: Fetch,
    run: Run,
    region: npt.NDArray[np.bool_],
    *,
    start: int,
    end: int,
    min_fraction: float,
    min_duration: int,
    limit: int,
    max_wall: int,
) -> list[Span]:
    """``search(...)`` over every recording overlapping ``[start, end)`` (each lasting at
    most ``max_wall``), the same answer, reading windows back from ``end`` only until the
    ``limit`` newest spans are settled. ``fetch`` reads (on the caller's thread: the
    database's), ``run`` runs the arithmetic (a worker thread). Each window's entries are
    gone through once; only the (cheap) joining of seconds into spans is redone."""
    parts: list[Seconds] = []  # oldest window first
    lo_bound = start - max_wall + 1
    hi, width = end, FIRST_WINDOW
    while True:
        lo = max(hi - width, lo_bound)
        rows = fetch(lo, hi)

        def step(rows: Sequence[Row] = rows) -> list[Span]:
            parts.insert(0, moving_seconds(rows, region, start=start, end=end,
                                           min_fraction=min_fraction))
            return spans_of(parts, min_duration=min_duration, limit=limit)

        spans = await run(step)
        if lo == lo_bound or (len(spans) == limit and settled(spans, lo, max_wall)):
            return spans
        hi, width = lo, width * 2
