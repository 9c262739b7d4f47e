"""Real-browser tests: a live gasdesk server in its own process and Playwright driving Debian's chromium."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from gasdesk.config import reset_settings_cache
from tests.factories import TEST_PASSWORD
from tests.servers import LiveServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("GASDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    # The softphone test: a fake microphone (a beeping tone) granted without a prompt. A page granted the
    # microphone also gets real host ICE candidates, not mDNS .local names (tests/browser/test_softphone.py).
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


# A phone in portrait, as residents and crews hold it.
MOBILE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def nlu_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The product's bot (NLU) in the server: request it before ``live_server`` so the server process starts
    with it (the plumbing tests' rule bot does not book, report leaks or understand free text)."""
    monkeypatch.setenv("GASDESK_BOT_ENGINE", "nlu")
    reset_settings_cache()


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """gasdesk on a free loopback port, in its own process (tests/servers.py), over this test's database."""
    server = LiveServer({"GASDESK_DATABASE_URL": database_url, "GASDESK_ENV": "test",
                         "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads"), "GASDESK_SQLITE_POOL_SIZE": "1"},
                        tmp_path / "server.log")
    yield server.base
    server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """One Chromium for the whole session: starting Playwright's driver and the browser cost about 3 s, which
    each test used to pay. Tests get their own contexts (cookies, storage) through ``browser``."""
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


class TestBrowser:
    """The shared Chromium as one test sees it: every context it opens is closed when the test ends, so no
    page of one test (with its sockets reconnecting to a stopped server) lives on into the next."""

    def __init__(self, chromium: Browser) -> None:
        self._chromium = chromium
        self._contexts: list[BrowserContext] = []

    async def new_context(self, **options: Any) -> BrowserContext:
        context = await self._chromium.new_context(**options)
        self._contexts.append(context)
        return context

    async def new_page(self, **options: Any) -> Page:
        return await (await self.new_context(**options)).new_page()

    async def close(self) -> None:
        for context in self._contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(chromium: Browser) -> AsyncIterator[TestBrowser]:
    test_browser = TestBrowser(chromium)
    yield test_browser
    await test_browser.close()


async def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


async def login_as(page: Page, base: str, username: str, *, wait: str = "load") -> None:
    """Sign in through the login form as ``username`` (factory users have ``TEST_PASSWORD``) and wait until the
    role's landing page has loaded. (Not "networkidle": that waits out 500 ms of quiet on every login, and a
    console's socket and htmx requests are never quiet for long; tests wait for what they need.)"""
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", TEST_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.wait_for_load_state(wait)  # type: ignore[arg-type]
