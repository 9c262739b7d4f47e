"""Staff views of the outbound queue — the outbox page and the API, always with masked recipients — and the
admin's notice templates (page and API): validated, stored, audited, and used by the next SMS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from gasdesk import clock, db
from gasdesk.audit.models import AuditEntry
from gasdesk.errors import InvalidInput
from gasdesk.jobs.queue import run_due_jobs
from gasdesk.outbound.models import NoticeTemplate, Purpose
from gasdesk.outbound.service import (
    check_notice_template,
    do_queue_outbound,
    mask_recipient,
    parse_fields_text,
)
from tests.factories import login

PHONE = "13800138000"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWx9z"
HTML = {"Accept": "text/html"}


@pytest.fixture(autouse=True)
def daytime() -> None:
    clock.set_now(datetime(2024, 5, 6, 3, 0, tzinfo=UTC))  # 11:00 in Beijing


async def _messages(session, *, send_sms: bool = False) -> dict[str, int]:
    chat = await do_queue_outbound(session, channel="sms", purpose=Purpose.chat, method="sms", recipient=PHONE,
                                   template_key="chat_reply", params={"text": "您好，已为您登记报修。"},
                                   text="您好，已为您登记报修。", ticket_id=41)
    notice = await do_queue_outbound(session, channel="sms", purpose=Purpose.ticket_progress, method="sms",
                                     recipient=PHONE, template_key="ticket_progress", ticket_id=42,
                                     params={"ticket_no": "GD20240506001", "status": "已派单", "hotline": "96777"})
    await db.commit(session)
    if send_sms:
        await run_due_jobs()  # the log provider "sends" the SMS rows
    wechat = await do_queue_outbound(session, channel="wechat", purpose=Purpose.chat, method="custom",
                                     recipient=OPENID, text="师傅下午两点上门。", ticket_id=42)
    await db.commit(session)
    return {"chat": chat.id, "notice": notice.id, "wechat": wechat.id}


def test_recipients_are_masked() -> None:
    assert mask_recipient("sms", PHONE) == "138****8000"
    assert mask_recipient("sms", "+86 138-0013-8000") == "138****8000"
    assert mask_recipient("sms", "123") == "****"
    assert mask_recipient("wechat", OPENID) == "oAbC…Wx9z"
    assert OPENID not in mask_recipient("wechat", OPENID)


async def test_outbox_lists_messages_newest_first_masked_with_the_text_as_sent(client, session, factory) -> None:
    ids = await _messages(session, send_sms=True)
    admin = await factory.user("admin")
    await login(client, admin.username)
    page = await client.get("/admin/outbox", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert PHONE not in text and OPENID not in text
    assert "138****8000" in text and OPENID[:4] + "…" + OPENID[-4:] in text
    assert "客服回复：您好，已为您登记报修。（直接回复本短信可继续咨询）" in text
    assert "您的工单GD20240506001当前进度：已派单。如有疑问请致电96777。" in text
    assert "仅记录" in text  # the log provider's note
    assert "会话回复" in text and "工单进度" in text and "已发送" in text and "短信" in text and "微信" in text
    positions = [text.index(f"<td>{ids[k]}</td>") for k in ("wechat", "notice", "chat")]
    assert positions == sorted(positions), "newest first"

    queued = await client.get("/admin/outbox?status=queued", headers=HTML)
    assert queued.status_code == 200 and "排队中" in queued.text
    assert f"<td>{ids['wechat']}</td>" in queued.text and f"<td>{ids['chat']}</td>" not in queued.text
    delivered = await client.get("/admin/outbox?channel=sms&status=delivered", headers=HTML)
    assert "暂无外发消息" in delivered.text
    wechat_only = await client.get("/admin/outbox?channel=wechat", headers=HTML)
    assert f"<td>{ids['wechat']}</td>" in wechat_only.text and f"<td>{ids['chat']}</td>" not in wechat_only.text


async def test_outbox_is_for_admins_and_supervisors(client, factory) -> None:
    for role, status in (("supervisor", 200), ("agent", 403), ("dispatcher", 403)):
        user = await factory.user(role)
        await login(client, user.username)
        assert (await client.get("/admin/outbox", headers=HTML)).status_code == status, role
    client.cookies.clear()
    assert (await client.get("/admin/outbox", headers=HTML)).status_code == 401


async def test_outbound_api_by_ticket_masks_recipients(client, session, factory) -> None:
    ids = await _messages(session)
    headers = await factory.headers("agent")
    response = await client.get("/api/v1/outbound?ticket_id=42", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert [m["id"] for m in body] == [ids["wechat"], ids["notice"]]
    assert {m["recipient"] for m in body} == {"138****8000", OPENID[:4] + "…" + OPENID[-4:]}
    assert PHONE not in response.text and OPENID not in response.text
    notice = body[1]
    assert (notice["channel"], notice["purpose_label"], notice["status"], notice["status_label"]) == (
        "sms", "工单进度", "queued", "排队中")
    assert notice["preview"].startswith("【燃气客服】您的工单GD20240506001")
    assert (await client.get("/api/v1/outbound?ticket_id=0", headers=headers)).status_code == 422
    crew = await factory.headers("field_crew")
    assert (await client.get("/api/v1/outbound?ticket_id=42", headers=crew)).status_code == 403


# ---------------------------------------------------------------- notice templates


def test_notice_template_checks() -> None:
    ok = check_notice_template(channel="sms", purpose="ticket_progress", provider_template_id=" SMS_1 ",
                               fields={"1": "ticket_no", "2": "status", "3": "hotline"}, body="", enabled=True)
    assert ok.provider_template_id == "SMS_1" and list(ok.fields) == ["1", "2", "3"]
    bad = [
        {"channel": "fax"},
        {"purpose": "chat"},
        {"provider_template_id": "SMS 1"},
        {"provider_template_id": ""},
        {"fields": {"1": "ticket_no"}},  # a parameter left out
        {"fields": {"1": "ticket_no", "2": "status", "3": "phone"}},  # not a parameter of this notice
        {"fields": {"a b": "ticket_no"}},
        {"body": "您的工单{ticket_no}"},  # placeholders must be the notice's parameters
        {"body": "x" * 501},
    ]
    for change in bad:
        values = {"channel": "sms", "purpose": "ticket_progress", "provider_template_id": "SMS_1", "fields": {},
                  "body": "", "enabled": True} | change
        with pytest.raises(InvalidInput):
            check_notice_template(**values)
    assert parse_fields_text("no=ticket_no\n\n st = status \nhotline") == {
        "no": "ticket_no", "st": "status", "hotline": "hotline"}
    with pytest.raises(InvalidInput):
        parse_fields_text("a=ticket_no\na=status")


async def test_admin_saves_a_template_on_the_page_and_it_is_audited_and_used(client, session, factory) -> None:
    admin = await factory.user("admin")
    await login(client, admin.username)
    page = await client.get("/admin/notice-templates", headers=HTML)
    assert page.status_code == 200 and "工单进度" in page.text and 'name="csrf_token"' in page.text
    response = await client.post("/admin/notice-templates", headers=HTML, data={
        "channel": "sms", "purpose": "ticket_progress", "provider_template_id": "SMS_777",
        "fields": "no=ticket_no\nst=status\ntel=hotline", "body": "工单{ticket_no}：{status}，电话{hotline}",
        "enabled": "1"})
    assert response.status_code == 200 and "已保存" in response.text
    async with db.transaction() as s:
        row = await s.scalar(select(NoticeTemplate))
        assert row is not None
        assert (row.channel, row.purpose, row.provider_template_id, row.fields, row.enabled) == (
            "sms", "ticket_progress", "SMS_777", {"no": "ticket_no", "st": "status", "tel": "hotline"}, True)
        audit = await s.scalar(select(AuditEntry).where(AuditEntry.action == "config.notice_template"))
        assert audit is not None and audit.entity_id == "notice_template:sms:ticket_progress"
        assert audit.actor_id == admin.id

    await do_queue_outbound(session, channel="sms", purpose=Purpose.ticket_progress, method="sms", recipient=PHONE,
                            template_key="ticket_progress", params={"ticket_no": "GD9", "status": "已完成",
                                                                    "hotline": "96777"})
    await db.commit(session)
    outbox = await client.get("/admin/outbox", headers=HTML)
    assert "工单GD9：已完成，电话96777" in outbox.text

    audit_page = await client.get("/admin/audit", headers=HTML)
    assert "配置通知模板" in audit_page.text


async def test_a_bad_template_is_refused_on_the_page_and_nothing_is_stored(client, factory) -> None:
    admin = await factory.user("admin")
    await login(client, admin.username)
    response = await client.post("/admin/notice-templates", headers=HTML, data={
        "channel": "sms", "purpose": "ticket_progress", "provider_template_id": "SMS_777", "fields": "no=ticket_no"})
    assert response.status_code == 422 and "变量对应须恰好包含" in response.text
    async with db.transaction() as s:
        assert await s.scalar(select(NoticeTemplate)) is None
        assert await s.scalar(select(AuditEntry).where(AuditEntry.action == "config.notice_template")) is None


async def test_notice_templates_are_admin_only(client, factory) -> None:
    for role in ("supervisor", "agent"):
        user = await factory.user(role)
        await login(client, user.username)
        assert (await client.get("/admin/notice-templates", headers=HTML)).status_code == 403
        denied = await client.post("/admin/notice-templates", headers=HTML, data={
            "channel": "sms", "purpose": "guidance", "provider_template_id": "SMS_1"})
        assert denied.status_code == 403


async def test_notice_template_api_put_and_list(client, factory) -> None:
    headers = await factory.headers("admin")
    url = "/api/v1/notice-templates/sms/chat_reply_waiting"
    response = await client.put(url, headers=headers, json={"provider_template_id": "1234567"})
    assert response.status_code == 200, response.text
    assert response.json() == {"channel": "sms", "purpose": "chat_reply_waiting", "label": "微信回复无法送达时的短信提醒",
                               "provider_template_id": "1234567", "fields": {}, "body": "", "enabled": True,
                               "updated_at": response.json()["updated_at"]}
    again = await client.put(url, headers=headers, json={"provider_template_id": "7654321", "enabled": False})
    assert again.status_code == 200 and again.json()["enabled"] is False
    listed = await client.get("/api/v1/notice-templates", headers=headers)
    assert [(t["purpose"], t["provider_template_id"]) for t in listed.json()] == [("chat_reply_waiting", "7654321")]
    bad = await client.put("/api/v1/notice-templates/sms/chat_reply_waiting", headers=headers,
                           json={"provider_template_id": "1", "fields": {"1": "text"}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_notice_template"
    assert (await client.put("/api/v1/notice-templates/fax/guidance", headers=headers,
                             json={"provider_template_id": "1"})).status_code == 422
    assert (await client.put(url, headers=headers, json={"provider_template_id": "1", "extra": 1})).status_code == 422
    async with db.transaction() as s:
        audits = list(await s.scalars(select(AuditEntry).where(AuditEntry.action == "config.notice_template")))
        assert len(audits) == 2
    agent = await factory.headers("supervisor")
    assert (await client.put(url, headers=agent, json={"provider_template_id": "1"})).status_code == 403
