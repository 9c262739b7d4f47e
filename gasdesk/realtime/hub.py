"""The per-process hub: which sockets follow which conversation, and what each event means for them.

Events arrive from the bus after commit (locally, or through Redis from other processes), so every
process pushes to the sockets it holds, whichever process made the change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from gasdesk.events import Event, bus

log = logging.getLogger(__name__)


class Connection:
    """One WebSocket, resident or staff, with serialised sends."""

    def __init__(self, websocket: WebSocket, *, kind: str, visitor_id: str | None = None,
                 user_id: int | None = None, role: str | None = None) -> None:
        self.websocket = websocket
        self.kind = kind  # "resident" | "staff"
        self.visitor_id = visitor_id
        self.user_id = user_id
        self.role = role
        self.conversations: set[int] = set()
        self._lock = asyncio.Lock()
        self.closed = False
        self._held: list[dict[str, Any]] | None = None

    def hold(self) -> None:
        """Buffer live pushes (e.g. while ``welcome`` and the replay are sent, so they come first)."""
        self._held = []

    async def release(self) -> None:
        held, self._held = self._held or [], None
        for data in held:
            await self.send(data)

    async def send(self, data: dict[str, Any], *, direct: bool = False) -> None:
        if self.closed:
            return
        if self._held is not None and not direct:
            self._held.append(data)
            return
        text = json.dumps(data, ensure_ascii=False, default=str)
        async with self._lock:
            try:
                if self.websocket.application_state == WebSocketState.CONNECTED:
                    await self.websocket.send_text(text)
            except Exception:  # a dead socket is cleaned up by its own receive loop
                self.closed = True


class Hub:
    def __init__(self) -> None:
        self.by_conversation: dict[int, set[Connection]] = defaultdict(set)
        self.by_user: dict[int, set[Connection]] = defaultdict(set)
        self.staff: set[Connection] = set()
        self._unsubscribe = bus.subscribe(self.on_event)

    # ----------------------------------------------------------- membership

    def add_staff(self, conn: Connection) -> None:
        assert conn.user_id is not None
        self.staff.add(conn)
        self.by_user[conn.user_id].add(conn)

    def follow(self, conn: Connection, conversation_id: int) -> None:
        conn.conversations.add(conversation_id)
        self.by_conversation[conversation_id].add(conn)

    def unfollow(self, conn: Connection, conversation_id: int) -> None:
        conn.conversations.discard(conversation_id)
        members = self.by_conversation.get(conversation_id)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.by_conversation[conversation_id]

    def remove(self, conn: Connection) -> None:
        conn.closed = True
        for conversation_id in list(conn.conversations):
            self.unfollow(conn, conversation_id)
        self.staff.discard(conn)
        if conn.user_id is not None and conn.user_id in self.by_user:
            self.by_user[conn.user_id].discard(conn)
            if not self.by_user[conn.user_id]:
                del self.by_user[conn.user_id]

    def online_user_ids(self) -> set[int]:
        return set(self.by_user)

    # ----------------------------------------------------------- delivery

    @staticmethod
    async def _fanout(conns: set[Connection], data: dict[str, Any]) -> None:
        if not conns:
            return
        if len(conns) == 1:
            await next(iter(conns)).send(data)
        else:
            await asyncio.gather(*(c.send(data) for c in list(conns)))

    def _agents(self, *user_ids: int | None) -> set[Connection]:
        found: set[Connection] = set()
        for uid in user_ids:
            if uid is not None:
                found |= self.by_user.get(uid, set())
        return found

    async def on_event(self, event: Event) -> None:
        p = event.payload
        handler = getattr(self, "_on_" + event.type.replace(".", "_"), None)
        if handler is not None:
            await handler(p)

    async def _on_conversation_message(self, p: dict[str, Any]) -> None:
        cid = p["conversation_id"]
        targets = set(self.by_conversation.get(cid, set())) | self._agents(p.get("agent_id"))
        await self._fanout(targets, {"type": "message", "message": p["message"]})

    async def _on_conversation_state(self, p: dict[str, Any]) -> None:
        cid = p["conversation_id"]
        data = {"type": "state", **p}
        targets = set(self.by_conversation.get(cid, set())) | self._agents(p.get("agent_id"),
                                                                           p.get("previous_agent_id"))
        await self._fanout(targets, data)
        await self._fanout(self.staff - targets, {"type": "conversations_changed", "conversation_id": cid})

    async def _on_conversation_assigned(self, p: dict[str, Any]) -> None:
        await self._fanout(self._agents(p.get("agent_id")), {"type": "assigned", **p})

    async def _on_conversation_typing(self, p: dict[str, Any]) -> None:
        cid = p["conversation_id"]
        targets = {c for c in self.by_conversation.get(cid, set()) if c.kind != p.get("from")}
        if p.get("from") == "resident":
            targets |= self._agents(p.get("agent_id"))
        await self._fanout(targets, {"type": "typing", **p})

    async def _on_agent_presence(self, p: dict[str, Any]) -> None:
        await self._fanout(self.staff, {"type": "presence", **p})

    async def _on_left_message_created(self, p: dict[str, Any]) -> None:
        await self._fanout(self.staff, {"type": "left_message", **p})

    async def _on_queue_changed(self, p: dict[str, Any]) -> None:
        await self._fanout(self.staff, {"type": "queue_changed", **p})
        waiting = [cid for cid in self.by_conversation if any(c.kind == "resident" for c in self.by_conversation[cid])]
        if not waiting:
            return
        from gasdesk.db import transaction
        from gasdesk.routing.service import queue_spots

        async with transaction() as session:
            spots = await queue_spots(session, p["skill_group_id"])
        for cid, spot in spots.items():
            residents = {c for c in self.by_conversation.get(cid, set()) if c.kind == "resident"}
            await self._fanout(residents, {"type": "queue", "conversation_id": cid, "position": spot.position,
                                           "waiting": spot.waiting, "estimated_wait_s": spot.estimated_wait_s})


_hub: Hub | None = None


def get_hub() -> Hub:
    global _hub
    if _hub is None:
        _hub = Hub()
    return _hub
