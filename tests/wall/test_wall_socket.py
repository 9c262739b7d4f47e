"""/ws/wall: who may hold it (Origin, login, role), how many per user, what it accepts, and that a change
reaches it as a fresh snapshot within a second — a burst of changes as one snapshot."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from gasdesk.wall.live import MAX_WALL_SOCKETS_PER_USER, WALL_EVENTS, get_feed
from tests.factories import ChatSocket, desk_agent, login, queued_conversation, served, staff_user


async def _cookie(host: str, username: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://{host}") as c:
        assert (await login(c, username)).status_code == 303
        return {"Cookie": f"gasdesk_session={c.cookies.get('gasdesk_session')}"}


async def _refused(host: str, code: int, **kwargs) -> None:
    with pytest.raises(ConnectionClosed) as info:
        async with ChatSocket.connect(host, "/ws/wall", **kwargs) as ws:
            await ws.recv()
    assert info.value.rcvd.code == code


async def test_wall_socket_refuses_anonymous_foreign_and_other_roles(app, session) -> None:
    kiosk = await staff_user(session, "wall")
    agent = await staff_user(session, "agent")
    async with served(app) as host:
        await _refused(host, 4401, origin=f"http://{host}")
        cookie = await _cookie(host, kiosk.username)
        await _refused(host, 4403, origin="https://evil.example", additional_headers=cookie)
        await _refused(host, 4403, origin=f"http://{host}", additional_headers=await _cookie(host, agent.username))
        # the kiosk has no bell either
        with pytest.raises(ConnectionClosed) as info:
            async with ChatSocket.connect(host, "/ws/staff", origin=f"http://{host}", additional_headers=cookie) as ws:
                await ws.recv()
        assert info.value.rcvd.code == 4403

        async with ChatSocket.connect(host, "/ws/wall", origin=f"http://{host}", additional_headers=cookie) as ws:
            first = await ws.until("snapshot")
            assert first["snapshot"]["queue"]["total"] == 0 and "thresholds" in first["snapshot"]
            await ws.send(type="ping")
            assert (await ws.until(lambda f: f["type"] in ("pong", "error")))["type"] == "pong"
            await ws.send(type="message", text="x")  # the wall changes nothing
            assert (await ws.until("error"))["code"] == "unknown_frame"
            await ws.ws.send('{"type": "ping", "x": NaN}')
            assert (await ws.until("error"))["code"] == "invalid_frame"
            await ws.ws.send("x" * 5000)
            with pytest.raises(ConnectionClosed) as info:
                await ws.until("never")
            assert info.value.rcvd.code == 1009


async def test_one_user_cannot_pile_up_wall_sockets(app, session) -> None:
    supervisor = await staff_user(session, "supervisor")
    async with served(app) as host:
        cookie = await _cookie(host, supervisor.username)
        async with AsyncExitStack() as stack:
            for _ in range(MAX_WALL_SOCKETS_PER_USER):
                ws = await stack.enter_async_context(
                    ChatSocket.connect(host, "/ws/wall", origin=f"http://{host}", additional_headers=cookie))
                await ws.until("snapshot")
            await _refused(host, 4429, origin=f"http://{host}", additional_headers=cookie)
        for _ in range(20):  # closed walls free their places once the server has seen them close
            try:
                async with ChatSocket.connect(host, "/ws/wall", origin=f"http://{host}",
                                              additional_headers=cookie) as ws:
                    await ws.until("snapshot")
                    break
            except ConnectionClosed:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("closed sockets did not free their places")
    assert get_feed().by_user == {}


async def test_a_queued_conversation_reaches_the_wall_within_a_second(app, session, factory, events) -> None:
    kiosk = await staff_user(session, "wall")
    await desk_agent(factory, groups=(1,), presence="busy")  # staffed, takes nothing: the resident waits
    async with served(app) as host:
        cookie = await _cookie(host, kiosk.username)
        async with ChatSocket.connect(host, "/ws/wall", origin=f"http://{host}", additional_headers=cookie) as ws:
            assert (await ws.until("snapshot"))["snapshot"]["queue"]["total"] == 0
            # Timed from the commit (the factory's own work, seconds on a loaded machine, is not the wall's).
            await queued_conversation(session, group_id=1, channel="wechat")
            started = time.monotonic()
            pushed = await ws.until(lambda f: f["type"] == "snapshot" and f["snapshot"]["queue"]["total"] == 1,
                                    timeout=2)
            assert time.monotonic() - started < 1.0
            queue = pushed["snapshot"]["queue"]
            assert queue["by_group"][0]["waiting"] == 1
            assert {c["channel"]: c["waiting"] for c in queue["by_channel"]}["wechat"] == 1

            # a burst of changes (several events each) costs far fewer snapshots than events
            await ws.quiet(0.5)
            built, seen = get_feed().snapshots, len(events)
            for _ in range(3):
                await queued_conversation(session, group_id=1)
            latest = await ws.until(lambda f: f["type"] == "snapshot" and f["snapshot"]["queue"]["total"] == 4)
            assert latest["snapshot"]["queue"]["by_group"][0]["waiting"] == 4
            await ws.quiet(0.5)
            burst = [e for e in events[seen:] if e.type in WALL_EVENTS]
            assert len(burst) >= 9 and get_feed().snapshots - built <= 3
