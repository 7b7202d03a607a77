"""Where the suite finds the repository's files: the checkout, its fixtures and configs."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
