"""An anonymous leak report asks for the address right after the safety instructions, before anything else;
the address (and a phone) the resident sends next goes onto the leak ticket even though people already
have the conversation, and messages of an emergency take the regular path so the bot can see them."""

from __future__ import annotations

import pytest
from dialogue_kit import tickets

from gasdesk.bot.dialogue.emergency import ASK_ADDRESS, SAFETY_INSTRUCTIONS
from gasdesk.conversations.group_commit import UseRegularPath, committer
from tests.factories import desk_agent, wo_audit_rows, wo_ticket_events


async def test_an_anonymous_leak_asks_for_the_address_first(session, factory, new_chat) -> None:
    await desk_agent(factory, presence="busy")
    chat = await new_chat()
    await chat.say("厨房里好大一股煤气味")
    texts = [m.text for m in chat.last]
    assert texts[0] == SAFETY_INSTRUCTIONS and texts[1] == ASK_ADDRESS  # before the ticket and the queue
    assert "紧急工单号" in texts[2] and "联系电话" in texts[2]
    [ticket] = await tickets("gas_leak")
    assert ticket.address_text is None and (await chat.stored()).state == "queued"

    text = await chat.say("和平区幸福里小区3号楼2单元501，电话13800001111")
    assert ticket.number in text and "幸福里小区3号楼2单元501" in text
    [ticket] = await tickets("gas_leak")
    assert ticket.address_text == "和平区幸福里小区3号楼2单元501" and ticket.district == "和平区"
    assert ticket.contact_phone == "13800001111"
    [event] = [e for e in await wo_ticket_events(ticket.id) if e.action == "contact"]
    assert event.actor_name == "智能客服" and "幸福里" in event.note
    [audit] = await wo_audit_rows(session, "ticket", ticket.id, "ticket.contact")
    assert (audit.actor_name, audit.source) == ("智能客服", "bot")

    # Once the address is in, later messages are the people's business only.
    text = await chat.say("朝阳区建设路18号院2号楼1单元101")
    assert text == "" and (await tickets("gas_leak"))[0].district == "和平区"


async def test_a_leak_with_the_address_said_or_known_confirms_it_instead(session, factory, new_chat) -> None:
    await desk_agent(factory, presence="busy")
    chat = await new_chat()
    await chat.say("和平区幸福里小区3号楼2单元501有很大的煤气味")
    texts = [m.text for m in chat.last]
    assert texts[0] == SAFETY_INSTRUCTIONS and texts[1].startswith("抢修地址：和平区幸福里小区3号楼2单元501")
    customer = await factory.customer()  # 朝阳区幸福里小区
    chat = await new_chat(customer.id)
    await chat.say("家里漏气了")
    texts = [m.text for m in chat.last]
    assert texts[1].startswith("抢修地址：朝阳区") and "联系电话" not in texts[2]


async def test_the_bot_stops_listening_after_a_few_messages(session, factory, new_chat) -> None:
    await desk_agent(factory, presence="busy")
    chat = await new_chat()
    await chat.say("闻到煤气味了")
    for text in ("我已经出来了", "你们快点", "人呢"):
        assert await chat.say(text) == ""
    assert await chat.say("和平区幸福里小区3号楼2单元501") == ""
    assert (await tickets("gas_leak"))[0].address_text is None


async def test_emergency_messages_skip_group_commit(session, factory, new_chat) -> None:
    await desk_agent(factory, presence="busy")
    chat = await new_chat()
    await chat.say("厨房里好大一股煤气味")
    with pytest.raises(UseRegularPath):
        await committer.submit(chat.conversation.id, chat.conversation.visitor_id, "和平区幸福里小区3号楼2单元501",
                               "c-leak-1")
