"""Browser tests: Debian's Chromium driven by Playwright, headless, nothing downloaded."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.fixtures import *  # noqa: F403 - the database and server fixtures

CHROMIUM = os.environ.get("CLIENTHUB_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium (tests/ui)")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per test module. Not per session: Playwright's sync API keeps an
    event loop running in the main thread while it is open, and a later test in the same xdist
    worker calling ``asyncio.run`` (the reliability suites' traffic) would fail. A missing
    browser is an error, not a skip: CI installs Debian's ``chromium`` (.ci/run)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} not found: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab in Russian; confirm() dialogs (before publishing etc.) are accepted."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ru-RU")  # type: ignore[attr-defined]
    tab = context.new_page()
    tab.set_default_timeout(60_000)  # a loaded 2-core CI machine is slow
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()
