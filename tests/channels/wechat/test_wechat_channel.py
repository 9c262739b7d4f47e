"""The WeChat channel end to end inside the app: signed (and encrypted) callbacks in, the bot's passive reply
out, 客服消息 through the outbound queue to a fake WeChat API, retries de-duplicated, bad input refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.channels.models import InboundReceipt
from gasdesk.channels.wechat import api as wechat_api
from gasdesk.channels.wechat import crypto, simulate
from gasdesk.channels.wechat.fake_api import FakeWeChat, create_fake_wechat_app
from gasdesk.channels.wechat.messages import parse_fields
from gasdesk.channels.wechat.sender import use_http
from gasdesk.config import reset_settings_cache
from gasdesk.conversations import pipeline
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Conversation, Message, SenderType
from gasdesk.customers.contacts import find_contact
from gasdesk.customers.models import ContactIdentity, ContactKind
from gasdesk.jobs.queue import run_due_jobs
from gasdesk.outbound.models import OutboundMessage

APP_ID = "wx1234567890abcdef"
SECRET = "test-app-secret-0123456789"
TOKEN = "gasdesktesttoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA = "gh_0123456789ab"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeWeChat]:
    monkeypatch.setenv("GASDESK_WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("GASDESK_WECHAT_APP_SECRET", SECRET)
    monkeypatch.setenv("GASDESK_WECHAT_TOKEN", TOKEN)
    monkeypatch.setenv("GASDESK_WECHAT_AES_KEY", AES_KEY)
    reset_settings_cache()
    state = FakeWeChat()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_wechat_app(state, APP_ID, SECRET)))
    use_http(http)
    yield state
    use_http(None)
    await http.aclose()


def _now() -> int:
    return int(clock.utcnow().timestamp())


async def _post(client: httpx.AsyncClient, xml: str, *, aes: bool = True, timestamp: int | None = None,
                nonce: str = "n0nce", app_id: str = APP_ID) -> httpx.Response:
    params, body = simulate.build_callback(xml, token=TOKEN, app_id=app_id, aes_key=AES_KEY if aes else None,
                                           timestamp=timestamp or _now(), nonce=nonce)
    return await client.post("/channels/wechat/callback", params=params, content=body,
                             headers={"Content-Type": "text/xml"})


def _reply_text(response: httpx.Response, *, aes: bool = True) -> str:
    assert response.status_code == 200, response.text
    if response.text == "success":
        return ""
    xml = simulate.read_reply(response.content, token=TOKEN, aes_key=AES_KEY if aes else None, app_id=APP_ID)
    fields = parse_fields(xml)
    assert fields["ToUserName"] == OPENID and fields["FromUserName"] == OA and fields["MsgType"] == "text"
    return fields["Content"]


def _text(text: str, msg_id: int) -> str:
    return simulate.inbound_text_xml(OPENID, OA, text, msg_id, _now())


async def _wechat_conversation(session) -> Conversation:
    contact = await find_contact(session, ContactKind.wechat, OPENID)
    assert contact is not None
    conversation = await session.scalar(select(Conversation).where(Conversation.visitor_id == f"wechat:{contact.id}"))
    assert conversation is not None and conversation.channel == "wechat"
    return conversation


async def test_url_verification_echoes_only_for_our_signature(client, fake) -> None:
    params = simulate.build_verification(token=TOKEN, timestamp=_now(), nonce="abc", echostr="echo-123")
    response = await client.get("/channels/wechat/callback", params=params)
    assert response.status_code == 200 and response.text == "echo-123"
    forged = {**params, "signature": "0" * 40}
    assert (await client.get("/channels/wechat/callback", params=forged)).status_code == 403
    stale = simulate.build_verification(token=TOKEN, timestamp=_now() - 3600, nonce="abc", echostr="x")
    response = await client.get("/channels/wechat/callback", params=stale)
    assert response.status_code == 403 and response.json()["error"]["code"] == "wechat_stale_request"


async def test_channel_is_off_without_an_account(client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_SIMULATOR", "false")
    reset_settings_cache()
    params = simulate.build_verification(token=TOKEN, timestamp=_now(), nonce="abc", echostr="e")
    response = await client.get("/channels/wechat/callback", params=params)
    assert response.status_code == 404 and response.json()["error"]["code"] == "wechat_off"


@pytest.mark.parametrize("aes", [True, False], ids=["safe-mode", "plaintext"])
async def test_text_gets_the_bots_answer_as_a_passive_reply(client, session, fake, aes: bool) -> None:
    response = await _post(client, _text("你好", 10001), aes=aes)
    reply = _reply_text(response, aes=aes)
    assert "您好" in reply or "欢迎" in reply, reply
    conversation = await _wechat_conversation(session)
    messages = list(await session.scalars(select(Message).where(Message.conversation_id == conversation.id)
                                          .order_by(Message.seq)))
    resident = [m for m in messages if m.sender_type == "resident"]
    assert [m.text for m in resident] == ["你好"] and resident[0].client_msg_id == "wx:10001"
    rows = list(await session.scalars(select(OutboundMessage).where(OutboundMessage.conversation_id == conversation.id)))
    assert rows and all(r.method == "passive" and r.status == "sent" for r in rows)
    await run_due_jobs()
    assert fake.sent == [], "answered in the response: nothing also goes out as 客服消息"


async def test_subscribe_is_greeted_and_unsubscribe_is_recorded(client, session, fake) -> None:
    response = await _post(client, simulate.inbound_event_xml(OPENID, OA, "subscribe", _now()))
    assert _reply_text(response)
    contact = await find_contact(session, ContactKind.wechat, OPENID)
    assert contact is not None and contact.subscribed and contact.customer_id is None  # a stranger until bound
    response = await _post(client, simulate.inbound_event_xml(OPENID, OA, "unsubscribe", _now() + 1))
    assert response.text == "success"
    await session.refresh(contact)
    assert contact.subscribed is False
    actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "contact")))
    assert "contact.unsubscribe" in actions


async def test_image_and_recognised_voice_reach_the_conversation(client, session, fake) -> None:
    await _post(client, simulate.inbound_image_xml(OPENID, OA, "http://mmbiz.example/pic.jpg", "media1", 20001, _now()))
    await _post(client, simulate.inbound_voice_xml(OPENID, OA, "media2", 20002, _now(), recognition="转人工"))
    conversation = await _wechat_conversation(session)
    resident = list(await session.scalars(select(Message).where(
        Message.conversation_id == conversation.id, Message.sender_type == "resident").order_by(Message.seq)))
    assert [(m.content_type, m.text) for m in resident] == [("image", "[图片]"), ("text", "转人工")]
    assert resident[0].payload["wechat"]["pic_url"] == "http://mmbiz.example/pic.jpg"
    assert resident[1].channel_meta["voice"] is True


async def test_a_retried_callback_is_handled_once(client, session, fake) -> None:
    xml = _text("查一下余额", 30001)
    first = await _post(client, xml, nonce="first")
    again = await _post(client, xml, nonce="second")  # WeChat's retry: same message, a new signature
    assert first.status_code == 200 and again.status_code == 200 and again.text == "success"
    conversation = await _wechat_conversation(session)
    count = await session.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == conversation.id, Message.sender_type == "resident"))
    assert count == 1


@pytest.mark.parametrize("case", ["malformed", "doctype", "wrong-signature", "stale", "wrong-appid", "bad-cipher"])
async def test_bad_callbacks_get_a_4xx_and_write_nothing(client, session, fake, case: str) -> None:
    good = _text("你好", 40001)
    if case in ("malformed", "doctype"):
        body = b"<xml><ToUserName>" if case == "malformed" else (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Content>&a;</Content></xml>')
        stamp = str(_now())
        params = {"timestamp": stamp, "nonce": "n", "signature": crypto.callback_signature(TOKEN, stamp, "n")}
        response = await client.post("/channels/wechat/callback", params=params, content=body)
    elif case == "wrong-signature":
        params, body = simulate.build_callback(good, token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, timestamp=_now(),
                                               nonce="n")
        params["msg_signature"] = "f" * 40
        response = await client.post("/channels/wechat/callback", params=params, content=body)
    elif case == "stale":
        response = await _post(client, good, timestamp=_now() - 600)
    elif case == "wrong-appid":
        response = await _post(client, good, app_id="wxsomeoneelse00000")
    else:
        params, body = simulate.build_callback(good, token=TOKEN, app_id=APP_ID, aes_key=AES_KEY, timestamp=_now(),
                                               nonce="n")
        bogus = "QUJD" * 8  # base64, but not a block-aligned ciphertext
        body = body.replace(body[body.index(b"<Encrypt>"):body.index(b"</Encrypt>")],
                            b"<Encrypt><![CDATA[" + bogus.encode() + b"]]>")
        params["msg_signature"] = crypto.callback_signature(TOKEN, params["timestamp"], params["nonce"], bogus)
        response = await client.post("/channels/wechat/callback", params=params, content=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["message"]
    for table in (ContactIdentity, InboundReceipt, Conversation, Message):
        assert await session.scalar(select(func.count()).select_from(table)) == 0, table.__name__


async def test_a_slow_answer_goes_out_as_a_customer_service_message(client, session, fake,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real_bot = pipeline.current_bot()

    class SlowBot:
        """The configured bot behind a slow step (an LLM call, a billing lookup): WeChat will not wait."""

        async def greet(self, ctx: Any) -> Any:
            return await real_bot.greet(ctx)

        async def reply(self, ctx: Any, text: str, payload: Any = None) -> Any:
            await asyncio.sleep(1.2)
            return await real_bot.reply(ctx, text, payload)

        async def aside(self, ctx: Any, text: str) -> Any:
            return await real_bot.aside(ctx, text)

    monkeypatch.setattr(pipeline, "current_bot", lambda: SlowBot())
    monkeypatch.setattr(wechat_api, "PASSIVE_DEADLINE_S", 0.2)
    started = time.monotonic()
    response = await _post(client, _text("你好", 50001))
    assert response.text == "success" and time.monotonic() - started < 1.0
    while wechat_api._background:  # the turn finishes after the response
        await asyncio.sleep(0.05)
    clock.set_now(clock.utcnow() + timedelta(seconds=6))  # past the passive-reply hold
    try:
        await run_due_jobs()
    finally:
        clock.set_now(None)
    custom = [m for m in fake.sent if m["kind"] == "custom"]
    assert custom and all(m["openid"] == OPENID for m in custom)
    conversation = await _wechat_conversation(session)
    rows = list(await session.scalars(select(OutboundMessage).where(OutboundMessage.conversation_id == conversation.id)))
    assert rows and {r.status for r in rows} == {"sent"} and {r.method for r in rows} == {"custom"}


async def _conversation_with_resident(client, session) -> Conversation:
    await _post(client, _text("你好", 60001))
    return await _wechat_conversation(session)


async def test_agent_reply_arrives_as_customer_service_message_after_a_token_refresh(client, session, fake,
                                                                                      factory) -> None:
    conversation = await _conversation_with_resident(client, session)
    agent = await factory.user("agent")
    fake.expire_tokens()
    await conversations.do_post_message(session, conversation, SenderType.agent, text="您好，我是坐席小王", user=agent)
    await session.commit()
    await run_due_jobs()
    assert [m["text"] for m in fake.sent if m["kind"] == "custom"] == ["您好，我是坐席小王"]
    row = await session.scalar(select(OutboundMessage).where(OutboundMessage.method == "custom"))
    assert row is not None and row.status == "sent" and row.attempts == 1


async def test_provider_outage_keeps_the_reply_queued_and_sends_it_once(client, session, fake, factory) -> None:
    conversation = await _conversation_with_resident(client, session)
    agent = await factory.user("agent")
    await conversations.do_post_message(session, conversation, SenderType.agent, text="稍等，正在为您查询", user=agent)
    await session.commit()
    fake.fail_next(1, http_status=500)
    await run_due_jobs()
    row = await session.scalar(select(OutboundMessage).where(OutboundMessage.method == "custom"))
    await session.refresh(row)
    assert row.status == "queued" and row.reason == "provider_unavailable" and fake.sent == []
    clock.set_now(clock.utcnow() + timedelta(minutes=5))
    try:
        await run_due_jobs()
        await run_due_jobs()
    finally:
        clock.set_now(None)
    await session.refresh(row)
    assert row.status == "sent" and [m["text"] for m in fake.sent] == ["稍等，正在为您查询"]


async def test_outside_the_48_hour_window_the_reply_is_not_tried_and_sms_stands_in(client, session, fake,
                                                                                    factory) -> None:
    conversation = await _conversation_with_resident(client, session)
    customer = await factory.customer(phones=["13912345678"])
    contact = await find_contact(session, ContactKind.wechat, OPENID)
    agent = await factory.user("agent")
    await conversations.do_link_customer(session, Actor.of(agent), conversation, customer, how="agent")
    contact.last_inbound_at = clock.utcnow() - timedelta(hours=49)
    await session.commit()
    await conversations.do_post_message(session, conversation, SenderType.agent, text="您的问题已处理", user=agent)
    await session.commit()
    rows = list(await session.scalars(select(OutboundMessage).where(OutboundMessage.message_id.is_not(None))
                                      .order_by(OutboundMessage.id)))
    wechat_row, sms_row = rows[-2], rows[-1]
    assert (wechat_row.channel, wechat_row.status, wechat_row.reason) == ("wechat", "skipped", "outside_48h")
    assert (sms_row.channel, sms_row.recipient, sms_row.fallback_of_id) == ("sms", "13912345678", wechat_row.id)
    await session.refresh(contact)
    assert contact.customer_id == customer.id  # identified in the chat → bound for next time


async def test_an_oversized_callback_is_refused_before_it_is_read(client, session, fake) -> None:
    stamp = str(_now())
    params = {"timestamp": stamp, "nonce": "n", "signature": crypto.callback_signature(TOKEN, stamp, "n")}
    response = await client.post("/channels/wechat/callback", params=params, content=b"<xml>" + b"a" * 70_000)
    assert response.status_code == 413
    assert await session.scalar(select(func.count()).select_from(Message)) == 0


async def test_a_flooding_follower_is_answered_but_not_stored(client, session, fake,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_RATE_LIMITS", '{"wechat.openid": "3/60"}')
    reset_settings_cache()
    replies = [_reply_text(await _post(client, _text(f"第{i}条", 70000 + i), nonce=f"n{i}")) for i in range(5)]
    assert all("太频繁" in r for r in replies[3:]) and not any("太频繁" in r for r in replies[:3])
    conversation = await _wechat_conversation(session)
    stored = await session.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == conversation.id, Message.sender_type == "resident"))
    assert stored == 3
