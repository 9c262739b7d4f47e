"""ACD: presence, capacity, skill groups, routing modes, sticky residents, priority, queue positions."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from gasdesk import clock
from gasdesk.conversations import service
from gasdesk.conversations.models import Conversation
from gasdesk.db import commit
from gasdesk.errors import Conflict, PermissionDenied
from gasdesk.routing import service as acd
from gasdesk.routing.models import AgentProfile, SkillGroup
from tests.factories import bot_conversation, desk_agent, queued_conversation, reload_conversation

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday, inside every group's hours


@pytest.fixture(autouse=True)
def frozen() -> None:
    clock.set_now(T0)


def at(minutes: float) -> datetime:
    moment = T0 + timedelta(minutes=minutes)
    clock.set_now(moment)
    return moment


async def _states(session, *conversations) -> list[tuple[str, int | None]]:
    out = []
    for c in conversations:
        stored = await reload_conversation(c.id)
        out.append((stored.state, stored.agent_id))
    return out


async def _load(session, user) -> int:
    from gasdesk import db

    uid = user.id
    async with db.sessionmaker()() as s:
        return await acd.active_count(s, uid)


async def undo(session, *objects) -> None:
    """Roll the test session back (as a failed request would) and reload what the test still uses."""
    await session.rollback()
    for obj in objects:
        await session.refresh(obj)


async def _set_profile(session, user, **values) -> None:
    await session.execute(update(AgentProfile).where(AgentProfile.user_id == user.id).values(**values))
    await commit(session)


async def _set_group(session, group_id: int, **values) -> None:
    await session.execute(update(SkillGroup).where(SkillGroup.id == group_id).values(**values))
    await commit(session)


async def _assigned(session, user_id: int, conversation_id: int | None = None) -> Conversation:
    """A conversation already in service with ``user_id`` (load for the routing modes)."""
    c = await bot_conversation(session)
    await session.execute(update(Conversation).where(Conversation.id == c.id).values(
        state="assigned", agent_id=user_id, skill_group_id=1, assigned_at=clock.utcnow(), queued_at=clock.utcnow()))
    await commit(session)
    return c


# ---------------------------------------------------------------- presence


async def test_only_online_agents_get_work_and_going_online_pulls_the_queue(session, factory, events) -> None:
    offline = await desk_agent(factory, presence="offline")
    away = await desk_agent(factory, presence="away")
    busy = await desk_agent(factory, presence="busy")
    waiting = [await queued_conversation(session) for _ in range(3)]
    assert await _states(session, *waiting) == [("queued", None)] * 3
    for agent in (offline, away, busy):
        assert await _load(session, agent) == 0

    events.clear()
    at(1)
    await acd.do_set_presence(session, away, "online")
    assert not [e for e in events if e.type == "conversation.assigned"], "nothing before commit"
    await commit(session)
    assert await _states(session, *waiting) == [("assigned", away.id)] * 3
    assigned = [e.payload for e in events if e.type == "conversation.assigned"]
    assert assigned == [{"conversation_id": c.id, "agent_id": away.id} for c in waiting]
    assert {"type": "agent.presence", "payload": {"user_id": away.id, "presence": "online"}} in [
        {"type": e.type, "payload": e.payload} for e in events]
    profile = await acd.agent_profile(session, away.id)
    await session.refresh(profile)
    assert profile.presence == "online" and profile.presence_changed_at == at(1)
    assert profile.last_assigned_at is not None


async def test_agent_going_away_keeps_conversations_but_gets_no_new_ones(session, factory) -> None:
    agent = await desk_agent(factory)
    first = await queued_conversation(session)
    assert await _states(session, first) == [("assigned", agent.id)]
    await acd.do_set_presence(session, agent, "away")
    await commit(session)
    await desk_agent(factory, presence="busy")  # someone staffed, so the queue stays open
    second = await queued_conversation(session)
    assert await _states(session, first, second) == [("assigned", agent.id), ("queued", None)]


async def test_unknown_presence_is_invalid(session, factory) -> None:
    from gasdesk.errors import InvalidInput

    agent = await desk_agent(factory)
    with pytest.raises(InvalidInput, match="未知的在线状态"):
        await acd.do_set_presence(session, agent, "lunch")


async def test_inactive_user_gets_no_work(session, factory) -> None:
    agent = await desk_agent(factory, presence="busy")
    await desk_agent(factory, presence="busy")
    from gasdesk.auth.models import User

    await session.execute(update(User).where(User.id == agent.id).values(is_active=False))
    await _set_profile(session, agent, presence="online")
    c = await queued_conversation(session)
    assert await _states(session, c) == [("queued", None)]


# ---------------------------------------------------------------- capacity


async def test_max_concurrent_is_never_exceeded(session, factory) -> None:
    agent = await desk_agent(factory, max_concurrent=2)
    conversations = [await queued_conversation(session) for _ in range(5)]
    states = await _states(session, *conversations)
    assert states[:2] == [("assigned", agent.id)] * 2 and states[2:] == [("queued", None)] * 3
    assert await _load(session, agent) == 2

    # accepting by hand at capacity is refused
    third = conversations[2]
    await session.refresh(third)
    with pytest.raises(Conflict, match="最大并发会话数（2）") as info:
        await service.do_accept(session, agent, third)
    assert info.value.code == "agent_at_capacity"
    first = conversations[0]
    await undo(session, agent, first, *conversations)
    assert await _states(session, third) == [("queued", None)]

    # closing one frees a slot: exactly the next waiting conversation is pulled
    await service.do_close(session, first, by="agent", user=agent)
    await commit(session)
    assert await _states(session, *conversations[1:]) == [("assigned", agent.id)] * 2 + [("queued", None)] * 2
    assert await _load(session, agent) == 2


async def test_many_queued_at_once_respect_capacity_and_order(session, factory) -> None:
    a = await desk_agent(factory, presence="busy", max_concurrent=2)
    b = await desk_agent(factory, presence="busy", max_concurrent=1)
    conversations = []
    for i in range(6):
        at(i)
        conversations.append(await queued_conversation(session))
    at(10)
    await acd.do_set_presence(session, a, "online")
    await acd.do_set_presence(session, b, "online")
    await commit(session)
    states = await _states(session, *conversations)
    assert [s for s, _ in states] == ["assigned"] * 3 + ["queued"] * 3, "served in queue order"
    assert await _load(session, a) == 2 and await _load(session, b) == 1


async def test_accept_from_queue_checks_the_skill_group(session, factory) -> None:
    await desk_agent(factory, presence="busy", groups=(1,))
    heating_agent = await desk_agent(factory, groups=(2,))
    supervisor = await desk_agent(factory, role="supervisor", presence="offline", groups=())
    gas = await queued_conversation(session, group_id=1)
    with pytest.raises(PermissionDenied, match="技能组"):
        await service.do_accept(session, heating_agent, gas)
    await undo(session, gas, supervisor)
    await service.do_accept(session, supervisor, gas)  # supervisors may take from any queue
    await commit(session)
    assert await _states(session, gas) == [("assigned", supervisor.id)]


async def test_accept_of_someone_elses_conversation_is_a_conflict(session, factory) -> None:
    a = await desk_agent(factory)
    b = await desk_agent(factory)
    c = await queued_conversation(session)
    owner = (await reload_conversation(c.id)).agent_id
    other = b if owner == a.id else a
    await session.refresh(c)
    with pytest.raises(Conflict, match="其他坐席") as info:
        await service.do_accept(session, other, c)
    assert info.value.code == "already_assigned"


# ---------------------------------------------------------------- skill groups


async def test_conversations_go_only_to_agents_with_the_skill(session, factory) -> None:
    gas_agent = await desk_agent(factory, groups=(1,))
    heating_agent = await desk_agent(factory, groups=(2,))
    billing_agent = await desk_agent(factory, groups=(3, 4), max_concurrent=1)
    gas = await queued_conversation(session, group_id=1)
    heating = await queued_conversation(session, group_id=2)
    billing = await queued_conversation(session, group_id=3)
    complaint = await queued_conversation(session, group_id=4)
    assert await _states(session, gas, heating, billing, complaint) == [
        ("assigned", gas_agent.id), ("assigned", heating_agent.id), ("assigned", billing_agent.id),
        ("queued", None)]  # billing_agent is full; gas and heating agents lack the complaint skill


# ---------------------------------------------------------------- routing modes


async def _three_online(factory, session, **profiles):
    agents = [await desk_agent(factory, presence="busy") for _ in range(3)]
    for agent, values in zip(agents, profiles.get("values", [{}] * 3), strict=True):
        await _set_profile(session, agent, presence="online", **values)
    return agents


async def test_longest_idle_picks_the_agent_idle_longest(session, factory) -> None:
    a, b, c = await _three_online(factory, session, values=[
        {"last_released_at": at(-30)}, {"last_released_at": at(-90)}, {"last_released_at": at(-10)}])
    at(0)
    first = await queued_conversation(session)
    assert (await reload_conversation(first.id)).agent_id == b.id
    # an agent already busy with a conversation waits behind idle ones, however long ago they finished
    second = await queued_conversation(session)
    third = await queued_conversation(session)
    assert [(await reload_conversation(x.id)).agent_id for x in (second, third)] == [a.id, c.id]


async def test_round_robin_takes_agents_in_turn_regardless_of_load(session, factory) -> None:
    await _set_group(session, 1, routing_mode="round_robin")
    a, b, c = await _three_online(factory, session, values=[
        {"last_assigned_at": at(-20)}, {"last_assigned_at": None}, {"last_assigned_at": at(-40)}])
    await _assigned(session, a.id)
    await _assigned(session, a.id)
    got = []
    for i in range(4):
        at(i + 1)
        got.append((await reload_conversation((await queued_conversation(session)).id)).agent_id)
    assert got == [b.id, c.id, a.id, b.id]


async def test_least_active_picks_the_agent_with_fewest_open_conversations(session, factory) -> None:
    await _set_group(session, 1, routing_mode="least_active")
    a, b, c = await _three_online(factory, session)
    for _ in range(2):
        await _assigned(session, a.id)
    await _assigned(session, c.id)
    at(1)
    first = await queued_conversation(session)
    assert (await reload_conversation(first.id)).agent_id == b.id
    at(2)
    # b and c now have one each; c was assigned longer ago (never by the ACD), so c
    second = await queued_conversation(session)
    assert (await reload_conversation(second.id)).agent_id == c.id
    at(3)
    third = await queued_conversation(session)
    assert (await reload_conversation(third.id)).agent_id == b.id


# ---------------------------------------------------------------- sticky returning residents


async def _served_before(session, factory, visitor_id: str, agent) -> None:
    """The resident's earlier conversation, served by ``agent`` and closed."""
    c = await bot_conversation(session, visitor_id=visitor_id)
    await session.execute(update(Conversation).where(Conversation.id == c.id).values(
        state="closed", agent_id=agent.id, skill_group_id=1, closed_at=clock.utcnow()))
    await commit(session)


async def test_returning_resident_gets_their_last_agent_when_free(session, factory) -> None:
    preferred = await desk_agent(factory, presence="busy")
    last = await desk_agent(factory, presence="busy")
    await _set_profile(session, preferred, presence="online", last_released_at=at(-60))
    await _set_profile(session, last, presence="online", last_released_at=at(-1))
    await _served_before(session, factory, "v_returning", last)
    at(0)
    stranger = await queued_conversation(session)
    assert (await reload_conversation(stranger.id)).agent_id == preferred.id, "longest idle without history"
    returning = await queued_conversation(session, visitor_id="v_returning")
    assert (await reload_conversation(returning.id)).agent_id == last.id


async def test_returning_resident_goes_elsewhere_when_last_agent_is_full_or_sticky_is_off(session, factory) -> None:
    other = await desk_agent(factory, presence="busy")
    last = await desk_agent(factory, presence="busy", max_concurrent=1)
    await _set_profile(session, other, presence="online", last_released_at=at(-60))
    await _set_profile(session, last, presence="online", last_released_at=at(-1))
    await _served_before(session, factory, "v_sticky", last)
    await _assigned(session, last.id)  # last agent is full
    full = await queued_conversation(session, visitor_id="v_sticky")
    assert (await reload_conversation(full.id)).agent_id == other.id

    await _set_group(session, 1, sticky_returning=False)
    await _served_before(session, factory, "v_nosticky", other)
    c = await queued_conversation(session, visitor_id="v_nosticky")
    assert (await reload_conversation(c.id)).agent_id == other.id
    await _set_group(session, 1, sticky_returning=False)


async def test_sticky_uses_the_customer_across_visitor_ids(session, factory) -> None:
    customer = await factory.customer()
    preferred = await desk_agent(factory, presence="busy")
    last = await desk_agent(factory, presence="busy")
    await _set_profile(session, preferred, presence="online", last_released_at=at(-60))
    await _set_profile(session, last, presence="online", last_released_at=at(-1))
    earlier = await bot_conversation(session, visitor_id="v_phone", customer_id=customer.id)
    await session.execute(update(Conversation).where(Conversation.id == earlier.id).values(
        state="closed", agent_id=last.id, skill_group_id=1))
    await commit(session)
    c = await queued_conversation(session, visitor_id="v_laptop", customer_id=customer.id)
    assert (await reload_conversation(c.id)).agent_id == last.id


# ---------------------------------------------------------------- priority, capacity of the queue, positions


async def test_emergency_jumps_the_queue(session, factory) -> None:
    agent = await desk_agent(factory, presence="busy", max_concurrent=1)
    at(0)
    normal_1 = await queued_conversation(session)
    at(1)
    normal_2 = await queued_conversation(session)
    at(2)
    emergency = await queued_conversation(session, priority=10)
    spots = await acd.queue_spots(session, 1)
    assert [spots[c.id].position for c in (emergency, normal_1, normal_2)] == [1, 2, 3]
    at(3)
    await acd.do_set_presence(session, agent, "online")
    await commit(session)
    assert await _states(session, emergency, normal_1, normal_2) == [
        ("assigned", agent.id), ("queued", None), ("queued", None)]


async def test_full_queue_overflows_with_reason_queue_full(session, factory, events) -> None:
    await desk_agent(factory, presence="busy")
    await _set_group(session, 1, queue_capacity=2)
    for _ in range(2):
        await queued_conversation(session)
    third = await bot_conversation(session)
    events.clear()
    gas = await session.get(SkillGroup, 1)
    outcome = await service.do_handoff(session, third, group=gas, reason="request")
    await commit(session)
    assert (outcome.queued, outcome.reason) == (False, "queue_full")
    assert (await reload_conversation(third.id)).state == "bot"
    assert events == []
    # an emergency queues anyway
    outcome = await service.do_handoff(session, third, group=gas, reason="emergency", priority=10)
    await commit(session)
    assert outcome.queued and outcome.spot.position == 1 and outcome.spot.waiting == 3
    assert await session.scalar(select(func.count()).select_from(Conversation)
                                .where(Conversation.state == "queued")) == 3


async def test_queue_positions_and_estimated_wait(session, factory) -> None:
    await desk_agent(factory, presence="busy", max_concurrent=2)
    await desk_agent(factory, presence="busy", max_concurrent=1)
    await desk_agent(factory, presence="offline", max_concurrent=9)  # offline capacity does not count
    waiting = []
    for i in range(4):
        at(i)
        waiting.append(await queued_conversation(session))
    spots = await acd.queue_spots(session, 1)
    handle = 240  # default_handle_s of the seeded group; 3 slots online or busy
    assert [(spots[c.id].position, spots[c.id].waiting, spots[c.id].estimated_wait_s) for c in waiting] == [
        (i + 1, 4, int(handle * (i + 1) / 3)) for i in range(4)]
    assert (await service.queue_spot(session, waiting[2])).position == 3


async def test_estimated_wait_learns_from_recent_handling_times(session, factory) -> None:
    await desk_agent(factory, presence="busy", max_concurrent=1)
    for minutes in (1, 2, 3, 4, 5):
        c = await bot_conversation(session)
        await session.execute(update(Conversation).where(Conversation.id == c.id).values(
            state="closed", skill_group_id=1, assigned_at=at(0), closed_at=at(minutes)))
    await commit(session)
    q = await queued_conversation(session)
    spot = (await acd.queue_spots(session, 1))[q.id]
    assert spot.estimated_wait_s == 180  # mean of 60..300 s, one slot, first in line
