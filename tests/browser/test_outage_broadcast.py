"""Outage notices in real browsers: a dispatcher publishes a sudden gas outage for one community on /outages;
every affected customer gets one message on their channel — the WeChat follower a template message at the fake
WeChat API, the others an SMS at the fake Aliyun SMS API (both real HTTP servers on loopback, run by this test),
a resident with no phone who is chatting sees it in the chat and pinned above it — and nobody outside it. The
chatting resident asks the bot 为什么没气了 and is told the notice; an anonymous resident who names the
community is told it too."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete

from gasdesk.audit.service import Actor
from gasdesk.channels.sms.fake_aliyun import FakeAliyunSms, create_fake_aliyun_app
from gasdesk.channels.wechat.fake_api import FakeWeChat, create_fake_wechat_app
from gasdesk.conversations.models import Conversation
from gasdesk.conversations.service import do_link_customer
from gasdesk.customers.contacts import do_bind_contact, do_record_inbound_contact
from gasdesk.customers.models import ContactKind, CustomerPhone
from gasdesk.db import commit
from gasdesk.outbound.service import check_notice_template, do_save_notice_template
from tests.browser.conftest import MOBILE, login_as, screenshot
from tests.factories import served
from tests.servers import LiveServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

APP_ID, APP_SECRET = "wx0123456789abcdef", "outage-test-secret"
KEY_ID, KEY_SECRET = "LTAI-outage-test", "outage-sms-secret"
FOLLOWER = "oOutageBrowserFollower01"
ADDRESS = {"district": "和平区", "community": "幸福里小区", "unit": "1", "room": "101"}


async def _until(condition, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_publish_outage_bot_answers_and_each_customer_gets_one_message(database_url, tmp_path: Path, browser,
                                                                               factory, session) -> None:
    wechat, sms = FakeWeChat(), FakeAliyunSms()
    async with served(create_fake_wechat_app(wechat, APP_ID, APP_SECRET)) as wechat_host, \
            served(create_fake_aliyun_app(sms, KEY_ID, KEY_SECRET)) as sms_host:
        server = LiveServer({
            "GASDESK_DATABASE_URL": database_url, "GASDESK_ENV": "test", "GASDESK_SQLITE_POOL_SIZE": "1",
            "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads"), "GASDESK_BOT_ENGINE": "nlu",
            "GASDESK_WECHAT_APP_ID": APP_ID, "GASDESK_WECHAT_APP_SECRET": APP_SECRET,
            "GASDESK_WECHAT_TOKEN": "outagetoken", "GASDESK_WECHAT_API_BASE": f"http://{wechat_host}",
            "GASDESK_SMS_PROVIDER": "aliyun", "GASDESK_SMS_ACCESS_KEY_ID": KEY_ID,
            "GASDESK_SMS_ACCESS_KEY_SECRET": KEY_SECRET, "GASDESK_SMS_ENDPOINT": f"http://{sms_host}/",
            "GASDESK_SMS_QUIET_HOURS": ""}, tmp_path / "server.log")
        try:
            await _scenario(server.base, browser, factory, session, wechat, sms)
        finally:
            server.stop()


async def _scenario(base: str, browser, factory, session, wechat: FakeWeChat, sms: FakeAliyunSms) -> None:
    follower = await factory.customer(name="王关注", phones=["13900000301"], address={**ADDRESS, "building": "1"})
    texter = await factory.customer(name="李短信", phones=["13900000302"], address={**ADDRESS, "building": "2"})
    neighbour = await factory.customer(name="赵邻居", phones=["13900000303"], address={**ADDRESS, "building": "5"})
    await factory.customer(name="钱别处", phones=["13900000304"],
                           address={**ADDRESS, "community": "阳光花园", "building": "1"})
    actor = Actor.system("test", "test")
    contact = await do_record_inbound_contact(session, ContactKind.wechat, FOLLOWER)
    await do_bind_contact(session, actor, contact, follower, how="agent")
    await do_save_notice_template(session, actor, check_notice_template(
        channel="wechat", purpose="outage_notice", provider_template_id="TPL_OUTAGE_1",
        fields={"first": "title", "keyword1": "area", "keyword2": "end", "remark": "reason"}, body="", enabled=True))
    await commit(session)
    dispatcher = await factory.user("dispatcher", username="outagedispatch")
    chatter = await factory.customer(name="孙网聊", phones=["13900000305"], address={**ADDRESS, "building": "7"})
    await session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id == chatter.id))
    await commit(session)

    # A resident of the community (no phone on file, no WeChat) has the web chat open, identified.
    resident = await browser.new_page(**MOBILE)
    await resident.goto(base + "/chat")
    await resident.wait_for_selector("li:has-text('智能客服')")
    conversation_id = await resident.evaluate("() => window.gasdeskChat.state.conversationId")
    conversation = await session.get(Conversation, conversation_id)
    await do_link_customer(session, actor, conversation, chatter, how="agent")
    await commit(session)

    # The dispatcher writes the notice and publishes it.
    staff = await browser.new_page(viewport={"width": 1400, "height": 900})
    await login_as(staff, base, dispatcher.username)
    await staff.goto(base + "/outages")
    await staff.click("#new-outage")
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    await staff.select_option("select[name=planned]", "sudden")
    await staff.fill("input[name=title]", "幸福里小区突发停气")
    await staff.fill("textarea[name=areas]", "和平区,,幸福里小区")
    await staff.fill("input[name=starts_at]", (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"))
    await staff.fill("input[name=ends_at]", (now + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"))
    await staff.fill("input[name=expected_restore_at]", (now + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    await staff.fill("input[name=reason]", "小区外第三方施工挖断中压管线")
    await staff.click("#outage-form button[type=submit]")
    await staff.wait_for_selector("#flash:has-text('草稿已保存')")
    assert "草稿" in await staff.inner_text("#outage-status")
    await staff.click("#publish-outage")
    await staff.wait_for_selector("#flash:has-text('4 位受影响用户已加入通知队列')")

    # The chatting resident sees the notice in the chat and pinned above it, then asks the bot.
    await resident.wait_for_selector("li:has-text('停气通知')")
    assert "和平区幸福里小区" in await resident.inner_text("#outage-banner")
    await resident.fill("#input", "为什么没气了")
    await resident.press("#input", "Enter")
    notice = resident.locator("li:has-text('停气公告')")
    await notice.wait_for()
    text = await notice.inner_text()
    assert "突发停气" in text and "挖断中压管线" in text and "预计" in text

    # An anonymous resident names the community (and building) and is told the same notice.
    stranger = await browser.new_page(**MOBILE)
    await stranger.goto(base + "/chat")
    await stranger.wait_for_selector("li:has-text('智能客服')")
    await stranger.fill("#input", "为什么没气了")
    await stranger.press("#input", "Enter")
    await stranger.wait_for_selector("li:has-text('哪个区、哪个小区')")
    await stranger.fill("#input", "和平区幸福里小区3号楼")
    await stranger.press("#input", "Enter")
    await stranger.locator("li:has-text('停气公告'):has-text('挖断中压管线')").wait_for()
    await screenshot(resident, "outage-bot-answer")

    # One message per affected customer, on their channel, and none elsewhere.
    await _until(lambda: len(wechat.sent) >= 1 and len(sms.sent) >= 2)
    await asyncio.sleep(1.5)  # a duplicate would have arrived by now
    assert [(m["kind"], m["openid"], m["template_id"]) for m in wechat.sent] == [
        ("template", FOLLOWER, "TPL_OUTAGE_1")]
    assert wechat.sent[0]["data"]["keyword1"] == "和平区幸福里小区" and "挖断" in wechat.sent[0]["data"]["remark"]
    assert sorted(m.phone for m in sms.sent) == sorted([texter.phones[0].phone, neighbour.phones[0].phone])
    assert all(m.template == "SMS_000005" and isinstance(m.params, dict) and m.params["area"] == "和平区幸福里小区"
               for m in sms.sent)

    # The notice's page shows the delivery to each of them.
    await staff.reload()
    await staff.wait_for_selector("#delivery-stats .total:has-text('4')")
    assert await staff.locator("#deliveries tbody tr").count() == 4
    assert await staff.locator("#delivery-stats [data-state=posted]").count() == 1
    await screenshot(staff, "outage-notice-deliveries")
