"""Sizes in bytes, as people write and read them.

``parse_size`` reads what a person types in a flag or the config file (``500G``,
``2TiB``): K, M, G, T, P are powers of 1000, as disks are sold; with ``i``, powers of
1024. ``format_size`` writes a byte count for a person with at most two decimals, in the
unit system where that is exact, so that a size reads back as it was typed (``1G``:
"1 GB", not "953.67 MiB"; ``2TiB``: "2 TiB"); a count exact in neither (bytes used, a
disk's size) is decimal. The web UI's
``formatBytes`` (``nvr/web/static/format.js``) follows the same rule. Durations are
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


_DECIMAL = ("kB", "MB", "GB", "TB", "PB")
_BINARY = ("KiB", "MiB", "GiB", "TiB", "PiB")


def _in_units(n: int, base: int, units: tuple[str, ...]) -> tuple[str, bool]:
    """``n`` in the largest of ``units`` it reaches (at most two decimals), and whether
    that is exact."""
    k = 0
    while k < len(units) - 1 and n >= base ** (k + 2):
        k += 1
    unit = base ** (k + 1)
    number = f"{n / unit:.2f}".rstrip("0").rstrip(".")
    return f"{number} {units[k]}", n * 100 % unit == 0


def format_size(n: int) -> str:
    """``n`` bytes for a person (see the module docstring): in binary units when that is
    exact and the decimal text is not, else in decimal ones."""
    if n < 1000:
        return f"{n} B"
    decimal, decimal_exact = _in_units(n, 1000, _DECIMAL)
    if decimal_exact or n < 1024:
        return decimal
    binary, binary_exact = _in_units(n, 1024, _BINARY)
    return binary if binary_exact else decimal
