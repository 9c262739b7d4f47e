"""The agent console in a real browser: the customer panel lists the customer's tickets and appointments and
finds a customer by an address typed without its district; an emergency waiting in the queue comes before
ordinary work; a resident who closed the chat is marked 居民已离开 (by the server's periodic idle scan)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from gasdesk.appointments.models import AppointmentSlot
from gasdesk.appointments.service import book_appointment, do_generate_slots
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from tests.browser.conftest import screenshot
from tests.factories import (
    TEST_PASSWORD,
    ChatSocket,
    desk_agent,
    new_visitor,
    queued_conversation,
    wo_actor,
    wo_ticket,
)

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")

HOME = {"district": "和平区", "community": "幸福里小区", "building": "3", "unit": "2", "room": "501"}


async def _console(browser, base: str, username: str):
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", TEST_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.goto(base + "/agent")
    await page.wait_for_selector("#conn-state.ok")
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


async def _resident(stack: AsyncExitStack, base: str) -> tuple[ChatSocket, int]:
    """A resident on the chat socket who asks for a person; returns the socket and the conversation id."""
    host = base.removeprefix("http://")
    visitor = await new_visitor(host)
    ws = await stack.enter_async_context(ChatSocket.connect(host))
    await ws.send(type="hello", token=visitor["token"])
    cid = (await ws.until("welcome"))["conversation"]["id"]
    await ws.send(type="message", client_msg_id="r1", text="转人工")
    await ws.until("ack")
    return ws, cid


def row(cid: int, column: str = "mine") -> str:
    return f"#{column}-list .conv-item[data-id='{cid}']"


async def test_customer_panel_shows_tickets_and_appointments(live_server, browser, factory, session) -> None:
    agent = await desk_agent(factory, groups=(1, 2, 3, 4), max_concurrent=3, presence="offline")
    customer = await factory.customer(name="刘芳", phones=["13912345678"], account_no="2109876543", address=HOME)
    repair = await wo_ticket(session, "repair", customer_id=customer.id, title="灶具打不着火")
    await do_generate_slots(session, district="和平区", first_day=date.today() + timedelta(days=7), days=1,
                            windows=[("09:00", "12:00")], capacity=3)
    await commit(session)
    slot = await session.scalar(select(AppointmentSlot).where(AppointmentSlot.district == "和平区"))
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="安检",
                                     slot_id=slot.id)
    await commit(session)

    page = await _console(browser, live_server, agent.username)
    await page.click("#presence button:has-text('在线')")
    await page.wait_for_selector("#presence button.active[data-presence=online]")
    async with AsyncExitStack() as stack:
        _, cid = await _resident(stack, live_server)
        await page.wait_for_selector(row(cid))
        await page.click(row(cid))
        await page.wait_for_selector("#cust-q")
        # the resident gives the address without the district
        await page.fill("#cust-q", "幸福里小区3号楼2单元501")
        await page.click("#cust-search-btn")
        await page.wait_for_selector("#cust-results .result:has-text('刘芳')")
        await page.click("#cust-results .result:has-text('刘芳') button:has-text('关联此客户')")
        await page.wait_for_selector("#cust-360 .cust-name:has-text('刘芳')")
        tickets = await page.inner_text("#cust-tickets")
        assert repair.number in tickets and "维修" in tickets and "新建" in tickets
        assert booking.ticket.number in tickets
        appointments = await page.inner_text("#cust-appointments")
        assert "安检" in appointments and "已预约" in appointments and booking.ticket.number in appointments
        link = page.locator(f"#cust-tickets a:has-text('{repair.number}')")
        assert await link.get_attribute("href") == f"/tickets/{repair.id}"
        await screenshot(page, "agent-console-customer-work")
    assert page.js_errors == []


@pytest.fixture
def quick_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requested before ``live_server``: the server marks a resident who left after 1 s (released much later)."""
    monkeypatch.setenv("GASDESK_RESIDENT_LEFT_AFTER_S", "1")
    monkeypatch.setenv("GASDESK_RESIDENT_RELEASE_AFTER_S", "3600")
    reset_settings_cache()


async def test_emergency_first_and_resident_left(quick_idle, live_server, browser, factory, session) -> None:
    agent = await desk_agent(factory, groups=(1, 2, 3, 4), max_concurrent=1, presence="offline")
    page = await _console(browser, live_server, agent.username)
    await page.click("#presence button:has-text('在线')")
    await page.wait_for_selector("#presence button.active[data-presence=online]")
    async with AsyncExitStack() as stack:
        first, served_id = await _resident(stack, live_server)  # takes the agent's only place
        await page.wait_for_selector(row(served_id))
        _, waiting_id = await _resident(stack, live_server)  # waits in the queue
        await page.wait_for_selector(row(waiting_id, "queue"))
        # ordinary work only: my conversations come first
        assert await page.evaluate("() => document.querySelector('.col-left section').id") == "mine-section"

        # a gas-leak conversation queues (made here, so the console learns of it when it reloads)
        emergency = await queued_conversation(session, group_id=1, priority=10)
        await page.reload()
        await page.wait_for_selector(row(emergency.id, "queue") + " .pill.urgent")
        assert await page.evaluate("() => document.querySelector('.col-left section').id") == "queue-section"
        queue_ids = await page.eval_on_selector_all("#queue-list .conv-item", "els => els.map(e => +e.dataset.id)")
        assert queue_ids == [emergency.id, waiting_id]

        # the served resident closes the chat: marked 居民已离开 by the server's idle scan, live
        await first.ws.close()
        await page.wait_for_selector(row(served_id) + " .pill.left:has-text('居民已离开')", timeout=45_000)
        await page.click(row(served_id))
        await page.wait_for_selector("#conv-meta:has-text('居民已离开')")
        await screenshot(page, "agent-console-priorities")
    assert page.js_errors == []
