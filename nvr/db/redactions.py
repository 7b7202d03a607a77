"""The redactions part of ``Database``: tombstones, and the one question every reader
asks, "what is hidden in this range?" (docs/design.md, "Redaction: byte removal").

A redaction is a row of ``redaction`` (stream, wall-time range, reason, who, when),
committed before anything else happens: from that commit on, ``hidden`` answers for it
and every listing of ``Reads`` leaves out the recordings it touches, so ``/recordings``,
``view.mp4``/``.m4s`` (their ``s=`` ids then name no recording: 404), exports and
anything later built on the listings treat the range as never recorded. Rows are never
deleted (retention does not touch this table).

**Hidden whole, then cut.** A recording that overlaps a tombstone even partly is hidden
whole; each directory's syncer then cuts it (``nvr.storage.redact``): the frames outside
the ranges become new recordings (*pieces*, recording ids from ``PIECE_BASE``) that no
tombstone overlaps, so the same filter shows them, and the old row and file go the
garbage way. ``redaction_work`` lists what is left to cut; ``nvr check`` reports it.

The tombstones are kept in memory (a few per stream) after the first use.
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
from dataclasses import dataclass

from nvr.base import errors
from nvr.base.time90k import Time
from nvr.db import raw, raw_evidence
from nvr.db.core import DatabaseCore
from nvr.db.types import MAX_RECORDING_WALL_DURATION, ListedRecording

log = logging.getLogger(__name__)

MAX_REASON = 1000
PIECE_BASE = raw.PIECE_BASE


def is_piece(recording_id: int) -> bool:
    return recording_id >= PIECE_BASE


@dataclass(frozen=True, slots=True)
class Redaction:
    id: int
    stream_id: int
    start_time_90k: Time
    end_time_90k: Time
    reason: str
    user_id: int | None
    username: str | None
    creation_time_90k: Time


class Redactions(DatabaseCore):
    """``Database``'s tombstones; see the module docstring."""

    _redactions: dict[int, list[Redaction]] | None = None

    def _tombstones(self) -> dict[int, list[Redaction]]:
        if self._redactions is None:
            with self._read("listing redactions") as conn:
                rows = [Redaction(*row) for row in raw_evidence.list_redactions(conn)]
            by_stream: dict[int, list[Redaction]] = {}
            for r in rows:
                by_stream.setdefault(r.stream_id, []).append(r)
            for v in by_stream.values():
                v.sort(key=lambda r: r.start_time_90k)
            self._redactions = by_stream
        return self._redactions

    def add_redaction(self, stream_id: int, start: Time, end: Time, reason: str, *,
                      user_id: int | None, username: str | None) -> Redaction:
        """Commits a tombstone; from its return on, the range is hidden."""
        self._stream(stream_id)
        if not 0 <= start < end:
            raise errors.InvalidArgument("a redaction needs 0 <= start < end")
        if not reason.strip() or len(reason) > MAX_REASON:
            raise errors.InvalidArgument(f"a redaction needs a reason (1 to {MAX_REASON} "
                                         "characters)")
        tombstones = self._tombstones()
        now = self._now()
        with self._transaction("adding a redaction") as conn:
            rid = raw_evidence.insert_redaction(conn, stream_id, start, end, reason, user_id,
                                       username, now)
        r = Redaction(rid, stream_id, start, end, reason, user_id, username, now)
        v = tombstones.setdefault(stream_id, [])
        bisect.insort(v, r, key=lambda x: x.start_time_90k)
        self._redaction_added()
        for listener in list(self.redaction_listeners):
            listener()
        return r

    def all_redactions(self) -> list[Redaction]:
        """Every tombstone of every stream, by id (the archives' uploaders copy them)."""
        return sorted((r for v in self._tombstones().values() for r in v), key=lambda r: r.id)

    def _delete_stream_redactions(self, conn: sqlite3.Connection, stream_id: int) -> None:
        """The stream is being deleted (its camera removed, which needs every recording
        deleted first: nothing of it is left to hide): its tombstones go with it, each
        logged, so the log keeps who removed what, when and why."""
        gone = self._tombstones().get(stream_id, [])
        raw_evidence.delete_stream_redactions(conn, stream_id)
        self._redactions = None  # read again after the commit (or the rollback)
        for r in gone:
            log.warning("stream %d deleted with its redaction %d of [%d, %d) (%r, by %s at %d)",
                        stream_id, r.id, r.start_time_90k, r.end_time_90k, r.reason,
                        r.username, r.creation_time_90k)

    def has_redactions(self) -> bool:
        """Whether any stream has a tombstone (read once, then from memory)."""
        return any(self._tombstones().values())

    def list_redactions(self, stream_id: int) -> list[Redaction]:
        self._stream(stream_id)
        return sorted(self._tombstones().get(stream_id, []), key=lambda r: r.id)

    def hidden(self, stream_id: int, start: Time, end: Time) -> list[tuple[Time, Time]]:
        """The redacted ranges of ``stream_id`` overlapping ``[start, end)``, by start."""
        return [(r.start_time_90k, r.end_time_90k)
                for r in self._tombstones().get(stream_id, ())
                if r.start_time_90k < end and r.end_time_90k > start]

    def redactions_overlapping(self, stream_id: int, start: Time, end: Time
                               ) -> list[Redaction]:
        """The tombstones ``is_hidden`` finds for the span ``[start, end)``."""
        return [r for r in self._tombstones().get(stream_id, ())
                if r.start_time_90k < max(end, start + 1) and r.end_time_90k > start]

    def redaction_work(self, dir_id: int) -> list[ListedRecording]:
        """The committed recordings of the directory's streams that a tombstone hides,
        oldest first, except those already planned for deletion: what the syncer still has
        to cut or delete (``nvr.storage.redact``). ``nvr check`` reports any it finds."""
        out: dict[int, ListedRecording] = {}
        for s in [s for s in self.streams.values() if s.sample_file_dir_id == dir_id]:
            planned = {d.composite_id for d in s.planned_deletions}
            for t in self._tombstones().get(s.id, ()):
                with self._read("listing redacted recordings") as conn:
                    rows = list(raw.list_recordings_by_time(
                        conn, s.id, t.start_time_90k - 1, t.end_time_90k,
                        MAX_RECORDING_WALL_DURATION))
                for row in rows:
                    r = ListedRecording.from_row(row)
                    if (r.composite_id not in planned and r.composite_id not in out
                            and self.is_hidden(s.id, r.start_time_90k, r.end_time_90k)):
                        out[r.composite_id] = r
        return sorted(out.values(), key=lambda r: (r.start_time_90k, r.composite_id))

    def committed_pieces(self, stream_id: int) -> set[int]:
        """Composite ids of the stream's committed pieces (start-up cleanup: a piece's
        file without a row never committed)."""
        with self._read("listing redaction pieces") as conn:
            return set(raw_evidence.list_pieces(conn, raw.composite_id(stream_id, PIECE_BASE),
                                                raw.composite_id(stream_id + 1, 0)))

    def composite_id_in_use(self, cid: int) -> bool:
        """Whether a recording or garbage row names ``cid``."""
        with self._read("looking up a composite id") as conn:
            return raw_evidence.composite_id_in_use(conn, cid)

    def is_hidden(self, stream_id: int, start: Time, end: Time) -> bool:
        """Whether anything of ``[start, end)`` (a recording's span) is redacted."""
        for r in self._tombstones().get(stream_id, ()):
            if r.start_time_90k >= max(end, start + 1):
                return False
            if r.end_time_90k > start:
                return True
        return False
