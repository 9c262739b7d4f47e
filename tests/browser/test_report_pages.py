"""A supervisor reads the reports in a real browser: KPI tiles with the change against the previous period,
and the ECharts charts drawn from the vendored script under the strict CSP (no CDN, no eval)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login_as, screenshot
from tests.reports.scenario import two_days

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_supervisor_reads_reports_with_charts(live_server, browser, factory, session) -> None:
    await two_days(session, factory)
    supervisor = await factory.user("supervisor", username="supwu")
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    # console errors (a CSP refusal, a script error) except the browser's own favicon request
    page.on("console", lambda m: problems.append(m.text) if m.type == "error"
            and not m.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    await login_as(page, live_server, supervisor.username)
    await page.click("nav >> text=统计报表")
    await page.wait_for_selector("h2:has-text('统计报表')")
    await page.goto(live_server + "/reports/overview?grain=day&day=2026-12-07")
    await page.wait_for_selector("body[data-charts-drawn='1']", timeout=10_000)
    tile = await page.inner_text("[data-kpi=contacts]")
    assert "3" in tile and "上期 1" in tile and "+200.0%" in tile
    assert await page.locator("#chart-trend canvas").count() == 1
    await screenshot(page, "report-overview")
    await page.click("nav.rp-tabs >> text=高峰时段")
    await page.check("input[name=grain][value=week]")
    await page.click("button:has-text('查看')")
    await page.wait_for_selector("body[data-charts-drawn='2']", timeout=10_000)
    assert "高峰时段：10:00–11:00" in await page.inner_text("body")
    await screenshot(page, "report-peaks")
    assert problems == []
