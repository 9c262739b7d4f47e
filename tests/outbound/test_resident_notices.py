"""Proactive notices to residents (gasdesk/outbound/notices.py): which channel, opt-out, quiet hours, de-dup,
the hooks on real ticket actions and bookings, reminders, guidance, and the 通知记录 on the ticket page."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from gasdesk import clock, db
from gasdesk.appointments.models import AppointmentSlot
from gasdesk.appointments.service import book_appointment, do_generate_slots, do_reschedule
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.models import Message
from gasdesk.customers.contacts import do_bind_contact, do_record_inbound_contact, do_set_opt_out
from gasdesk.customers.models import ContactKind
from gasdesk.db import commit, transaction
from gasdesk.errors import InvalidInput
from gasdesk.jobs.queue import PERIODIC, run_due_jobs
from gasdesk.outbound.models import OutboundMessage, Purpose
from gasdesk.outbound.notices import do_notify_resident, do_send_guidance
from gasdesk.tickets.service import do_ticket_action
from tests.factories import bot_conversation, login, staff_user, wo_actor, wo_ticket
from tests.outbound.recording import recording_senders

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai
ACTOR = Actor.system("test", "test")
OPENID = "oGasdeskTestOpenid0001"


@pytest.fixture(autouse=True)
def frozen() -> None:
    clock.set_now(T0)


@pytest.fixture
def sent():
    """A fake provider on both channels recording what it was asked to send (restored afterwards)."""
    yield from recording_senders()


async def _rows(**where) -> list[OutboundMessage]:
    async with db.sessionmaker()() as s:
        query = select(OutboundMessage).order_by(OutboundMessage.id)
        for key, value in where.items():
            query = query.where(getattr(OutboundMessage, key) == value)
        return list(await s.scalars(query))


async def _audit(action: str, entity_id) -> list[AuditEntry]:
    async with db.sessionmaker()() as s:
        return list(await s.scalars(select(AuditEntry).where(AuditEntry.action == action,
                                                             AuditEntry.entity_id == str(entity_id))))


async def _wechat_follower(session, customer, openid: str = OPENID):
    contact = await do_record_inbound_contact(session, ContactKind.wechat, openid)
    await do_bind_contact(session, ACTOR, contact, customer, how="agent")
    await commit(session)
    return contact


PROGRESS = {"ticket_no": "GD2026120700001", "status": "已派单", "hotline": "96777", "title": "燃气表漏气"}


# ---------------------------------------------------------------- channel choice


async def test_bound_wechat_follower_gets_a_template_message(session, factory, sent) -> None:
    customer = await factory.customer(phones=["13900001111"])
    await _wechat_follower(session, customer)
    row = await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.ticket_progress,
                                   params=PROGRESS, ticket_id=7, dedupe_key="t:1")
    await commit(session)
    [stored] = await _rows()
    assert row is not None and stored.id == row.id
    assert (stored.channel, stored.method, stored.template_key, stored.recipient, stored.status) == (
        "wechat", "template", "ticket_progress", OPENID, "queued")
    assert stored.params == PROGRESS  # every named value goes to the template message
    [audit] = await _audit("outbound.queue", stored.id)
    assert audit.changes["after"]["channel"] == "wechat" and audit.changes["after"]["ticket_id"] == 7
    assert await run_due_jobs() == 1
    assert [(m.channel, m.method, m.template_key) for m in sent] == [("wechat", "template", "ticket_progress")]
    assert (await _rows())[0].status == "sent"


async def test_phone_only_gets_an_sms_with_exactly_the_template_variables(session, factory, sent) -> None:
    customer = await factory.customer(phones=["13900002222"])
    await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.ticket_progress, params=PROGRESS,
                             ticket_id=8, dedupe_key="t:2")
    await commit(session)
    [stored] = await _rows()
    assert (stored.channel, stored.method, stored.recipient, stored.template_key) == (
        "sms", "sms", "13900002222", "ticket_progress")
    # The SMS template names ticket_no, status and hotline: the title is not sent.
    assert stored.params == {"ticket_no": "GD2026120700001", "status": "已派单", "hotline": "96777"}
    assert len(await _audit("outbound.queue", stored.id)) == 1
    await run_due_jobs()
    assert [(m.channel, m.recipient, m.params) for m in sent] == [("sms", "13900002222", stored.params)]


async def test_unsubscribed_wechat_falls_to_sms(session, factory, sent) -> None:
    customer = await factory.customer(phones=["13900003333"])
    contact = await _wechat_follower(session, customer)
    contact.subscribed = False
    await commit(session)
    row = await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.ticket_progress,
                                   params=PROGRESS, dedupe_key="t:3")
    assert row is not None and row.channel == "sms"


async def test_opted_out_number_is_skipped_and_emergency_goes_anyway(session, factory, sent) -> None:
    customer = await factory.customer(phones=["13900004444"])
    contact = await do_record_inbound_contact(session, ContactKind.sms, "13900004444")
    do_set_opt_out(session, ACTOR, contact, True)
    await commit(session)
    await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.outage_notice,
                             params={"reason": "管道检修", "area": "幸福里小区", "start": "9日08:00",
                                     "end": "9日18:00", "hotline": "96777"}, dedupe_key="o:1")
    await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.outage_notice,
                             params={"reason": "燃气泄漏抢修", "area": "幸福里小区", "start": "现在",
                                     "end": "抢修完成", "hotline": "96777"}, dedupe_key="o:2", emergency=True)
    await commit(session)
    skipped, urgent = await _rows()
    assert (skipped.status, skipped.reason, skipped.contact_id) == ("skipped", "opted_out", contact.id)
    assert (urgent.status, urgent.emergency) == ("queued", True)
    assert (await _audit("outbound.queue", skipped.id))[0].changes["after"]["status"] == "skipped"
    await run_due_jobs()
    assert [m.id for m in sent] == [urgent.id]  # the opted-out notice never reaches the provider


async def test_opted_out_on_wechat_still_gets_sms(session, factory) -> None:
    """Opt-out is per contact: 退订 on WeChat says nothing about the phone number."""
    customer = await factory.customer(phones=["13900005555"])
    contact = await _wechat_follower(session, customer)
    do_set_opt_out(session, ACTOR, contact, True)
    await commit(session)
    row = await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.ticket_progress,
                                   params=PROGRESS, dedupe_key="t:5")
    assert row is not None and (row.channel, row.status) == ("sms", "queued")


async def test_webchat_only_resident_sees_it_in_the_chat_once(session) -> None:
    conversation = await bot_conversation(session, visitor_id="v_notice1")
    for _ in range(2):
        posted = await do_notify_resident(session, customer_id=None, purpose=Purpose.ticket_progress,
                                          params=PROGRESS, ticket_id=9, dedupe_key="t:webchat",
                                          conversation=conversation)
        await commit(session)
        assert isinstance(posted, Message)
    async with db.sessionmaker()() as s:
        notes = list(await s.scalars(select(Message).where(Message.conversation_id == conversation.id,
                                                           Message.sender_name == "消息通知")))
    assert [m.text for m in notes] == ["您的工单GD2026120700001当前进度：已派单。如有疑问请致电96777。"]
    assert len(await _audit("notice.webchat", conversation.id)) == 1
    assert await _rows() == []


async def test_nobody_reachable_records_nothing(session) -> None:
    assert await do_notify_resident(session, customer_id=None, purpose=Purpose.ticket_progress, params=PROGRESS,
                                    dedupe_key="t:none") is None
    await commit(session)
    assert await _rows() == []


# ---------------------------------------------------------------- quiet hours, de-dup


async def test_sms_at_22_waits_until_08(session, factory, sent) -> None:
    customer = await factory.customer(phones=["13900006666"])
    clock.set_now(datetime(2026, 12, 7, 14, 0, tzinfo=UTC))  # 22:00 Shanghai
    await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.ticket_progress, params=PROGRESS,
                             dedupe_key="t:quiet")
    await commit(session)
    [row] = await _rows()
    assert row.not_before == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    assert await run_due_jobs() == 0 and sent == []
    clock.set_now(datetime(2026, 12, 8, 0, 1, tzinfo=UTC))
    assert await run_due_jobs() == 1
    assert [m.id for m in sent] == [row.id]


async def test_same_key_twice_is_one_message(session, factory) -> None:
    customer = await factory.customer(phones=["13900007777"])
    first = await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.ticket_progress,
                                     params=PROGRESS, dedupe_key="t:same")
    second = await do_notify_resident(session, customer_id=customer.id, purpose=Purpose.ticket_progress,
                                      params=PROGRESS, dedupe_key="t:same")
    await commit(session)
    assert first is not None and second is not None and first.id == second.id
    assert len(await _rows()) == 1


# ---------------------------------------------------------------- tickets


async def test_ticket_progress_on_real_transitions(session, factory) -> None:
    customer = await factory.customer(phones=["13900008888"])
    crew = await staff_user(session, "field_crew")
    other = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", customer_id=customer.id)  # filed at the desk: 已受理
    for action, crew_id in (("assign", crew.id), ("assign", other.id), ("start", None), ("resolve", None),
                            ("close", None)):
        await do_ticket_action(session, wo_actor(), ticket, action, crew_id=crew_id)
        await commit(session)
    rows = await _rows(ticket_id=ticket.id)
    assert [(r.purpose, r.channel, r.params["status"]) for r in rows] == [
        ("ticket_progress", "sms", "已受理"), ("ticket_progress", "sms", "已派单，工作人员将尽快联系您"),
        ("ticket_progress", "sms", "工作人员正在处理"), ("ticket_progress", "sms", "已办结")]
    assert all(r.params["ticket_no"] == ticket.number and r.recipient == "13900008888" for r in rows)
    for row in rows:
        [audit] = await _audit("outbound.queue", row.id)
        assert audit.changes["after"]["ticket_id"] == ticket.id
    # Reopened and dispatched again: a new 已派单.
    await do_ticket_action(session, wo_actor(), ticket, "reopen", note="居民反映仍漏气")
    await do_ticket_action(session, wo_actor(), ticket, "assign", crew_id=crew.id)
    await commit(session)
    assert [r.params["status"] for r in await _rows(ticket_id=ticket.id)][-1] == "已派单，工作人员将尽快联系您"
    assert len(await _rows(ticket_id=ticket.id)) == 5


async def test_ticket_from_a_chat_is_not_announced_as_accepted(session, factory) -> None:
    customer = await factory.customer(phones=["13900009999"])
    conversation = await bot_conversation(session, customer_id=customer.id)
    ticket = await wo_ticket(session, "repair", customer_id=customer.id, channel="webchat",
                             conversation_id=conversation.id)
    assert await _rows(ticket_id=ticket.id) == []


# ---------------------------------------------------------------- appointments


async def _slots(session) -> list[AppointmentSlot]:
    await do_generate_slots(session, district="朝阳区", first_day=date(2026, 12, 9), days=1,
                            windows=[("09:00", "12:00"), ("14:00", "17:00")], capacity=3)
    await commit(session)
    return list(await session.scalars(select(AppointmentSlot).order_by(AppointmentSlot.start)))


async def test_booking_confirms_and_a_move_confirms_again(session, factory) -> None:
    customer = await factory.customer(phones=["13700001234"])
    morning, afternoon = await _slots(session)
    booking = await book_appointment(session, ACTOR, customer_id=customer.id, service_code="安检", slot_id=morning.id)
    await commit(session)
    [row] = await _rows(appointment_id=booking.appointment.id)
    assert (row.purpose, row.channel, row.ticket_id) == ("appointment_confirmed", "sms", booking.ticket.id)
    assert row.params == {"service": "入户安检", "time": "12月09日 09:00-12:00", "hotline": "96777"}
    assert len(await _audit("outbound.queue", row.id)) == 1
    # No separate 已受理 for the booking's ticket: the confirmation says it.
    assert [r.purpose for r in await _rows(ticket_id=booking.ticket.id)] == ["appointment_confirmed"]
    await do_reschedule(session, ACTOR, booking.appointment, afternoon.id)
    await commit(session)
    assert [r.params["time"] for r in await _rows(appointment_id=booking.appointment.id)] == [
        "12月09日 09:00-12:00", "12月09日 14:00-17:00"]


async def test_wechat_confirmation_carries_the_short_address(session, factory) -> None:
    customer = await factory.customer(phones=["13700002345"])
    await _wechat_follower(session, customer)
    [slot, _] = await _slots(session)
    booking = await book_appointment(session, ACTOR, customer_id=customer.id, service_code="安检", slot_id=slot.id)
    await commit(session)
    [row] = await _rows(appointment_id=booking.appointment.id)
    assert row.channel == "wechat" and row.params["address"] == "朝阳区幸福里小区"  # no building / unit / room
    assert row.params["ticket_no"] == booking.ticket.number


async def _run_reminders() -> None:
    async with transaction() as s:  # as the worker runs a periodic task
        await PERIODIC["notices.appointment_reminders"][1](s)


async def test_reminder_the_day_before_once(session, factory, sent) -> None:
    customer = await factory.customer(phones=["13700003456"])
    [slot, _] = await _slots(session)
    booking = await book_appointment(session, ACTOR, customer_id=customer.id, service_code="安检", slot_id=slot.id)
    await commit(session)
    await _run_reminders()  # Monday: the visit is on Wednesday
    clock.set_now(datetime(2026, 12, 7, 23, 30, tzinfo=UTC))  # Tuesday 07:30: too early to send
    await _run_reminders()
    assert await _rows(purpose="appointment_reminder") == []
    clock.set_now(datetime(2026, 12, 8, 2, 0, tzinfo=UTC))  # Tuesday 10:00
    await _run_reminders()
    await _run_reminders()
    [row] = await _rows(purpose="appointment_reminder")
    assert (row.appointment_id, row.channel, row.params["time"]) == (booking.appointment.id, "sms",
                                                                     "12月09日 09:00-12:00")
    assert len(await _audit("outbound.queue", row.id)) == 1
    await run_due_jobs()
    assert [m.template_key for m in sent].count("appointment_reminder") == 1


async def test_no_reminder_for_a_cancelled_appointment(session, factory) -> None:
    from gasdesk.appointments.service import do_cancel_appointment

    customer = await factory.customer(phones=["13700004567"])
    [slot, _] = await _slots(session)
    booking = await book_appointment(session, ACTOR, customer_id=customer.id, service_code="安检", slot_id=slot.id)
    await do_cancel_appointment(session, ACTOR, booking.appointment)
    await commit(session)
    clock.set_now(datetime(2026, 12, 8, 2, 0, tzinfo=UTC))
    await _run_reminders()
    assert await _rows(purpose="appointment_reminder") == []


# ---------------------------------------------------------------- guidance


async def test_guidance_by_sms_needs_the_guide_link(session, factory, monkeypatch) -> None:
    customer_id = (await factory.customer(phones=["13600001234"])).id
    with pytest.raises(InvalidInput) as err:
        await do_send_guidance(session, ACTOR, customer_id=customer_id, service_code="阀管改造")
    assert err.value.code == "resident_unreachable"
    await db.rollback(session)
    monkeypatch.setenv("GASDESK_GUIDANCE_URL", "https://kf.example.cn/bszn")
    reset_settings_cache()
    row = await do_send_guidance(session, ACTOR, customer_id=customer_id, service_code="阀管改造")
    await commit(session)
    [stored] = await _rows(purpose="guidance")
    assert isinstance(row, OutboundMessage) and stored.id == row.id
    assert stored.params == {"service": "阀管改造", "link": "https://kf.example.cn/bszn", "hotline": "96777"}
    assert len(await _audit("outbound.queue", stored.id)) == 1


async def test_guidance_by_wechat_lists_the_materials(session, factory) -> None:
    customer = await factory.customer(phones=["13600002345"])
    await _wechat_follower(session, customer)
    row = await do_send_guidance(session, ACTOR, customer_id=customer.id, service_code="阀管改造")
    await commit(session)
    assert isinstance(row, OutboundMessage) and row.channel == "wechat"
    assert row.params["materials"] == "户主身份证、户号或燃气卡" and row.params["where"] == "就近营业厅（客服中心）"
    with pytest.raises(InvalidInput):
        await do_send_guidance(session, ACTOR, customer_id=customer.id, service_code="安检")  # bookable online


# ---------------------------------------------------------------- staff page


async def test_ticket_page_lists_notices_with_masked_recipient(session, factory, client) -> None:
    customer = await factory.customer(phones=["13500001234"])
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", customer_id=customer.id, status="assigned", crew_id=crew.id)
    clock.set_now(datetime(2026, 12, 7, 14, 0, tzinfo=UTC))
    await do_ticket_action(session, wo_actor(), ticket, "start")
    await commit(session)
    agent = await staff_user(session, "agent")
    assert (await login(client, agent.username)).status_code == 303
    page = (await client.get(f"/tickets/{ticket.id}")).text
    section = page.split('id="notices"', 1)[1].split("</table>", 1)[0]
    assert "通知记录" in page and section.count("工单进度") == 3 and "短信" in section
    assert "135****1234" in section and "13500001234" not in section
    assert "排队中" in section and "08:00 后发送" in section  # the 22:00 notice waits for the quiet hours
    await db.rollback(session)
    await login(client, crew.username)
    assert 'id="notices"' not in (await client.get(f"/tickets/{ticket.id}")).text


async def test_guidance_form_on_the_ticket_page(session, factory, client, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_GUIDANCE_URL", "https://kf.example.cn/bszn")
    reset_settings_cache()
    customer = await factory.customer(phones=["13500002345"])
    ticket = await wo_ticket(session, "consultation", customer_id=customer.id)
    agent = await staff_user(session, "agent")
    await login(client, agent.username)
    page = (await client.get(f"/tickets/{ticket.id}")).text
    assert f'action="/tickets/{ticket.id}/guidance"' in page and "旧改施工" in page
    response = await client.post(f"/tickets/{ticket.id}/guidance", data={"service_code": "旧改施工"})
    assert response.status_code == 303, response.text[:300]
    [row] = await _rows(purpose="guidance")
    assert (row.ticket_id, row.params["service"]) == (ticket.id, "老旧小区改造施工")
    refused = await client.post(f"/tickets/{ticket.id}/guidance", data={"service_code": "开栓"})
    assert refused.status_code == 422 and "可以在线预约" in refused.text
