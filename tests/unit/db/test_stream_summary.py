"""``split_by_day`` (which remembers the last day it saw) against the plain definition:
every local midnight of the zone found by date arithmetic, in any call order."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from nvr.base.time90k import UNITS_PER_SEC, Duration, Time, from_datetime, to_datetime
from nvr.db.stream_summary import split_by_day
from tests.support.determinism import T0

HOUR = 3600 * UNITS_PER_SEC


def reference(start: Time, duration: Duration, tz: dt.tzinfo) -> Iterator[tuple[str, Duration]]:
    end = start + duration
    t = start
    while True:
        local = to_datetime(t, tz)
        n = local.date() + dt.timedelta(days=1)
        midnight = from_datetime(dt.datetime(n.year, n.month, n.day, tzinfo=tz))
        stop = min(end, midnight)
        if stop > t or duration == 0:
            yield local.date().isoformat(), stop - t
        if stop >= end:
            return
        t = stop


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
                                  "America/Santiago", "UTC"])
def test_split_by_day_matches_the_definition(zone: str) -> None:
    tz = ZoneInfo(zone)
    rng = random.Random(zone)
    t = T0
    for _ in range(3000):
        if rng.random() < 0.1:  # out of order now and then
            t = T0 + rng.randrange(400 * 24 * HOUR)
        duration = rng.choice([0, 1, 60 * UNITS_PER_SEC, 299 * UNITS_PER_SEC,
                               rng.randrange(3 * 24 * HOUR)])
        assert list(split_by_day(t, duration, tz)) == list(reference(t, duration, tz))
        t += duration + rng.randrange(2 * HOUR)
