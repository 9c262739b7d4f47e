"""/docs works without internet: Swagger UI is served by gasdesk itself and runs under the strict CSP."""

from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_docs_render_offline_under_the_strict_csp(live_server, browser) -> None:
    context = await browser.new_context()
    outside: list[str] = []

    async def offline(route) -> None:
        # No internet: every request to another host fails, as on an isolated utility network.
        outside.append(route.request.url)
        await route.abort("internetdisconnected")

    await context.route(lambda url: not url.startswith(live_server), offline)
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    response = await page.goto(live_server + "/docs")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    await page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
    assert "gasdesk API" in await page.inner_text(".swagger-ui .info")
    # Swagger UI virtualises long operation lists (only what is near the viewport is in the DOM): scroll
    # through the page and collect every operation that appears on the way.
    seen: set[str] = set()
    for _ in range(300):
        for summary in await page.locator(".swagger-ui .opblock-summary-path").all_inner_texts():
            seen.add(summary.replace("\u200b", ""))
        # The end of the page, not a scroll that has not landed yet (a loaded machine lags behind the wheel).
        if await page.evaluate("window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2"):
            break
        await page.mouse.wheel(0, 700)
        await page.wait_for_timeout(20)
    assert {"/api/v1/auth/token", "/api/v1/tickets", "/api/v1/wall/snapshot"} <= seen
    assert len(seen) > 100
    await page.evaluate("window.scrollTo(0, 0)")
    # Expand one operation: the interactive part works too.
    await page.locator(".swagger-ui .opblock-summary").first.click()
    await page.wait_for_selector(".swagger-ui .opblock-body")
    assert outside == []
    assert [m for m in console if "Content Security Policy" in m or "Refused" in m] == []
    await screenshot(page, "api-docs")
