"""Motion search against a brute-force reference over random histories: ``search`` (all
rows at once) and ``search_newest`` (windows back from the end, stopping once its page is
settled) give the reference's exact spans; ``search_newest`` reads only rows whose union
meets the region (its fetch is asked for them), and stops early when the page is full."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from nvr.motion.detector import CELLS
from nvr.motion.search import (
    FIRST_WINDOW,
    MERGE_GAP,
    UNITS_PER_SEC,
    Row,
    Span,
    search,
    search_newest,
)
from nvr.motion.summary import ENTRY, cells_to_bitmap

SEC = UNITS_PER_SEC
MAX_WALL = 300 * SEC
T = 1_700_000_000 * SEC


def history(rng: np.random.Generator, n: int) -> list[Row]:
    """``n`` recordings by start: mostly back to back, some gaps (minutes to hours), some
    overlapping the one before (a clock step); random motion of a few wandering cells,
    some recordings still (empty union)."""
    rows: list[Row] = []
    t = T
    for i in range(n):
        wall = int(rng.integers(1, 301)) * SEC - int(rng.integers(0, 2)) * int(rng.integers(0, SEC))
        entries = []
        if rng.random() > 0.2:
            home = int(rng.integers(0, CELLS))
            for s in range(-(-wall // SEC) + int(rng.integers(0, 2))):
                if rng.random() < 0.3:
                    k = int(rng.integers(1, 12))
                    cells = np.unique((home + rng.integers(-20, 21, size=k)) % CELLS)
                    for c in cells.tolist():
                        entries.append((s, c, int(rng.integers(1, 256))))
        arr = np.array(entries, dtype=ENTRY)
        union = np.zeros(CELLS, np.bool_)
        union[arr["cell"]] = True
        rows.append((7 << 32 | i, t, wall, cells_to_bitmap(union), arr.tobytes()))
        r = rng.random()
        t += wall + (0 if r < 0.6 else int(rng.integers(1, 3 * 3600)) * SEC if r < 0.9
                     else -int(rng.integers(1, wall // SEC + 2)) * SEC)
    rows.sort(key=lambda row: row[1])
    return rows


def reference(rows: Sequence[Row], region: np.ndarray, *, start: int, end: int,  # type: ignore[type-arg]
              min_fraction: float, min_duration: int, limit: int | None) -> list[Span]:
    """Second by second, in plain Python."""
    n = int(region.sum())
    seconds = []  # (t0, t1, fraction, row)
    for i, (_, rstart, wall, _, blob) in enumerate(rows):
        levels: dict[int, int] = {}
        for e in np.frombuffer(blob, dtype=ENTRY).tolist():
            second, cell, level = e
            if region[cell]:
                levels[second] = levels.get(second, 0) + level
        for second, total in sorted(levels.items()):
            fraction = total / (255 * n)
            t0 = rstart + second * SEC
            t1 = min(t0 + SEC, rstart + wall)
            t0, t1 = max(t0, start), min(t1, end)
            if fraction >= min_fraction and t1 > t0:
                seconds.append((t0, t1, fraction, i))
    seconds.sort(key=lambda s: s[0])  # stable: by row, then second
    spans: list[tuple[int, int, float, set[int]]] = []
    for t0, t1, fraction, i in seconds:
        if spans and t0 <= spans[-1][1] + MERGE_GAP:
            s0, reach, peak, recs = spans[-1]
            spans[-1] = (s0, max(reach, t1), max(peak, fraction), recs | {i})
        else:
            spans.append((t0, t1, fraction, {i}))
    out = [Span(s0, reach, tuple(rows[i][0] & 0xFFFFFFFF for i in sorted(recs)), peak)
           for s0, reach, peak, recs in reversed(spans) if reach - s0 >= min_duration]
    return out[:limit] if limit is not None else out


def same(got: list[Span], want: list[Span]) -> None:
    assert [(s.start_90k, s.end_90k, s.recording_ids) for s in got] == [
        (s.start_90k, s.end_90k, s.recording_ids) for s in want]
    assert [s.peak for s in got] == pytest.approx([s.peak for s in want], rel=1e-12)


def region_of(rng: np.random.Generator) -> np.ndarray:  # type: ignore[type-arg]
    kind = rng.integers(0, 3)
    if kind == 0:
        return np.ones(CELLS, np.bool_)
    region = np.zeros((16, 16), np.bool_)
    if kind == 1:  # a rectangle
        r0, c0 = rng.integers(0, 16, size=2)
        region[r0: r0 + rng.integers(1, 9), c0: c0 + rng.integers(1, 9)] = True
    else:  # scattered cells
        region.flat[rng.integers(0, CELLS, size=rng.integers(1, 30))] = True
    return region.reshape(-1)


class Store:
    """The database's ``motion_search_rows`` over ``rows``: by start in ``[lo, hi)``,
    ending after ``after``, union meeting the region; counts what it hands out."""

    def __init__(self, rows: Sequence[Row], region: np.ndarray, after: int) -> None:  # type: ignore[type-arg]
        self.rows, self.after = rows, after
        self.bits = np.frombuffer(cells_to_bitmap(region), np.uint8)
        self.windows: list[tuple[int, int]] = []
        self.read: list[Row] = []

    def fetch(self, lo: int, hi: int) -> list[Row]:
        self.windows.append((lo, hi))
        out = [r for r in self.rows if lo <= r[1] < hi and r[1] + r[2] > self.after
               and (np.frombuffer(r[3], np.uint8) & self.bits).any()]
        self.read += out
        return out


async def run_inline(fn: Callable[[], list[Span]]) -> list[Span]:
    return fn()


@pytest.mark.parametrize("seed", range(8))
async def test_search_and_search_newest_match_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = history(rng, int(rng.integers(20, 400)))
    first, last = rows[0][1], max(r[1] + r[2] for r in rows)
    for _ in range(6):
        region = region_of(rng)
        a, b = sorted(rng.integers(first - 600 * SEC, last + 600 * SEC, size=2).tolist())
        start, end = (first - SEC, last + SEC) if rng.random() < 0.3 else (a, b + 1)
        q = dict(start=start, end=end, min_fraction=float(rng.choice([0.0, rng.random() * 0.2])),
                 min_duration=int(rng.choice([0, SEC, int(rng.integers(0, 30 * SEC))])))
        meets = [r for r in rows if r[1] > start - MAX_WALL and r[1] < end and r[1] + r[2] > start]
        every = reference(meets, region, limit=None, **q)  # type: ignore[arg-type]
        for limit in (None, 1, 2, 7, 1000):
            want = every[:limit]
            same(search(meets, region, limit=limit, **q), want)  # type: ignore[arg-type]
            if limit is None:
                continue
            store = Store(rows, region, start)
            got = await search_newest(store.fetch, run_inline, region, limit=limit,
                                      max_wall=MAX_WALL, **q)  # type: ignore[arg-type]
            same(got, want)
            # windows tile back from the end without overlap; only meeting rows read
            assert store.windows[0][1] == end
            assert all(w[0] == v[1] for w, v in zip(store.windows, store.windows[1:],
                                                    strict=False))
            for r in store.read:
                bits = np.unpackbits(np.frombuffer(r[3], np.uint8), bitorder="little")
                assert (bits.astype(bool) & region).any()


async def test_search_newest_stops_once_its_page_is_settled() -> None:
    """A busy week: a page of 5 spans is found in the first window; the rest of the week
    is never asked for. A quiet region makes it read back to the start."""
    rows: list[Row] = []
    region = np.zeros(CELLS, np.bool_)
    region[0] = True
    for i in range(7 * 24 * 60):  # one-minute recordings, cell 0 moving at second 10
        arr = np.array([(10, 0, 200)], dtype=ENTRY)
        rows.append((i, T + i * 60 * SEC, 60 * SEC, cells_to_bitmap(region), arr.tobytes()))
    start, end = T, T + 7 * 24 * 3600 * SEC
    q = dict(start=start, end=end, min_fraction=0.0, min_duration=0, max_wall=MAX_WALL)
    store = Store(rows, region, start)
    got = await search_newest(store.fetch, run_inline, region, limit=5, **q)  # type: ignore[arg-type]
    assert [s.recording_ids for s in got] == [(i,) for i in range(len(rows) - 1, len(rows) - 6, -1)]
    assert store.windows == [(end - FIRST_WINDOW, end)]
    assert len(store.read) == FIRST_WINDOW // (60 * SEC)
    # another region: nothing moves there, every window down to the start is asked for
    other = np.zeros(CELLS, np.bool_)
    other[1] = True
    store = Store(rows, other, start)
    assert await search_newest(store.fetch, run_inline, other, limit=5, **q) == []  # type: ignore[arg-type]
    assert store.windows[-1][0] == start - MAX_WALL + 1 and store.read == []


async def test_a_span_reaching_back_past_a_window_is_not_cut_there() -> None:
    """Recording A starts before the first window and moves through its end; B (in the
    window) goes on moving: one span, A and B, however a page of 1 is read."""
    region = np.ones(CELLS, np.bool_)
    end = T + 24 * 3600 * SEC
    lo = end - FIRST_WINDOW

    def rec(i: int, start: int, wall_s: int, moving: range) -> Row:
        arr = np.array([(s, 5, 255) for s in moving], dtype=ENTRY)
        return (i, start, wall_s * SEC, cells_to_bitmap(region), arr.tobytes())

    for gap in (0, 1, 2):  # seconds between A's last moving second and B's first
        a = rec(1, lo - 100 * SEC, 300, range(300))
        b = rec(2, lo + (200 + gap) * SEC, 60, range(5))
        rows = [a, b]
        q = dict(start=T, end=end, min_fraction=0.0, min_duration=0)
        want = reference(rows, region, limit=1, **q)  # type: ignore[arg-type]
        assert len(want) == 1 and want[0].recording_ids == ((1, 2) if gap <= 1 else (2,))
        store = Store(rows, region, T)
        got = await search_newest(store.fetch, run_inline, region, limit=1, max_wall=MAX_WALL,
                                  **q)  # type: ignore[arg-type]
        same(got, want)
        # settled only once A was read: B's span starts within max_wall + 1 s of the window
        assert len(store.windows) == 2
