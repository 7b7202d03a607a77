"""Sizes in bytes, as people write and read them.

``parse_size`` reads what a person types in a flag or the config file (``500G``,
``2TiB``): K, M, G, T, P are powers of 1000, as disks are sold; with ``i``, powers of
1024. ``format_size`` writes a byte count for a person in the system it is rounder in, so
that a size reads back as it was typed (``1G``: "1 GB", not "953.67 MiB"; ``2TiB``:
"2 TiB"); a count that is round in neither (bytes used) is decimal. The web UI's
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


def _roundness(n: int, base: int) -> int:
    """The largest k <= 5 with ``n`` a multiple of ``base**k``."""
    k = 0
    while k < 5 and n % base ** (k + 1) == 0:
        k += 1
    return k


def format_size(n: int) -> str:
    """``n`` bytes for a person: see the module docstring. At most two decimals."""
    if n < 1000:
        return f"{n} B"
    binary = _roundness(n, 1024) > _roundness(n, 1000)
    base, units = (1024, _BINARY) if binary else (1000, _DECIMAL)
    k = 0
    while k < len(units) - 1 and n >= base ** (k + 2):
        k += 1
    number = f"{n / base ** (k + 1):.2f}".rstrip("0").rstrip(".")
    return f"{number} {units[k]}"
