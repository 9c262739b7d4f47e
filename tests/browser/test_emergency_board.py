"""The emergency board in a real browser: a resident's gas-leak report in /chat appears on a supervisor's open
board (live, over the staff socket) with who was notified; the supervisor acknowledges from the board and the
escalation stops."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.db import commit, transaction
from gasdesk.emergency.models import EmergencyEvent, EmergencyNotification
from gasdesk.emergency.service import advance_due, do_add_duty
from tests.browser.conftest import MOBILE, screenshot
from tests.factories import TEST_PASSWORD, staff_user

pytestmark = pytest.mark.asyncio(loop_scope="session")



async def test_leak_report_shows_on_the_board_and_acknowledging_stops_escalation(nlu_bot, live_server, browser,
                                                                                 session) -> None:
    supervisor = await staff_user(session, "supervisor", display_name="值班长老陈")
    now = clock.utcnow()
    await do_add_duty(session, Actor.system("test", "test"), user_id=supervisor.id, duty_role="shift_lead",
                      starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1))
    await commit(session)

    board = await (await browser.new_context()).new_page()
    await board.goto(live_server + "/login")
    await board.fill("input[name=username]", supervisor.username)
    await board.fill("input[name=password]", TEST_PASSWORD)
    await board.click("button[type=submit]")
    await board.wait_for_url(lambda url: "/login" not in url)
    await board.goto(live_server + "/emergency")
    await board.wait_for_function("() => window.gasdeskBell && window.gasdeskBell.state.open && window.gasdeskEmergency")
    assert "当前没有紧急事件" in await board.inner_text("#emergency-events")

    resident = await (await browser.new_context(**MOBILE)).new_page()
    await resident.goto(live_server + "/chat")
    await resident.wait_for_selector("li:has-text('智能客服')")
    greeted = await resident.locator("li.gd-them").count()
    await resident.fill("#input", "你好")
    await resident.press("#input", "Enter")
    await resident.wait_for_function(f"() => document.querySelectorAll('li.gd-them').length > {greeted}",
                                     timeout=60_000)
    await resident.fill("#input", "厨房有煤气味")
    await resident.press("#input", "Enter")

    # live: the board reloads its list on the "emergency" frame (no page reload)
    card = board.locator(".emg-event[data-status=escalating]")
    await card.wait_for(timeout=10_000)
    text = await card.inner_text()
    assert "Ⅰ级" in text and "燃气泄漏" in text and "值班长老陈" in text and "站内通知" in text
    assert await board.evaluate("() => window.gasdeskEmergency.reloads") >= 1
    await screenshot(board, "emergency-board-escalating")

    async with transaction() as s:
        event = await s.scalar(select(EmergencyEvent))
        assert event is not None and event.level == 1 and event.seq == 1
        event_id = event.id
        sent = int(await s.scalar(select(func.count()).select_from(EmergencyNotification)) or 0)

    await card.locator("button.emg-ack").click()
    await board.wait_for_selector(".emg-event[data-status=acknowledged]", timeout=10_000)
    assert "确认：值班长老陈" in await board.inner_text(".emg-event[data-status=acknowledged]")
    await screenshot(board, "emergency-board-acknowledged")

    async with transaction() as s:
        event = await s.get(EmergencyEvent, event_id)
        assert event is not None and event.status == "acknowledged"
        assert event.acknowledged_by_id == supervisor.id and event.acknowledged_via == "board"
    # long after every timeout of the path: nothing more is sent
    clock.set_now(clock.utcnow() + timedelta(hours=2))
    async with transaction() as s:
        assert await advance_due(s) == 0
        assert int(await s.scalar(select(func.count()).select_from(EmergencyNotification)) or 0) == sent
