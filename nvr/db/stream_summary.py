"""Per-stream totals and their split into local days.

What belongs here: ``StreamSummary`` (count, bytes, disk use, duration, time range and
per-day totals of a stream's recordings) and the arithmetic that keeps it: adding and
removing one recording, splitting a time span at local midnights of an IANA zone (days
of 23 or 25 hours happen), a day's bounds. Pure functions of their arguments: the
database builds each stream's summary with one scan at open and keeps it current on every
commit and delete (``Database`` mixins), so the API never scans the recording table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from nvr.base.time90k import Duration, Time, from_datetime, to_datetime

FS_BLOCK = 4096


@dataclass(slots=True)
class DayTotal:
    recordings: int = 0  # recordings overlapping the day (one spanning midnight counts twice)
    duration_90k: Duration = 0  # recorded wall time within the day


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

    def copy(self) -> StreamSummary:
        return StreamSummary(
            self.num_recordings,
            self.sample_file_bytes,
            self.fs_bytes,
            self.duration_90k,
            self.range_start,
            self.range_end,
            {day: DayTotal(t.recordings, t.duration_90k) for day, t in self.days.items()},
        )

    def add(self, start: Time, wall: Duration, nbytes: int, tz: dt.tzinfo) -> None:
        """Counts one recording of ``[start, start + wall)`` and ``nbytes`` in."""
        self.num_recordings += 1
        self.sample_file_bytes += nbytes
        self.fs_bytes += fs_bytes(nbytes)
        self.duration_90k += wall
        end = start + wall
        self.range_start = start if self.range_start is None else min(self.range_start, start)
        self.range_end = end if self.range_end is None else max(self.range_end, end)
        for day, d in split_by_day(start, wall, tz):
            total = self.days.setdefault(day, DayTotal())
            total.recordings += 1
            total.duration_90k += d

    def remove(self, start: Time, wall: Duration, nbytes: int, tz: dt.tzinfo) -> None:
        """Counts one recording out again. The time range stays as it was: only a scan
        of what is left can tell the new one (the caller sets it)."""
        self.num_recordings -= 1
        self.sample_file_bytes -= nbytes
        self.fs_bytes -= fs_bytes(nbytes)
        self.duration_90k -= wall
        for day, d in split_by_day(start, wall, tz):
            total = self.days[day]
            total.recordings -= 1
            total.duration_90k -= d
            if total.recordings == 0:
                del self.days[day]


def fs_bytes(nbytes: int) -> int:
    """The disk space a file of ``nbytes`` takes, in whole 4 KiB blocks."""
    return -(-nbytes // FS_BLOCK) * FS_BLOCK


def split_by_day(start: Time, duration: Duration, tz: dt.tzinfo) -> Iterator[tuple[str, Duration]]:
    """Splits ``[start, start + duration)`` at local midnights of ``tz`` (days may have
    23 or 25 hours) into (day key, duration within that day)."""
    end = start + duration
    t = start
    while True:
        local = to_datetime(t, tz)
        next_day = local.date() + dt.timedelta(days=1)
        midnight = from_datetime(
            dt.datetime(next_day.year, next_day.month, next_day.day, tzinfo=tz)
        )
        stop = min(end, midnight)
        if stop > t or duration == 0:
            yield local.date().isoformat(), stop - t
        if stop >= end:
            return
        t = stop


def day_bounds(day: str, tz: dt.tzinfo) -> tuple[Time, Time]:
    """[start, end) of a local day in 90k units."""
    d = dt.date.fromisoformat(day)
    n = d + dt.timedelta(days=1)
    return (
        from_datetime(dt.datetime(d.year, d.month, d.day, tzinfo=tz)),
        from_datetime(dt.datetime(n.year, n.month, n.day, tzinfo=tz)),
    )
