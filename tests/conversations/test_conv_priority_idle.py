"""Emergencies first everywhere (the agent's own list, the queue across skill groups, who a freed agent takes
next), and idle residents: a resident who closed the chat is marked 居民已离开 after a configured time and the
conversation is released from the agent's capacity after a further one (audited, announced, periodic)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.config import reset_settings_cache
from gasdesk.conversations import service
from gasdesk.conversations.idle import scan_every_s, scan_idle_residents
from gasdesk.conversations.models import Conversation, Message
from gasdesk.db import commit
from gasdesk.jobs.queue import run_periodic_once
from gasdesk.routing import service as acd
from tests.factories import (
    ChatSocket,
    desk_agent,
    new_visitor,
    queued_conversation,
    reload_conversation,
    served,
    wo_headers,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday, inside every group's hours


def at(minutes: float) -> None:
    clock.set_now(T0 + timedelta(minutes=minutes))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- emergencies first


async def test_my_conversations_list_emergencies_first(client, session, factory) -> None:
    at(0)
    agent = await desk_agent(factory, groups=(1, 2), max_concurrent=5)
    ordinary = [await queued_conversation(session, group_id=2) for _ in range(2)]
    at(1)
    emergency = await queued_conversation(session, group_id=1, priority=10)
    headers = await wo_headers(factory, agent)
    mine = (await client.get("/api/v1/agent/conversations", headers=headers)).json()
    assert [c["id"] for c in mine] == [emergency.id, ordinary[0].id, ordinary[1].id]
    assert mine[0]["priority"] == 10


async def test_queue_lists_emergencies_first_across_groups(client, session, factory) -> None:
    at(0)
    agent = await desk_agent(factory, groups=(1, 2), presence="busy")
    old = await queued_conversation(session, group_id=2)
    at(5)
    emergency = await queued_conversation(session, group_id=1, priority=10)
    at(6)
    newer = await queued_conversation(session, group_id=2)
    queue = (await client.get("/api/v1/agent/queue", headers=await wo_headers(factory, agent))).json()
    assert [q["id"] for q in queue] == [emergency.id, old.id, newer.id]
    assert [q["resident_left"] for q in queue] == [False, False, False]


@pytest.mark.parametrize("how", ["closes a conversation", "comes online"])
async def test_a_freed_agent_takes_the_emergency_of_another_group_first(session, factory, how: str) -> None:
    """The agent serves 热力 (listed first) and 燃气: an ordinary 热力 resident waited longer, but the gas
    emergency that arrived later is served first."""
    at(0)
    agent = await desk_agent(factory, groups=(2, 1), max_concurrent=1, presence="online")
    busy = await queued_conversation(session, group_id=1)
    assert (await reload_conversation(busy.id)).agent_id == agent.id  # now at capacity
    at(1)
    ordinary = await queued_conversation(session, group_id=2)
    at(2)
    emergency = await queued_conversation(session, group_id=1, priority=10)
    at(3)
    if how == "comes online":
        await acd.do_set_presence(session, agent, "offline")
        await commit(session)
    await service.do_close(session, await session.get(Conversation, busy.id), by="agent")
    await commit(session)
    if how == "comes online":
        assert (await reload_conversation(emergency.id)).state == "queued"  # nobody online to take it
        await acd.do_set_presence(session, agent, "online")
        await commit(session)
    served_next = await reload_conversation(emergency.id)
    assert (served_next.state, served_next.agent_id) == ("assigned", agent.id)
    assert (await reload_conversation(ordinary.id)).state == "queued"


async def test_a_leak_reported_while_waiting_makes_the_conversation_an_emergency(app, client, session,
                                                                              factory, events) -> None:
    """No bot turn once people handle a conversation, yet 厨房有煤气味 typed while queued (or while talking to
    an agent) puts it first: the message takes the regular path instead of group commit."""
    agent = await desk_agent(factory, groups=(1,), presence="busy")
    earlier = await queued_conversation(session, group_id=1)
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            cid = (await ws.until("welcome"))["conversation"]["id"]
            await ws.send(type="message", client_msg_id="m1", text="转人工")
            await ws.until(lambda f: f["type"] == "message"
                           and (f["message"].get("payload") or {}).get("event") == "queued")
            await ws.send(type="message", client_msg_id="m2", text="我家厨房有煤气味")
            await ws.until(lambda f: f["type"] == "ack" and f["client_msg_id"] == "m2")
    queue = (await client.get("/api/v1/agent/queue", headers=await wo_headers(factory, agent))).json()
    assert [(q["id"], q["priority"]) for q in queue] == [(cid, 10), (earlier.id, 0)]
    rows = await session.scalars(select(AuditEntry).where(AuditEntry.action == "conversation.emergency"))
    assert [(r.entity_id, r.changes["after"]) for r in rows] == [(str(cid), {"priority": 10})]
    assert any(e.type == "queue.changed" for e in events)


# ---------------------------------------------------------------- idle residents


@pytest.fixture
def idle_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_RESIDENT_LEFT_AFTER_S", "60")
    monkeypatch.setenv("GASDESK_RESIDENT_RELEASE_AFTER_S", "300")
    reset_settings_cache()


async def _audit(session, conversation_id: int) -> list[str]:
    rows = await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "conversation",
                                                                 AuditEntry.entity_id == str(conversation_id))
                                 .order_by(AuditEntry.id))
    return [a for a in rows if a.startswith("conversation.resident") or a == "conversation.idle_release"]


async def test_resident_who_closed_the_tab_is_marked_then_released(app, session, factory, client, events,
                                                                   idle_settings) -> None:
    agent = await desk_agent(factory, groups=(1,), max_concurrent=1)
    headers = await wo_headers(factory, agent)
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            cid = (await ws.until("welcome"))["conversation"]["id"]
            await ws.send(type="message", client_msg_id="m1", text="转人工")
            await ws.until(lambda f: f["type"] == "state" and f.get("state") == "assigned")
        # the tab is closed: the idle clock starts
        await eventually(lambda: _gone(cid))
        waiting = await queued_conversation(session, group_id=1)  # the next resident waits for the agent
        assert (await reload_conversation(waiting.id)).state == "queued"

        gone_at = (await reload_conversation(cid)).resident_gone_at
        assert await scan_idle_residents(session, now=gone_at + timedelta(seconds=59)) == {"marked": 0, "released": 0}
        events.clear()
        assert await scan_idle_residents(session, now=gone_at + timedelta(seconds=61)) == {"marked": 1, "released": 0}
        await commit(session)
        assert any(e.type == "conversation.state" and e.payload["conversation_id"] == cid for e in events)
        wire = (await client.get(f"/api/v1/conversations/{cid}", headers=headers)).json()["conversation"]
        assert wire["resident_left"] is True and wire["state"] == "assigned"
        mine = (await client.get("/api/v1/agent/conversations", headers=headers)).json()
        assert [(c["id"], c["resident_left"]) for c in mine] == [(cid, True)]

        # the further time passes: the conversation ends, the agent is free and takes the next resident
        marked_at = (await reload_conversation(cid)).resident_left_at
        assert await scan_idle_residents(session, now=marked_at + timedelta(seconds=299)) == \
            {"marked": 0, "released": 0}
        assert await scan_idle_residents(session, now=marked_at + timedelta(seconds=300)) == \
            {"marked": 0, "released": 1}
        await commit(session)
    released = await reload_conversation(cid)
    assert (released.state, released.closed_by) == ("closed", "idle")
    assert (await reload_conversation(waiting.id)).agent_id == agent.id
    texts = list(await session.scalars(select(Message.text).where(Message.conversation_id == cid)))
    assert "居民长时间未返回，会话已自动结束。如需帮助，请重新发起咨询。" in texts
    assert await _audit(session, cid) == ["conversation.resident_left", "conversation.idle_release"]


async def _gone(cid: int) -> bool:
    return (await reload_conversation(cid)).resident_gone_at is not None


async def _back(cid: int) -> bool:
    back = await reload_conversation(cid)
    return (back.resident_gone_at, back.resident_left_at) == (None, None)


async def test_a_resident_who_comes_back_is_no_longer_marked(app, session, factory, idle_settings) -> None:
    await desk_agent(factory, presence="busy")  # staffed, but nobody free: the resident waits in the queue
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            cid = (await ws.until("welcome"))["conversation"]["id"]
            await ws.send(type="message", client_msg_id="m1", text="转人工")
            await ws.until(lambda f: f["type"] == "message" and (f["message"].get("payload") or {}).get("event")
                           == "queued")
        await eventually(lambda: _gone(cid))
        gone_at = (await reload_conversation(cid)).resident_gone_at
        assert (await scan_idle_residents(session, now=gone_at + timedelta(seconds=61)))["marked"] == 1
        await commit(session)
        assert (await reload_conversation(cid)).resident_left_at is not None
        async with ChatSocket.connect(host) as ws:  # the resident opens the chat again
            await ws.send(type="hello", token=visitor["token"], conversation_id=cid)
            assert (await ws.until("welcome"))["conversation"]["resident_left"] is False
            # The hello's transaction commits right after the welcome is sent: look once it has.
            await eventually(lambda: _back(cid))
            # later scans leave a connected resident alone
            assert await scan_idle_residents(session, now=gone_at + timedelta(hours=2)) == \
                {"marked": 0, "released": 0}
    assert await _audit(session, cid) == ["conversation.resident_left", "conversation.resident_back"]


async def test_another_open_tab_keeps_the_resident_present(app, session, factory, idle_settings) -> None:
    await desk_agent(factory, presence="busy")
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as first:
            await first.send(type="hello", token=visitor["token"])
            cid = (await first.until("welcome"))["conversation"]["id"]
            await first.send(type="message", client_msg_id="m1", text="转人工")
            await first.until(lambda f: f["type"] == "message"
                              and (f["message"].get("payload") or {}).get("event") == "queued")
            async with ChatSocket.connect(host) as second:
                await second.send(type="hello", token=visitor["token"], conversation_id=cid)
                await second.until("welcome")
            await asyncio.sleep(0.3)
            assert (await reload_conversation(cid)).resident_gone_at is None  # the first tab is still open
            # another process saw its socket of this resident close: this process still holds one
            service.do_note_resident_gone(session, await session.get(Conversation, cid))
            await commit(session)
            await eventually(lambda: _present(cid))
        await eventually(lambda: _gone(cid))


async def _present(cid: int) -> bool:
    return (await reload_conversation(cid)).resident_gone_at is None


async def test_idle_scan_is_a_periodic_task_with_its_own_cadence(session) -> None:
    assert "conversations.idle_scan" in await run_periodic_once(force=True)
    first = await run_periodic_once()
    assert "conversations.idle_scan" in first and "tickets.sla_scan" in first
    # the worker looks again at the pace of its most frequent task: nothing whose period has not passed runs
    assert await run_periodic_once() == []


def test_the_idle_scan_runs_often_enough_for_the_configured_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scan_every_s() == 15  # the default: residents marked 2 minutes after leaving, scanned every 15 s
    monkeypatch.setenv("GASDESK_RESIDENT_LEFT_AFTER_S", "20")
    reset_settings_cache()
    assert scan_every_s() == 5
    monkeypatch.setenv("GASDESK_RESIDENT_LEFT_AFTER_S", "1")
    reset_settings_cache()
    assert scan_every_s() == 1
