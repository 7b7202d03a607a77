"""The redactions part of ``Database``: tombstones, and the one question every reader
asks, "what is hidden in this range?" (docs/design.md, "Next capabilities").

A redaction is a row of ``redaction`` (stream, wall-time range, reason, who, when),
committed before anything else happens: from that commit on, ``hidden`` answers for it
and every listing of ``Reads`` leaves out the recordings it touches, so ``/recordings``,
``view.mp4``/``.m4s`` (their ``s=`` ids then name no recording: 404), exports and
anything later built on the listings treat the range as never recorded. Rows are never
deleted (retention does not touch this table).

**Hidden whole, for now.** A recording that overlaps a tombstone only partly is hidden
whole, not cut at the key frames around the range: cutting needs every reader to clip
segments by time (and the ``s=`` ids of the rest to stay valid), and the rewrite of the
bytes that makes the cut durable (a new sample file and row without the redacted frames)
is not built yet. So up to one recording (about a minute) on each side of a range is
hidden too; the listing says nothing of it. Likewise the bytes of hidden recordings stay
on disk until retention removes them; ``redacted_bytes_remain`` tells ``nvr check``.

The tombstones are kept in memory (a few per stream) after the first use.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from nvr.base import errors
from nvr.base.time90k import Time
from nvr.db import raw_evidence
from nvr.db.core import DatabaseCore

MAX_REASON = 1000


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

    def list_redactions(self, stream_id: int) -> list[Redaction]:
        self._stream(stream_id)
        return sorted(self._tombstones().get(stream_id, []), key=lambda r: r.id)

    def hidden(self, stream_id: int, start: Time, end: Time) -> list[tuple[Time, Time]]:
        """The redacted ranges of ``stream_id`` overlapping ``[start, end)``, by start."""
        return [(r.start_time_90k, r.end_time_90k)
                for r in self._tombstones().get(stream_id, ())
                if r.start_time_90k < end and r.end_time_90k > start]

    def is_hidden(self, stream_id: int, start: Time, end: Time) -> bool:
        """Whether anything of ``[start, end)`` (a recording's span) is redacted."""
        for r in self._tombstones().get(stream_id, ()):
            if r.start_time_90k >= max(end, start + 1):
                return False
            if r.end_time_90k > start:
                return True
        return False
