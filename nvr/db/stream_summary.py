"""Per-stream totals and their split into local days.

What belongs here: ``StreamSummary`` (count, bytes, disk use, duration, time range and
per-day totals of a stream's recordings) and the arithmetic that keeps it: adding and
removing one recording, splitting a time span at local midnights of an IANA zone (days
of 23 or 25 hours happen), a day's bounds, and the per-day changes a commit or a deletion
makes (``day_deltas``), which the database stores in ``recording_day`` in the same
transaction. Pure functions of their arguments: the database loads each stream's summary
from those rows at open (one scan of the recordings only when they are missing or were
split in another zone) and keeps it current on every commit and delete (``Database``
mixins), so neither an open nor the API reads every recording (docs/design.md, "Schema
and upgrades").
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from nvr.base.time90k import Duration, Time, from_datetime, to_datetime

FS_BLOCK = 4096


@dataclass(slots=True)
class DayTotal:
    recordings: int = 0  # recordings overlapping the day (one spanning midnight counts twice)
    duration_90k: Duration = 0  # recorded wall time within the day
    started: int = 0  # recordings starting in the day (each counted in exactly one day)
    sample_file_bytes: int = 0  # of those starting in the day
    fs_bytes: int = 0  # of those, in whole filesystem blocks

    def merge(self, other: DayTotal, sign: int = 1) -> None:
        self.recordings += sign * other.recordings
        self.duration_90k += sign * other.duration_90k
        self.started += sign * other.started
        self.sample_file_bytes += sign * other.sample_file_bytes
        self.fs_bytes += sign * other.fs_bytes

    def copy(self) -> DayTotal:
        return DayTotal(self.recordings, self.duration_90k, self.started,
                        self.sample_file_bytes, self.fs_bytes)


@dataclass(slots=True)
class StreamSummary:
    """Totals over a stream's committed recordings."""

    num_recordings: int = 0
    sample_file_bytes: int = 0
    #: bytes the files occupy on disk (each rounded up to a whole filesystem block)
    fs_bytes: int = 0
    duration_90k: Duration = 0
    range_start: Time | None = None
    range_end: Time | None = None
    #: local date "YYYY-mm-dd" -> totals of that day
    days: dict[str, DayTotal] = field(default_factory=dict)

    @classmethod
    def from_days(cls, days: dict[str, DayTotal], range_start: Time | None,
                  range_end: Time | None) -> StreamSummary:
        """The summary whose per-day totals are ``days`` (as ``recording_day`` keeps them)."""
        out = cls(range_start=range_start, range_end=range_end, days=days)
        for t in days.values():
            out.num_recordings += t.started
            out.sample_file_bytes += t.sample_file_bytes
            out.fs_bytes += t.fs_bytes
            out.duration_90k += t.duration_90k
        return out

    def plus(self, recs: Iterable[tuple[Time, Duration, int]], tz: dt.tzinfo) -> StreamSummary:
        """A new summary with ``recs`` (start, wall, bytes) counted in; this one is left as
        it is and shares the days the new recordings do not touch (no copy of every day)."""
        out = StreamSummary(self.num_recordings, self.sample_file_bytes, self.fs_bytes,
                            self.duration_90k, self.range_start, self.range_end, dict(self.days))
        copied: set[str] = set()
        for start, wall, nbytes in recs:
            for day in day_deltas([(start, wall, nbytes)], tz):
                if day not in copied and day in out.days:
                    out.days[day] = out.days[day].copy()
                copied.add(day)
            out.add(start, wall, nbytes, tz)
        return out

    def add(self, start: Time, wall: Duration, nbytes: int, tz: dt.tzinfo) -> None:
        """Counts one recording of ``[start, start + wall)`` and ``nbytes`` in."""
        self.num_recordings += 1
        self.sample_file_bytes += nbytes
        self.fs_bytes += fs_bytes(nbytes)
        self.duration_90k += wall
        end = start + wall
        self.range_start = start if self.range_start is None else min(self.range_start, start)
        self.range_end = end if self.range_end is None else max(self.range_end, end)
        for day, delta in day_deltas([(start, wall, nbytes)], tz).items():
            self.days.setdefault(day, DayTotal()).merge(delta)

    def remove(self, start: Time, wall: Duration, nbytes: int, tz: dt.tzinfo) -> None:
        """Counts one recording out again. The time range stays as it was: only the
        database can tell the new one (the caller sets it)."""
        self.num_recordings -= 1
        self.sample_file_bytes -= nbytes
        self.fs_bytes -= fs_bytes(nbytes)
        self.duration_90k -= wall
        for day, delta in day_deltas([(start, wall, nbytes)], tz).items():
            total = self.days[day]
            total.merge(delta, -1)
            if total.recordings == 0:
                del self.days[day]


def day_deltas(recs: Iterable[tuple[Time, Duration, int]], tz: dt.tzinfo) -> dict[str, DayTotal]:
    """Per local day, what the recordings ``recs`` (start, wall duration, bytes) add to
    its ``DayTotal``: each overlapping day counts the recording and its time within the
    day; the day it starts in counts it as started, with its bytes."""
    out: dict[str, DayTotal] = {}
    for start, wall, nbytes in recs:
        first = True
        for day, d in split_by_day(start, wall, tz):
            t = out.setdefault(day, DayTotal())
            t.recordings += 1
            t.duration_90k += d
            if first:
                t.started += 1
                t.sample_file_bytes += nbytes
                t.fs_bytes += fs_bytes(nbytes)
                first = False
    return out


def day_rows(deltas: dict[str, DayTotal]) -> list[tuple[str, int, int, int, int, int]]:
    """``day_deltas``' result as ``recording_day``'s columns after the stream id."""
    return [(day, t.recordings, t.duration_90k, t.started, t.sample_file_bytes, t.fs_bytes)
            for day, t in sorted(deltas.items())]


def zone_key(tz: dt.tzinfo) -> str:
    """The name ``recording_day_zone`` stores for ``tz`` (its IANA key; "UTC" for UTC)."""
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) else str(tz)


def fs_bytes(nbytes: int) -> int:
    """The disk space a file of ``nbytes`` takes, in whole 4 KiB blocks."""
    return -(-nbytes // FS_BLOCK) * FS_BLOCK


#: per zone, the local day last looked up: (key, start, end); recordings come in time
#: order, so most lookups need no date arithmetic at all
_last_day: dict[dt.tzinfo, tuple[str, Time, Time]] = {}


def _day_of(t: Time, tz: dt.tzinfo) -> tuple[str, Time, Time]:
    """(key, start, end) of the local day holding ``t``."""
    last = _last_day.get(tz)
    if last is not None and last[1] <= t < last[2]:
        return last
    key = to_datetime(t, tz).date().isoformat()
    start, end = day_bounds(key, tz)
    found = (key, start, end)
    _last_day[tz] = found
    return found


def split_by_day(start: Time, duration: Duration, tz: dt.tzinfo) -> Iterator[tuple[str, Duration]]:
    """Splits ``[start, start + duration)`` at local midnights of ``tz`` (days may have
    23 or 25 hours) into (day key, duration within that day)."""
    end = start + duration
    t = start
    while True:
        key, _, midnight = _day_of(t, tz)
        stop = min(end, midnight)
        if stop > t or duration == 0:
            yield key, stop - t
        if stop >= end:
            return
        t = stop


@functools.lru_cache(maxsize=8192)
def day_bounds(day: str, tz: dt.tzinfo) -> tuple[Time, Time]:
    """[start, end) of a local day in 90k units (remembered: ``/api/?days=true`` asks for
    every day of every stream on every request)."""
    d = dt.date.fromisoformat(day)
    n = d + dt.timedelta(days=1)
    return (
        from_datetime(dt.datetime(d.year, d.month, d.day, tzinfo=tz)),
        from_datetime(dt.datetime(n.year, n.month, n.day, tzinfo=tz)),
    )
