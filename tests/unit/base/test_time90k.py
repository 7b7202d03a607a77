"""``nvr.base.time90k``: parsing and formatting 90 kHz times and durations."""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvr.base.time90k import (
    UNITS_PER_DAY,
    UNITS_PER_HOUR,
    UNITS_PER_MIN,
    UNITS_PER_SEC,
    format_duration,
    format_time,
    from_datetime,
    local_zone_name,
    parse_duration,
    parse_time,
    seconds,
    to_datetime,
    to_seconds,
    zone,
)

NEW_YORK = ZoneInfo("America/New_York")


def utc90k(*fields: int) -> int:
    """90k time of a UTC calendar time (year, month, day, hour, minute, second)."""
    return calendar.timegm((*fields, 0, 0, 0)[:9]) * UNITS_PER_SEC


# 2026-11-22T10:05:00Z, the instant of the examples in the module docstring.
BASE = utc90k(2026, 11, 22, 10, 5, 0)


def test_constants() -> None:
    assert (UNITS_PER_SEC, UNITS_PER_MIN, UNITS_PER_HOUR) == (90_000, 5_400_000, 324_000_000)
    assert UNITS_PER_DAY == 7_776_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("166432500000000", 166432500000000),
        ("0", 0),
        ("-5", -5),
        (" 42\n", 42),
    ],
)
def test_parse_raw_90k(text: str, expected: int) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T11:05:00.123+01:00", BASE + 123 * 90),
        ("2026-11-22T11:05:00:11070+01:00", BASE + 11070),
        ("2026-11-22T10:05:00Z", BASE),
        ("2026-11-22 10:05:00Z", BASE),
        ("2026-11-22T10:05Z", BASE),
        ("2026-11-22T11:05:00+01:00", BASE),
        ("2026-11-22T11:05:00+0100", BASE),
        ("2026-11-22T11:05:00+01", BASE),
        ("2026-11-22T04:35:00-0530", BASE),
        ("2026-11-22T04:35:00-05:30", BASE),
        ("2026-11-22T10:05:00.5Z", BASE + 45_000),
        ("2026-11-22T10:05:00.000011Z", BASE + 1),  # 0.99 ticks rounds to 1
        ("2026-11-22T10:05:00.123456789Z", BASE + 11_111),
        ("2026-11-22T10:05:00:89999Z", BASE + 89_999),
        ("2026-11-22T09:20:30-00:44:30", BASE),  # offsets with seconds (see format_time)
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59Z", -UNITS_PER_SEC),
    ],
)
def test_parse_iso(text: str, expected: int) -> None:
    assert parse_time(text) == expected


def test_parse_without_zone_uses_the_given_zone() -> None:
    assert parse_time("2026-11-22T11:05:00.123", ZoneInfo("Europe/Berlin")) == BASE + 11070
    assert parse_time("2026-07-22T12:05:00", ZoneInfo("Europe/Berlin")) == utc90k(
        2026, 7, 22, 10, 5, 0
    )
    assert parse_time("2026-11-22T10:05:00", dt.UTC) == BASE


def test_parse_without_zone_defaults_to_the_system_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    assert parse_time("2026-11-22T15:35:00") == BASE


def test_explicit_offset_wins_over_the_zone() -> None:
    assert parse_time("2026-11-22T10:05:00Z", NEW_YORK) == BASE


def test_repeated_local_time_means_its_first_occurrence() -> None:
    # 2026-11-01 01:30 happens twice in New York: at -04:00 (EDT), then at -05:00 (EST).
    assert parse_time("2026-11-01T01:30:00", NEW_YORK) == utc90k(2026, 11, 1, 5, 30, 0)
    assert parse_time("2026-11-01T01:30:00-05:00", NEW_YORK) == utc90k(2026, 11, 1, 6, 30, 0)


def test_skipped_local_time_is_read_with_the_offset_before_the_change() -> None:
    # 2026-03-08 02:30 never happens in New York (02:00 EST -> 03:00 EDT).
    t = parse_time("2026-03-08T02:30:00", NEW_YORK)
    assert t == utc90k(2026, 3, 8, 7, 30, 0)
    assert format_time(t, NEW_YORK) == "2026-03-08T03:30:00-04:00"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "1.5",
        "2026-11-22",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-22T25:00:00Z",
        "2026-11-22T10:60:00Z",
        "2026-11-22T10:05:00+24:00",
        "2026-11-22T10:05:00+01:60",
        "2026-11-22T10:05:00:90000Z",
        "2026-11-22T10:05:00:1234Z",
        "2026-11-22T10:05:00.Z",
        "2026-11-22T10:05:00.1234567890Z",
        "2026-11-22T10:05:00 UTC",
        "2026-11-22T10:05:00+1",
        "2026-11-22T10:05:00Z trailing",
    ],
)
def test_parse_garbage_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="unparseable time"):
        parse_time(text)


@pytest.mark.parametrize(
    ("t", "tz", "expected"),
    [
        (BASE, None, "2026-11-22T10:05:00+00:00"),
        (BASE + 123 * 90, None, "2026-11-22T10:05:00.123+00:00"),
        (BASE + 11_071, None, "2026-11-22T10:05:00:11071+00:00"),
        (BASE + 1, None, "2026-11-22T10:05:00:00001+00:00"),
        (BASE, ZoneInfo("Europe/Berlin"), "2026-11-22T11:05:00+01:00"),
        (BASE, ZoneInfo("Asia/Kolkata"), "2026-11-22T15:35:00+05:30"),
        (BASE, ZoneInfo("America/St_Johns"), "2026-11-22T06:35:00-03:30"),
        (-1, None, "1969-12-31T23:59:59:89999+00:00"),
        (
            utc90k(1971, 1, 1, 0, 0, 0),
            ZoneInfo("Africa/Monrovia"),
            "1970-12-31T23:15:30-00:44:30",
        ),
    ],
)
def test_format_time(t: int, tz: dt.tzinfo | None, expected: str) -> None:
    assert format_time(t, tz) == expected


ZONES = sorted(zoneinfo.available_timezones())
YEAR_1800 = utc90k(1800, 1, 1, 0, 0, 0)
YEAR_2300 = utc90k(2300, 1, 1, 0, 0, 0)


@settings(max_examples=1000)
@given(st.integers(YEAR_1800, YEAR_2300), st.sampled_from(ZONES))
def test_format_parse_round_trip(t: int, name: str) -> None:
    tz = ZoneInfo(name)
    assert parse_time(format_time(t, tz), tz) == t
    assert parse_time(format_time(t, tz)) == t


@given(st.integers(YEAR_1800, YEAR_2300), st.sampled_from(["UTC", "America/New_York"]))
def test_datetime_conversions(t: int, name: str) -> None:
    d = to_datetime(t, ZoneInfo(name))
    assert d.utcoffset() is not None
    # to_datetime truncates to whole microseconds, less than one tick.
    assert t - 1 <= from_datetime(d) <= t
    assert from_datetime(to_datetime(t - t % 9)) == t - t % 9  # 9 ticks = 100 us: exact


def test_from_datetime_rejects_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        from_datetime(dt.datetime(2026, 11, 22))


def test_seconds() -> None:
    assert seconds(1.5) == 135_000
    assert seconds(-0.001) == -90
    assert to_seconds(135_000) == 1.5


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (0, "0.000s"),
        (59 * UNITS_PER_SEC + 967 * 90, "59.967s"),
        (UNITS_PER_HOUR + 2 * UNITS_PER_MIN + 3 * UNITS_PER_SEC + 45_000, "1h02m03.500s"),
        (5 * UNITS_PER_MIN + 90, "5m00.001s"),
        (-990, "-0.011s"),
        (44, "0.000s"),  # 0.49 ms rounds down
        (45, "0.001s"),  # 0.5 ms rounds up
        (-1, "0.000s"),  # no "-0.000s"
        (UNITS_PER_MIN - 1, "1m00.000s"),  # rounded before splitting: not "60.000s"
        (2 * UNITS_PER_MIN - 1, "2m00.000s"),  # not "1m60.000s"
        (UNITS_PER_HOUR - 1, "1h00m00.000s"),  # not "59m60.000s"
        (7 * UNITS_PER_DAY, "168h00m00.000s"),
    ],
)
def test_format_duration(d: int, expected: str) -> None:
    assert format_duration(d) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90000", 90_000),
        ("0", 0),
        ("1.5s", 135_000),
        ("60s", 5_400_000),
        ("0.1s", 9_000),
        ("2m", 10_800_000),
        ("1h", 324_000_000),
        ("7d", 54_432_000_000),
        (" 60 s ", 5_400_000),
    ],
)
def test_parse_duration(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "s", "1.5", "-1s", "1w", "1 h 2m", "1e3s", "one"])
def test_parse_duration_garbage_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="unparseable duration"):
        parse_duration(text)


def test_zone() -> None:
    assert zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    with pytest.raises(ValueError, match="unknown time zone 'Nowhere/Special'"):
        zone("Nowhere/Special")


def test_local_zone_name_prefers_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", ":Europe/Paris")
    assert local_zone_name() == "Europe/Paris"
    assert zone(None) == ZoneInfo("Europe/Paris")
