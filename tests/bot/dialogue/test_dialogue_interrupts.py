"""Across every flow: 取消/算了 ends it, a gas-leak message interrupts it (safety text, gas_leak ticket, emergency
hand-off), and every bot turn records intent, confidence and outcome."""

from __future__ import annotations

import pytest
from dialogue_kit import tickets

from gasdesk.bot.dialogue.emergency import SAFETY_INSTRUCTIONS
from gasdesk.branches.service import do_save_branch
from gasdesk.db import commit
from tests.factories import desk_agent, wo_actor

# (first message, the flow it starts)
FLOW_STARTS = [
    ("我想预约安检", "booking"),
    ("查一下我的预约进度", "progress"),
    ("我想取消预约", "change_appointment"),
    ("营业厅在哪", "branch"),
    ("自闭阀跳了怎么复位", "meter_guidance"),
    ("家里没气了", "no_gas"),
    ("暖气不热", "heating_not_warm"),
    ("我要反映问题", "complaint"),
    ("我要表扬", "praise"),
    ("查询余额", "balance"),
]


async def _branch(session) -> None:
    await do_save_branch(session, wo_actor(), branch=None, name="朝阳营业厅", district="朝阳区",
                         address="朝阳区建设路88号", phone="024-88880001", weekly_hours={"1": "08:30-17:00"})
    await commit(session)


@pytest.mark.parametrize(("first", "flow"), FLOW_STARTS)
async def test_cancel_mid_flow(session, factory, new_chat, first: str, flow: str) -> None:
    await _branch(session)
    chat = await new_chat()
    await chat.say(first)
    assert await chat.flow() == flow
    text = await chat.say("算了")
    assert "已取消" in text and await chat.flow() is None and await tickets() == []
    assert (await chat.turns())[-1]["outcome"] == "flow_cancelled"


@pytest.mark.parametrize(("first", "flow"), FLOW_STARTS)
async def test_gas_leak_interrupts_the_flow(session, factory, new_chat, first: str, flow: str) -> None:
    await desk_agent(factory, presence="busy")
    await _branch(session)
    chat = await new_chat()
    await chat.say(first)
    assert await chat.flow() == flow
    text = await chat.say("等一下，厨房里好大一股煤气味")
    assert SAFETY_INSTRUCTIONS in text and "紧急工单号" in text
    [ticket] = await tickets("gas_leak")
    assert ticket.number in text and ticket.priority == "urgent" and ticket.conversation_id == chat.conversation.id
    stored = await chat.stored()
    assert stored.state == "queued" and stored.handoff_reason == "emergency" and stored.priority == 10
    assert (stored.bot_state or {}).get("flow_state") is None
    assert (await chat.turns())[-1] == {"intent": "gas_leak", "confidence": 1.0, "outcome": "emergency",
                                        "understood": True}


async def test_leak_in_the_middle_of_a_selfcheck_after_some_steps(session, factory, new_chat) -> None:
    await desk_agent(factory, presence="busy")
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    await chat.say("家里没气了")
    assert await chat.flow() == "no_gas"
    text = await chat.say("我检查了表前阀，现在闻到有煤气味")
    assert SAFETY_INSTRUCTIONS in text
    [ticket] = await tickets("gas_leak")
    assert ticket.customer_id == customer.id and await tickets("no_gas") == []


async def test_every_bot_turn_records_intent_confidence_and_outcome(session, factory, new_chat) -> None:
    await desk_agent(factory, presence="busy")
    await _branch(session)
    chat = await new_chat()
    await chat.say("你好")
    await chat.say("营业厅在哪")
    await chat.press("朝阳区")
    await chat.say("自闭阀跳了怎么复位")
    await chat.say("算了")
    await chat.say("是和平区")  # low confidence: clarifying question
    await chat.say("转人工")
    turns = await chat.turns()
    assert [t["outcome"] for t in turns] == ["answered", "flow_step", "flow_done", "flow_step", "flow_cancelled",
                                             "clarify", "handoff"]
    assert [t["intent"] for t in turns[:2]] == ["greeting", "branch_info"]
    assert turns[1]["confidence"] > 0.45 and turns[2]["flow"] == "branch"
    assert turns[5]["confidence"] < 0.45 and turns[6]["intent"] == "human_agent"
