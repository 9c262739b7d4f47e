"""Parallel assignment: separate sessions racing (as several requests or app processes do) never hand a
conversation out twice and never push an agent past max_concurrent. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, update

from gasdesk import db
from gasdesk.auth.models import User
from gasdesk.conversations import service
from gasdesk.conversations.models import Conversation
from gasdesk.errors import Conflict
from gasdesk.routing import service as acd
from gasdesk.routing.models import AgentProfile, SkillGroup
from tests.conftest import PG_URL
from tests.factories import desk_agent, queued_conversation, reload_conversation


async def _loads(_session=None) -> dict[int, int]:
    async with db.sessionmaker()() as session:
        rows = await session.execute(select(Conversation.agent_id, func.count()).where(Conversation.state == "assigned")
                                     .group_by(Conversation.agent_id))
        return {agent_id: n for agent_id, n in rows}


async def _go_online_silently(session, *agents) -> None:
    """Presence online without pulling the queue, so the racing calls below do all the assigning."""
    await session.execute(update(AgentProfile).where(AgentProfile.user_id.in_([a.id for a in agents]))
                          .values(presence="online"))
    await db.commit(session)


async def test_parallel_try_assign_never_double_assigns_or_exceeds_capacity(session, factory, events) -> None:
    agents = [await desk_agent(factory, presence="busy", max_concurrent=n) for n in (2, 2, 1)]
    waiting = [await queued_conversation(session) for _ in range(10)]
    await _go_online_silently(session, *agents)
    events.clear()

    async def assign() -> list[tuple[int, int]]:
        async with db.transaction() as s:
            return await acd.try_assign(s, 1)

    results = await asyncio.gather(*(assign() for _ in range(8)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    made = [pair for r in results for pair in r]
    assert len(made) == 5 and len({c for c, _ in made}) == 5, made
    assert await _loads(session) == {agents[0].id: 2, agents[1].id: 2, agents[2].id: 1}
    assert await session.scalar(select(func.count()).select_from(Conversation)
                                .where(Conversation.state == "queued")) == 5
    assigned_events = [e.payload["conversation_id"] for e in events if e.type == "conversation.assigned"]
    assert sorted(assigned_events) == sorted(c for c, _ in made), "one announcement per real assignment"
    assert {c.id for c in waiting[:5]} == {c for c, _ in made}, "the oldest five were served"


async def test_parallel_accepts_of_one_conversation_have_one_winner(session, factory) -> None:
    agents = [await desk_agent(factory, presence="busy") for _ in range(6)]
    conversation = await queued_conversation(session)

    async def accept(agent: User) -> int:
        async with db.transaction() as s:
            me = await s.get(User, agent.id)
            c = await s.get(Conversation, conversation.id)
            await service.do_accept(s, me, c)
            return agent.id

    results = await asyncio.gather(*(accept(a) for a in agents), return_exceptions=True)
    winners = [r for r in results if isinstance(r, int)]
    losers = [r for r in results if not isinstance(r, int)]
    assert len(winners) == 1, results
    assert all(isinstance(e, Conflict) and e.code == "already_assigned" for e in losers), losers
    stored = await reload_conversation(conversation.id)
    assert (stored.state, stored.agent_id) == ("assigned", winners[0])
    joined = await session.scalar(select(func.count()).select_from(Conversation).where(Conversation.agent_id.is_not(None)))
    assert joined == 1


async def test_parallel_accepts_by_one_agent_stop_at_capacity(session, factory) -> None:
    agent = await desk_agent(factory, presence="busy", max_concurrent=2)
    waiting = [await queued_conversation(session) for _ in range(6)]

    async def accept(conversation_id: int) -> int:
        async with db.transaction() as s:
            me = await s.get(User, agent.id)
            c = await s.get(Conversation, conversation_id)
            await service.do_accept(s, me, c)
            return conversation_id

    results = await asyncio.gather(*(accept(c.id) for c in waiting), return_exceptions=True)
    won = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if not isinstance(r, int)]
    assert all(isinstance(e, Conflict) and e.code == "agent_at_capacity" for e in refused), refused
    assert await _loads(session) == {agent.id: 2}
    assert len(won) == 2


async def test_accepts_racing_the_acd_never_exceed_capacity(session, factory) -> None:
    a = await desk_agent(factory, presence="busy", max_concurrent=1)
    b = await desk_agent(factory, presence="busy", max_concurrent=1)
    waiting = [await queued_conversation(session) for _ in range(4)]
    await _go_online_silently(session, a, b)

    async def assign() -> object:
        async with db.transaction() as s:
            return await acd.try_assign(s, 1)

    async def accept(agent: User, conversation_id: int) -> object:
        async with db.transaction() as s:
            await service.do_accept(s, await s.get(User, agent.id), await s.get(Conversation, conversation_id))

    calls = [assign(), accept(a, waiting[3].id), accept(b, waiting[2].id), assign(), accept(a, waiting[1].id)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(r is None or isinstance(r, list) or isinstance(r, Conflict) for r in results), results
    loads = await _loads(session)
    assert loads == {a.id: 1, b.id: 1}


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL pass: SQLite runs one writer at a time already")
async def test_one_transaction_at_a_time_serves_a_groups_queue(session, factory) -> None:
    # Two servings at once locked agents and conversations in different orders, and PostgreSQL cancelled one as a
    # deadlock (seen under load in this module's race above): a second serving of the same queue now waits.
    await desk_agent(factory, presence="online")
    assert await session.get(SkillGroup, 2) is not None  # a second seeded group, served beside the first
    first = db.sessionmaker()()
    try:
        await acd.try_assign(first, 1)  # holds the group's queue until it commits

        async def second() -> None:
            async with db.transaction() as s:
                await acd.try_assign(s, 1)

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not waiting.done(), "a second serving of the same queue ran beside the first"
        other_group = asyncio.create_task(_serve_other_group())
        await asyncio.wait_for(other_group, 5)  # another group's queue is not held up
        await db.commit(first)
        await asyncio.wait_for(waiting, 5)
    finally:
        await first.close()


async def _serve_other_group() -> None:
    async with db.transaction() as s:
        await acd.try_assign(s, 2)
