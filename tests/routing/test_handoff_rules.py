"""Hand-off rules are data: request words and the 转人工 button, bot misses, keywords, skill hints; changing
a rule row changes behaviour."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from gasdesk import clock, db
from gasdesk.conversations import pipeline, service
from gasdesk.db import commit
from gasdesk.routing.models import HandoffRule
from tests.factories import bot_conversation, desk_agent, reload_conversation


@pytest.fixture(autouse=True)
def daytime() -> None:
    clock.set_now(datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))


async def _say(session, conversation, text: str, payload: dict | None = None) -> None:
    await pipeline.receive_resident_message(session, conversation, text=text, payload=payload)
    await commit(session)


async def _messages(conversation_id: int) -> list:
    async with db.sessionmaker()() as s:
        return await service.messages_after(s, conversation_id)


async def _set_rule(session, name_part: str, **values) -> None:
    await session.execute(update(HandoffRule).where(HandoffRule.name.contains(name_part)).values(**values))
    await commit(session)


@pytest.mark.parametrize("words", ["转人工", "我要找人工客服", "请帮我转人工服务"])
async def test_request_words_hand_off_to_the_gas_group(session, factory, words: str) -> None:
    agent = await desk_agent(factory, presence="busy")
    conversation = await bot_conversation(session)
    await _say(session, conversation, words)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.skill_group_id, stored.handoff_reason) == ("queued", 1, "request")
    last = (await _messages(conversation.id))[-1]
    assert last.sender_type == "system" and last.payload["event"] == "queued"
    assert last.payload["position"] == 1 and last.payload["estimated_wait_s"] == 48  # 240 s over 5 slots
    assert "您前面还有 0 位" in last.text and "燃气业务" in last.text
    assert agent is not None


async def test_handoff_button_assigns_at_once_when_an_agent_is_free(session, factory) -> None:
    agent = await desk_agent(factory)
    conversation = await bot_conversation(session)
    outcome = await pipeline.request_handoff(session, conversation)
    await commit(session)
    assert outcome.queued
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.agent_id, stored.handoff_reason) == ("assigned", agent.id, "request")
    last = (await _messages(conversation.id))[-1]
    assert "已为您接通燃气业务人工客服" in last.text and last.payload["position"] is None
    # pressing it again while people handle the conversation does nothing
    assert await pipeline.request_handoff(session, stored) is None


async def test_two_bot_misses_hand_off(session, factory) -> None:
    await desk_agent(factory, presence="busy")
    conversation = await bot_conversation(session)
    await _say(session, conversation, "阀门咔咔响")
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.bot_misses) == ("bot", 1)
    await _say(session, conversation, "表箱里嗡嗡的")
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.handoff_reason, stored.skill_group_id) == ("queued", "bot_misses", 1)


async def test_an_understood_turn_resets_the_miss_count(session, factory) -> None:
    await desk_agent(factory, presence="busy")
    conversation = await bot_conversation(session)
    await _say(session, conversation, "阀门咔咔响")
    await _say(session, conversation, "你好")
    await _say(session, conversation, "表箱里嗡嗡的")
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.bot_misses) == ("bot", 1)


async def test_complaint_keyword_goes_to_the_complaint_group_first(session, factory) -> None:
    await desk_agent(factory, presence="busy", groups=(1, 4))
    conversation = await bot_conversation(session)
    await _say(session, conversation, "我要投诉你们的维修师傅，转人工")  # keyword rule (20) before request rule (30)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.skill_group_id, stored.handoff_reason) == ("queued", 4, "keyword")


async def test_disabling_a_rule_in_the_database_changes_behaviour(session, factory) -> None:
    await desk_agent(factory, presence="busy", groups=(1, 4))
    await _set_rule(session, "投诉", enabled=False)
    conversation = await bot_conversation(session)
    await _say(session, conversation, "我要投诉")
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.bot_misses) == ("bot", 1)

    await _set_rule(session, "机器人连续", params={"threshold": 3, "use_skill_hint": True})
    await _say(session, conversation, "还是不行")
    assert (await reload_conversation(conversation.id)).state == "bot"
    await _say(session, conversation, "真的不行")
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.handoff_reason) == ("queued", "bot_misses")


async def test_disabled_request_rule_keeps_the_bot(session, factory) -> None:
    await desk_agent(factory, presence="busy")
    await _set_rule(session, "居民要求转人工", enabled=False)
    conversation = await bot_conversation(session)
    assert await pipeline.request_handoff(session, conversation) is None
    await _say(session, conversation, "转人工")
    assert (await reload_conversation(conversation.id)).state == "bot"


async def test_a_new_keyword_rule_routes_to_its_group(session, factory) -> None:
    await desk_agent(factory, presence="busy", groups=(3,))
    session.add(HandoffRule(position=5, name="缴费问题转账单组", kind="keyword", params={"keywords": ["发票"]},
                            skill_group_id=3, priority=0, enabled=True))
    await commit(session)
    conversation = await bot_conversation(session)
    await _say(session, conversation, "我要开发票")
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.skill_group_id) == ("queued", 3)


async def test_intent_rule_with_skill_hint_uses_the_bot_topic(session, factory) -> None:
    await desk_agent(factory, presence="busy", groups=(2,))
    session.add(HandoffRule(position=1, name="热力话题直接转人工", kind="intent",
                            params={"intents": ["热力业务"], "use_skill_hint": True}, skill_group_id=1))
    await commit(session)
    conversation = await bot_conversation(session)
    await _say(session, conversation, "热力业务", {"quick_reply": "热力业务"})
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.skill_group_id, stored.handoff_reason) == ("queued", 2, "intent")
    assert stored.handoff_summary["intent"] == "热力业务"


@pytest.mark.parametrize("how", ["words", "button"])
async def test_skill_hint_from_the_bot_topic_routes_to_heating(session, factory, how: str) -> None:
    await desk_agent(factory, presence="busy", groups=(1, 2))
    conversation = await bot_conversation(session)
    await _say(session, conversation, "热力业务", {"quick_reply": "热力业务"})
    if how == "words":
        await _say(session, conversation, "转人工")
    else:
        await pipeline.request_handoff(session, conversation)
        await commit(session)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.skill_group_id) == ("queued", 2)


@pytest.mark.parametrize("text", ["不是要投诉，就问问", "我不投诉了", "不想举报谁，问个事"])
async def test_negated_keywords_do_not_hand_off(session, factory, text: str) -> None:
    # The rule bot understands none of these: only the keyword and request rules could move the conversation.
    await desk_agent(factory, presence="busy", groups=(1, 4))
    conversation = await bot_conversation(session)
    await _say(session, conversation, text)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.handoff_reason) == ("bot", None)


async def test_a_keyword_rule_stands_aside_for_the_intents_it_names(session, factory) -> None:
    await desk_agent(factory, presence="busy", groups=(1, 4))
    await _set_rule(session, "投诉", params={"keywords": ["投诉"], "unless_intents": ["human_agent"]})
    conversation = await bot_conversation(session)
    await _say(session, conversation, "我要投诉你们的维修师傅，转人工")  # the rule bot reads human_agent
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.skill_group_id, stored.handoff_reason) == ("queued", 1, "request")

    await _set_rule(session, "投诉", params={"keywords": ["投诉"], "only_intents": ["human_agent"]})
    second = await bot_conversation(session)
    await _say(session, second, "我要投诉你们的维修师傅，转人工")
    stored = await reload_conversation(second.id)
    assert (stored.state, stored.skill_group_id, stored.handoff_reason) == ("queued", 4, "keyword")
