"""Overflow: outside working hours or with nobody online the bot offers a leave-message card; left messages are
validated and encrypted; emergencies queue regardless."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from gasdesk import clock, db
from gasdesk.conversations import pipeline, service
from gasdesk.conversations.models import LeftMessage
from gasdesk.db import commit
from gasdesk.errors import InvalidInput
from gasdesk.opening_hours import Schedule, state_at
from gasdesk.routing.models import SkillGroup
from tests.factories import bot_conversation, desk_agent, reload_conversation

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 11, 25, 23, 0, tzinfo=SHANGHAI)
DAY = datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)


def _open(group: SkillGroup, at: datetime) -> bool:
    # The hotline's schedule without the holiday calendar (hotline_observes_holidays is off by default).
    return state_at(Schedule(group.working_hours, observes_holidays=False), at).is_open


async def _messages(conversation_id: int) -> list:
    async with db.sessionmaker()() as s:
        return await service.messages_after(s, conversation_id)


def test_working_hours_of_the_seeded_groups_follow_shanghai_time() -> None:
    heating = SkillGroup(working_hours={d: "08:00-20:00" for d in "1234567"})
    gas = SkillGroup(working_hours={d: "00:00-24:00" for d in "1234567"})
    assert _open(heating, DAY) and not _open(heating, NIGHT)
    assert _open(heating, datetime(2026, 11, 25, 8, 0, tzinfo=SHANGHAI))
    assert not _open(heating, datetime(2026, 11, 25, 20, 0, tzinfo=SHANGHAI))
    assert not _open(heating, datetime(2026, 11, 25, 7, 59, tzinfo=SHANGHAI))
    assert _open(gas, NIGHT)
    # 23:00 in Shanghai is 15:00 UTC: a UTC-based check would wrongly call it open
    assert NIGHT.astimezone(ZoneInfo("UTC")).hour == 15
    closed_sunday = SkillGroup(working_hours={"7": ""})
    assert not _open(closed_sunday, datetime(2026, 11, 29, 12, 0, tzinfo=SHANGHAI))


async def test_after_hours_the_bot_offers_a_leave_message_card(session, factory, events) -> None:
    clock.set_now(NIGHT)
    await desk_agent(factory, groups=(2,))  # online, but the heating group is closed at 23:00
    conversation = await bot_conversation(session)
    heating = await session.get(SkillGroup, 2)
    events.clear()
    outcome = await service.do_handoff(session, conversation, group=heating, reason="request")
    assert (outcome.queued, outcome.reason) == (False, "after_hours")
    from gasdesk.routing.handoff import HandoffDecision

    await pipeline.apply_handoff(session, conversation, HandoffDecision(heating, 0, "request", "test"), None)
    await commit(session)
    stored = await reload_conversation(conversation.id)
    assert stored.state == "bot" and stored.queued_at is None
    (card,) = await _messages(conversation.id)
    assert card.sender_type == "bot" and card.content_type == "card"
    assert card.payload == {"card": {"kind": "leave_message", "reason": "after_hours", "skill_group_id": 2}}
    assert "非工作时间" in card.text
    assert [e.type for e in events] == ["conversation.message"]


async def test_no_agent_online_offers_the_card_with_reason_no_agent(session, factory) -> None:
    await desk_agent(factory, presence="away")
    await desk_agent(factory, presence="offline")
    conversation = await bot_conversation(session)
    outcome = await pipeline.request_handoff(session, conversation)
    await commit(session)
    assert (outcome.queued, outcome.reason) == (False, "no_agent")
    (card,) = await _messages(conversation.id)
    assert card.payload["card"] == {"kind": "leave_message", "reason": "no_agent", "skill_group_id": 1}
    assert "没有空闲的人工客服" in card.text
    assert (await reload_conversation(conversation.id)).state == "bot"


async def test_leave_message_is_stored_encrypted_and_acknowledged(session, events) -> None:
    conversation = await bot_conversation(session)
    group = await session.get(SkillGroup, 2)
    events.clear()
    left = await service.do_leave_message(
        session, conversation, phone="139 1234 5678", content="暖气片不热，家里只有十五度", name="  刘秀英  ",
        reason="after_hours", group=group)
    await commit(session)
    stored = await session.get(LeftMessage, left.id)
    assert (stored.phone, stored.name, stored.reason, stored.status) == ("13912345678", "刘秀英", "after_hours", "open")
    assert (stored.skill_group_id, stored.conversation_id) == (2, conversation.id)
    async with db.get_engine().connect() as conn:
        raw = " ".join(str(v) for v in (await conn.execute(text("SELECT * FROM left_messages"))).one())
    # Timestamps out first: their microseconds may hold "1234" by chance (seen once on PostgreSQL).
    raw = re.sub(r"\d{4}-\d{2}-\d{2}[ T][0-9:.+-]+", " ", raw)
    for plain in ("13912345678", "1234", "暖气片", "刘秀英"):
        assert plain not in raw
    (ack,) = await _messages(conversation.id)
    assert ack.payload == {"event": "message_left", "left_message_id": left.id} and ack.sender_type == "system"
    assert [e.type for e in events] == ["conversation.message", "left_message.created"]
    assert events[1].payload == {"left_message_id": left.id, "skill_group_id": 2}


@pytest.mark.parametrize(("phone", "content", "code"), [
    ("12345", "家里没气", "invalid_phone"), ("", "家里没气", "invalid_phone"), ("13912345678", "  ", "empty_message"),
    ("13912345678", "气" * 2001, "message_too_long"),
])
async def test_leave_message_is_validated(session, phone: str, content: str, code: str) -> None:
    conversation = await bot_conversation(session)
    with pytest.raises(InvalidInput) as info:
        await service.do_leave_message(session, conversation, phone=phone, content=content, reason="no_agent")
    assert info.value.code == code
    await session.rollback()
    assert await session.scalar(select(LeftMessage.id)) is None


async def test_emergency_queues_after_hours_with_nobody_online(session, events) -> None:
    clock.set_now(NIGHT)
    conversation = await bot_conversation(session)
    heating = await session.get(SkillGroup, 2)
    events.clear()
    outcome = await service.do_handoff(session, conversation, group=heating, reason="emergency", priority=10)
    await commit(session)
    assert outcome.queued and outcome.spot.position == 1
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.priority, stored.skill_group_id) == ("queued", 10, 2)
    assert [e.type for e in events] == ["conversation.state", "queue.changed"]


async def test_emergency_rule_from_the_bot_queues_at_priority_10(session, monkeypatch) -> None:
    """A bot that flags a gas leak triggers the seeded emergency rule (gas group, priority 10), even at night."""
    from gasdesk.bot.base import BotMessage, BotReply

    class LeakBot:
        async def greet(self, ctx):
            return BotReply([])

        async def reply(self, ctx, text, payload=None):
            return BotReply([BotMessage("请立即开窗通风，离开房间！")], intent="gas_leak", emergency=True)

    monkeypatch.setattr(pipeline, "current_bot", lambda: LeakBot())
    clock.set_now(NIGHT)
    conversation = await bot_conversation(session)
    await pipeline.receive_resident_message(session, conversation, text="厨房有很大的煤气味", client_msg_id="leak-1")
    await commit(session)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.priority, stored.skill_group_id, stored.handoff_reason) == ("queued", 10, 1,
                                                                                            "emergency")
    assert stored.handoff_summary["intent"] == "gas_leak"
    texts = [(m.sender_type, m.payload) for m in await _messages(conversation.id)]
    assert texts[-1][0] == "system" and texts[-1][1]["event"] == "queued" and texts[-1][1]["position"] == 1
