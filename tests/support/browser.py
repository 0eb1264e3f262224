"""A real headless Chromium (Debian's package) driven by Playwright, for the registry's pages."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if shutil.which(candidate):
            return candidate
    pytest.fail("chromium is not installed (apt-get install chromium)", pytrace=False)


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()
