"""The reads part of ``Database``: listings, indexes, summaries and what ``nvr check``
verifies.

Listings merge committed rows with pending recordings (those with at least one frame), in
id order, so readers see recordings as soon as their first frame is written, and with
archive-only recordings (``ListedRecording.archive_only``: the local file is gone, an
archive holds it; ``nvr.db.archives``). Everything
returned is a typed value (``nvr.db.types``): no ``sqlite3.Row`` or column list leaves
``nvr.db``. Not here: anything that writes (``catalog``, ``lifecycle``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from nvr.base import errors
from nvr.base.time90k import Time
from nvr.db import raw, raw_archive
from nvr.db.connection import map_sqlite_error
from nvr.db.raw import split_composite_id
from nvr.db.redactions import Redactions
from nvr.db.stream_summary import StreamSummary
from nvr.db.types import (
    MAX_RECORDING_WALL_DURATION,
    CheckedRecording,
    ListedRecording,
    PendingRecording,
)


class Reads(Redactions):
    """``Database``'s reads; see the module docstring."""

    def stream_summary(self, stream_id: int) -> StreamSummary:
        """The stream's totals over committed and pending recordings (growing ones
        included, as far as they have grown), as the API reports them."""
        stream = self._stream(stream_id)
        return stream.committed.plus(
            ((p.start_time_90k, p.wall_duration_90k, p.sample_file_bytes)
             for p in stream.pending if p.video_samples), self.tz)

    def list_recordings_by_time(
        self, stream_id: int, start: Time, end: Time
    ) -> list[ListedRecording]:
        """Committed and pending recordings overlapping ``[start, end)``, oldest first."""
        return self._committed_and_pending(
            stream_id,
            lambda conn: raw.list_recordings_by_time(
                conn, stream_id, start, end, MAX_RECORDING_WALL_DURATION
            ),
            lambda conn: raw_archive.list_archive_only_by_time(
                conn, stream_id, start, end, MAX_RECORDING_WALL_DURATION
            ),
            lambda p: p.start_time_90k < end
            and max(p.end_time_90k, p.start_time_90k + 1) > start,
        )

    def list_recordings_by_id(
        self, stream_id: int, start_id: int, end_id: int
    ) -> list[ListedRecording]:
        """Committed and pending recordings with ids in ``[start_id, end_id)``."""
        return self._committed_and_pending(
            stream_id,
            lambda conn: raw.list_recordings_by_id(conn, stream_id, start_id, end_id),
            lambda conn: raw_archive.list_archive_only_by_id(conn, stream_id, start_id, end_id),
            lambda p: start_id <= p.recording_id < end_id,
        )

    def _committed_and_pending(
        self,
        stream_id: int,
        rows: Callable[[sqlite3.Connection], Iterator[tuple[Any, ...]]],
        archive_only_rows: Callable[[sqlite3.Connection], Iterator[tuple[Any, ...]]],
        wanted: Callable[[PendingRecording], bool],
    ) -> list[ListedRecording]:
        """The archive-only and committed rows ``archive_only_rows`` and ``rows`` select,
        then the pending recordings (with at least one frame) ``wanted`` accepts: together,
        in id order; without those a redaction hides (``nvr.db.redactions``: every reader
        lists through here)."""
        stream = self._stream(stream_id)
        with self._read("listing recordings") as conn:
            out = [ListedRecording.from_row(row) for row in rows(conn)]
            gone = [ListedRecording.from_row(row, archive_only=True)
                    for row in archive_only_rows(conn)]
        if gone:
            # older than the local ones but for a few (retention skips protected ones)
            out = sorted(gone + out, key=lambda r: r.composite_id)
        out.extend(
            ListedRecording.from_pending(p) for p in stream.pending if p.video_samples and wanted(p)
        )
        if self._tombstones().get(stream_id):
            out = [r for r in out
                   if not self.is_hidden(stream_id, r.start_time_90k, r.end_time_90k)]
        return out

    def get_video_index(self, cid: int) -> bytes:
        """The ``video_index`` of a committed, pending or archive-only recording."""
        stream_id, _ = split_composite_id(cid)
        stream = self.streams.get(stream_id)
        if stream is not None:
            for p in stream.pending:
                if p.composite_id == cid:
                    return p.video_index
        with self._read("reading a video index") as conn:
            data = raw.get_video_index(conn, cid)
            if data is None:
                data = raw_archive.get_archive_only_index(conn, cid)
        if data is None:
            raise errors.NotFound(f"no recording {cid:016x}")
        return data

    # -- what nvr check reads ----------------------------------------------------------------

    def iter_all_recordings(self) -> Iterator[CheckedRecording]:
        """Every committed recording with its integrity and playback rows, in id order."""
        try:
            for row in raw.iter_all_recordings(self._conn):
                sha256, index = row[-2:]
                yield CheckedRecording(
                    ListedRecording.from_row(row[:-2]),
                    None if sha256 is None else bytes(sha256),
                    None if index is None else bytes(index),
                )
        except sqlite3.Error as e:
            raise map_sqlite_error(e, "reading recordings") from e

    def recording_exists(self, composite_id: int) -> bool:
        """Whether the recording is committed now (a fresh read, not the in-memory state:
        ``nvr check`` while the daemon runs)."""
        with self._read("looking up a recording") as conn:
            return raw.recording_exists(conn, composite_id)

    def count_recordings(self) -> int:
        with self._read("counting recordings") as conn:
            return raw.count_recordings(conn)

    def all_garbage(self) -> set[tuple[int, int]]:
        """(dir id, composite id) of every garbage row."""
        with self._read("listing garbage") as conn:
            return set(raw.list_all_garbage(conn))

    def list_garbage(self, dir_id: int) -> list[int]:
        with self._read("listing garbage") as conn:
            return raw.list_garbage(conn, dir_id)

    def integrity_check(self) -> list[str]:
        with self._read("checking database integrity") as conn:
            return raw.integrity_check(conn)
