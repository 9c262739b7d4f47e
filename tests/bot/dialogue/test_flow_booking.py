"""The booking flow end to end: happy path, guidance-only services, a full district, a new address and the
resident's date/time preference."""

from __future__ import annotations

from dialogue_kit import make_slots, tickets
from sqlalchemy import delete, select, update

from gasdesk import db
from gasdesk.appointments.models import Appointment, AppointmentSlot
from gasdesk.customers.models import Address
from gasdesk.db import commit


async def _appointments() -> list[Appointment]:
    async with db.sessionmaker()() as s:
        return list(await s.scalars(select(Appointment).order_by(Appointment.id)))


async def test_booking_happy_path_with_identity_check(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session)
    chat = await new_chat()
    text = await chat.say("我想预约安检")
    assert "户号" in text and await chat.flow() == "booking"
    await chat.say(customer.accounts[0].account_no)
    text = await chat.say(customer.phones[0].phone[-4:])
    assert "请选择上门时间" in text and len(chat.buttons()) == 2
    text = await chat.press("09:00")
    assert "请确认预约：安检" in text and "12月08日" in text
    text = await chat.press("确认预约")
    assert "预约成功" in text
    [appointment] = await _appointments()
    [ticket] = await tickets("service_appointment")
    assert appointment.slot_id == slots[0].id and appointment.customer_id == customer.id
    assert ticket.number in text and ticket.service_type == "安检"
    assert await chat.flow() is None


async def test_guidance_only_service_gives_guidance_and_books_nothing(session, factory, new_chat) -> None:
    await make_slots(session)
    chat = await new_chat()
    text = await chat.say("我家想做阀管改造")
    assert "暂不支持在线预约" in text and "户主身份证" in text and "96777" in text
    assert await chat.flow() is None and await _appointments() == [] and await tickets() == []


async def test_full_district_offers_a_person(session, factory, new_chat) -> None:
    customer = await factory.customer()
    await make_slots(session, capacity=1)
    await session.execute(update(AppointmentSlot).values(booked=1))
    await commit(session)
    chat = await new_chat(customer.id)
    text = await chat.say("预约维修")
    assert "已约满" in text and "转人工" in chat.buttons()
    assert await chat.flow() is None and await _appointments() == []


async def test_new_address_is_added_and_used(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session, "和平区")
    await make_slots(session, "朝阳区")
    chat = await new_chat(customer.id)
    text = await chat.say("我要预约开栓")
    assert "请选择上门时间（朝阳区）" in text  # the only stored address
    await chat.press("09:00")
    text = await chat.press("换个地址")
    assert "请选择上门地址" in text
    text = await chat.press("其他地址")
    assert "请输入上门地址" in text
    text = await chat.say("哪里都行")
    assert "没能识别这个地址" in text
    text = await chat.say("和平区安居小区5号楼1单元302")
    assert "请选择上门时间（和平区）" in text
    text = await chat.press("14:00")
    assert "地址：和平区安居小区5号楼1单元302室" in text
    text = await chat.press("确认预约")
    assert "预约成功" in text
    [appointment] = await _appointments()
    async with db.sessionmaker()() as s:
        address = await s.get(Address, appointment.address_id)
    assert address.customer_id == customer.id and address.district == "和平区" and address.community == "安居小区"
    assert appointment.slot_id == slots[1].id


async def test_an_address_in_the_first_message_is_used(session, factory, new_chat) -> None:
    customer = await factory.customer()
    await make_slots(session, "朝阳区")
    slots = await make_slots(session, "和平区")
    chat = await new_chat(customer.id)
    text = await chat.say("明天上午来开栓，地址和平区安居小区5号楼1单元302")
    assert "和平区安居小区5号楼1单元302" in text and "09:00-12:00" in text
    await chat.say("好的")
    [appointment] = await _appointments()
    assert appointment.slot_id == slots[0].id


async def test_date_and_time_preference_picks_the_matching_slot(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session, days=3)
    chat = await new_chat(customer.id)
    text = await chat.say("后天下午来安检")
    assert "请确认预约：安检" in text and "12月09日" in text and "14:00-17:00" in text
    # a correction at the confirmation step: a new time replaces the old one
    text = await chat.say("还是改成明天上午吧")
    assert "12月08日" in text and "09:00-12:00" in text
    await chat.say("确认")
    [appointment] = await _appointments()
    assert appointment.slot_id == slots[0].id


async def test_a_full_preferred_time_lists_the_free_ones(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session, capacity=1)
    await session.execute(update(AppointmentSlot).where(AppointmentSlot.id == slots[1].id).values(booked=1))
    await commit(session)
    chat = await new_chat(customer.id)
    text = await chat.say("明天下午来安检")
    assert "您说的时间已约满" in text and chat.buttons() == ["12月08日（周二）09:00-12:00"]


async def test_a_slot_removed_before_confirming_is_offered_again_not_booked(session, factory, new_chat) -> None:
    customer = await factory.customer()
    slots = await make_slots(session)
    chat = await new_chat(customer.id)
    await chat.say("预约安检")
    text = await chat.press("09:00")
    assert "请确认预约：安检" in text
    await session.execute(delete(AppointmentSlot).where(AppointmentSlot.id == slots[0].id))
    await commit(session)
    text = await chat.press("确认预约")
    assert "请选择上门时间" in text and "预约成功" not in text
    assert chat.buttons() == ["12月08日（周二）14:00-17:00"]
    assert await _appointments() == [] and await tickets() == []
