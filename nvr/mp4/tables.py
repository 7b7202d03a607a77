"""Generated sample tables: the parts of a file that grow with its number of frames.

``stts``, ``stsz``, ``stss`` and a ``trun``'s samples take ~31 MB for 24 hours, so a file's
layout holds them as ``Table`` pieces of known length (from the selections' summaries,
``TrackTables``) and generates bytes only when a byte range asks for them: through a
``Runner`` (the ``run_blocking`` seam, a worker thread), decoding the indexes of at most
``SEGMENTS_PER_CALL`` recordings per call, fetched from the database (``IndexFetch``, on
the trio thread) only then. The boxes around the tables are ``nvr.mp4.movie_boxes``'.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nvr.db.recording import VideoIndexArrays
from nvr.mp4.boxes import SAMPLE_FLAGS_KEY, SAMPLE_FLAGS_NON_KEY
from nvr.mp4.selection import (
    SEGMENTS_PER_CALL,
    IndexFetch,
    Runner,
    Selection,
    decoded,
    index_of,
)


@dataclass(frozen=True, slots=True)
class TrackTables:
    """What the tables of one file are generated from: the selections, where each
    segment's frames start in the track, and how ``stts`` runs merge across segments.

    ``stts`` is the run-length encoding of all selected durations; per segment it is the
    segment's own runs, minus the first when it continues the previous segment's last run
    (``merge``), with the last run's count raised by the frames of the following segments
    that continue it (``carry``). So each segment's entries are known from its own frames
    and the summaries alone."""

    sels: tuple[Selection, ...]
    fetch: IndexFetch | None
    frame_starts: tuple[int, ...]  # first frame number (0-based) of each segment in the track
    merge: tuple[bool, ...]
    carry: tuple[int, ...]
    #: per segment, bytes in front of each of its key frames (in-band parameter sets),
    #: counted in the key frame's size
    key_extra: tuple[int, ...]

    @classmethod
    def of(cls, sels: Sequence[Selection], fetch: IndexFetch | None,
           key_extra: Sequence[int] = ()) -> TrackTables:
        n = len(sels)
        merge = [k > 0 and sels[k - 1].last_dur == sels[k].first_dur for k in range(n)]
        carry = [0] * n
        for k in range(n - 2, -1, -1):
            nxt = sels[k + 1]
            if merge[k + 1]:
                carry[k] = nxt.frames + carry[k + 1] if nxt.runs == 1 else nxt.first_run_len
        frame_starts = itertools.accumulate((s.frames for s in sels[:-1]), initial=0)
        extra = tuple(key_extra) or (0,) * n
        return cls(tuple(sels), fetch, tuple(frame_starts), tuple(merge), tuple(carry), extra)

    def length(self, kind: str, k: int) -> int:
        """Bytes of table ``kind`` that segment ``k`` contributes."""
        s = self.sels[k]
        if kind == "stsz":
            return 4 * s.frames
        if kind == "stss":
            return 4 * s.keys
        if kind == "stts":
            return 8 * (s.runs - self.merge[k])
        if kind == "trun":
            return 12 * s.frames
        raise AssertionError(kind)

    def needs_index(self, kind: str, k: int) -> bool:
        return not (kind == "stts" and self.sels[k].runs == 1)

    def render(self, kind: str, k: int, index: VideoIndexArrays | bytes | None) -> bytes:
        """Segment ``k``'s bytes of table ``kind`` (``index`` when ``needs_index``)."""
        s = self.sels[k]
        if index is None:  # stts of a single run
            return np.array([s.frames + self.carry[k], s.first_dur], dtype=">u4").tobytes()
        ix = decoded(index)
        b, e = s.begin, s.end
        if kind == "stsz":
            sizes = ix.sizes[b:e] + self.key_extra[k] * ix.is_key[b:e]
            return sizes.astype(">u4").tobytes()
        if kind == "stss":
            return (np.flatnonzero(ix.is_key[b:e]) + 1 + self.frame_starts[k]).astype(
                ">u4").tobytes()
        if kind == "trun":
            table = np.empty((e - b, 3), dtype=">u4")
            table[:, 0] = ix.durations[b:e]
            table[:, 1] = ix.sizes[b:e]
            table[:, 2] = np.where(ix.is_key[b:e], SAMPLE_FLAGS_KEY, SAMPLE_FLAGS_NON_KEY)
            return table.tobytes()
        durations = ix.durations[b:e]
        run_starts = np.concatenate(([0], np.flatnonzero(np.diff(durations)) + 1))
        table = np.empty((len(run_starts), 2), dtype=np.int64)
        table[:, 0] = np.diff(run_starts, append=len(durations))
        table[:, 1] = durations[run_starts]
        if self.merge[k]:
            table = table[1:]
        if len(table):
            table[-1, 0] += self.carry[k]
        return table.astype(">u4").tobytes()

    def render_many(self, kind: str, ks: Sequence[int],
                    indexes: Sequence[VideoIndexArrays | bytes | None]) -> bytes:
        return b"".join([self.render(kind, k, ix) for k, ix in zip(ks, indexes, strict=True)])


@dataclass(frozen=True, slots=True)
class Table:
    """A generated table: the concatenation of table ``kind`` of segments ``[k0, k1)``."""

    tables: TrackTables
    kind: str
    k0: int
    starts: tuple[int, ...]  # offset of each segment's bytes in the table, then the length

    @classmethod
    def of(cls, tables: TrackTables, kind: str, k0: int, k1: int) -> Table:
        lengths = (tables.length(kind, k) for k in range(k0, k1))
        return cls(tables, kind, k0, tuple(itertools.accumulate(lengths, initial=0)))

    @property
    def length(self) -> int:
        return self.starts[-1]

    def signature(self) -> bytes:
        """What the ETag hashes for this piece: its kind and length (its bytes derive from
        the selections, which the ETag hashes too)."""
        return f"table {self.kind} {self.length}\n".encode()

    def _plan(self, lo: int, hi: int) -> tuple[list[int], int, int]:
        """Segments to render for ``[lo, hi)`` (at most ``SEGMENTS_PER_CALL``), the offset
        of the first one's bytes in the table, and the end actually covered."""
        i = bisect.bisect_right(self.starts, lo) - 1
        first, ks = self.starts[i], list[int]()
        while i < len(self.starts) - 1 and self.starts[i] < hi and len(ks) < SEGMENTS_PER_CALL:
            if self.starts[i + 1] > self.starts[i]:
                ks.append(self.k0 + i)
            i += 1
        return ks, first, min(hi, self.starts[i])

    def _indexes(self, ks: Sequence[int]) -> list[VideoIndexArrays | bytes | None]:
        t = self.tables
        return [index_of(t.sels[k].seg, t.fetch) if t.needs_index(self.kind, k) else None
                for k in ks]

    async def read(self, lo: int, hi: int, run: Runner) -> bytes:
        """Bytes ``[lo, hi')`` of the table for some ``lo < hi' <= hi``."""
        ks, first, hi = self._plan(lo, hi)
        data = await run(self.tables.render_many, self.kind, ks, self._indexes(ks))
        return data[lo - first : hi - first]

    def read_sync(self, lo: int, hi: int) -> bytes:
        ks, first, hi = self._plan(lo, hi)
        return self.tables.render_many(self.kind, ks, self._indexes(ks))[lo - first : hi - first]

