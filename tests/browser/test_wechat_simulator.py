"""The WeChat channel in real browsers: a follower in the development simulator asks for a person, an agent
answers in /agent, the answer reaches the (fake) WeChat API as a 客服消息; the follower is bound to a
customer, opens the H5 chat from the official account menu, and the customer 360 shows the WeChat and the
web conversations in one timeline."""

from __future__ import annotations

import pytest

from gasdesk.db import commit
from gasdesk.routing.service import do_set_presence, do_set_skills
from tests.browser.conftest import MOBILE, login_as, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")




async def test_wechat_follower_agent_reply_and_one_timeline(live_server, browser, factory, session) -> None:
    agent = await factory.user("agent", username="wxagent")
    await do_set_skills(session, agent, [1, 2, 3, 4], max_concurrent=3)
    await do_set_presence(session, agent, "online")
    customer = await factory.customer(name="赵微信", phones=["13912345678"])
    await commit(session)
    customer_id = customer.id

    follower = await (await browser.new_context(**MOBILE)).new_page()
    await follower.goto(live_server + "/dev/simulator")
    await follower.fill("#sim-text", "你好")
    await follower.press("#sim-text", "Enter")
    await follower.wait_for_selector("#sim-log li.oa:has-text('公众号被动回复')")
    await follower.click("button[data-key=handoff]")  # the OA menu's 人工客服 entry
    await follower.wait_for_selector("#sim-log li.oa:has-text('人工客服')")

    console = await (await browser.new_context(viewport={"width": 1440, "height": 900})).new_page()
    await login_as(console, live_server, "wxagent")
    await console.goto(live_server + "/agent")
    await console.wait_for_selector("#conn-state.ok")
    row = "#mine-list .conv-item:has-text('微信')"
    await console.wait_for_selector(row)
    await console.click(row)
    await console.wait_for_selector("#conv-meta:has-text('48 小时窗口')")  # the agent sees the channel's limit
    if await console.locator("#btn-accept").is_visible():
        await console.click("#btn-accept")
    await console.wait_for_selector("#composer-input:enabled")
    await console.fill("#composer-input", "您好，我是客服小王，请问有什么可以帮您？")
    await console.press("#composer-input", "Enter")
    # The reply leaves through the outbound queue as 客服消息 and reaches the fake WeChat API.
    await follower.wait_for_selector("#sim-log li.oa:has-text('客服消息'):has-text('我是客服小王')", timeout=15_000)
    await screenshot(follower, "wechat-simulator-agent-reply")
    # …and the agent sees that it went out (the outbound row's status under the message).
    await console.wait_for_selector("#msgs .msg-agent:has-text('我是客服小王') .delivery:has-text('微信已发送')",
                                    timeout=15_000)

    # The agent identifies the follower: the WeChat user is bound to the customer.
    await console.fill("#cust-q", "13912345678")
    await console.press("#cust-q", "Enter")
    await console.click("#cust-results .link-customer")
    await console.wait_for_selector("text=已关联客户")

    # The follower opens the H5 chat from the OA menu (OAuth): the web chat knows who they are.
    await follower.click("#sim-h5")
    await follower.wait_for_url("**/chat")
    await follower.wait_for_selector("li:has-text('智能客服')")
    await follower.fill("#input", "我想问一下燃气费怎么交")
    await follower.press("#input", "Enter")
    await follower.wait_for_selector("li.gd-me:has-text('燃气费怎么交')")

    await console.goto(live_server + f"/customers/{customer_id}")
    timeline = console.locator("#customer-timeline")
    await timeline.locator("tr[data-channel=wechat]").first.wait_for()
    await timeline.locator("tr[data-channel=webchat]").first.wait_for()
    await console.wait_for_selector("text=已绑定：微信")
    await screenshot(console, "wechat-customer-timeline")
