"""Cancel or reschedule a booked appointment through the bot: identity, choosing the appointment, a new slot from
real capacity, the confirmation step, corrections and the 2-hour rule."""

from __future__ import annotations

from datetime import timedelta

from dialogue_kit import T0, make_slots, verify

from gasdesk import clock, db
from gasdesk.appointments.models import Appointment, AppointmentSlot
from gasdesk.appointments.service import book_appointment
from gasdesk.db import commit
from gasdesk.tickets.models import Ticket
from tests.factories import wo_actor


async def _booked(session, customer, slot, service="安检"):
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code=service,
                                     slot_id=slot.id)
    await commit(session)
    return booking


async def _reload(booking):
    async with db.sessionmaker()() as s:
        appointment = await s.get(Appointment, booking.appointment.id)
        ticket = await s.get(Ticket, booking.ticket.id)
        return appointment, ticket, None


async def _booked_count(slot_id: int) -> int:
    async with db.sessionmaker()() as s:
        return (await s.get(AppointmentSlot, slot_id)).booked


async def test_reschedule_happy_path(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session, days=2)
    booking = await _booked(session, customer, slots[0])
    chat = await new_chat()
    text = await chat.say("我要改约")
    assert "核实身份" in text
    text = await verify(chat, customer)
    assert "请选择新的上门时间" in text and len(chat.buttons()) == 3  # the other free slots
    text = await chat.press("12月09日（周三）14:00")
    assert "请确认改约" in text and "12月08日（周二）09:00-12:00" in text and "12月09日（周三）14:00-17:00" in text
    text = await chat.press("确认改约")
    assert "改约成功" in text and booking.ticket.number in text
    appointment, ticket, _ = await _reload(booking)
    assert appointment.slot_id == slots[3].id and appointment.status == "booked"
    assert "12月09日" in ticket.title
    assert await _booked_count(slots[0].id) == 0 and await _booked_count(slots[3].id) == 1
    assert await chat.flow() is None


async def test_cancel_with_buttons_and_confirmation(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session, days=2)
    first = await _booked(session, customer, slots[0])
    second = await _booked(session, customer, slots[2], "维修")
    chat = await new_chat(customer.id)
    text = await chat.say("我想取消预约")
    assert "您有多个待上门的预约" in text and len(chat.buttons()) == 2
    text = await chat.press("维修")
    assert "请确认取消预约" in text and second.ticket.number in text
    text = await chat.press("确认取消预约")
    assert "已为您取消预约" in text
    appointment, ticket, _ = await _reload(second)
    assert appointment.status == "cancelled" and ticket.status == "cancelled"
    assert await _booked_count(slots[2].id) == 0
    kept, _, _ = await _reload(first)
    assert kept.status == "booked"


async def test_correction_at_confirmation_and_switch_to_cancel(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session, days=3)
    booking = await _booked(session, customer, slots[0])
    chat = await new_chat(customer.id)
    text = await chat.say("我想把预约改到后天下午")
    assert "请确认改约" in text and "12月09日（周三）14:00-17:00" in text
    text = await chat.say("不对，改成12月10日上午")
    assert "请确认改约" in text and "12月10日（周四）09:00-12:00" in text
    text = await chat.press("改为取消预约")
    assert "请确认取消预约" in text
    text = await chat.press("改为改约")  # the time the resident asked for still holds
    assert "请确认改约" in text and "12月10日（周四）09:00-12:00" in text
    await chat.press("换个时间")
    assert "请选择新的上门时间" in "\n".join(m.text for m in chat.last)
    await chat.press("12月10日（周四）09:00")
    await chat.say("确认")
    appointment, _, _ = await _reload(booking)
    assert appointment.slot_id == slots[4].id


async def test_two_hour_rule_is_explained(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session)
    booking = await _booked(session, customer, slots[0])
    clock.set_now(slots[0].start - timedelta(minutes=90))
    chat = await new_chat(customer.id)
    text = await chat.say("我想取消预约")
    assert "不足 2 小时" in text and "96777" in text and "转人工" in chat.buttons()
    appointment, _, _ = await _reload(booking)
    assert appointment.status == "booked" and await chat.flow() is None
    clock.set_now(T0)


async def test_two_hour_rule_when_time_passes_before_confirming(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session)
    booking = await _booked(session, customer, slots[0])
    chat = await new_chat(customer.id)
    text = await chat.say("我想取消预约")
    assert "请确认取消预约" in text
    clock.set_now(slots[0].start - timedelta(minutes=30))
    text = await chat.press("确认取消预约")
    assert "不足 2 小时" in text
    appointment, _, _ = await _reload(booking)
    assert appointment.status == "booked"


async def test_no_free_slot_keeps_the_appointment(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session, capacity=1)
    booking = await _booked(session, customer, slots[0])
    await _booked(session, await factory.customer(), slots[1])
    chat = await new_chat(customer.id)
    text = await chat.say("我要改约")
    assert "没有可改约" in text and "原预约保持不变" in text
    appointment, _, _ = await _reload(booking)
    assert appointment.slot_id == slots[0].id


async def test_nothing_to_change(session, factory, new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    text = await chat.say("我想取消预约")
    assert "没有待上门的预约" in text and await chat.flow() is None


async def test_wrong_digits_disclose_nothing(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session)
    booking = await _booked(session, customer, slots[0])
    chat = await new_chat()
    await chat.say("我想取消预约")
    for _ in range(3):
        await chat.say(customer.accounts[0].account_no)
        text = await chat.say("0000" if not customer.phones[0].phone.endswith("0000") else "1111")
        assert booking.ticket.number not in text and "12月08日" not in text
    assert "身份核实未通过" in text and await chat.flow() is None
    appointment, _, _ = await _reload(booking)
    assert appointment.status == "booked"
