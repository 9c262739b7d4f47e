"""Peak-hour guidance end to end in real browsers: the widget shows the peak offer above the threshold, the
resident books a callback, and the callback reaches the agent console, where the agent reveals the number
and records the outcome."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gasdesk.callbacks.models import CallbackRequest
from gasdesk.db import commit
from gasdesk.routing.service import do_set_presence, do_set_skills
from tests.browser.conftest import MOBILE, screenshot
from tests.factories import TEST_PASSWORD
from tests.servers import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

MOBILE_ZH = {**MOBILE, "locale": "zh-CN"}


@pytest.fixture
def peak_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """gasdesk with a low peak threshold: one resident waiting (about 1 minute) is already a peak."""
    server = LiveServer({"GASDESK_DATABASE_URL": database_url, "GASDESK_ENV": "test",
                         "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads"), "GASDESK_SQLITE_POOL_SIZE": "1",
                         "GASDESK_PEAK_WAIT_THRESHOLD_S": "30"}, tmp_path / "server.log")
    yield server.base
    server.stop()


async def test_widget_peak_offer_and_callback_reaches_the_agent_console(peak_server, browser, factory,
                                                                       session) -> None:
    agent = await factory.user("agent", username="agentcb")
    await do_set_skills(session, agent, [1, 2, 3, 4])
    await do_set_presence(session, agent, "busy")  # staffed but not taking work: the resident queues
    await commit(session)

    resident = await browser.new_page(**MOBILE_ZH)
    await resident.goto(peak_server + "/chat")
    await resident.wait_for_function("() => window.gasdeskChat && window.gasdeskChat.state.welcomed")
    assert await resident.locator("#peak-offer").is_hidden()
    await resident.click("#btn-handoff")
    await resident.wait_for_selector("#peak-offer:visible")
    assert "预计等待约 1 分钟" in await resident.inner_text("#peak-text")
    await resident.fill("#peak-phone", "1380000")
    await resident.click("#btn-callback")
    await resident.wait_for_selector("#peak-err:has-text('请输入 11 位手机号')")
    await resident.fill("#peak-phone", "13800006666")
    await resident.click("#btn-callback")
    await resident.wait_for_selector("#queue-banner:has-text('已预约回拨')")
    await resident.wait_for_selector("#peak-offer", state="hidden")
    await resident.wait_for_selector("li:has-text('已为您预约回拨（138****6666）')")
    await screenshot(resident, "webchat-peak-callback")
    conversation_id = await resident.evaluate("() => window.gasdeskChat.state.conversationId")

    console = await browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    console.on("pageerror", lambda exc: errors.append(str(exc)))
    await console.goto(peak_server + "/login")
    await console.fill("input[name=username]", "agentcb")
    await console.fill("input[name=password]", TEST_PASSWORD)
    await console.click("button[type=submit]")
    await console.wait_for_load_state("networkidle")
    await console.goto(peak_server + "/agent")
    await console.wait_for_selector("#conn-state.ok")
    row = f"#queue-list .conv-item[data-id='{conversation_id}']"
    await console.wait_for_selector(row + " .pill.callback")  # waiting in the queue, marked as a callback
    await console.click("#presence button:has-text('在线')")  # going online: the ACD offers it like any chat
    mine = f"#mine-list .conv-item[data-id='{conversation_id}']"
    await console.wait_for_selector(mine + " .pill.callback")
    await console.click(mine)
    await console.wait_for_selector("#callback-banner:has-text('138****6666')")
    assert await console.is_disabled("#btn-callback-dial"), "回拨 waits for 接入"
    await console.click("#btn-accept")
    await console.wait_for_selector("#btn-callback-dial:enabled")
    await console.click("#btn-callback-dial")
    await console.wait_for_selector("#callback-banner a[href='tel:13800006666']")
    await screenshot(console, "console-callback")
    await console.click("#callback-banner button[data-outcome=reached]")
    await console.wait_for_selector("#callback-banner", state="hidden")
    session.expire_all()
    callback = await session.scalar(select(CallbackRequest))
    assert callback is not None and (callback.status, callback.outcome, callback.attempts) == ("done", "reached", 1)
    await resident.wait_for_selector("li:has-text('回拨结果：已接通')")
    assert errors == []
