"""Attacks on the notification socket /ws/staff: a foreign page or an anonymous caller cannot hold it open;
one user cannot pile up sockets; it accepts nothing but pings, checks every frame like /ws/agent (an
``error`` frame with a code, never a dropped socket) and closes on oversized frames."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from gasdesk.realtime.hub import MAX_NOTIFY_SOCKETS_PER_USER
from tests.factories import ChatSocket, login, served, staff_user


async def _cookie(host: str, username: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://{host}") as c:
        assert (await login(c, username)).status_code == 303
        return {"Cookie": f"gasdesk_session={c.cookies.get('gasdesk_session')}"}


async def test_staff_socket_refuses_foreign_origins_and_anonymous_callers(app, session) -> None:
    agent = await staff_user(session, "agent")
    async with served(app) as host:
        with pytest.raises(ConnectionClosed) as info:
            async with ChatSocket.connect(host, "/ws/staff") as ws:
                await ws.recv()
        assert info.value.rcvd.code == 4401
        cookie = await _cookie(host, agent.username)
        with pytest.raises(ConnectionClosed) as info:
            async with ChatSocket.connect(host, "/ws/staff", origin="https://evil.example",
                                          additional_headers=cookie) as ws:
                await ws.recv()
        assert info.value.rcvd.code == 4403
        async with ChatSocket.connect(host, "/ws/staff", origin=f"http://{host}", additional_headers=cookie) as ws:
            await ws.until("hello")
            await ws.send(type="message", text="x")  # the bell's socket changes nothing
            assert (await ws.until("error"))["code"] == "unknown_frame"
            await ws.ws.send("x" * 5000)
            with pytest.raises(ConnectionClosed):
                await ws.until("never")


async def test_staff_socket_bad_frames_get_error_frames_and_the_socket_carries_on(app, session) -> None:
    dispatcher = await staff_user(session, "dispatcher")
    async with served(app) as host:
        cookie = await _cookie(host, dispatcher.username)
        async with ChatSocket.connect(host, "/ws/staff", origin=f"http://{host}", additional_headers=cookie) as ws:
            await ws.until("hello")
            for raw in ['{"type": "ping", "x": NaN}', '{"type": "ping", "x": 1e999}', '{"type": "ping", "x": "\\ud800"}',
                        '{"type": "ping", "x": "a\\u0000b"}', "[1, 2]", "null", "not json", "[" * 900,
                        '{"type": 5}', '{"type": ["ping"]}']:
                await ws.ws.send(raw)
                error = await ws.until("error")
                assert error["code"] == "invalid_frame", (raw, error)
            await ws.ws.send(b'{"type": "ping"}')  # binary frames are read as text, not a dropped socket
            assert (await ws.until(lambda f: f["type"] in ("pong", "error")))["type"] == "pong"
            await ws.send(type="ping")
            assert (await ws.until(lambda f: f["type"] in ("pong", "error")))["type"] == "pong"


async def test_one_user_cannot_pile_up_notification_sockets(app, session) -> None:
    crew = await staff_user(session, "field_crew")
    async with served(app) as host:
        cookie = await _cookie(host, crew.username)
        async with AsyncExitStack() as stack:
            for _ in range(MAX_NOTIFY_SOCKETS_PER_USER):
                ws = await stack.enter_async_context(
                    ChatSocket.connect(host, "/ws/staff", origin=f"http://{host}", additional_headers=cookie))
                await ws.until("hello")
            with pytest.raises(ConnectionClosed) as info:
                async with ChatSocket.connect(host, "/ws/staff", origin=f"http://{host}",
                                              additional_headers=cookie) as extra:
                    await extra.recv()
            assert info.value.rcvd.code == 4429
        # closed pages free their places (once the server has seen them close)
        for _ in range(20):
            try:
                async with ChatSocket.connect(host, "/ws/staff", origin=f"http://{host}",
                                              additional_headers=cookie) as ws:
                    assert (await ws.until("hello"))["type"] == "hello"
                    break
            except ConnectionClosed:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("closed sockets did not free their places")
