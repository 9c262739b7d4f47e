"""SMS as a working channel: the outbound sender against the in-process Aliyun and Tencent fakes, the whole
path queued → worker → provider → receipt, outages and retries, residents' replies into conversations (bound to
the customer on file, answered by the bot, the answer queued for SMS), de-duplication of pushes, bad pushes,
the per-number limit and 退订."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gasdesk import clock, db
from gasdesk.audit.models import AuditEntry
from gasdesk.channels.models import InboundReceipt
from gasdesk.channels.sms.callbacks import PROVIDER_ZONE
from gasdesk.channels.sms.fake_aliyun import FakeAliyunSms, create_fake_aliyun_app
from gasdesk.channels.sms.fake_tencent import FakeTencentSms, create_fake_tencent_app
from gasdesk.channels.sms.optout import opt_out_keyword
from gasdesk.channels.sms.sender import use_http_client
from gasdesk.channels.sms.templates import (
    CHAT_REPLY_MAX_CHARS,
    DEFAULT_TEMPLATES,
    chat_reply_params,
    check_template_params,
)
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.models import Conversation, Message
from gasdesk.customers.models import ContactIdentity
from gasdesk.jobs.queue import run_due_jobs
from gasdesk.outbound.models import NoticeTemplate, OutboundMessage, Purpose
from gasdesk.outbound.service import do_queue_outbound

PHONE = "13800138000"
TOKEN = "cb-token-0123456789"
KEY_ID, SECRET = "LTAI-test-key", "test-secret-0123456789"
SDK_APP_ID = "1400000001"
# 11:00 in Beijing: outside the default quiet hours.
NOON = datetime(2024, 5, 6, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def callback_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_SMS_CALLBACK_TOKEN", TOKEN)
    reset_settings_cache()
    clock.set_now(NOON)


@pytest.fixture
async def aliyun(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAliyunSms]:
    monkeypatch.setenv("GASDESK_SMS_PROVIDER", "aliyun")
    monkeypatch.setenv("GASDESK_SMS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("GASDESK_SMS_ACCESS_KEY_SECRET", SECRET)
    monkeypatch.setenv("GASDESK_SMS_ENDPOINT", "http://dysmsapi.test/")
    reset_settings_cache()
    fake = FakeAliyunSms(sign_names={"燃气客服"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_aliyun_app(fake, KEY_ID, SECRET))) \
            as http:
        use_http_client(http)
        yield fake
        use_http_client(None)


@pytest.fixture
async def tencent(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTencentSms]:
    monkeypatch.setenv("GASDESK_SMS_PROVIDER", "tencent")
    monkeypatch.setenv("GASDESK_SMS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("GASDESK_SMS_ACCESS_KEY_SECRET", SECRET)
    monkeypatch.setenv("GASDESK_SMS_SDK_APP_ID", SDK_APP_ID)
    monkeypatch.setenv("GASDESK_SMS_ENDPOINT", "http://sms.tencentcloudapi.test/")
    reset_settings_cache()
    fake = FakeTencentSms(sdk_app_id=SDK_APP_ID, sign_names={"燃气客服"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_tencent_app(fake, KEY_ID, SECRET))) \
            as http:
        use_http_client(http)
        yield fake
        use_http_client(None)


# ---------------------------------------------------------------- helpers


async def queue(session, *, purpose: Purpose = Purpose.chat, template_key: str = "chat_reply",
                params: dict[str, Any] | None = None, **kwargs: Any) -> int:
    row = await do_queue_outbound(session, channel="sms", purpose=purpose, method="sms", recipient=PHONE,
                                  template_key=template_key, params=params or {}, **kwargs)
    await db.commit(session)
    return row.id


async def outbound(out_id: int) -> OutboundMessage:
    async with db.transaction() as s:
        row = await s.get(OutboundMessage, out_id)
        assert row is not None
        s.expunge(row)
        return row


async def count(model: Any, *where: Any) -> int:
    async with db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)))


def beijing(moment: datetime) -> str:
    return clock.as_utc(moment).astimezone(PROVIDER_ZONE).strftime("%Y-%m-%d %H:%M:%S")


def aliyun_report(biz_id: str, *, success: bool = True, code: str = "DELIVERED") -> list[dict[str, Any]]:
    return [{"phone_number": PHONE, "send_time": beijing(NOON), "report_time": beijing(NOON + timedelta(seconds=5)),
             "success": success, "err_code": code, "err_msg": "用户接收成功" if success else "失败",
             "sms_size": "1", "biz_id": biz_id, "out_id": "x"}]


def aliyun_uplink(text: str, sequence_id: int = 7001, phone: str = PHONE) -> list[dict[str, Any]]:
    return [{"phone_number": phone, "send_time": beijing(NOON), "content": text, "sign_name": "燃气客服",
             "dest_code": "1234", "sequence_id": sequence_id}]


def tencent_reply(text: str, at: datetime = NOON) -> dict[str, Any]:
    return {"extend": "", "mobile": PHONE, "nationcode": "86", "sign": "燃气客服", "text": text,
            "time": int(at.timestamp())}


async def push(client: httpx.AsyncClient, path: str, body: Any, token: str | None = TOKEN) -> httpx.Response:
    url = f"/channels/sms/{path}" + (f"?token={token}" if token is not None else "")
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await client.post(url, content=content, headers={"Content-Type": "application/json"})


# ---------------------------------------------------------------- sending


async def test_chat_reply_goes_out_through_aliyun_and_its_receipt_marks_it_delivered(session, client, aliyun) -> None:
    text = "您好，燃气费可在营业厅或公众号缴纳。"
    out_id = await queue(session, params={"text": text})
    assert await run_due_jobs() == 1
    assert len(aliyun.sent) == 1
    sent = aliyun.sent[0]
    assert (sent.phone, sent.template, sent.params, sent.sign_name, sent.reference) == (
        PHONE, DEFAULT_TEMPLATES["chat_reply"].provider_code, {"text": text}, "燃气客服", f"out-{out_id}")
    row = await outbound(out_id)
    assert (row.status, row.provider_id, row.attempts, row.reason) == ("sent", sent.provider_id, 1, None)
    assert row.sent_at == NOON

    response = await push(client, "aliyun/receipts", aliyun_report(sent.provider_id))
    assert response.status_code == 200 and response.json() == {"code": 0, "msg": "成功"}
    row = await outbound(out_id)
    assert row.status == "delivered" and row.delivered_at == NOON + timedelta(seconds=5)
    assert await run_due_jobs() == 0 and len(aliyun.sent) == 1


async def test_a_long_reply_goes_out_through_tencent_in_four_pieces(session, client, tencent) -> None:
    text = "燃气表显示余量不足时，请尽快通过营业厅、公众号或自助终端充值；" * 3
    out_id = await queue(session, params={"text": text})
    await run_due_jobs()
    assert len(tencent.sent) == 1
    sent = tencent.sent[0]
    assert sent.template == DEFAULT_TEMPLATES["chat_reply_long"].provider_code
    assert isinstance(sent.params, list) and len(sent.params) == 4
    assert "".join(sent.params) == text and all(0 < len(p) <= 35 for p in sent.params)
    row = await outbound(out_id)
    assert row.status == "sent" and row.provider_id == sent.provider_id

    failed = [{"user_receive_time": beijing(NOON), "nationcode": "86", "mobile": PHONE, "report_status": "FAIL",
               "errmsg": "MK:0001", "description": "用户关机", "sid": sent.provider_id}]
    response = await push(client, "tencent/receipts", failed)
    assert response.status_code == 200 and response.json() == {"result": 0, "errmsg": "OK"}
    row = await outbound(out_id)
    assert (row.status, row.reason) == ("failed", "MK:0001")
    assert await count(AuditEntry, AuditEntry.action == "outbound.fail", AuditEntry.entity_id == str(out_id)) == 1


async def test_an_admin_template_overrides_the_built_in_one(session, aliyun) -> None:
    aliyun.templates = {"SMS_555": ("no", "st", "tel")}
    session.add(NoticeTemplate(channel="sms", purpose="ticket_progress", provider_template_id="SMS_555",
                               fields={"no": "ticket_no", "st": "status", "tel": "hotline"}, body="", enabled=True))
    params = {"ticket_no": "GD20240506001", "status": "已派单", "hotline": "96777"}
    out_id = await queue(session, purpose=Purpose.ticket_progress, template_key="ticket_progress", params=params)
    await run_due_jobs()
    assert [(s.template, s.params) for s in aliyun.sent] == [
        ("SMS_555", {"no": "GD20240506001", "st": "已派单", "tel": "96777"})]
    assert (await outbound(out_id)).status == "sent"


async def test_a_disabled_template_or_bad_values_fail_without_calling_the_provider(session, aliyun) -> None:
    session.add(NoticeTemplate(channel="sms", purpose="guidance", provider_template_id="SMS_556", fields={},
                               body="", enabled=False))
    disabled = await queue(session, purpose=Purpose.guidance, template_key="guidance",
                           params={"service": "过户", "link": "https://gas.example.com/a", "hotline": "96777"})
    too_long = await queue(session, purpose=Purpose.ticket_progress, template_key="ticket_progress",
                           params={"ticket_no": "GD1", "status": "很" * 36, "hotline": "96777"})
    unknown = await queue(session, purpose=Purpose.guidance, template_key="no_such_template")
    await run_due_jobs()
    assert aliyun.requests == 0 and aliyun.sent == []
    assert [((r := await outbound(i)).status, r.reason) for i in (disabled, too_long, unknown)] == [
        ("failed", "notice_disabled"), ("failed", "invalid_params"), ("failed", "no_template")]


async def test_an_outage_keeps_the_message_queued_and_it_goes_out_once_later(session, aliyun) -> None:
    aliyun.fail_next(1, http_status=503)
    out_id = await queue(session, params={"text": "您好，已为您登记。"})
    await run_due_jobs()
    row = await outbound(out_id)
    assert (row.status, row.reason, row.attempts, row.provider_id) == ("queued", "provider_unavailable", 1, None)
    assert aliyun.sent == []
    assert await run_due_jobs() == 0  # the retry waits for its backoff

    clock.set_now(NOON + timedelta(minutes=30))
    await run_due_jobs()
    row = await outbound(out_id)
    assert (row.status, row.reason, row.attempts) == ("sent", None, 2)
    assert len(aliyun.sent) == 1 and row.provider_id == aliyun.sent[0].provider_id
    clock.set_now(NOON + timedelta(hours=6))
    await run_due_jobs()
    assert len(aliyun.sent) == 1


async def test_a_permanent_refusal_fails_the_message(session, aliyun) -> None:
    aliyun.fail_next(1, error_code="isv.SMS_TEMPLATE_ILLEGAL")
    out_id = await queue(session, params={"text": "您好"})
    await run_due_jobs()
    row = await outbound(out_id)
    assert (row.status, row.reason) == ("failed", "template_rejected") and aliyun.sent == []


async def test_the_log_provider_sends_nothing_and_records_a_log_id(session) -> None:
    out_id = await queue(session, template_key="chat_reply_waiting")
    await run_due_jobs()
    row = await outbound(out_id)
    assert row.status == "sent" and row.provider_id and row.provider_id.startswith("log-")


# ---------------------------------------------------------------- replies from residents


async def test_a_reply_from_a_number_on_file_reaches_a_bound_sms_conversation_and_the_bot_answers(
        session, client, factory) -> None:
    customer = await factory.customer(phones=[PHONE])
    response = await push(client, "aliyun/uplink", aliyun_uplink("你好，我想问一下燃气费怎么交"))
    assert response.status_code == 200 and response.json() == {"code": 0, "msg": "成功"}

    async with db.transaction() as s:
        contact = await s.scalar(select(ContactIdentity))
        assert contact is not None and contact.kind == "sms" and contact.customer_id == customer.id
        conversation = await s.scalar(select(Conversation))
        assert conversation is not None
        assert (conversation.channel, conversation.customer_id) == ("sms", customer.id)
        messages = list(await s.scalars(select(Message).where(Message.conversation_id == conversation.id)
                                        .order_by(Message.seq)))
        resident = [m for m in messages if m.sender_type == "resident"]
        assert [m.text for m in resident] == ["你好，我想问一下燃气费怎么交"]
        bot_after = [m for m in messages if m.sender_type == "bot" and m.seq > resident[0].seq]
        assert bot_after, "the bot answered"
        replies = list(await s.scalars(select(OutboundMessage).where(
            OutboundMessage.conversation_id == conversation.id, OutboundMessage.message_id == bot_after[0].id)))
        assert [(r.channel, r.method, r.template_key, r.recipient, r.status) for r in replies] == [
            ("sms", "sms", "chat_reply", PHONE, "queued")]
        assert replies[0].params == {"text": replies[0].text}
        total_messages = len(messages)
        total_outbound = await s.scalar(select(func.count()).select_from(OutboundMessage))

    again = await push(client, "aliyun/uplink", aliyun_uplink("你好，我想问一下燃气费怎么交"))
    assert again.status_code == 200
    assert await count(Message) == total_messages
    assert await count(OutboundMessage) == total_outbound
    await run_due_jobs()  # the log provider "sends" the queued replies
    assert await count(OutboundMessage, OutboundMessage.status == "sent") == total_outbound


async def test_tencent_replies_are_deduplicated_by_number_time_and_text(client) -> None:
    first = await push(client, "tencent/uplink", tencent_reply("停气了"))
    assert first.status_code == 200 and first.json() == {"result": 0, "errmsg": "OK"}
    assert await count(Message, Message.sender_type == "resident") == 1
    await push(client, "tencent/uplink", tencent_reply("停气了"))
    assert await count(Message, Message.sender_type == "resident") == 1
    await push(client, "tencent/uplink", tencent_reply("停气了", NOON + timedelta(minutes=1)))
    assert await count(Message, Message.sender_type == "resident") == 2
    assert await count(InboundReceipt) == 2


async def test_replies_beyond_the_per_number_limit_are_acknowledged_but_dropped(client, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_RATE_LIMITS", json.dumps({"sms.number": "2/600"}))
    reset_settings_cache()
    for n in range(3):
        response = await push(client, "aliyun/uplink", aliyun_uplink(f"第{n}条", sequence_id=9000 + n))
        assert response.status_code == 200
    assert await count(Message, Message.sender_type == "resident") == 2


async def test_an_empty_reply_is_acknowledged_and_starts_nothing(client) -> None:
    response = await push(client, "aliyun/uplink", aliyun_uplink("  ", sequence_id=42))
    assert response.status_code == 200
    assert await count(Conversation) == 0 and await count(Message) == 0


TABLES = (InboundReceipt, ContactIdentity, Conversation, Message, OutboundMessage)


@pytest.mark.parametrize(("path", "body", "token", "status"), [
    ("aliyun/uplink", aliyun_uplink("你好"), "wrong-token", 403),
    ("aliyun/uplink", aliyun_uplink("你好"), None, 403),
    ("tencent/uplink", tencent_reply("你好"), "", 403),
    ("aliyun/receipts", aliyun_report("123^0"), "wrong", 403),
    ("aliyun/uplink", b"{not json", TOKEN, 422),
    ("aliyun/uplink", {"phone_number": PHONE}, TOKEN, 422),
    ("tencent/uplink", [tencent_reply("好"), {"mobile": PHONE, "text": "x", "time": "yesterday"}], TOKEN, 422),
    ("tencent/receipts", [{"sid": "1", "report_status": "MAYBE"}], TOKEN, 422),
    ("aliyun/uplink", b"\xff\xfe", TOKEN, 422),
    ("other/uplink", aliyun_uplink("你好"), TOKEN, 422),
])
async def test_bad_pushes_are_refused_and_write_nothing(client, path, body, token, status) -> None:
    response = await push(client, path, body, token)
    assert response.status_code == status, response.text
    assert "error" in response.json()
    assert [await count(model) for model in TABLES] == [0] * len(TABLES)


async def test_callbacks_are_off_without_a_configured_token(client, monkeypatch) -> None:
    monkeypatch.delenv("GASDESK_SMS_CALLBACK_TOKEN")
    monkeypatch.setenv("GASDESK_SIMULATOR", "false")  # outside development: no simulator token either
    reset_settings_cache()
    response = await push(client, "aliyun/uplink", aliyun_uplink("你好"), token="")
    assert response.status_code == 403 and response.json()["error"]["code"] == "sms_callback_disabled"
    assert await count(Message) == 0


# ---------------------------------------------------------------- 退订


@pytest.mark.parametrize(("text", "expected"), [
    ("TD", True), (" td ", True), ("Ｔ", True), ("t", True), ("退订", True), ("退订。", True), ("取消 订阅", True),
    ("【退订】", True), ("恢复订阅", False), ("恢复 订阅！", False),
    ("TDS", None), ("退订了吗", None), ("停气", None), ("", None), (None, None),
])
def test_opt_out_keywords(text, expected) -> None:
    assert opt_out_keyword(text) is expected


async def test_td_opts_out_with_a_confirmation_and_restore_opts_back_in(session, client) -> None:
    response = await push(client, "aliyun/uplink", aliyun_uplink(" td ", sequence_id=1))
    assert response.status_code == 200
    async with db.transaction() as s:
        contact = await s.scalar(select(ContactIdentity))
        assert contact is not None and contact.opted_out_at is not None
        confirmations = list(await s.scalars(select(OutboundMessage)))
        assert [(r.purpose, r.template_key, r.recipient, r.status) for r in confirmations] == [
            ("chat", "opt_out_confirmed", PHONE, "queued")]
        assert await s.scalar(select(func.count()).select_from(Conversation)) == 0
        assert await s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "contact.opt_out", AuditEntry.entity_id == str(contact.id))) == 1

    notice = await do_queue_outbound(session, channel="sms", purpose=Purpose.ticket_progress, method="sms",
                                     recipient=PHONE, contact=await session.get(ContactIdentity, contact.id),
                                     template_key="ticket_progress",
                                     params={"ticket_no": "GD1", "status": "已派单", "hotline": "96777"})
    await db.commit(session)
    assert (notice.status, notice.reason) == ("skipped", "opted_out")

    await push(client, "aliyun/uplink", aliyun_uplink("恢复订阅", sequence_id=2))
    async with db.transaction() as s:
        contact = await s.scalar(select(ContactIdentity))
        assert contact is not None and contact.opted_out_at is None
        keys = list(await s.scalars(select(OutboundMessage.template_key).order_by(OutboundMessage.id)))
        assert keys == ["opt_out_confirmed", "ticket_progress", "opt_in_confirmed"]
    await run_due_jobs()
    assert await count(OutboundMessage, OutboundMessage.status == "sent") == 2


# ---------------------------------------------------------------- fitting chat text into templates


def test_a_short_reply_is_one_variable() -> None:
    assert chat_reply_params("好的，稍等。") == ("chat_reply", {"text": "好的，稍等。"})
    assert chat_reply_params("请问您要办理：\n回复数字选择：1.报修  2.缴费")[1]["text"] == \
        "请问您要办理： 回复数字选择：1.报修 2.缴费"


@pytest.mark.parametrize("length", [36, 37, 100, 139, 140, 141, 500])
def test_a_long_reply_is_four_pieces_within_the_providers_limits(length: int) -> None:
    text = "".join("燃气客服热线九六七七七"[i % 11] for i in range(length))
    key, params = chat_reply_params(text)
    assert key == "chat_reply_long"
    check_template_params(DEFAULT_TEMPLATES[key], params)
    joined = "".join(params[f"part{i}"] for i in range(1, 5))
    if length <= CHAT_REPLY_MAX_CHARS:
        assert joined == text
    else:
        assert len(joined) == CHAT_REPLY_MAX_CHARS and joined.endswith("…") and text.startswith(joined[:-1])


def test_links_and_blank_replies_are_made_sendable() -> None:
    key, params = chat_reply_params("材料清单见 https://gas.example.com/list?id=1 或到营业厅咨询")
    assert params == {"text": "材料清单见 [链接] 或到营业厅咨询"}
    check_template_params(DEFAULT_TEMPLATES[key], params)
    assert chat_reply_params(" \n ") == ("chat_reply", {"text": "（空白消息）"})
