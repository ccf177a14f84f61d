"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

Only the system Chromium (/usr/bin/chromium, installed by ``make test``) is used; Playwright's own
browser downloads are never needed. When it is missing the browser tests fail with a clear message.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse ORM calls.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import PASSWORD

CHROMIUM = os.environ.get("CM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        pytest.fail(
            f"Chromium was not found at {CHROMIUM}"
            + (f" (there is one at {found}: set CM_TEST_CHROMIUM)" if found else "")
            + ". The browser tests need Debian's chromium: run `make test` (it installs it) "
            "or `apt-get install chromium`.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def base_url(live_server, settings) -> str:
    # The live server speaks plain HTTP: cookies marked Secure would not come back.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return live_server.url


@pytest.fixture
def new_page(chromium: Browser, base_url: str) -> Iterator[Callable[[], Page]]:
    """Pages in fresh browser contexts (one context per person); all are closed after the test."""
    contexts = []

    def make() -> Page:
        context = chromium.new_context(base_url=base_url, viewport=VIEWPORT)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


@pytest.fixture
def login() -> Callable[[Page, str], None]:
    """Log in through the real login form."""

    def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
        page.goto("/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("#login-submit")
        page.wait_for_load_state()
        assert "/login/" not in page.url, f"login as {username} failed: still on {page.url}"

    return log_in


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / (re.sub(r"[^\w.-]+", "-", name) + ".png")
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
