"""The whole chat path in two real browsers: a resident in the H5 widget, an agent in the console.

Resident opens /chat and is greeted by the bot, clicks 转人工 and sees a queue position; the agent
(second browser context) goes online and accepts; they write both ways; the agent closes; the resident
rates 5. Screenshots of both sides are saved as test artifacts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk.conversations.models import Conversation
from gasdesk.db import commit
from gasdesk.routing.service import do_set_presence, do_set_skills
from tests.browser.conftest import MOBILE, screenshot
from tests.factories import TEST_PASSWORD

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")



async def test_resident_and_agent_full_path(live_server, browser, factory, session) -> None:
    agent = await factory.user("agent", username="agente2e")
    agent.display_name = "李晓雪"
    await do_set_skills(session, agent, [1, 2, 3, 4], max_concurrent=3)
    await do_set_presence(session, agent, "busy")  # staffed, but not yet taking work: the resident queues
    await commit(session)
    agent_id, username = agent.id, agent.username

    # Resident: greeted by the bot, asks for a person, waits in the queue.
    resident = await (await browser.new_context(**MOBILE)).new_page()
    await resident.goto(live_server + "/chat")
    await resident.wait_for_selector("li:has-text('智能客服')")
    await resident.click("#btn-handoff")
    await resident.wait_for_selector("#queue-banner:has-text('排队中：您前面还有 0 位')")
    conversation_id = await resident.evaluate("() => window.gasdeskChat.state.conversationId")
    await screenshot(resident, "e2e-resident-queued")

    # Agent: logs in, goes online; the ACD offers the conversation; the agent accepts it.
    console = await (await browser.new_context(viewport={"width": 1440, "height": 900})).new_page()
    await console.goto(live_server + "/login")
    await console.fill("input[name=username]", username)
    await console.fill("input[name=password]", TEST_PASSWORD)
    await console.click("button[type=submit]")
    await console.wait_for_load_state("networkidle")
    await console.goto(live_server + "/agent")
    await console.wait_for_selector("#conn-state.ok")
    await console.click("#presence button:has-text('在线')")
    row = f"#mine-list .conv-item[data-id='{conversation_id}']"
    await console.wait_for_selector(row)
    await console.click(row)
    await console.wait_for_selector("#msgs .msg-bot:has-text('智能客服')")  # the bot part is visible to the agent
    await console.click("#btn-accept")
    await console.wait_for_selector("#composer-input:enabled")
    await resident.wait_for_selector("#status:has-text('客服 李晓雪 为您服务')")

    # Both ways, live.
    await console.fill("#composer-input", "您好，请问有什么可以帮您？")
    await console.press("#composer-input", "Enter")
    await resident.wait_for_selector("li.gd-them:has-text('您好，请问有什么可以帮您？')")
    await resident.fill("#input", "我家燃气灶打不着火了")
    await resident.press("#input", "Enter")
    await console.wait_for_selector("#msgs .msg-resident:has-text('我家燃气灶打不着火了')")
    await console.fill("#composer-input", "请先检查表前阀是否打开，我们会安排师傅上门。")
    await console.press("#composer-input", "Enter")
    await resident.wait_for_selector("li.gd-them:has-text('请先检查表前阀是否打开')")
    await screenshot(console, "e2e-agent-chatting")
    await screenshot(resident, "e2e-resident-chatting")

    # Agent closes; the resident rates 5.
    await console.click("#btn-close")
    await console.wait_for_selector("#confirm-dialog[open]")
    await console.click("#confirm-yes")
    rating = resident.locator("[data-card=rating]")
    await rating.wait_for()
    await rating.locator("button[data-score='5']").click()
    await rating.locator("button[type=submit]").click()
    await rating.locator("text=感谢您的评价").wait_for()
    await screenshot(resident, "e2e-resident-rated")
    await screenshot(console, "e2e-agent-closed")

    session.expire_all()
    stored = await session.scalar(select(Conversation).where(Conversation.id == conversation_id))
    assert stored.state == "closed" and stored.rating == 5 and stored.agent_id == agent_id
    assert stored.first_response_at is not None and stored.accepted_at is not None
