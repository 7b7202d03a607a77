"""The browser for UI and playback tests: Playwright for Python driving Debian's
``/usr/bin/chromium`` (docs/design.md, "Testing").

Playwright's sync API runs its own event loop in a greenlet, so browser tests are plain
(synchronous) test functions; what they test runs in another process or thread (the real
daemon, or a server thread started by the test). ``browser`` is one Chromium per test
session; each test gets a fresh ``page`` in a fresh context (no shared cookies).
Screenshots and traces a test wants kept go to ``artifact_dir`` (``test-artifacts/`` at
the top of the checkout, which CI may collect).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import REPO

CHROMIUM = os.environ.get("NVR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Video must play without a user gesture in headless tests.
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: tools/test.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context()
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def artifact_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
