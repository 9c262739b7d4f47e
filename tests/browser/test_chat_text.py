"""Chat text in a real browser, in the resident widget and the agent console: http(s) addresses in
messages are clickable links (new tab, rel=noopener, the rest stays text), and the 2,000-character limit
shows a counter instead of cutting the text silently."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.browser.conftest import screenshot
from tests.browser.test_agent_console import Resident, _agent, _open_console, _take
from tests.browser.test_webchat_widget import _open_chat, _send, _wait_acked

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")

LINK = "https://gas.example.cn/notice?id=7&amp=1"
# A link inside Chinese text, a script URL, markup and a link ending a sentence.
TRICKY = f"停气通知见{LINK}，谢谢 javascript:alert(1) <b>粗体</b><img src=x> 详情 http://gas.example.cn/a."


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


async def _links(page, bubble: str) -> list[dict[str, str]]:
    return await page.eval_on_selector_all(
        bubble + " a", "els => els.map(a => ({href: a.getAttribute('href'), text: a.textContent, "
                       "rel: a.rel, target: a.target}))")


def _assert_safe_links(links: list[dict[str, str]]) -> None:
    assert links == [
        {"href": "https://gas.example.cn/notice?id=7&amp=1", "text": LINK, "rel": "noopener noreferrer",
         "target": "_blank"},
        {"href": "http://gas.example.cn/a", "text": "http://gas.example.cn/a", "rel": "noopener noreferrer",
         "target": "_blank"},
    ], links


async def test_widget_links_are_clickable_and_the_limit_has_a_counter(live_server, browser) -> None:
    page = await _open_chat(browser, live_server)
    await _send(page, TRICKY)
    bubble = "#list li.gd-me[data-seq]:has-text('停气通知') .gd-bubble"
    await page.wait_for_selector(bubble)
    _assert_safe_links(await _links(page, bubble))
    assert await page.locator(bubble + " b, " + bubble + " img").count() == 0  # markup stayed text
    assert await page.inner_text(bubble) == TRICKY

    # Near the limit a counter appears; past it the text stays whole, the counter says by how much, and
    # sending is refused until it is shortened.
    assert await page.locator("#input-count").is_hidden()
    await page.fill("#input", "燃" * 2100)
    assert len(await page.input_value("#input")) == 2100  # nothing cut
    await page.wait_for_selector("#input-count.over:has-text('2100 / 2000')")
    assert "超出 100 字" in await page.inner_text("#input-count")
    assert await page.is_disabled("#btn-send")
    await page.press("#input", "Enter")
    await page.wait_for_selector("#error-bar:has-text('消息过长')")
    assert await page.locator("#list li.gd-me", has_text="燃燃燃燃").count() == 0
    await screenshot(page, "webchat-counter")
    # An emoji is one character, as the server counts.
    await page.fill("#input", "😀" * 2000)
    await page.wait_for_selector("#input-count:not(.over):has-text('2000 / 2000')")
    await page.fill("#input", "燃" * 1900)
    await page.wait_for_selector("#input-count:not(.over):has-text('1900 / 2000')")
    assert await page.is_enabled("#btn-send")
    await page.press("#input", "Enter")
    await _wait_acked(page, "燃燃燃燃")
    assert await page.locator("#input-count").is_hidden()  # cleared after sending


async def test_console_links_are_clickable_and_the_limit_has_a_counter(live_server, browser, factory, session,
                                                                      residents) -> None:
    agent = await _agent(factory, session, "agentlink")
    page = await _open_console(browser, live_server, agent.username)
    resident = await residents()
    await resident.say("转人工")
    await _take(page, resident)
    await resident.say(TRICKY)
    bubble = "#msgs .msg-resident:has-text('停气通知') .bubble"
    await page.wait_for_selector(bubble)
    _assert_safe_links(await _links(page, bubble))
    assert await page.locator(bubble + " b, " + bubble + " img").count() == 0
    assert await page.inner_text(bubble) == TRICKY

    await page.fill("#composer-input", "气" * 2001)
    await page.wait_for_selector("#composer-count.over:has-text('2001 / 2000')")
    await page.press("#composer-input", "Enter")
    await page.wait_for_selector(".toast:has-text('消息过长')")
    assert len(await page.input_value("#composer-input")) == 2001  # kept for the agent to shorten
    assert await page.locator("#pending-msgs .msg").count() == 0
    await page.fill("#composer-input", "燃气公司停气通知：" + LINK)
    await page.press("#composer-input", "Enter")
    got = await resident.wait_for(resident.message(lambda m: m["sender"] == "agent" and LINK in m["text"]))
    assert got["message"]["text"].endswith(LINK)
    agent_bubble = "#msgs .msg-agent:has-text('停气通知') .bubble"
    await page.wait_for_selector(agent_bubble + " a.chat-link")
    assert page.js_errors == []  # type: ignore[attr-defined]
    await screenshot(page, "agent-console-links")
