"""Sizes as people write them (``nvr.base.units``)."""

from __future__ import annotations

import pytest

from nvr.base import errors
from nvr.base.units import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("123", 123),
        ("500M", 500_000_000),
        ("1.5GB", 1_500_000_000),
        ("10GiB", 10 << 30),
        ("2t", 2 * 10**12),
        ("1 KiB", 1024),
    ],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


def test_parse_size_rejects_garbage() -> None:
    for text in ("", "G", "1.2.3", "-5", "5X", "5i"):
        with pytest.raises(errors.InvalidArgument):
            parse_size(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0 B"), (999, "999 B"), (1023, "1.02 kB"), (1024, "1 KiB"), (1536 << 20, "1.5 GiB"),
     (2 << 40, "2 TiB"), (10**9, "1 GB"), (123_456_789, "123.46 MB"), (4 * 10**12, "4 TB"),
     (2_250_000_000_000, "2.25 TB"), (10**15 * 3, "3 PB"),
     (270_549_504_000, "270.55 GB")],  # a filesystem's size: 4 KiB blocks, exact in neither
)
def test_format_size(value: int, text: str) -> None:
    assert format_size(value) == text


@pytest.mark.parametrize("typed", ["1G", "500M", "2TiB", "1.5GiB", "10GiB", "4T", "2.25TB", "1K"])
def test_a_size_reads_back_as_it_was_typed(typed: str) -> None:
    """Issue 17: ``--retain-bytes 1G`` was shown back as "953.7 MiB"."""
    shown = format_size(parse_size(typed))
    assert parse_size(shown) == parse_size(typed)
    assert shown.replace(" ", "").rstrip("B").upper() == typed.rstrip("B").upper()
