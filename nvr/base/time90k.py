"""90 kHz time: the one unit for media timestamps and wall times.

``Time`` is 90 kHz units since 1970-01-01 00:00:00 UTC; ``Duration`` is a span in 90 kHz
units. Both are plain ``int`` aliases so the per-frame paths stay cheap; the names document
intent. This module parses and formats them:

- a raw integer (``"166432500000000"``) is taken as 90k units;
- ISO 8601 with an optional fraction, either decimal (``2026-11-22T11:05:00.123+01:00``) or
  90k ticks after a colon (``2026-11-22T11:05:00:11070+01:00``, Moonfire NVR's form);
  a missing zone means the given IANA zone (default: the system's). A local time that
  occurs twice (the hour a DST change repeats) means its first occurrence; one that never
  occurs (the hour skipped) is read with the offset in force before the change, so it
  lands as far past the change as it was past the skipped hour's start
  (``02:30`` on a New York spring-forward day is ``03:30-04:00``).
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

Time = int
Duration = int

UNITS_PER_SEC = 90_000
UNITS_PER_MS = 90
UNITS_PER_MIN = 60 * UNITS_PER_SEC
UNITS_PER_HOUR = 60 * UNITS_PER_MIN
UNITS_PER_DAY = 24 * UNITS_PER_HOUR

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_TIME_RE = re.compile(
    r"""^(?P<date>\d{4}-\d{2}-\d{2})
        [T ](?P<hms>\d{2}:\d{2}(?::\d{2})?)
        (?:\.(?P<dec>\d{1,9})|:(?P<ticks>\d{5}))?
        (?P<zone>Z|[+-]\d{2}(?::?\d{2}(?::\d{2})?)?)?$""",
    re.VERBOSE,
)


def seconds(s: float) -> Duration:
    """Seconds to 90k units, rounded to the nearest tick."""
    return round(s * UNITS_PER_SEC)


def to_seconds(d: Duration) -> float:
    return d / UNITS_PER_SEC


def parse_time(text: str, tz: dt.tzinfo | None = None) -> Time:
    """Parses a raw 90k integer or an ISO 8601 time (see the module docstring).

    Raises ``ValueError`` with a readable message on anything else.
    """
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    m = _TIME_RE.match(text)
    if m is None:
        raise ValueError(
            f"unparseable time {text!r}: expected 90k units or YYYY-mm-ddTHH:MM:SS[.fff][zone]"
        )
    hms = m["hms"] if m["hms"].count(":") == 2 else m["hms"] + ":00"
    try:
        naive = dt.datetime.fromisoformat(f"{m['date']}T{hms}")
    except ValueError as e:
        raise ValueError(f"unparseable time {text!r}: {e}") from None
    offset_text = m["zone"]
    if offset_text is None:
        aware = naive.replace(tzinfo=tz if tz is not None else zone(None))
    elif offset_text == "Z":
        aware = naive.replace(tzinfo=dt.UTC)
    else:
        sign = -1 if offset_text[0] == "-" else 1
        digits = offset_text[1:].replace(":", "")
        hours, minutes, secs = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:] or 0)
        if hours > 23 or minutes > 59 or secs > 59:
            raise ValueError(f"unparseable time {text!r}: bad zone offset")
        offset = dt.timedelta(hours=hours, minutes=minutes, seconds=secs) * sign
        aware = naive.replace(tzinfo=dt.timezone(offset))
    delta = aware - _EPOCH
    whole = (delta.days * 86_400 + delta.seconds) * UNITS_PER_SEC
    frac = 0
    if m["dec"] is not None:
        dec = m["dec"]
        frac = round(int(dec) * UNITS_PER_SEC / 10 ** len(dec))
    elif m["ticks"] is not None:
        frac = int(m["ticks"])
        if frac >= UNITS_PER_SEC:
            raise ValueError(f"unparseable time {text!r}: 90k fraction must be < 90000")
    return whole + frac


def to_datetime(t: Time, tz: dt.tzinfo | None = None) -> dt.datetime:
    """The aware datetime of ``t`` (truncated to whole microseconds) in ``tz`` (default UTC)."""
    secs, ticks = divmod(t, UNITS_PER_SEC)
    d = _EPOCH + dt.timedelta(seconds=secs, microseconds=ticks * 1_000_000 // UNITS_PER_SEC)
    return d.astimezone(tz or dt.UTC)


def from_datetime(d: dt.datetime) -> Time:
    """90k time of an aware datetime (microseconds rounded to the nearest tick)."""
    if d.tzinfo is None:
        raise ValueError("naive datetime: a zone is required")
    delta = d - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * UNITS_PER_SEC + round(
        delta.microseconds * UNITS_PER_SEC / 1_000_000
    )


def format_time(t: Time, tz: dt.tzinfo | None = None) -> str:
    """ISO 8601 in ``tz`` (default UTC) that ``parse_time`` reads back exactly.

    The fraction is left out when zero, written as milliseconds when exact
    (``.123``), and as 90k ticks after a colon otherwise (``:11070``).
    """
    secs, ticks = divmod(t, UNITS_PER_SEC)
    d = (_EPOCH + dt.timedelta(seconds=secs)).astimezone(tz or dt.UTC)
    base = d.strftime("%Y-%m-%dT%H:%M:%S")
    if ticks == 0:
        frac = ""
    elif ticks % UNITS_PER_MS == 0:
        frac = f".{ticks // UNITS_PER_MS:03d}"
    else:
        frac = f":{ticks:05d}"
    return f"{base}{frac}{_format_offset(d.utcoffset() or dt.timedelta(0))}"


def _format_offset(offset: dt.timedelta) -> str:
    """``+HH:MM``, or ``+HH:MM:SS`` for the odd historical offset with seconds (e.g.
    Africa/Monrovia's -00:44:30 until 1972), which ISO 8601 cannot write otherwise."""
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    hh, rest = divmod(abs(total), 3600)
    mm, ss = divmod(rest, 60)
    return f"{sign}{hh:02d}:{mm:02d}" + (f":{ss:02d}" if ss else "")


def format_duration(d: Duration) -> str:
    """Human form of a duration, e.g. ``1h02m03.500s``, ``59.967s``, ``-0.011s``."""
    millis = (abs(d) + UNITS_PER_MS // 2) // UNITS_PER_MS  # rounded before splitting
    sign = "-" if d < 0 and millis else ""
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{secs:02d}.{millis:03d}s"
    if minutes:
        return f"{sign}{minutes}m{secs:02d}.{millis:03d}s"
    return f"{sign}{secs}.{millis:03d}s"


def parse_duration(text: str) -> Duration:
    """Parses ``90000`` (90k units), or a number with a unit: ``1.5s``, ``2m``, ``1h``, ``7d``."""
    text = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?", text)
    if m is None:
        raise ValueError(f"unparseable duration {text!r}: expected e.g. 90000, 60s, 5m, 1h, 7d")
    value, unit = m.groups()
    if unit is None:
        if "." in value:
            raise ValueError(f"unparseable duration {text!r}: 90k units must be an integer")
        return int(value)
    factor = {"s": UNITS_PER_SEC, "m": UNITS_PER_MIN, "h": UNITS_PER_HOUR, "d": UNITS_PER_DAY}
    return round(float(value) * factor[unit])


def local_zone_name() -> str:
    """The system's IANA zone name: ``$TZ``, else ``/etc/timezone``, else the target of
    ``/etc/localtime``, else ``UTC``."""
    import os

    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            with open("/etc/timezone") as f:
                name = f.read().strip()
        except OSError:
            pass
    if not name:
        try:
            target = os.path.realpath("/etc/localtime")
            if "/zoneinfo/" in target:
                name = target.split("/zoneinfo/", 1)[1]
        except OSError:
            pass
    return name or "UTC"


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name``, or the system's (``local_zone_name()``) when ``None``."""
    try:
        return ZoneInfo(name or local_zone_name())
    except (ValueError, OSError, KeyError) as e:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}") from e
