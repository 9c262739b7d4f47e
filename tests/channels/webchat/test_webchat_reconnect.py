"""Reconnect over a real socket: the resident's connection dies right after a message was sent (its ack never
read), the widget reconnects with hello + after_seq and re-sends everything unacknowledged with the same
client_msg_id. Every message must exist exactly once, and the resident's transcript must hold every seq exactly
once, in order, equal to what the database stores."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gasdesk import db
from gasdesk.conversations.models import Message
from tests.factories import served
from tests.servers import LiveServer


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """gasdesk in a separate server process over this test's database (as in production). Yields host:port."""
    server = LiveServer({"GASDESK_DATABASE_URL": database_url, "GASDESK_ENV": "test",
                         "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads")}, tmp_path / "server.log")
    yield f"127.0.0.1:{server.port}"
    server.stop()


class Widget:
    """What the chat widget does: keep last_seq, drop duplicates, resume on gaps, re-send unacked messages."""

    def __init__(self, host: str, token: str) -> None:
        self.host, self.token = host, token
        self.ws: Any = None
        self.conversation_id: int | None = None
        self.last_seq = 0
        self.transcript: list[dict[str, Any]] = []
        self.unacked: dict[str, str] = {}  # client_msg_id -> text, in send order
        self.duplicates_dropped = 0
        self.gaps_resumed = 0
        self.errors: list[dict[str, Any]] = []
        self.replays: list[list[int]] = []
        self.early_frames: list[dict[str, Any]] = []
        self.transient_errors: list[dict[str, Any]] = []

    async def _recv(self, timeout: float = 10) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def _apply(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "message":
            seq = frame["message"]["seq"]
            if seq <= self.last_seq:
                self.duplicates_dropped += 1
            elif seq == self.last_seq + 1:
                self.transcript.append(frame["message"])
                self.last_seq = seq
            else:
                self.gaps_resumed += 1
                await self.ws.send(json.dumps({"type": "resume", "after_seq": self.last_seq}))
        elif frame["type"] == "ack":
            self.unacked.pop(frame["client_msg_id"], None)
        elif frame["type"] == "error":
            self.errors.append(frame)

    async def hello(self) -> None:
        self.ws = await connect(f"ws://{self.host}/ws/webchat", open_timeout=5, close_timeout=1)
        hello: dict[str, Any] = {"type": "hello", "token": self.token, "after_seq": self.last_seq}
        if self.conversation_id:
            hello["conversation_id"] = self.conversation_id
        await self.ws.send(json.dumps(hello))
        welcome = await self._recv()
        while welcome["type"] != "welcome":
            # A live push can overtake the welcome (the server follows the conversation before it answers);
            # the seq rules make that harmless.
            self.early_frames.append(welcome)
            await self._apply(welcome)
            welcome = await self._recv()
        self.conversation_id = welcome["conversation"]["id"]
        target = welcome["conversation"]["last_seq"]
        replay: list[int] = []
        while self.last_seq < target:
            frame = await self._recv()
            if frame["type"] == "message":
                replay.append(frame["message"]["seq"])
            await self._apply(frame)
        self.replays.append(replay)

    def drop(self) -> None:
        """The network goes away: no close frame, nothing more is read."""
        self.ws.transport.abort()

    async def send(self, client_msg_id: str, text: str, *, wait: bool = True) -> None:
        self.unacked[client_msg_id] = text
        await self.ws.send(json.dumps({"type": "message", "client_msg_id": client_msg_id, "text": text}))
        if wait:
            await self.wait_acked(client_msg_id)

    async def wait_acked(self, client_msg_id: str) -> None:
        while client_msg_id in self.unacked:
            frame = await self._recv()
            await self._apply(frame)
            if frame["type"] == "error" and frame.get("client_msg_id") == client_msg_id:
                if frame["code"] != "rate_limited":
                    raise AssertionError(f"resend refused: {frame}")
                # transient (chat.js keeps it in the outbox): back off and send it again, same client_msg_id
                self.transient_errors.append(frame)
                self.errors.remove(frame)
                await asyncio.sleep(0.25)
                await self.ws.send(json.dumps({"type": "message", "client_msg_id": client_msg_id,
                                               "text": self.unacked[client_msg_id]}))

    async def resend_unacked(self) -> None:
        for client_msg_id, text in list(self.unacked.items()):
            await self.send(client_msg_id, text)

    async def settle(self, expected_last_seq: int) -> None:
        """Read until the transcript reaches what the server stored (bot replies may still be on the way)."""
        deadline = time.monotonic() + 10
        while self.last_seq < expected_last_seq and time.monotonic() < deadline:
            try:
                await self._apply(await self._recv(1))
            except TimeoutError:
                await self.ws.send(json.dumps({"type": "resume", "after_seq": self.last_seq}))

    async def close(self) -> None:
        try:
            await self.ws.close()
        except ConnectionClosed:
            pass


async def _stored(conversation_id: int) -> list[Message]:
    async with db.sessionmaker()() as s:
        return list(await s.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                    .order_by(Message.seq)))


async def _run(host: str, n: int, drops: set[int]) -> None:
    async with httpx.AsyncClient(base_url=f"http://{host}") as http:
        visitor = (await http.post("/api/v1/webchat/visitors")).json()
    widget = Widget(host, visitor["token"])
    await widget.hello()
    for i in range(n):
        if i in drops:
            await widget.send(f"m{i:03d}", f"第{i}条：燃气表读数{1000 + i}", wait=False)
            widget.drop()
            await widget.hello()
            await widget.resend_unacked()
        else:
            await widget.send(f"m{i:03d}", f"第{i}条：燃气表读数{1000 + i}")
    stored = await _stored(widget.conversation_id)
    await widget.settle(stored[-1].seq)
    await widget.close()

    resident = [m for m in stored if m.sender_type == "resident"]
    assert [m.client_msg_id for m in resident] == [f"m{i:03d}" for i in range(n)], "each message exactly once"
    assert [m.text for m in resident] == [f"第{i}条：燃气表读数{1000 + i}" for i in range(n)]
    assert [m.seq for m in stored] == list(range(1, len(stored) + 1)), "gap-free in the database"
    assert [m["seq"] for m in widget.transcript] == [m.seq for m in stored], "every seq once, in order"
    assert [m["id"] for m in widget.transcript] == [m.id for m in stored]
    assert widget.unacked == {}
    for replay in widget.replays:
        assert replay == sorted(set(replay)), f"a replay repeats or reorders seqs: {replay}"
    assert widget.errors == []
    # A resend racing the still-running original gets the stored message (see
    # tests/conversations/test_conv_messages.py::test_resend_racing_the_original_gets_the_stored_message):
    # a server error is never an acceptable answer.
    assert all(e["code"] == "rate_limited" for e in widget.transient_errors)


@pytest.mark.parametrize("seed", [7, 2026])
async def test_reconnect_with_random_drops_in_process_server(app, seed: int, monkeypatch) -> None:
    from gasdesk.config import reset_settings_cache

    # the per-visitor rate limit is tested elsewhere; here it would only slow the 50 messages down
    monkeypatch.setenv("GASDESK_RATE_LIMITS", '{"message.visitor": "1000/10"}')
    reset_settings_cache()
    rng = random.Random(seed)
    drops = set(rng.sample(range(50), 12)) | {49}
    async with served(app) as host:
        await _run(host, 50, drops)


async def test_reconnect_with_random_drops_separate_server_process(live_server: str) -> None:
    rng = random.Random(11)
    await _run(live_server, 50, set(rng.sample(range(50), 12)) | {0})


async def test_drop_before_the_message_left_the_client_is_recovered_by_the_resend(app) -> None:
    """Dropped before the server could read the frame: the resend stores it (ack duplicate: false)."""
    async with served(app) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}") as http:
            visitor = (await http.post("/api/v1/webchat/visitors")).json()
        widget = Widget(host, visitor["token"])
        await widget.hello()
        widget.unacked["lost-1"] = "这条在路上丢了"
        widget.drop()
        await widget.hello()
        await widget.resend_unacked()
        await widget.close()
        stored = await _stored(widget.conversation_id)
        assert [m.client_msg_id for m in stored if m.sender_type == "resident"] == ["lost-1"]

