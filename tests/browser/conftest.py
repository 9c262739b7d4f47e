"""Real-browser tests: a live gasdesk server in a subprocess and Playwright driving Debian's chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.factories import TEST_PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("GASDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """gasdesk served by uvicorn on a free loopback port, over this test's database."""
    port = _free_port()
    env = {**os.environ, "GASDESK_DATABASE_URL": database_url, "GASDESK_ENV": "test",
           "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads"), "GASDESK_SQLITE_POOL_SIZE": "1"}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gasdesk.web.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a loaded machine may take a while to start it
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("live server did not start: " + (tmp_path / "server.log").read_text())
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


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


async def login_as(page: Page, base: str, username: str, *, wait: str = "networkidle") -> None:
    """Sign in through the login form as ``username`` (factory users have ``TEST_PASSWORD``)."""
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", TEST_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state(wait)  # type: ignore[arg-type]
