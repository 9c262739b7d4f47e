"""The agent console (/agent) in a real browser, with residents simulated over the webchat WebSocket:
take a conversation offered by the ACD, chat live both ways, unread badges, customer 360 and linking,
transfer back into a queue, close with the rating card, and the max-concurrency error. All in Chinese."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from gasdesk import clock
from gasdesk.customers.models import BillingBalance
from gasdesk.db import commit
from gasdesk.outages.service import AreaSpec, check_outage, do_create_outage, do_publish_outage
from gasdesk.routing.service import do_set_skills
from tests.browser.conftest import screenshot
from tests.factories import TEST_PASSWORD, wo_actor

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")

ALL_GROUPS = [1, 2, 3, 4]  # 燃气业务 (24h), 热力业务, 缴费账单, 投诉建议 — seeded by the migrations


class Resident:
    """A resident on the web chat socket, as the widget would be."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.frames: list[dict[str, Any]] = []
        self.conversation_id: int | None = None
        self._changed = asyncio.Condition()
        self._n = 0

    async def start(self) -> Resident:
        async with httpx.AsyncClient() as client:
            token = (await client.post(self.base + "/api/v1/webchat/visitors")).json()["token"]
        self.ws = await connect(self.base.replace("http://", "ws://") + "/ws/webchat")
        self._reader = asyncio.create_task(self._read())
        await self.ws.send(json.dumps({"type": "hello", "token": token}))
        welcome = await self.wait_for(lambda f: f["type"] == "welcome")
        self.conversation_id = welcome["conversation"]["id"]
        return self

    async def _read(self) -> None:
        async for raw in self.ws:
            async with self._changed:
                self.frames.append(json.loads(raw))
                self._changed.notify_all()

    async def say(self, text: str) -> None:
        self._n += 1
        await self.ws.send(json.dumps({"type": "message", "client_msg_id": f"r{self._n}", "text": text}))
        await self.wait_for(lambda f: f["type"] == "ack" and f["client_msg_id"] == f"r{self._n}")

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def typing(self) -> None:
        await self.ws.send(json.dumps({"type": "typing"}))

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        async def seek() -> dict[str, Any]:
            async with self._changed:
                while True:
                    for frame in self.frames:
                        if predicate(frame):
                            return frame
                    await self._changed.wait()

        return await asyncio.wait_for(seek(), timeout)

    def message(self, predicate: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
        return lambda f: f["type"] == "message" and predicate(f["message"])

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


@pytest_asyncio.fixture(loop_scope="session")  # its sockets live in the tests' (session) loop
async def residents(live_server):
    started: list[Resident] = []

    async def make() -> Resident:
        resident = await Resident(live_server).start()
        started.append(resident)
        return resident

    yield make
    for resident in started:
        await resident.close()


async def _agent(factory, session, username: str, max_concurrent: int = 3):
    agent = await factory.user("agent", username=username)
    await do_set_skills(session, agent, ALL_GROUPS, max_concurrent=max_concurrent)
    await commit(session)
    return agent


async def _open_console(browser, base: str, username: str, presence: str = "online"):
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", TEST_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    await page.goto(base + "/agent")
    await page.wait_for_selector("#conn-state.ok")
    labels = {"online": "在线", "busy": "忙碌", "away": "离开", "offline": "离线"}
    await page.click(f"#presence button:has-text('{labels[presence]}')")
    await page.wait_for_selector(f"#presence button.active[data-presence={presence}]")
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def item(cid: int, column: str = "mine") -> str:
    return f"#{column}-list .conv-item[data-id='{cid}']"


async def _take(page, resident: Resident) -> None:
    """The ACD offers the resident's conversation to the agent, who opens and accepts it."""
    await page.wait_for_selector(item(resident.conversation_id) + " .pill.offered")
    await page.click(item(resident.conversation_id))
    await page.wait_for_selector("#btn-accept:visible")
    await page.click("#btn-accept")
    await page.wait_for_selector("#composer-input:enabled")
    await resident.wait_for(resident.message(lambda m: (m.get("payload") or {}).get("event") == "agent_joined"))


async def test_agent_takes_conversation_and_chats_live(live_server, browser, factory, session, residents) -> None:
    agent = await _agent(factory, session, "agentwang")
    page = await _open_console(browser, live_server, agent.username)
    assert "当前会话 0 / 3" in await page.inner_text("#load")

    first = await residents()
    await first.say("转人工")
    row = item(first.conversation_id)
    await page.wait_for_selector(row + " .pill.offered")  # offered by the ACD, not yet accepted
    await page.wait_for_selector(row + ".flash")  # the "assigned" notification highlights it
    await page.click(row)
    await page.wait_for_selector("#msgs .msg-bot:has-text('智能客服小暖')")  # the bot part of the transcript
    await page.wait_for_selector("#msgs .msg-resident:has-text('转人工')")
    assert await page.is_disabled("#composer-input")
    await page.click("#btn-accept")
    await page.wait_for_selector("#composer-input:enabled")
    await page.wait_for_selector("#msgs .msg-system:has-text('为您服务')")
    assert "当前会话 1 / 3" in await page.inner_text("#load")

    # canned reply by shortcut: /hi + Enter expands, Enter again sends over the socket
    await page.fill("#composer-input", "/hi")
    await page.press("#composer-input", "Enter")
    assert "很高兴为您服务" in await page.input_value("#composer-input")
    await page.press("#composer-input", "Enter")
    got = await first.wait_for(first.message(lambda m: m["sender"] == "agent"))
    assert "很高兴为您服务" in got["message"]["text"] and agent.display_name in got["message"]["text"]
    await page.wait_for_selector("#msgs .msg-agent:has-text('很高兴为您服务')")
    await page.wait_for_selector("#pending-msgs .msg", state="detached")  # acknowledged, no duplicate

    # the resident types and writes: live in the console, no reload
    await first.typing()
    await page.wait_for_selector("#typing:has-text('居民正在输入…')")
    await first.say("家里燃气灶打不着火了")
    await page.wait_for_selector("#msgs .msg-resident:has-text('家里燃气灶打不着火了')")
    assert await page.locator("#msgs .msg-agent:has-text('很高兴为您服务')").count() == 1

    # a second conversation collects unread messages while the first is open
    second = await residents()
    await second.say("转人工")
    other = item(second.conversation_id)
    await page.wait_for_selector(other + " .badge.unread:has-text('1')")
    await second.say("暖气片不热，能派人来看看吗")
    await page.wait_for_selector(other + " .badge.unread:has-text('2')")
    assert await page.locator(row + " .badge.unread").count() == 0  # the open conversation stays read
    await screenshot(page, "agent-console-chat")

    await page.click(other)
    await page.wait_for_selector("#msgs .msg-resident:has-text('暖气片不热')")
    await page.wait_for_selector(other + " .badge.unread", state="detached")
    await page.click(row)
    await page.wait_for_selector("#msgs .msg-resident:has-text('家里燃气灶打不着火了')")
    await first.say("还在吗？")  # triggers a list refresh from the server: the read second stays at 0
    await page.wait_for_selector("#msgs .msg-resident:has-text('还在吗？')")
    await page.wait_for_timeout(800)
    assert await page.locator(other + " .badge.unread").count() == 0

    # the socket drops: banner, the reply waits as 发送中 and is re-sent (same client_msg_id) after reconnecting
    await page.evaluate("() => { const s = window.gasdeskAgent.state; s.stopped = true; s.ws.close(); }")
    await page.wait_for_selector("#conn-banner:has-text('连接已断开，正在重连…')")
    await page.fill("#composer-input", "请您先关闭表前阀，我们马上安排维修")
    await page.press("#composer-input", "Enter")
    await page.wait_for_selector("#pending-msgs .msg:has-text('发送中')")
    await page.evaluate("() => window.gasdeskAgent.connect()")
    await page.wait_for_selector("#conn-banner", state="hidden")
    await first.wait_for(first.message(lambda m: "关闭表前阀" in (m.get("text") or "")))
    await page.wait_for_selector("#msgs .msg-agent:has-text('关闭表前阀')")
    await page.wait_for_selector("#pending-msgs .msg", state="detached")
    assert page.js_errors == []


async def test_customer_360_search_and_link(live_server, browser, factory, session, residents) -> None:
    agent = await _agent(factory, session, "agentli")
    customer = await factory.customer(
        name="刘芳", phones=["13912345678"], account_no="2109876543", meter_type="ic_card",
        address={"district": "和平区", "community": "幸福里小区", "building": "3", "unit": "2", "room": "501"},
    )
    session.add(BillingBalance(account_id=customer.accounts[0].id, balance=Decimal("88.50"), arrears=Decimal("0")))
    # An outage notice for her building: the panel shows it first (the likeliest answer to 家里没气了).
    now = clock.utcnow()
    notice = await do_create_outage(session, wo_actor(), check_outage(
        kind="gas", planned=False, areas=[AreaSpec(district="和平区", community="幸福里小区", building="3")],
        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=3), reason="楼前管线抢修"))
    await do_publish_outage(session, wo_actor(), notice)
    await commit(session)
    page = await _open_console(browser, live_server, agent.username)

    resident = await residents()
    await resident.say("转人工")
    await _take(page, resident)
    await page.wait_for_selector("#cust-q")
    await resident.say("我的电话是 139 1234 5678，家里没气了")
    await page.wait_for_function("() => document.querySelector('#cust-q').value === '13912345678'")  # auto-suggested
    await page.click("#cust-search-btn")
    await page.wait_for_selector("#cust-results .result:has-text('刘芳')")
    await page.click("#cust-results .result:has-text('刘芳') button:has-text('关联此客户')")
    await page.wait_for_selector("#cust-360 .cust-name:has-text('刘芳')")
    panel = await page.inner_text("#cust-panel")
    assert "2109876543" in panel and "¥88.50" in panel and "IC卡表" in panel
    assert "和平区幸福里小区3号楼2单元501室" in panel
    assert "突发停气" in await page.inner_text("#cust-outages") and "楼前管线抢修" in panel
    await page.wait_for_selector("#cust-panel .history-list li.current")
    await page.wait_for_selector(item(resident.conversation_id) + " .name:has-text('刘芳')")
    await screenshot(page, "agent-console-customer-360")
    assert page.js_errors == []


async def test_transfer_to_group_requeues_then_close_sends_rating(live_server, browser, factory, session,
                                                                  residents) -> None:
    agent = await _agent(factory, session, "agentzhou")
    page = await _open_console(browser, live_server, agent.username)
    resident = await residents()
    await resident.say("转人工")
    await _take(page, resident)
    row = item(resident.conversation_id)

    # busy: keeps current work but takes nothing new, so the transfer really waits in the 投诉建议 queue
    await page.click("#presence button:has-text('忙碌')")
    await page.wait_for_selector("#presence button.active[data-presence=busy]")
    await page.click("#btn-transfer")
    await page.wait_for_selector("#transfer-groups label:has-text('投诉建议')")
    await page.check("#transfer-groups label:has-text('投诉建议') input")
    await page.fill("#transfer-note", "居民要投诉抄表员")
    await page.click("#transfer-submit")
    await page.wait_for_selector(row, state="detached")  # gone from 我的会话
    queued = item(resident.conversation_id, "queue")
    await page.wait_for_selector(queued + " .pill:has-text('投诉建议')")
    await resident.wait_for(resident.message(lambda m: "投诉建议" in (m.get("text") or "")))
    await screenshot(page, "agent-console-transfer")

    # take it back from the queue and end it: the resident gets the rating card
    await page.click(queued + " button:has-text('接入')")
    await page.wait_for_selector(row)
    await page.wait_for_selector("#composer-input:enabled")
    await page.click("#btn-close")
    await page.wait_for_selector("#confirm-dialog[open]")
    await page.click("#confirm-yes")
    card = await resident.wait_for(resident.message(lambda m: (m.get("payload") or {}).get("kind") == "rating"))
    assert card["message"]["type"] == "card"
    await page.wait_for_selector(row, state="detached")
    await page.wait_for_selector("#msgs .msg:has-text('满意度评价卡片')")
    assert await page.is_disabled("#composer-input")
    assert "当前会话 0 / 3" in await page.inner_text("#load")
    await screenshot(page, "agent-console-closed")
    assert page.js_errors == []


async def test_accept_refused_at_max_concurrency(live_server, browser, factory, session, residents) -> None:
    agent = await _agent(factory, session, "agentchen", max_concurrent=1)
    page = await _open_console(browser, live_server, agent.username)
    first = await residents()
    await first.say("转人工")
    await page.wait_for_selector(item(first.conversation_id) + " .pill.offered")
    await page.wait_for_selector("#load.full:has-text('当前会话 1 / 1')")

    second = await residents()
    await second.say("转人工")  # staffed but nobody free: it waits in the queue
    queued = item(second.conversation_id, "queue")
    await page.wait_for_selector(queued + " .pill:has-text('燃气业务')")
    await page.click(queued + " button:has-text('接入')")
    await page.wait_for_selector(".toast.error:has-text('您已达到最大并发会话数（1）')")
    assert await page.locator(item(second.conversation_id)).count() == 0

    # a message left by a resident shows live under 留言 and can be marked handled
    third = await residents()
    await third.send({"type": "leave_message", "name": "赵先生", "phone": "13800138000", "content": "明天上午来修表",
                      "reason": "no_agent", "skill_group_id": 1})
    left = "#left-list .left-item:has-text('明天上午来修表')"
    await page.wait_for_selector(left + " .pill:has-text('无空闲坐席')")
    await screenshot(page, "agent-console-at-capacity")
    await page.click(left + " button:has-text('已处理')")
    await page.wait_for_selector(left, state="detached")
    assert page.js_errors == []


async def test_agent_marks_the_intent_the_bot_missed(live_server, browser, factory, session, residents) -> None:
    """纠正意图 on a resident's message: pick the intent from the menu; the mark stays after reopening."""
    from sqlalchemy import select

    from gasdesk.intent_corrections.models import IntentCorrection

    agent = await _agent(factory, session, "agentcorrect")
    agent_id = agent.id
    page = await _open_console(browser, live_server, agent.username)
    resident = await residents()
    await resident.say("转人工")
    await _take(page, resident)
    await resident.say("我户号2103345678，这个月的钱咋交")
    said = "#msgs .msg-resident:has-text('这个月的钱咋交')"
    await page.wait_for_selector(said)
    assert await page.locator("#msgs .msg-bot .intent-fix").count() == 0  # only residents' messages
    await page.click(said + " .intent-fix")
    await page.select_option(said + " .intent-form select", "payment_howto")
    await page.click(said + " .intent-form button[type=submit]")
    await page.wait_for_selector(said + " .intent-mark:has-text('已标注意图：如何缴费（待审核）')")
    await page.reload()
    await page.wait_for_selector("#conn-state.ok")
    await page.click(item(resident.conversation_id))
    await page.wait_for_selector(said + " .intent-mark:has-text('如何缴费')")
    session.expire_all()
    [row] = await session.scalars(select(IntentCorrection))
    assert row.intent == "payment_howto" and row.created_by == agent_id and "[户号]" in row.text
    assert page.js_errors == []
