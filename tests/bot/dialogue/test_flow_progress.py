"""Progress of the resident's tickets: identity first (户号 + last 4 digits, or a phone-verified chat), then
status, slot and crew; wrong digits disclose nothing and three failures end the check."""

from __future__ import annotations

from dialogue_kit import make_slots, verify

from gasdesk.appointments.service import book_appointment
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.tickets.service import do_ticket_action
from tests.factories import staff_user, wo_actor


async def _booked(session, customer, slot, crew=None):
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="安检", slot_id=slot.id)
    if crew is not None:
        await do_ticket_action(session, wo_actor(), booking.ticket, "assign", crew_id=crew.id)
    await commit(session)
    return booking


async def test_progress_after_identity_check_shows_status_slot_and_crew(session, factory, new_chat) -> None:
    customer = await factory.customer()
    crew = await staff_user(session, "field_crew", display_name="李师傅")
    [slot, _] = await make_slots(session)
    booking = await _booked(session, customer, slot, crew)
    chat = await new_chat()
    text = await chat.say("查一下我的预约进度")
    assert "核实身份" in text and "户号" in text
    text = await verify(chat, customer)
    assert booking.ticket.number in text and "已派单" in text and "李师傅" in text and "12月08日" in text
    assert await chat.flow() is None
    assert (await chat.stored()).customer_id == customer.id


async def test_phone_verified_conversation_skips_the_check(session, factory, new_chat) -> None:
    customer = await factory.customer()
    [slot, _] = await make_slots(session)
    booking = await _booked(session, customer, slot)
    chat = await new_chat(customer.id)
    text = await chat.say("我的工单到哪一步了")
    assert booking.ticket.number in text and "新建" in text and "尚未派单" in text


async def test_nothing_found(session, factory, new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    text = await chat.say("查一下我的预约进度")
    assert "没有查到您近期的预约或工单" in text


async def test_wrong_digits_disclose_nothing_and_three_failures_end_it(session, factory, new_chat) -> None:
    customer = await factory.customer()
    [slot, _] = await make_slots(session)
    booking = await _booked(session, customer, slot)
    wrong = "0000" if not customer.phones[0].phone.endswith("0000") else "1111"
    chat = await new_chat()
    await chat.say("查一下我的预约进度")
    for attempt in range(3):
        await chat.say(customer.accounts[0].account_no)
        text = await chat.say(wrong)
        assert booking.ticket.number not in text and "安检" not in text
        if attempt < 2:
            assert "不匹配" in text and await chat.flow() == "progress"
    assert "身份核实未通过" in text and await chat.flow() is None
    assert (await chat.stored()).customer_id is None


async def test_a_corrected_account_number_is_used(session, factory, new_chat) -> None:
    customer = await factory.customer()
    other = await factory.customer()
    [slot, _] = await make_slots(session)
    booking = await _booked(session, customer, slot)
    chat = await new_chat()
    await chat.say("查一下我的预约进度")
    await chat.say(other.accounts[0].account_no)
    text = await chat.say(customer.phones[0].phone[-4:])  # not the phone of that 户号
    assert "不匹配" in text and booking.ticket.number not in text
    text = await verify(chat, customer)
    assert booking.ticket.number in text


async def test_the_bot_shares_the_account_lockout_with_the_chat_identity_check(
        session, factory, new_chat, monkeypatch) -> None:
    """Failures on one 户号 lock it for every conversation: afterwards even the right digits are refused."""
    monkeypatch.setenv("GASDESK_RATE_LIMITS", '{"identify.account": "3/1800"}')  # lock at the 3rd failure
    reset_settings_cache()
    customer = await factory.customer()
    account_no, phone = customer.accounts[0].account_no, customer.phones[0].phone
    wrong = "0000" if not phone.endswith("0000") else "1111"
    chat = await new_chat()
    await chat.say("查一下我的预约进度")
    for _ in range(3):
        await chat.say(account_no)
        text = await chat.say(wrong)
    assert "身份核实未通过" in text
    other = await new_chat()  # another conversation (another visitor) tries the right digits
    await other.say("查一下我的预约进度")
    await other.say(account_no)
    text = await other.say(phone[-4:])
    assert "分钟" in text and "转人工" in text, text
    assert (await other.stored()).customer_id is None
