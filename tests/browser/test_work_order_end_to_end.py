"""The service loop in real browsers: an agent turns a chat into a repair ticket from the draft, a
dispatcher assigns it on the board, the crew resolves it on the phone page, and the resident receives and
answers the 回访 survey in the chat widget."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gasdesk import clock
from gasdesk.db import commit
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.followups.service import dispatch_due
from gasdesk.routing.service import do_set_presence, do_set_skills
from gasdesk.tickets.models import Ticket
from tests.browser.conftest import MOBILE, login_as, screenshot
from tests.factories import staff_user

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")



async def _login(context, base: str, username: str):
    page = await context.new_page()
    await login_as(page, base, username)
    return page


async def test_chat_to_ticket_to_crew_to_followup(live_server, browser, factory, session) -> None:
    await factory.customer(name="刘芳", phones=["13912345678"], account_no="2109876543",
                           address={"district": "和平区", "community": "幸福里小区", "building": "3", "unit": "2",
                                    "room": "501"})
    agent = await factory.user("agent", username="agentloop")
    await do_set_skills(session, agent, [1, 2, 3, 4], max_concurrent=3)
    await do_set_presence(session, agent, "online")
    dispatcher = await staff_user(session, "dispatcher", display_name="调度小李")
    crew = await staff_user(session, "field_crew", display_name="王师傅")
    await commit(session)
    names = (agent.username, dispatcher.username, crew.username)

    # Resident asks for a person and tells the story.
    resident = await (await browser.new_context(**MOBILE)).new_page()
    await resident.goto(live_server + "/chat")
    await resident.wait_for_selector("li:has-text('智能客服')")
    await resident.click("#btn-handoff")
    conversation_id = await resident.evaluate("() => window.gasdeskChat.state.conversationId")

    # Agent accepts in the console, reads the story, opens 生成工单 (a draft filled from the transcript).
    staff = await browser.new_context(viewport={"width": 1440, "height": 900})
    console = await _login(staff, live_server, names[0])
    await console.goto(live_server + "/agent")
    row = f"#mine-list .conv-item[data-id='{conversation_id}']"
    await console.wait_for_selector(row)
    await console.click(row)
    await console.click("#btn-accept")
    await console.wait_for_selector("#composer-input:enabled")
    await resident.fill("#input", "我家燃气灶打不着火了，麻烦派师傅来修一下，户号2109876543，电话13912345678")
    await resident.press("#input", "Enter")
    await console.wait_for_selector("#msgs .msg-resident:has-text('打不着火')")
    async with staff.expect_page() as opened:
        await console.click("#btn-ticket")
    form = await opened.value
    await form.wait_for_load_state("networkidle")
    assert await form.input_value("select[name=type]") == "repair"
    assert "13912345678" in await form.input_value("input[name=contact_phone]")
    await screenshot(form, "loop-ticket-draft")
    await form.click("button:has-text('提交工单')")
    await form.wait_for_selector("text=工单已创建")
    session.expire_all()
    ticket = await session.scalar(select(Ticket).where(Ticket.conversation_id == conversation_id))
    assert ticket is not None and ticket.type == "repair" and ticket.customer_id is not None
    number, ticket_id = ticket.number, ticket.id

    # Dispatcher assigns it to the crew from the board.
    board = await _login(await browser.new_context(viewport={"width": 1400, "height": 900}), live_server, names[1])
    await board.goto(live_server + "/dispatch")
    card = board.locator(f"section[data-status=new] [data-ticket='{number}']")
    await card.locator("select[name=crew_id]").select_option(label="王师傅")
    await card.locator("button:has-text('派单')").click()
    await board.wait_for_selector(f"section[data-status=assigned] [data-ticket='{number}']")

    # The crew marks arrival and writes the result back on the phone page; the ticket is resolved.
    phone = await _login(await browser.new_context(**MOBILE), live_server, names[2])
    await phone.goto(live_server + "/crew")
    await phone.locator(f"[data-ticket='{number}'] >> text=打开工单").click()
    await phone.click("#arrive")
    await phone.wait_for_selector("text=已记录到达现场")
    await phone.fill("textarea[name=result]", "灶具点火针积碳，清理后点火正常")
    await phone.fill("input[name=signature_name]", "刘芳")
    await phone.click("#submit-writeback")
    await phone.wait_for_selector("text=结果已回写")
    await screenshot(phone, "loop-crew-resolved")

    # The follow-up falls due (delay per ticket type) and goes to the resident's web chat.
    session.expire_all()
    survey = await session.scalar(select(FollowUpSurvey).where(FollowUpSurvey.ticket_id == ticket_id))
    assert survey is not None and survey.status == "scheduled"
    survey_id = survey.id
    await session.execute(update(FollowUpSurvey).where(FollowUpSurvey.id == survey_id)
                          .values(due_at=clock.utcnow() - timedelta(minutes=1)))
    await commit(session)
    assert (await dispatch_due(session))["sent"] == 1
    await commit(session)

    await resident.reload()
    card = resident.locator("[data-card=followup]")
    await card.wait_for()
    await card.locator("button[data-score='5']").click()
    await card.locator("button[data-solved=yes]").click()
    await card.locator("textarea").fill("师傅很专业")
    await card.locator("button[type=submit]").click()
    await card.locator("text=感谢您参与回访").wait_for()
    await screenshot(resident, "loop-resident-followup")

    session.expire_all()
    answered = await session.get(FollowUpSurvey, survey_id)
    assert (answered.status, answered.score, answered.solved, answered.outcome) == ("answered", 5, True, "ok")
