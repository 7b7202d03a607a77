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
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536 << 20, "1.5 GiB"),
     (2 << 40, "2.0 TiB")],
)
def test_format_size(value: int, text: str) -> None:
    assert format_size(value) == text
