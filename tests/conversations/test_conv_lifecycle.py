"""The conversation state machine: every allowed transition works, every other one is refused in Chinese."""

from __future__ import annotations

import itertools
import re

import pytest
from sqlalchemy import func, select

from gasdesk.audit.models import AuditEntry
from gasdesk.conversations import service
from gasdesk.conversations.lifecycle import TRANSITIONS, InvalidTransition, transition
from gasdesk.conversations.models import Conversation, ConversationState, Message
from gasdesk.db import commit
from gasdesk.errors import Conflict
from gasdesk.routing.models import SkillGroup
from tests.factories import bot_conversation, desk_agent, queued_conversation, reload_conversation

S = ConversationState
CJK = re.compile(r"[\u4e00-\u9fff]")
ALLOWED = {(action, src, dst) for action, table in TRANSITIONS.items() for src, dsts in table.items() for dst in dsts}
EVERY = set(itertools.product(list(TRANSITIONS), list(S), list(S)))


def test_transition_table_matches_the_documented_lifecycle() -> None:
    assert ALLOWED == {
        ("handoff", S.bot, S.queued), ("assign", S.queued, S.assigned),
        ("transfer_agent", S.assigned, S.assigned), ("transfer_agent", S.queued, S.assigned),
        ("requeue", S.assigned, S.queued), ("requeue", S.queued, S.queued),
        ("close", S.bot, S.closed), ("close", S.queued, S.closed), ("close", S.assigned, S.closed),
        ("reopen", S.closed, S.bot),
    }


# One test per table rather than one per cell: pure checks, and on PostgreSQL every test pays for emptying the tables.


def test_every_allowed_transition() -> None:
    for action, src, dst in sorted(ALLOWED):
        conversation = Conversation(state=src.value)
        assert transition(conversation, action, dst) is src, (action, src, dst)
        assert conversation.state == dst.value


def test_every_forbidden_transition_raises_in_chinese() -> None:
    checked = 0
    for action, src, dst in sorted(EVERY - ALLOWED):
        conversation = Conversation(state=src.value)
        with pytest.raises(InvalidTransition) as info:
            transition(conversation, action, dst)
        assert conversation.state == src.value, (action, src, dst)
        assert info.value.code == "invalid_transition" and info.value.status_code == 409
        assert CJK.search(info.value.message) and "不能" in info.value.message, info.value.message
        checked += 1
    assert checked == len(EVERY) - len(ALLOWED) == 86


def test_unknown_action_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        transition(Conversation(state=S.bot.value), "teleport", S.assigned)


# ---------------------------------------------------------------- the same rules through the do_* functions


async def test_bot_cannot_be_assigned_directly(session, factory, events) -> None:
    agent = await desk_agent(factory)
    conversation = await bot_conversation(session)
    events.clear()
    with pytest.raises(InvalidTransition, match="机器人服务.*不能分配坐席"):
        await service.do_accept(session, agent, conversation)
    cid = conversation.id
    await session.rollback()
    stored = await reload_conversation(cid)
    assert stored.state == "bot" and stored.agent_id is None
    assert events == []


async def test_closed_conversation_cannot_be_queued_accepted_or_closed_again(session, factory, events) -> None:
    agent = await desk_agent(factory)
    other = await desk_agent(factory)
    conversation = await bot_conversation(session)
    events.clear()
    await service.do_close(session, conversation, by="resident")
    await commit(session)
    assert [e.type for e in events].count("conversation.state") == 1
    events.clear()
    gas = await session.get(SkillGroup, 1)
    with pytest.raises(InvalidTransition, match="已结束.*不能转人工"):
        await service.do_handoff(session, conversation, group=gas, reason="request")
    with pytest.raises(InvalidTransition, match="已结束.*不能分配坐席"):
        await service.do_accept(session, agent, conversation)
    with pytest.raises(InvalidTransition, match="已结束.*不能结束会话"):
        await service.do_close(session, conversation, by="agent")
    with pytest.raises(InvalidTransition, match="已结束.*不能重新排队"):
        await service.do_transfer(session, agent, conversation, to_group_id=2)
    with pytest.raises(InvalidTransition, match="已结束.*不能转接坐席"):
        await service.do_transfer(session, agent, conversation, to_agent_id=other.id)
    cid = conversation.id
    await session.rollback()
    stored = await reload_conversation(cid)
    assert stored.state == "closed" and stored.closed_by == "resident"
    assert events == []


async def test_bot_conversation_cannot_be_transferred_to_a_group(session, factory) -> None:
    agent = await desk_agent(factory)
    conversation = await bot_conversation(session)
    with pytest.raises(InvalidTransition, match="机器人服务.*不能重新排队"):
        await service.do_transfer(session, agent, conversation, to_group_id=2)


async def test_rating_before_close_is_refused(session, factory) -> None:
    await desk_agent(factory)
    conversation = await queued_conversation(session)
    assert conversation.state == "assigned"
    with pytest.raises(Conflict, match="会话结束后才能评价") as info:
        await service.do_rate(session, conversation, 5)
    assert info.value.code == "not_closed"
    cid = conversation.id
    await session.rollback()
    assert (await reload_conversation(cid)).rating is None


async def test_full_happy_path_stores_each_state_and_publishes_after_commit(session, factory, events) -> None:
    agent = await desk_agent(factory, presence="busy")  # staffed, but takes nothing automatically
    events.clear()
    conversation = await bot_conversation(session, visitor_id="v_happy")
    assert [e.type for e in events] == ["conversation.started"]

    gas = await session.get(SkillGroup, 1)
    outcome = await service.do_handoff(session, conversation, group=gas, reason="request")
    assert outcome.queued and outcome.spot.position == 1
    assert [e.type for e in events] == ["conversation.started"], "events before commit"
    await commit(session)
    assert [e.type for e in events][1:] == ["conversation.state", "queue.changed"]
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.skill_group_id, stored.handoff_reason) == ("queued", 1, "request")
    assert stored.queued_at is not None

    events.clear()
    await service.do_accept(session, agent, conversation)
    await commit(session)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.agent_id) == ("assigned", agent.id)
    assert stored.accepted_at is not None and stored.assigned_at is not None
    types = [e.type for e in events]
    assert {"conversation.state", "conversation.assigned", "queue.changed", "conversation.message"} <= set(types)
    joined = [e for e in events if e.type == "conversation.message"]
    assert joined[0].payload["message"]["payload"] == {"event": "agent_joined", "agent_name": agent.display_name}

    events.clear()
    await service.do_close(session, conversation, by="agent", user=agent)
    await commit(session)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.closed_by) == ("closed", "agent") and stored.closed_at is not None
    state_events = [e.payload for e in events if e.type == "conversation.state"]
    assert state_events[-1]["state"] == "closed"
    # the agent's accept and close are each one audit row, naming the agent
    rows = list(await session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "conversation",
                                                               AuditEntry.entity_id == str(conversation.id))
                                      .order_by(AuditEntry.id)))
    assert [(r.action, r.actor_id) for r in rows] == [("conversation.accept", agent.id),
                                                      ("conversation.close", agent.id)]
    assert rows[0].changes == {"before": {"state": "queued", "agent_id": None},
                               "after": {"state": "assigned", "agent_id": agent.id}}
    assert rows[1].changes["after"] == {"state": "closed", "closed_by": "agent"}


async def test_failed_transition_publishes_nothing_and_stores_nothing(session, factory, events) -> None:
    conversation = await bot_conversation(session)
    events.clear()
    agent = await desk_agent(factory)
    events.clear()
    with pytest.raises(InvalidTransition):
        await service.do_accept(session, agent, conversation)
    await session.rollback()
    assert events == []
    assert await session.scalar(select(func.count()).select_from(Message)) == 0
