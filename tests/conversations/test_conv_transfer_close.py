"""Transfers to an agent or a group (audited), closing with a satisfaction card, and the rating."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk import db
from gasdesk.audit.models import AuditEntry
from gasdesk.conversations import service
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput
from gasdesk.routing import service as acd
from tests.factories import bot_conversation, desk_agent, queued_conversation, reload_conversation


async def _messages(conversation_id: int) -> list:
    async with db.sessionmaker()() as s:
        return await service.messages_after(s, conversation_id)


async def _audit(session, action: str) -> list[AuditEntry]:
    return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


async def test_transfer_to_an_agent(session, factory, events) -> None:
    a = await desk_agent(factory)
    b = await desk_agent(factory, presence="offline")
    conversation = await queued_conversation(session)
    await service.do_accept(session, a, conversation)
    await commit(session)
    events.clear()
    await service.do_transfer(session, a, conversation, to_agent_id=b.id, note="需要上门")
    await commit(session)
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.agent_id, stored.accepted_at) == ("assigned", b.id, None)
    assert await acd.active_count(session, a.id) == 0 and await acd.active_count(session, b.id) == 1
    last = (await _messages(conversation.id))[-1]
    assert last.payload == {"event": "transfer", "to_agent": b.display_name, "note": "需要上门"}
    (entry,) = await _audit(session, "conversation.transfer")
    assert (entry.actor_id, entry.entity_type, entry.entity_id) == (a.id, "conversation", str(conversation.id))
    assert entry.changes == {"before": {"agent_id": a.id}, "after": {"agent_id": b.id, "skill_group_id": 1}}
    state = [e.payload for e in events if e.type == "conversation.state"]
    assert state[0]["previous_agent_id"] == a.id and state[0]["agent_id"] == b.id
    assert {"conversation_id": conversation.id, "agent_id": b.id} in [
        e.payload for e in events if e.type == "conversation.assigned"]
    # b accepts the transferred conversation
    await session.refresh(conversation)
    await service.do_accept(session, b, conversation)
    await commit(session)
    assert (await reload_conversation(conversation.id)).accepted_at is not None


async def test_transfer_to_a_full_agent_is_refused(session, factory) -> None:
    a = await desk_agent(factory)
    full = await desk_agent(factory, presence="busy", max_concurrent=1, groups=(3,))
    mine = await queued_conversation(session)
    other = await queued_conversation(session)
    await service.do_transfer(session, a, other, to_agent_id=full.id)
    await commit(session)
    with pytest.raises(Conflict, match="已满负荷") as info:
        await service.do_transfer(session, a, mine, to_agent_id=full.id)
    assert info.value.code == "agent_at_capacity"
    mine_id, a_id = mine.id, a.id
    await session.rollback()
    assert (await reload_conversation(mine_id)).agent_id == a_id


async def test_transfer_needs_exactly_one_valid_target(session, factory) -> None:
    a = await desk_agent(factory)
    dispatcher = await desk_agent(factory, role="dispatcher", presence="offline", groups=())
    conversation = await queued_conversation(session)
    with pytest.raises(InvalidInput, match="二选一"):
        await service.do_transfer(session, a, conversation)
    with pytest.raises(InvalidInput, match="二选一"):
        await service.do_transfer(session, a, conversation, to_agent_id=a.id, to_group_id=2)
    with pytest.raises(InvalidInput, match="已在该坐席名下"):
        await service.do_transfer(session, a, conversation, to_agent_id=a.id)
    with pytest.raises(InvalidInput, match="目标坐席不存在"):
        await service.do_transfer(session, a, conversation, to_agent_id=dispatcher.id)
    with pytest.raises(InvalidInput, match="目标坐席不存在"):
        await service.do_transfer(session, a, conversation, to_agent_id=999_999)


async def test_transfer_to_a_group_requeues_and_pulls_for_the_old_agent(session, factory, events) -> None:
    a = await desk_agent(factory, groups=(1,), max_concurrent=1)
    heating = await desk_agent(factory, groups=(2,), presence="busy")
    first = await queued_conversation(session)
    waiting = await queued_conversation(session)
    assert (await reload_conversation(waiting.id)).state == "queued"
    events.clear()
    await service.do_transfer(session, a, first, to_group_id=2, note="供暖问题")
    await commit(session)
    stored = await reload_conversation(first.id)
    assert (stored.state, stored.agent_id, stored.skill_group_id) == ("queued", None, 2)
    # a has capacity again and gets the gas conversation that was waiting
    assert (await reload_conversation(waiting.id)).agent_id == a.id
    last = [m for m in await _messages(first.id) if m.payload and m.payload.get("event") == "transfer"][-1]
    assert last.payload == {"event": "transfer", "to_group": "热力业务", "note": "供暖问题"}
    (entry,) = await _audit(session, "conversation.transfer")
    assert entry.changes == {"before": {"agent_id": a.id}, "after": {"agent_id": None, "skill_group_id": 2}}
    assert {"skill_group_id": 2} in [e.payload for e in events if e.type == "queue.changed"]
    assert heating is not None


async def test_close_posts_the_satisfaction_card_and_rating_is_stored_once(session, factory, events) -> None:
    agent = await desk_agent(factory)
    conversation = await queued_conversation(session)
    await service.do_close(session, conversation, by="agent", user=agent)
    await commit(session)
    closing, card = (await _messages(conversation.id))[-2:]
    assert closing.payload == {"event": "closed", "by": "agent"}
    assert card.content_type == "card" and card.payload["kind"] == "rating"
    assert card.payload["scale"] == [1, 2, 3, 4, 5] and card.payload["labels"]["5"] == "非常满意"
    assert await acd.active_count(session, agent.id) == 0

    for bad in (0, 6, -1):
        with pytest.raises(InvalidInput, match="1–5"):
            await service.do_rate(session, conversation, bad)
    events.clear()
    await service.do_rate(session, conversation, 4, "  师傅很耐心  ")
    await commit(session)
    stored = await reload_conversation(conversation.id)
    assert (stored.rating, stored.rating_comment) == (4, "师傅很耐心") and stored.rated_at is not None
    assert {"conversation_id": conversation.id, "rating": 4, "agent_id": agent.id} in [
        e.payload for e in events if e.type == "conversation.rated"]
    with pytest.raises(Conflict, match="已评价") as info:
        await service.do_rate(session, conversation, 5)
    assert info.value.code == "already_rated"
    cid = conversation.id
    await session.rollback()
    assert (await reload_conversation(cid)).rating == 4


async def test_closing_a_bot_conversation_asks_for_no_rating(session) -> None:
    conversation = await bot_conversation(session)
    await service.do_close(session, conversation, by="resident")
    await commit(session)
    (closing,) = await _messages(conversation.id)
    assert closing.payload == {"event": "closed", "by": "resident"}


async def test_rating_comment_is_limited(session, factory) -> None:
    await desk_agent(factory)
    conversation = await queued_conversation(session)
    await service.do_close(session, conversation, by="agent")
    with pytest.raises(InvalidInput, match="500"):
        await service.do_rate(session, conversation, 3, "好" * 501)
