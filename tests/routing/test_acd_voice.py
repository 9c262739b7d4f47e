"""ACD with calls: a call takes the agent's one voice slot, chats continue up to ``max_concurrent`` beside it,
a queued call goes only to an agent with no call, and emergencies still come first."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gasdesk import clock, db
from gasdesk.conversations import service
from gasdesk.db import commit
from gasdesk.errors import Conflict
from gasdesk.routing import service as acd
from tests.factories import desk_agent, queued_conversation, reload_conversation

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday, inside every group's hours
VOICE = "voice"


@pytest.fixture(autouse=True)
def frozen() -> None:
    clock.set_now(T0)


def at(minutes: float) -> None:
    clock.set_now(T0 + timedelta(minutes=minutes))


async def _states(*conversations) -> list[tuple[str, int | None]]:
    return [((c := await reload_conversation(x.id)).state, c.agent_id) for x in conversations]


async def undo(session, *objects) -> None:
    """Roll the test session back (as a failed request would) and reload what the test still uses."""
    await session.rollback()
    for obj in objects:
        await session.refresh(obj)


async def _load(user) -> tuple[int, bool]:
    """(chats served, on a call) as stored now."""
    async with db.sessionmaker()() as s:
        return await acd.active_count(s, user.id), await acd.on_call(s, user.id)


async def test_an_agent_on_a_call_gets_chats_but_not_a_second_call(session, factory) -> None:
    agent = await desk_agent(factory, max_concurrent=2)
    call = await queued_conversation(session, channel=VOICE)
    assert await _states(call) == [("assigned", agent.id)]
    assert await _load(agent) == (0, True), "the call takes the voice slot, not a chat slot"

    second_call = await queued_conversation(session, channel=VOICE)
    chats = [await queued_conversation(session) for _ in range(3)]
    assert await _states(second_call) == [("queued", None)], "one call at a time"
    assert await _states(*chats) == [("assigned", agent.id)] * 2 + [("queued", None)], "chats up to capacity"
    assert await _load(agent) == (2, True)

    # taking the second call by hand is refused while on the first one
    await session.refresh(second_call)
    with pytest.raises(Conflict, match="通话中") as info:
        await service.do_accept(session, agent, second_call)
    assert info.value.code == "agent_on_call"
    await undo(session, agent, call)

    # the call ends: the waiting call is offered at once; the third chat still waits for a chat slot
    await session.refresh(call)
    await service.do_close(session, call, by="resident")
    await commit(session)
    assert await _states(second_call, chats[2]) == [("assigned", agent.id), ("queued", None)]
    assert await _load(agent) == (2, True)


async def test_a_queued_call_goes_to_the_next_agent_without_a_call(session, factory) -> None:
    at(0)
    first = await desk_agent(factory, max_concurrent=5)
    at(1)
    second = await desk_agent(factory, max_concurrent=5)
    # the first agent has a call; the second is busy with chats only (below capacity)
    call_1 = await queued_conversation(session, channel=VOICE)
    assert await _states(call_1) == [("assigned", first.id)]
    chats = [await queued_conversation(session) for _ in range(3)]
    assert {agent for _, agent in await _states(*chats)} <= {first.id, second.id}
    call_2 = await queued_conversation(session, channel=VOICE)
    assert await _states(call_2) == [("assigned", second.id)], "the agent with no call, whatever their chats"
    call_3 = await queued_conversation(session, channel=VOICE)
    assert await _states(call_3) == [("queued", None)], "everyone is on a call"
    # a chat arriving now is still served: calls waiting do not hold chats back
    late_chat = await queued_conversation(session)
    assert (await _states(late_chat))[0][0] == "assigned"


async def test_a_full_chat_load_does_not_block_the_voice_slot_and_vice_versa(session, factory) -> None:
    agent = await desk_agent(factory, max_concurrent=1)
    chat = await queued_conversation(session)
    assert await _states(chat) == [("assigned", agent.id)]
    call = await queued_conversation(session, channel=VOICE)
    assert await _states(call) == [("assigned", agent.id)], "chat slots full, voice slot free"
    assert await _load(agent) == (1, True)

    async with db.sessionmaker()() as s:
        profile = await acd.agent_profile(s, agent.id)
        assert not await acd.has_room(s, profile, "webchat")
        assert not await acd.has_room(s, profile, VOICE)
        assert await acd.available_agents(s, 1) == [] and await acd.available_agents(s, 1, VOICE) == []


async def test_capacity_math_of_the_waiting_times(session, factory) -> None:
    """Calls are served one per agent; chats by the agents' chat slots: each kind is placed among its own."""
    await desk_agent(factory, presence="busy", max_concurrent=3)
    await desk_agent(factory, presence="busy", max_concurrent=2)
    waiting = []
    for i, channel in enumerate([VOICE, "webchat", VOICE, "webchat", "webchat", VOICE]):
        at(i)
        waiting.append(await queued_conversation(session, channel=channel))
    spots = await acd.queue_spots(session, 1)
    handle = 240  # the seeded group's default handling time
    calls = [c for c in waiting if c.channel == VOICE]
    chats = [c for c in waiting if c.channel != VOICE]
    # 2 agents → 2 voice slots; 3 + 2 = 5 chat slots
    assert [(spots[c.id].position, spots[c.id].waiting, spots[c.id].estimated_wait_s) for c in calls] == [
        (i + 1, 3, int(handle * (i + 1) / 2)) for i in range(3)]
    assert [(spots[c.id].position, spots[c.id].waiting, spots[c.id].estimated_wait_s) for c in chats] == [
        (i + 1, 3, int(handle * (i + 1) / 5)) for i in range(3)]
    # a newcomer of each kind
    call_next = await acd.expected_wait(session, 1, VOICE)
    chat_next = await acd.expected_wait(session, 1, "webchat")
    assert (call_next.waiting, call_next.estimated_wait_s) == (3, int(handle * 4 / 2))
    assert (chat_next.waiting, chat_next.estimated_wait_s) == (3, int(handle * 4 / 5))


async def test_an_emergency_call_goes_ahead_of_normal_calls(session, factory) -> None:
    agent = await desk_agent(factory, presence="busy", max_concurrent=5)
    at(0)
    normal_1 = await queued_conversation(session, channel=VOICE)
    at(1)
    normal_2 = await queued_conversation(session, channel=VOICE)
    at(2)
    emergency = await queued_conversation(session, channel=VOICE, priority=10)
    spots = await acd.queue_spots(session, 1)
    assert [spots[c.id].position for c in (emergency, normal_1, normal_2)] == [1, 2, 3]
    at(3)
    await acd.do_set_presence(session, agent, "online")
    await commit(session)
    assert await _states(emergency, normal_1, normal_2) == [("assigned", agent.id), ("queued", None), ("queued", None)]
    # once the emergency call ends, the longest-waiting normal call is next
    await session.refresh(emergency)
    await service.do_close(session, emergency, by="resident")
    await commit(session)
    assert await _states(normal_1, normal_2) == [("assigned", agent.id), ("queued", None)]


async def test_transfer_of_a_call_to_a_colleague_on_a_call_is_refused(session, factory) -> None:
    first = await desk_agent(factory)
    second = await desk_agent(factory)
    call_1 = await queued_conversation(session, channel=VOICE)
    call_2 = await queued_conversation(session, channel=VOICE)
    states = dict((c.id, agent) for c, (_, agent) in zip((call_1, call_2), await _states(call_1, call_2), strict=True))
    assert set(states.values()) == {first.id, second.id}
    mine = call_1 if states[call_1.id] == first.id else call_2
    await session.refresh(mine)
    with pytest.raises(Conflict) as info:
        await service.do_transfer(session, first, mine, to_agent_id=second.id)
    assert info.value.code == "agent_on_call"
    await undo(session, first, second)
    # a chat can still be transferred to them
    chat = await queued_conversation(session)
    owner = (await _states(chat))[0][1]
    other = second if owner == first.id else first
    await session.refresh(chat)
    await service.do_transfer(session, await session.get(type(first), owner), chat, to_agent_id=other.id)
    await commit(session)
    assert await _states(chat) == [("assigned", other.id)]
