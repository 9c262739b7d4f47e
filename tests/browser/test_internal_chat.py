"""Internal chat in a real browser: a dispatcher and a field crew member chat live in a group, the dispatcher
shares a ticket card, the crew (on a phone) sees it arrive with the header badge and opens it."""

from __future__ import annotations

import pytest

from gasdesk.db import commit
from gasdesk.internal_chat.service import do_create_group
from tests.browser.conftest import MOBILE, login_as, screenshot
from tests.factories import staff_user, wo_ticket

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _socket_open(page) -> None:
    await page.wait_for_function("() => window.gasdeskBell && window.gasdeskBell.state.open")


async def test_two_staff_chat_in_a_group_and_open_a_shared_ticket_card(live_server, browser, session) -> None:
    dispatcher = await staff_user(session, "dispatcher", display_name="调度老周")
    crew = await staff_user(session, "field_crew", display_name="外勤老王")
    ticket = await wo_ticket(
        session, "repair", status="assigned", crew_id=crew.id, title="幸福里3号楼表后阀漏气"
    )
    chat = await do_create_group(session, dispatcher, "巡线一组", [crew.id])
    await commit(session)

    desk = await browser.new_page(viewport={"width": 1280, "height": 860})
    await login_as(desk, live_server, dispatcher.username)
    await desk.goto(f"{live_server}/ichat/{chat.id}")
    await _socket_open(desk)

    phone = await browser.new_page(**MOBILE)
    await login_as(phone, live_server, crew.username)  # lands on /crew, which links to the chat
    await _socket_open(phone)
    await phone.click("a.crew-ichat")
    await phone.wait_for_url("**/ichat")
    await phone.click(f"#ichat-list li[data-chat='{chat.id}'] a")
    await phone.wait_for_url(f"**/ichat/{chat.id}")
    await _socket_open(phone)
    await phone.wait_for_selector(".ichat-system")  # the history loaded (the creation notice)

    # the dispatcher writes with an @mention: it appears live on the crew's phone
    await desk.fill("#ichat-input", "@外勤老王 今天下午先去幸福里")
    await desk.press("#ichat-input", "Enter")
    await phone.wait_for_selector(".ichat-msg:has-text('今天下午先去幸福里')")
    assert await phone.locator(".ichat-msg.mentions-me").count() == 1
    # the crew answers from the phone
    await phone.fill("#ichat-input", "收到，两点到")
    await phone.click("#ichat-send")
    await desk.wait_for_selector(".ichat-msg:has-text('收到，两点到')")

    # the crew leaves the chat page; the dispatcher shares the ticket: the header badge counts it
    await phone.goto(live_server + "/crew")
    await _socket_open(phone)
    await desk.fill("#ichat-card-ref", ticket.number)
    await desk.click("#ichat-card-share")
    await desk.wait_for_selector(f".ichat-card:has-text('{ticket.number}')")
    await phone.wait_for_function("() => document.querySelector('#ichat-count').textContent === '1'")
    await screenshot(desk, "ichat-desk-card-shared")

    await phone.click("#ichat-link")
    await phone.click(f"#ichat-list li[data-chat='{chat.id}'] a")
    card = phone.locator(f".ichat-card:has-text('{ticket.number}')")
    await card.wait_for()
    assert "已派单" in await card.inner_text()
    await phone.wait_for_function("() => document.querySelector('#ichat-count').hidden")  # read on open
    await screenshot(phone, "ichat-phone-card")
    await card.click()
    await phone.wait_for_url(f"**/crew/tickets/{ticket.id}")
    assert ticket.number in await phone.inner_text("main")
