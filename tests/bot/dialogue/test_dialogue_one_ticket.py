"""One report, one ticket, from the bot too: reporting the same no-gas problem again (in the chat, or later in
another chat of the same home, or after a leak report) adds to the open ticket instead of filing a second."""

from __future__ import annotations

from dialogue_kit import tickets

from gasdesk.tickets.models import TicketEvent
from tests.factories import bot_conversation, desk_agent, wo_ticket, wo_ticket_events


async def test_the_same_no_gas_report_twice_in_a_chat_makes_one_ticket(session, factory, new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    await chat.say("家里没气了")
    text = await chat.press("已检查，还是没气")
    [ticket] = await tickets("no_gas")
    assert ticket.number in text
    text = await chat.say("怎么还是没气啊，家里没气了")
    assert ticket.number in text and "不需要重复报修" in text and "请先按以下步骤自查" not in text
    assert await chat.flow() is None and len(await tickets()) == 1
    notes = [e for e in await wo_ticket_events(ticket.id) if e.action == "note"]
    assert [n.note for n in notes] == ["居民再次反映：怎么还是没气啊，家里没气了"]
    assert notes[0].actor_name == "智能客服"


async def test_an_anonymous_second_report_in_the_same_chat_makes_one_ticket(session, factory, new_chat) -> None:
    chat = await new_chat()
    await chat.say("家里没气了")
    await chat.press("跳过")
    await chat.press("已检查，还是没气")
    await chat.say("13800001111")
    await chat.say("和平区幸福里小区3号楼2单元501")
    [ticket] = await tickets("no_gas")
    text = await chat.say("还是没气")
    assert ticket.number in text and len(await tickets()) == 1


async def test_an_open_leak_of_the_same_home_covers_a_no_gas_report(session, factory, new_chat) -> None:
    customer = await factory.customer()
    earlier = await bot_conversation(session, customer_id=customer.id)
    leak = await wo_ticket(session, "gas_leak", customer_id=customer.id, conversation_id=earlier.id)
    chat = await new_chat(customer.id)
    text = await chat.say("家里没气了，灶打不着")
    assert leak.number in text and await tickets("no_gas") == []
    assert [e.action for e in await wo_ticket_events(leak.id)][-1] == "note"


async def test_a_different_home_or_a_closed_ticket_does_not_count(session, factory, new_chat) -> None:
    neighbour = await factory.customer(phones=["13900009999"], account_no="2100009999")
    await wo_ticket(session, "no_gas", customer_id=neighbour.id)
    customer = await factory.customer()
    await wo_ticket(session, "no_gas", customer_id=customer.id, status="cancelled")
    chat = await new_chat(customer.id)
    await chat.say("家里没气了")
    text = await chat.press("已检查，还是没气")
    mine = [t for t in await tickets("no_gas") if t.customer_id == customer.id and t.status == "new"]
    assert len(mine) == 1 and mine[0].number in text


async def test_a_second_complaint_in_a_chat_is_added_to_the_first(session, factory, new_chat) -> None:
    await desk_agent(factory, groups=(4,), presence="busy")
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    await chat.say("你们师傅上门迟到了两个小时还不道歉")
    await chat.press("确认提交")
    [ticket] = await tickets("complaint")
    await chat.say("我还要投诉，客服电话也一直打不通")
    text = await chat.press("确认提交")
    assert ticket.number in text and "已补充到该工单" in text and len(await tickets()) == 1
    note = (await wo_ticket_events(ticket.id))[-1]
    assert isinstance(note, TicketEvent) and note.action == "note" and "客服电话也一直打不通" in note.note


async def test_heating_reports_are_one_ticket_but_a_stove_repair_is_another_matter(session, factory,
                                                                                    new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    stove = await wo_ticket(session, "repair", customer_id=customer.id, conversation_id=chat.conversation.id,
                            title="燃气灶打不着火")
    await chat.say("暖气不热")
    text = await chat.press("已检查，还是不热")
    heating = [t for t in await tickets("repair") if t.id != stove.id]
    assert len(heating) == 1 and heating[0].number in text and heating[0].parent_ticket_id == stove.id
    text = await chat.say("暖气还是不热")
    assert heating[0].number in text and len(await tickets("repair")) == 2


async def test_a_repeated_report_reaches_the_ticket_redacted(session, factory, new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    await chat.say("家里没气了")
    await chat.press("已检查，还是没气")
    [ticket] = await tickets("no_gas")
    await chat.say("家里还是没气，户号2100003344，打我电话13800001111")
    [note] = [e.note for e in await wo_ticket_events(ticket.id) if e.action == "note"]
    assert "13800001111" not in note and "2100003344" not in note
    assert note == "居民再次反映：家里还是没气，户号[户号]，打我电话[手机号]"
