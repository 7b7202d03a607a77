"""Sizes in bytes, as people write and read them.

``parse_size`` reads what a person types in a flag or the config file (``500G``,
``2TiB``); ``format_size`` writes a byte count for a person (``1.5 GiB``). Durations are
90 kHz units, in ``nvr.base.time90k``.
"""

from __future__ import annotations

import re

from nvr.base import errors

_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``123``, ``500M``, ``1.5GB``, ``10GiB``, ``2T`` (K/M/G/T/P: powers of 1000;
    with ``i``: powers of 1024)."""
    m = _SIZE_RE.fullmatch(text.strip())
    if m is None:
        raise errors.InvalidArgument(f"unparseable size {text!r}: expected e.g. 500G or 2TiB")
    number, unit, binary = m.groups()
    exponent = "kmgtp".find(unit.lower()) + 1 if unit else 0
    if binary and not unit:
        raise errors.InvalidArgument(f"unparseable size {text!r}")
    base = 1024 if binary else 1000
    return round(float(number) * float(base**exponent))


def format_size(n: int) -> str:
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"
