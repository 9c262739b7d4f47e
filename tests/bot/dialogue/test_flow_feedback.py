"""Complaint and praise intake: details (asked when vague), contact, confirmation; a complaint follows the
routing rule's complaint_mode (ticket with a response promise, or a live agent with the summary)."""

from __future__ import annotations

from dialogue_kit import tickets
from sqlalchemy import update

from gasdesk.config import reset_settings_cache
from gasdesk.conversations import pipeline
from gasdesk.db import commit
from gasdesk.tickets.models import RoutingRule
from tests.factories import bot_conversation, desk_agent, reload_conversation


async def test_complaint_vague_then_details_contact_confirm_ticket(session, factory, new_chat) -> None:
    chat = await new_chat()
    text = await chat.say("我要反映问题")
    assert await chat.flow() == "complaint" and "请具体说说发生了什么" in text
    text = await chat.say("嗯")
    assert "请具体说说" in text
    text = await chat.say("昨天约的安检师傅迟到了两个小时还不道歉")
    assert "联系电话" in text
    text = await chat.say("13800001111")
    assert "请确认投诉内容" in text and "迟到了两个小时" in text and "138****1111" in text
    text = await chat.say("电话打错了，是13900002222")  # a correction at the confirmation step
    assert "请确认投诉内容" in text and "139****2222" in text
    text = await chat.press("确认提交")
    [ticket] = await tickets("complaint")
    assert ticket.number in text and "小时内" in text and "与您联系" in text
    assert ticket.contact_phone == "13900002222" and "迟到了两个小时" in ticket.description
    assert ticket.team_id == 2 and (await chat.stored()).state == "bot"


async def test_complaint_with_details_from_a_verified_customer(session, factory, new_chat) -> None:
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    text = await chat.say("你们师傅上门迟到了两个小时还不道歉")
    assert "请确认投诉内容" in text
    text = await chat.say("另外师傅走的时候也没有把鞋套带走")  # more details are added
    assert "补充：另外师傅走的时候" in text
    await chat.say("确认")
    [ticket] = await tickets("complaint")
    assert ticket.customer_id == customer.id and "补充" in ticket.description


async def test_complaint_live_agent_mode_hands_off_with_summary(session, factory, new_chat) -> None:
    await desk_agent(factory, groups=(4,), presence="busy")
    await session.execute(update(RoutingRule).where(RoutingRule.name.contains("投诉"))
                          .values(complaint_mode="live_agent"))
    await commit(session)
    customer = await factory.customer()
    chat = await new_chat(customer.id)
    await chat.say("你们师傅上门迟到了两个小时还不道歉")
    text = await chat.press("确认提交")
    assert "为您转接投诉处理专员" in text and "迟到了两个小时" in text and "您前面还有" in text
    stored = await chat.stored()
    assert stored.state == "queued" and stored.skill_group_id == 4
    assert await tickets("complaint") == []


async def test_praise_with_optional_phone(session, factory, new_chat) -> None:
    chat = await new_chat()
    text = await chat.say("我要表扬")
    assert "想表扬哪位" in text
    text = await chat.say("昨天来修燃气灶的王师傅非常耐心细致")
    assert "联系电话" in text and "不留电话" in chat.buttons()
    text = await chat.press("不留电话")
    assert "请确认表扬内容" in text and "不留联系电话" in text
    text = await chat.press("确认提交")
    [ticket] = await tickets("praise")
    assert "非常感谢您的表扬" in text and ticket.number in text and "王师傅" in ticket.description
    assert ticket.contact_phone is None


async def test_a_complaint_has_one_outcome_the_bots_intake(session, factory, new_chat) -> None:
    """"投诉" also matches the default keyword hand-off rule; the bot's intake takes the turn, so the resident
    does not get the intake's question and a hand-off (or a "no agent, leave a message" card) together."""
    await desk_agent(factory, groups=(4,), presence="busy")
    chat = await new_chat()
    text = await chat.say("我要投诉")
    assert "请具体说说发生了什么" in text and "人工客服" not in text
    assert [m.sender_type for m in chat.last] == ["bot"] and all(not (m.payload or {}).get("card") for m in chat.last)
    stored = await chat.stored()
    assert (stored.state, stored.handoff_reason) == ("bot", None)
    await chat.say("你们的维修师傅态度太差了，约好的时间没来，打电话也不接，我要投诉他")
    text = await chat.say("13800001111")
    assert "请确认投诉内容" in text and (await chat.stored()).state == "bot"
    text = await chat.press("确认提交")
    [ticket] = await tickets("complaint")
    assert ticket.number in text and (await chat.stored()).state == "bot"
    assert [t["outcome"] for t in await chat.turns()] == ["flow_step", "flow_step", "flow_step", "flow_done"]


async def test_the_complaint_keyword_still_hands_off_a_turn_the_bot_only_answered(session, factory,
                                                                                 monkeypatch) -> None:
    """Keyword rules still apply to turns no flow took (here: the rule-based bot, which has no intake)."""
    monkeypatch.setenv("GASDESK_BOT_ENGINE", "rules")
    reset_settings_cache()
    await desk_agent(factory, groups=(4,), presence="busy")
    conversation = await bot_conversation(session)
    await pipeline.receive_resident_message(session, conversation, text="我要投诉你们的服务态度")
    await commit(session)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.skill_group_id, stored.handoff_reason) == ("queued", 4, "keyword")
