"""Free text that quotes residents is never stored readable: KB misses, notifications, ticket titles, saved
views, webhook receivers' replies, job errors, left-message reasons. Each is written through the real code path, then every
table is read with plain SQL and searched for the resident's identifiers."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from gasdesk import db
from gasdesk.conversations.models import LeftMessage
from gasdesk.conversations.service import do_leave_message
from gasdesk.jobs import queue
from gasdesk.jobs.models import Job
from gasdesk.kb.service import best_answer, kb_stats
from gasdesk.notifications.models import Notification
from gasdesk.notifications.service import do_notify
from gasdesk.tickets.models import SavedView, Ticket
from gasdesk.tickets.service import do_save_view
from gasdesk.webhooks import service as webhooks
from gasdesk.webhooks.models import WebhookDelivery
from tests.factories import make_id_card, raw_table_dump, staff_user, wo_headers

NAME = "欧阳秀英"
PHONE = "13987654321"
ACCOUNT = "2188776655"
ID_CARD = make_id_card(321, birth="19750308")
HOME = "17号楼4单元1502室"


def secret_forms() -> list[str]:
    """Each identifier as residents write it, and as JSON would escape it."""
    forms = [PHONE, f"{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}", f"{PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}", ACCOUNT,
             ID_CARD, ID_CARD.lower(), NAME, HOME]
    return forms + [json.dumps(f)[1:-1] for f in forms if not f.isascii()]



async def test_free_text_about_residents_is_redacted_or_encrypted(client, session, factory) -> None:
    said = f"我是{NAME}，户号{ACCOUNT}，身份证{ID_CARD}，手机{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}，住{HOME}"
    dispatcher = await staff_user(session, "dispatcher")
    headers = await wo_headers(factory, dispatcher)

    # 1. an unanswerable question → a KB miss for the admins
    assert await best_answer(session, f"{said}，能不能把发票抬头改成我女儿的名字？", channel="webchat") is None
    # 2. a leak report quoted in a notification
    do_notify(session, dispatcher.id, "emergency.gas_leak", "燃气泄漏报警 GD1", f"家里漏气了！{said}",
              link="/tickets/1")
    # 3. a saved ticket search with the resident's name
    await do_save_view(session, dispatcher, "tickets", "找欧阳", f"q={NAME}")
    await db.commit(session)

    # 4. a ticket titled with name and phone; the webhook receiver answers 500 and echoes the payload
    endpoint = await webhooks.do_create_endpoint(session, webhooks.Actor.system("t"), name="erp",
                                                 url="https://erp.example.com/hook", events=["ticket.created"])
    await db.commit(session)
    assert endpoint
    webhooks._transport = httpx.MockTransport(
        lambda request: httpx.Response(500, text="invalid payload: " + request.content.decode()))
    try:
        created = await client.post("/api/v1/tickets", headers=headers, json={
            "type": "repair", "title": f"{NAME} {PHONE} 燃气表不走字", "description": said,
            "contact_name": NAME, "contact_phone": PHONE, "address_text": f"和平区幸福里小区{HOME}",
            "district": "和平区"})
        assert created.status_code == 201, created.text
        await queue.run_due_jobs()
    finally:
        webhooks._transport = None

    # 5. a background job fails, and its error quotes the resident (the payload only holds an id)
    queue.job("test.pii_fails")(_raising(f"cannot parse contact {NAME} {PHONE}"))
    try:
        queue.enqueue(session, "test.pii_fails", {"ticket_id": created.json()["id"]}, max_attempts=1)
        await db.commit(session)
        await queue.run_due_jobs()
    finally:
        queue.HANDLERS.pop("test.pii_fails", None)

    # 6. a tampered widget puts the phone where a reason code belongs
    await do_leave_message(session, None, phone=PHONE, content=said, name=NAME, reason=PHONE)
    await db.commit(session)

    dump = await raw_table_dump()
    assert "和平区" in dump, "sanity: the scan sees plain columns"
    assert [s for s in secret_forms() if s in dump] == []

    # …while the app reads everything back
    session.expire_all()
    note = await session.scalar(select(Notification).where(Notification.kind == "emergency.gas_leak"))
    assert f"户号[户号]，身份证[身份证号]，手机[手机号]，住{HOME}" in note.body
    ticket = await session.scalar(select(Ticket).where(Ticket.id == created.json()["id"]))
    assert ticket.title == f"{NAME} {PHONE} 燃气表不走字", "titles stay readable for staff"
    assert (await session.scalar(select(SavedView))).query_string == f"q={NAME}"
    delivery = await session.scalar(select(WebhookDelivery))
    assert delivery.last_status_code == 500 and "[手机号]" in delivery.last_error and PHONE not in delivery.last_error
    failed = await session.scalar(select(Job).where(Job.name == "test.pii_fails"))
    assert failed.status == "dead" and "[手机号]" in failed.last_error
    left = await session.scalar(select(LeftMessage))
    assert (left.reason, left.phone, left.name) == ("no_agent", PHONE, NAME)
    stats = await kb_stats(session)
    [(key, count, example)] = stats.top_misses
    assert count == 1 and len(key) == 64 and "户号[户号]" in example and ACCOUNT not in example


async def test_misses_with_different_numbers_group_together(session) -> None:
    for phone in ("13911112222", "13833334444"):
        await best_answer(session, f"我的手机{phone}能不能收到停气短信通知？", channel="webchat")
    await db.commit(session)
    [(_, count, example)] = (await kb_stats(session)).top_misses
    assert count == 2 and example == "我的手机[手机号]能不能收到停气短信通知？"


def _raising(message: str):  # noqa: ANN202
    async def handler(_session, _payload) -> None:  # noqa: ANN001
        raise ValueError(message)

    return handler
