"""The notification bell on every staff page, in a real browser: a resident's gas-leak report in /chat reaches
the on-duty staff's open consoles as a prominent alert within 2 s; the bell counts, lists and marks read, and
live pushes reach every role (field crew on a phone included)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gasdesk.db import commit
from gasdesk.notifications.service import do_notify
from tests.browser.conftest import MOBILE, screenshot
from tests.factories import TEST_PASSWORD, staff_user, wo_headers, wo_ticket

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")




async def _staff_page(browser, base: str, username: str, path: str, **context):
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", TEST_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.goto(base + path)
    # the bell's socket is open: from now on nothing pushed to this user is missed
    await page.wait_for_function("() => window.gasdeskBell && window.gasdeskBell.state.open")
    return page


async def test_leak_alert_reaches_open_consoles_within_2s(nlu_bot, live_server, browser, session) -> None:
    dispatcher = await staff_user(session, "dispatcher", display_name="调度老周")
    agent = await staff_user(session, "agent", display_name="坐席小林")
    dispatch_page = await _staff_page(browser, live_server, dispatcher.username, "/dispatch")
    agent_page = await _staff_page(browser, live_server, agent.username, "/agent")

    resident = await (await browser.new_context(**MOBILE)).new_page()
    await resident.goto(live_server + "/chat")
    await resident.wait_for_selector("li:has-text('智能客服')")
    greeted = await resident.locator("li.gd-them").count()
    await resident.fill("#input", "你好")
    await resident.press("#input", "Enter")
    # the bot has answered once: its model is loaded, as on a server that has been up for a while
    await resident.wait_for_function(f"() => document.querySelectorAll('li.gd-them').length > {greeted}",
                                     timeout=60_000)

    await resident.fill("#input", "厨房有煤气味")
    started = time.monotonic()
    await resident.press("#input", "Enter")
    await asyncio.gather(dispatch_page.wait_for_selector(".alert-toast.urgent", timeout=10_000),
                         agent_page.wait_for_selector(".alert-toast.urgent", timeout=10_000))
    elapsed = time.monotonic() - started
    await screenshot(dispatch_page, "leak-alert-dispatch")
    await screenshot(agent_page, "leak-alert-agent")
    assert elapsed < 2.0, f"the leak alert took {elapsed:.2f}s to show"

    toast = await dispatch_page.inner_text(".alert-toast.urgent")
    assert "燃气泄漏报警" in toast and "厨房有煤气味" in toast
    assert await dispatch_page.inner_text("#notify-count") == "1"
    # the alert leads to the emergency ticket, and that reads the notification
    await dispatch_page.click(".alert-toast.urgent .alert-open")
    await dispatch_page.wait_for_url("**/tickets/*")
    assert "燃气泄漏" in await dispatch_page.inner_text("main")
    await dispatch_page.wait_for_function("() => window.gasdeskBell && window.gasdeskBell.state.open")
    assert await dispatch_page.locator("#notify-count").is_hidden()
    # the agent's other page saw nothing read: still 1 unread there
    assert await agent_page.inner_text("#notify-count") == "1"


async def test_bell_counts_lists_marks_read_and_takes_pushes_on_a_phone(live_server, browser, session, factory) -> None:
    crew = await staff_user(session, "field_crew", display_name="外勤老王")
    crew_id = crew.id
    for title in ("新派工单 GD20260001", "新派工单 GD20260002"):
        do_notify(session, crew_id, "ticket.assigned", title, "幸福里小区3号楼燃气表更换", link="/crew")
    await commit(session)

    page = await _staff_page(browser, live_server, crew.username, "/crew", **MOBILE)
    await page.wait_for_function("() => document.querySelector('#notify-count').textContent === '2'")
    assert await page.locator("#notify-toggle").is_visible()
    box = await page.locator("#notify-toggle").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390  # inside a 390 px phone screen

    await page.click("#notify-toggle")
    items = page.locator("#notify-list .notify-item.unread")
    assert await items.count() == 2
    assert "新派工单 GD20260002" in await items.first.inner_text()  # newest first
    await screenshot(page, "bell-menu-phone")
    await page.click("#notify-read-all")
    await page.wait_for_function("() => document.querySelector('#notify-count').hidden")
    assert await page.locator("#notify-list .notify-item.unread").count() == 0

    # a dispatcher assigns a ticket to the crew on the server: badge, list and a passing toast arrive live
    ticket = await wo_ticket(session, "repair", description="厨房燃气表漏水", title="燃气表更换")
    headers = await wo_headers(factory, await staff_user(session, "dispatcher"))
    async with httpx.AsyncClient(base_url=live_server, headers=headers) as api:
        response = await api.post(f"/api/v1/tickets/{ticket.id}/actions", json={"action": "assign", "crew_id": crew_id})
        assert response.status_code == 200, response.text
    await page.wait_for_selector(f".alert-toast:has-text('{ticket.number}')")
    assert await page.inner_text("#notify-count") == "1"
    await page.reload()
    await page.wait_for_function("() => document.querySelector('#notify-count').textContent === '1'")
    # the full list page, with nothing but forms
    await page.goto(live_server + "/notifications")
    assert f"新派工单 {ticket.number}" in await page.inner_text("#notify-page-list")
