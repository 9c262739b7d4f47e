"""Issue 15, part 2: assignment races across two app processes on one database and one Redis.

Many queued conversations, a few agents with capacity limits; agents go online (which pulls the queue),
accept queued conversations by hand and close their conversations (which pulls the queue again) on both
processes at once. Whatever the interleaving: no conversation is given to two agents, nobody goes past their
``max_concurrent``, every free slot is used while anyone waits, and both processes report the same gap-free
queue positions. Also the limits shared across processes (docs/security.md: flood limits in Redis, login
throttling in the database) hold when the attempts alternate between the processes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import func, select

from gasdesk.audit.models import AuditEntry
from gasdesk.conversations.models import Conversation
from tests.factories import TEST_PASSWORD, desk_agent, login, queued_conversation
from tests.realtime.test_scale_out import app_processes

AGENTS = 4
CAPACITY = 3
QUEUED = 24
EXPECTED_REFUSALS = ((409, "already_assigned"), (403, "conversation_not_yours"), (409, "agent_at_capacity"))


async def _staff_client(base: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=30)
    assert (await login(client, username)).status_code == 303
    return client


async def _assigned(session) -> dict[int, int]:  # noqa: ANN001 - the test session
    session.expire_all()
    rows = await session.execute(
        select(Conversation.id, Conversation.agent_id).where(Conversation.state == "assigned")
    )
    return {cid: aid for cid, aid in rows}


async def _check_invariants(session, agent_ids, clients) -> dict[int, int]:  # noqa: ANN001
    """No agent over capacity; free slots used while anyone waits; the same queue on both processes."""
    assigned = await _assigned(session)
    load = Counter(assigned.values())
    assert max(load.values(), default=0) <= CAPACITY, load
    session.expire_all()
    waiting = list(
        await session.scalars(
            select(Conversation)
            .where(Conversation.state == "queued")
            .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
        )
    )
    if waiting:  # nobody left with a free slot while a resident waits
        assert all(load[a] == CAPACITY for a in agent_ids), (load, len(waiting))
    queues = [(await client.get("/api/v1/agent/queue")).json() for client in clients]
    assert queues[0] == [{**item, "waited_s": queues[0][i]["waited_s"]} for i, item in enumerate(queues[1])]
    assert [item["id"] for item in queues[0]] == [c.id for c in waiting]
    assert [item["position"] for item in queues[0]] == list(range(1, len(waiting) + 1))
    return assigned


async def test_assignment_races_across_two_processes(
    database_url, redis_url, tmp_path: Path, factory, session
) -> None:
    agents = [await desk_agent(factory, presence="busy", max_concurrent=CAPACITY) for _ in range(AGENTS)]
    agent_ids = [a.id for a in agents]
    for i in range(QUEUED):  # a queue with emergencies among ordinary conversations
        await queued_conversation(session, priority=10 if i % 7 == 3 else 0)
    queued_ids = list(await session.scalars(select(Conversation.id).where(Conversation.state == "queued")))
    assert len(queued_ids) == QUEUED
    rng = random.Random(15)

    with app_processes(database_url, redis_url, tmp_path) as servers:
        # every agent has a console on both processes
        clients = [[await _staff_client(s.base, a.username) for s in servers] for a in agents]
        try:

            async def accept(a: int, conversation_id: int, server: int) -> tuple[int, int, int, str]:
                response = await clients[a][server].post(f"/api/v1/conversations/{conversation_id}/accept")
                code = response.json()["error"]["code"] if response.status_code != 200 else ""
                return a, conversation_id, response.status_code, code

            # Round 1: all four go online (each pulls the queue) while each also grabs queued conversations by
            # hand, on alternating processes.
            calls = [
                clients[a][a % 2].put("/api/v1/agent/presence", json={"presence": "online"})
                for a in range(AGENTS)
            ]
            for a in range(AGENTS):
                for k, cid in enumerate(rng.sample(queued_ids, 8)):
                    calls.append(accept(a, cid, (a + k) % 2))
            rng.shuffle(calls)
            results = await asyncio.gather(*calls)
            accepted = _check_accepts([r for r in results if isinstance(r, tuple)])
            assert all(r.status_code == 200 for r in results if isinstance(r, httpx.Response))

            assigned = await _check_invariants(session, agent_ids, [clients[0][0], clients[0][1]])
            assert len(assigned) == AGENTS * CAPACITY
            for cid, a in accepted.items():
                assert assigned[cid] == agent_ids[a]  # whoever was told "yours" got it

            # Rounds 2…: agents close conversations (each close pulls the queue on that process) while the
            # others accept what is waiting, until the queue is empty.
            served = set(assigned)
            for _round in range(10):
                session.expire_all()
                waiting = list(
                    await session.scalars(select(Conversation.id).where(Conversation.state == "queued"))
                )
                if not waiting:
                    break
                calls = []
                for cid, agent_id in assigned.items():
                    a = agent_ids.index(agent_id)
                    if rng.random() < 0.5:
                        calls.append(clients[a][rng.randrange(2)].post(f"/api/v1/conversations/{cid}/close"))
                for a in range(AGENTS):
                    for cid in rng.sample(waiting, min(3, len(waiting))):
                        calls.append(accept(a, cid, rng.randrange(2)))
                rng.shuffle(calls)
                results = await asyncio.gather(*calls)
                assert all(r.status_code == 200 for r in results if isinstance(r, httpx.Response)), [
                    r.text for r in results if isinstance(r, httpx.Response) and r.status_code != 200
                ]
                accepted = _check_accepts([r for r in results if isinstance(r, tuple)])
                assigned = await _check_invariants(session, agent_ids, [clients[1][0], clients[1][1]])
                for cid, a in accepted.items():
                    assert assigned.get(cid) == agent_ids[a] or cid not in assigned  # closed since, at most
                served |= set(assigned)
            assert served == set(queued_ids), "every queued conversation was served"
        finally:
            for pair in clients:
                for client in pair:
                    await client.aclose()

    # no conversation was accepted twice, by anyone, on either process
    session.expire_all()
    accepts = (
        await session.execute(
            select(AuditEntry.entity_id, func.count())
            .where(AuditEntry.action == "conversation.accept")
            .group_by(AuditEntry.entity_id)
        )
    ).all()
    assert accepts and all(n == 1 for _, n in accepts)


def _check_accepts(results: list[tuple[int, int, int, str]]) -> dict[int, int]:
    """Accept answers: 200, or a refusal for the expected reasons only (someone else has it, by the time of the
    check (403) or of the conditional UPDATE (409); the agent is full); never two agents told "yours"."""
    winners: dict[int, list[int]] = {}
    for a, cid, status, code in results:
        if status == 200:
            winners.setdefault(cid, []).append(a)
        else:
            assert (status, code) in EXPECTED_REFUSALS, (status, code)
    assert all(len(set(w)) == 1 for w in winners.values()), winners
    return {cid: w[0] for cid, w in winners.items()}


async def test_shared_limits_hold_across_processes(database_url, redis_url, tmp_path: Path, factory) -> None:
    """Visitor tokens per IP (a Redis counter) and staff login throttling (a database row) count the attempts
    of both processes together: alternating between them gets no more tries than one process would give."""
    user = await desk_agent(factory, presence="offline")
    limits = {
        "GASDESK_RATE_LIMITS": '{"visitor_token.ip": "10/3600"}',
        "GASDESK_LOGIN_MAX_FAILURES": "3",
        "GASDESK_LIMIT_EXEMPT_IPS": "[]",
    }
    with app_processes(database_url, redis_url, tmp_path, **limits) as servers:
        hour = int(time.time() // 3600)
        async with httpx.AsyncClient(timeout=30) as http:
            statuses = await asyncio.gather(
                *(http.post(f"{servers[i % 2].base}/api/v1/webchat/visitors") for i in range(30))
            )
            codes = Counter(r.status_code for r in statuses)
            if (
                int(time.time() // 3600) == hour
            ):  # one window (twice the limit may pass across a window's edge)
                assert codes == {200: 10, 429: 20}, codes
            refused_by = {i % 2 for i, r in enumerate(statuses) if r.status_code == 429}
            assert refused_by == {0, 1}

            # three wrong passwords alternating processes lock the (user, address) pair everywhere
            answers = []
            for i in range(3):
                response = await http.post(
                    f"{servers[i % 2].base}/api/v1/auth/token",
                    json={"username": user.username, "password": f"wrong-{i}"},
                )
                answers.append(response.status_code)
            assert answers == [401, 401, 401]
            for server in servers:
                right = await http.post(
                    f"{server.base}/api/v1/auth/token",
                    json={"username": user.username, "password": TEST_PASSWORD},
                )
                assert right.status_code == 401, "locked out on both processes"
