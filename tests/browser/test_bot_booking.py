"""The widget's bot is the NLU bot: a resident books a safety inspection through the guided flow in a
real browser, and the booking exists as a service_appointment ticket with an appointment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gasdesk.appointments.models import Appointment
from gasdesk.appointments.service import do_generate_slots
from gasdesk.clock import to_local, utcnow
from gasdesk.db import commit
from gasdesk.tickets.models import Ticket
from tests.browser.conftest import MOBILE, screenshot

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")




async def test_resident_books_inspection_through_the_bot(nlu_bot, live_server, browser, factory, session) -> None:
    customer = await factory.customer(
        name="赵敏", phones=["13987654321"], account_no="2107654321",
        address={"district": "和平区", "community": "南湖家园", "building": "5", "unit": "1", "room": "302"})
    customer_id = customer.id
    tomorrow = to_local(utcnow() + timedelta(days=1)).date()  # type: ignore[union-attr]
    await do_generate_slots(session, district="和平区", first_day=tomorrow, days=3,
                            windows=[("09:00", "12:00"), ("13:30", "17:30")], capacity=4)
    await commit(session)

    page = await (await browser.new_context(**MOBILE)).new_page()
    await page.goto(live_server + "/chat")
    await page.wait_for_selector("li:has-text('智能客服')")

    async def say(text: str) -> None:
        await page.fill("#input", text)
        await page.press("#input", "Enter")

    await say("你好，我想预约上门安检")
    await page.wait_for_selector("li.gd-them:has-text('请输入您的户号')")
    await say("2107654321")
    await page.wait_for_selector("li.gd-them:has-text('后四位')")
    await say("4321")
    await page.wait_for_selector("li.gd-them:has-text('请选择上门时间')")
    await page.locator(".gd-quick:visible button").first.click()  # the earliest free slot
    await page.wait_for_selector("li.gd-them:has-text('请确认预约')")
    await page.locator(".gd-quick:visible button:has-text('确认预约')").click()
    await page.wait_for_selector("li.gd-them:has-text('预约成功')")
    await screenshot(page, "bot-booking")

    session.expire_all()
    ticket = await session.scalar(select(Ticket).where(Ticket.customer_id == customer_id,
                                                       Ticket.type == "service_appointment"))
    assert ticket is not None and ticket.service_type == "安检" and ticket.channel == "webchat"
    appointment = await session.scalar(select(Appointment).where(Appointment.ticket_id == ticket.id))
    assert appointment is not None and appointment.status == "booked"
    assert ticket.number in await page.inner_text("#list")


async def test_meter_guidance_shows_steps_with_a_picture(nlu_bot, live_server, browser) -> None:
    page = await (await browser.new_context(**MOBILE)).new_page()
    await page.goto(live_server + "/chat")
    await page.wait_for_selector("li:has-text('智能客服')")
    await page.fill("#input", "IC卡表没电了，怎么换电池")
    await page.press("#input", "Enter")
    picture = page.locator(".gd-guide img")
    await picture.wait_for()
    assert await picture.get_attribute("src") == "/static/webchat/guides/battery.svg"
    assert await picture.evaluate("img => img.complete && img.naturalWidth > 0")  # the SVG really loads
    assert "换电池" in await page.inner_text(".gd-guide")
    await screenshot(page, "bot-meter-guide")
