"""Scale-out: two app processes share the database and carry events over Redis.
A resident connected to process A and an agent connected to process B talk live."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import websockets

from gasdesk.conversations.models import Conversation
from gasdesk.db import commit
from gasdesk.routing.service import do_set_skills
from tests.factories import desk_agent, login, staff_user, wo_headers, wo_ticket
from tests.servers import LiveServer


@contextmanager
def app_processes(database_url: str, redis_url: str, tmp_path: Path, count: int = 2,
                  **env: str) -> Iterator[list[LiveServer]]:
    """``count`` app processes (tests/servers.py) over one database, sharing events, limits and job wake-ups
    through one Redis; ``env`` adds settings (e.g. tighter limits) to every one. Started side by side."""
    settings = {"GASDESK_DATABASE_URL": database_url, "GASDESK_REDIS_URL": redis_url, "GASDESK_ENV": "test",
                "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads"), **env}
    servers: list[LiveServer] = []
    try:
        for name in "abcdefgh"[:count]:
            servers.append(LiveServer(settings, tmp_path / f"server-{name}.log", ready_path="/readyz"))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def two_servers(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two app processes over one database, sharing events through one Redis."""
    with app_processes(database_url, redis_url, tmp_path) as servers:
        yield servers[0].base, servers[1].base


async def _next(ws, kind: str, timeout: float = 10.0, **match) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - asyncio.get_running_loop().time()))
        if frame.get("type") == kind and all(
            (frame.get(k) if k in frame else frame.get("message", {}).get(k)) == v for k, v in match.items()
        ):
            return frame


async def test_resident_on_a_and_agent_on_b_talk_through_redis(two_servers, factory, session) -> None:
    base_a, base_b = two_servers
    agent = await factory.user("agent", username="agentredis")
    await do_set_skills(session, agent, [1, 2, 3, 4], max_concurrent=3)
    await commit(session)

    async with httpx.AsyncClient(base_url=base_b) as staff:
        assert (await login(staff, agent.username)).status_code == 303  # also picks up the CSRF token
        cookie = staff.cookies.get("gasdesk_session")
        assert (await staff.put("/api/v1/agent/presence", json={"presence": "online"})).status_code == 200
    async with httpx.AsyncClient(base_url=base_a) as public:
        token = (await public.post("/api/v1/webchat/visitors")).json()["token"]

    ws_b = base_b.replace("http", "ws")
    ws_a = base_a.replace("http", "ws")
    async with websockets.connect(ws_b + "/ws/agent", additional_headers={"Cookie": f"gasdesk_session={cookie}"}) as ag, \
            websockets.connect(ws_a + "/ws/webchat") as resident:
        await _next(ag, "hello")
        await resident.send(json.dumps({"type": "hello", "token": token}))
        welcome = await _next(resident, "welcome")
        conversation_id = welcome["conversation"]["id"]

        await resident.send(json.dumps({"type": "handoff"}))
        assigned = await _next(ag, "assigned")  # made on A, pushed by B
        assert assigned["conversation_id"] == conversation_id

        await ag.send(json.dumps({"type": "message", "conversation_id": conversation_id, "client_msg_id": "b1",
                                  "text": "您好，我是客服"}))
        got = await _next(resident, "message", sender="agent")
        assert got["message"]["text"] == "您好，我是客服"

        await resident.send(json.dumps({"type": "message", "client_msg_id": "a1", "text": "我家暖气不热"}))
        got = await _next(ag, "message", sender="resident", text="我家暖气不热")
        assert got["message"]["conversation_id"] == conversation_id


async def test_notifications_and_resident_presence_cross_processes(two_servers, factory, session) -> None:
    """A ticket assigned on A reaches the crew's bell on B; a resident with tabs on A and B who closes the
    tab on A is still present (B answers A's "resident gone" event)."""
    base_a, base_b = two_servers
    crew = await staff_user(session, "field_crew")
    dispatcher_headers = await wo_headers(factory, await staff_user(session, "dispatcher"))
    await desk_agent(factory, presence="busy")  # staffed, nobody free: the resident waits in the queue
    ticket = await wo_ticket(session, "repair", description="燃气表漏气声")
    async with httpx.AsyncClient(base_url=base_b) as staff:
        assert (await login(staff, crew.username)).status_code == 303
        cookie = staff.cookies.get("gasdesk_session")
    async with httpx.AsyncClient(base_url=base_a) as public:
        token = (await public.post("/api/v1/webchat/visitors")).json()["token"]

    ws_a, ws_b = base_a.replace("http", "ws"), base_b.replace("http", "ws")
    async with websockets.connect(ws_b + "/ws/staff", additional_headers={"Cookie": f"gasdesk_session={cookie}"},
                                  origin=base_b) as bell:
        await _next(bell, "hello")
        async with httpx.AsyncClient(base_url=base_a, headers=dispatcher_headers) as api:
            response = await api.post(f"/api/v1/tickets/{ticket.id}/actions",
                                      json={"action": "assign", "crew_id": crew.id})
            assert response.status_code == 200, response.text
        pushed = await _next(bell, "notification")
        assert pushed["notification"]["title"] == f"新派工单 {ticket.number}"

    async with websockets.connect(ws_a + "/ws/webchat") as tab_a, websockets.connect(ws_b + "/ws/webchat") as tab_b:
        await tab_a.send(json.dumps({"type": "hello", "token": token}))
        conversation_id = (await _next(tab_a, "welcome"))["conversation"]["id"]
        await tab_a.send(json.dumps({"type": "handoff"}))
        await _next(tab_a, "state", state="queued")
        await tab_b.send(json.dumps({"type": "hello", "token": token, "conversation_id": conversation_id}))
        await _next(tab_b, "welcome")
        await tab_a.close()

        async def gone_at():
            session.expire_all()
            return (await session.get(Conversation, conversation_id)).resident_gone_at

        # A notes the resident gone; B, which still holds a tab, takes it back (usually within milliseconds:
        # polling may not even see the moment in between)
        started = time.monotonic()
        seen_gone = False
        while time.monotonic() - started < (10 if seen_gone else 3):
            value = await gone_at()
            seen_gone = seen_gone or value is not None
            if seen_gone and value is None:
                break
            await asyncio.sleep(0.02)
        assert await gone_at() is None
    # the last tab closes: now the resident is gone
    deadline = time.monotonic() + 10
    while await gone_at() is None:
        assert time.monotonic() < deadline, "the resident's leaving was not noted"
        await asyncio.sleep(0.05)


async def _video(ws, kind: str, **match) -> dict:
    """The next ``video`` frame of ``kind`` (``_next`` names its own first argument ``kind``)."""
    while True:
        frame = await _next(ws, "video", **match)
        if frame["kind"] == kind:
            return frame


async def test_video_assist_signalling_crosses_processes(two_servers, factory, session) -> None:
    # The invitation, the answer, the SDP and the candidates travel as video.signal events through Redis.
    base_a, base_b = two_servers
    agent = await factory.user("agent", username="agentvideoredis")
    await do_set_skills(session, agent, [1, 2, 3, 4], max_concurrent=3)
    await commit(session)
    async with httpx.AsyncClient(base_url=base_b) as staff:
        assert (await login(staff, agent.username)).status_code == 303
        cookie = staff.cookies.get("gasdesk_session")
        assert (await staff.put("/api/v1/agent/presence", json={"presence": "online"})).status_code == 200
    async with httpx.AsyncClient(base_url=base_a) as public:
        token = (await public.post("/api/v1/webchat/visitors")).json()["token"]
    offer = "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n"
    candidate = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0",
                 "sdpMLineIndex": 0, "usernameFragment": "u1"}
    async with websockets.connect(base_b.replace("http", "ws") + "/ws/agent",
                                  additional_headers={"Cookie": f"gasdesk_session={cookie}"}) as ag, \
            websockets.connect(base_a.replace("http", "ws") + "/ws/webchat") as resident:
        await _next(ag, "hello")
        await resident.send(json.dumps({"type": "hello", "token": token}))
        conversation_id = (await _next(resident, "welcome"))["conversation"]["id"]
        await resident.send(json.dumps({"type": "handoff"}))
        await _next(ag, "assigned", conversation_id=conversation_id)

        await ag.send(json.dumps({"type": "video_invite", "conversation_id": conversation_id}))
        session_id = (await _video(ag, "invited"))["session_id"]
        await _video(resident, "invite", session_id=session_id)  # made on B, pushed by A
        await resident.send(json.dumps({"type": "video_accept", "session_id": session_id}))
        await _video(resident, "started")
        await _video(ag, "accepted", session_id=session_id)
        await resident.send(json.dumps({"type": "video_offer", "session_id": session_id, "sdp": offer}))
        assert (await _video(ag, "offer"))["sdp"] == offer
        await ag.send(json.dumps({"type": "video_ice", "session_id": session_id, "candidate": candidate}))
        assert (await _video(resident, "ice"))["candidate"] == candidate
        await resident.send(json.dumps({"type": "video_end", "session_id": session_id}))
        assert (await _video(ag, "ended"))["ended_by"] == "resident"
