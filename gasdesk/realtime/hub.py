"""The per-process hub: which sockets follow which conversation, and what each event means for them.

Events arrive from the bus after commit (locally, or through Redis from other processes), so every
process pushes to the sockets it holds, whichever process made the change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections import defaultdict, deque
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from gasdesk.auth.roles import DISPATCH
from gasdesk.callbacks.peak import queue_frame
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Conversation
from gasdesk.db import transaction
from gasdesk.events import Event, bus
from gasdesk.observability.metrics import WS_DROPPED
from gasdesk.realtime.protocol import CLOSE_TOO_SLOW
from gasdesk.routing.service import queue_spots
from gasdesk.security import limits

log = logging.getLogger(__name__)


# A socket's unsent frames are capped: a client that does not read (a frozen tab, or an attacker holding sockets
# open) is dropped instead of growing memory or holding up anyone else. It resumes from its last seq.
SEND_QUEUE_MAX = 512
SEND_TIMEOUT_S = 5.0
# Open resident sockets per process: a widget needs one (a few with several tabs); per IP many residents may
# share one carrier-NAT address.
MAX_SOCKETS_PER_VISITOR = 5
MAX_SOCKETS_PER_IP = 200
# Notification sockets (/ws/staff) per staff user and process: one per open staff page.
MAX_NOTIFY_SOCKETS_PER_USER = 20


def encode(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


class Connection:
    """One WebSocket, resident or staff. ``send`` never waits for the network: frames go into a bounded
    queue that this connection's own writer task drains, so one slow reader delays only itself. A send that
    has not completed after ``SEND_TIMEOUT_S`` is noticed by the per-loop watchdog, which drops the socket."""

    def __init__(self, websocket: WebSocket, *, kind: str, visitor_id: str | None = None,
                 user_id: int | None = None, role: str | None = None, client_ip: str | None = None) -> None:
        self.websocket = websocket
        self.kind = kind  # "resident" | "staff" (agent console) | "notify" (any staff page's bell)
        self.visitor_id = visitor_id
        self.user_id = user_id
        self.role = role
        self.client_ip = client_ip
        self.conversations: set[int] = set()
        self.closed = False
        self.sending_since: float | None = None  # loop time the current send started, while it lasts
        self._held: list[str] | None = None
        self._pending: deque[str] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    def hold(self) -> None:
        """Buffer live pushes (e.g. while ``welcome`` and the replay are sent, so they come first)."""
        self._held = []

    async def release(self) -> None:
        held, self._held = self._held or [], None
        for text in held:
            self.push_text(text)

    async def send(self, data: dict[str, Any], *, direct: bool = False) -> None:
        """Queue a frame for this socket (in order); returns at once. ``direct`` bypasses ``hold``."""
        self.push_text(encode(data), direct=direct)

    def push_text(self, text: str, *, direct: bool = False) -> None:
        """Queue an encoded frame (fan-out encodes once for every socket)."""
        if self.closed:
            return
        if self._held is not None and not direct:
            self._held.append(text)
            return
        if len(self._pending) >= SEND_QUEUE_MAX:
            self.drop("send queue full")
            return
        self._pending.append(text)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="gasdesk-ws-writer")
            _watchdog().watch(self)
        elif self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _write(self) -> None:
        # Sends are awaited directly (most complete at once): no task or timer per frame, which cost more than
        # the send itself at chat rates. The watchdog covers the sends that do not complete.
        loop = asyncio.get_running_loop()
        while not self.closed:
            if not self._pending:
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
                continue
            text = self._pending.popleft()
            if self.websocket.application_state != WebSocketState.CONNECTED:
                self.closed = True
                return
            self.sending_since = loop.time()
            try:
                await self.websocket.send_text(text)
            except Exception:  # a dead socket is cleaned up by its own receive loop
                self.closed = True
                return
            finally:
                self.sending_since = None

    def drop(self, reason: str) -> None:
        """Give up on a client that does not keep up: cut it off without waiting for it (it reconnects and
        resumes from its last seq)."""
        if self.closed:
            return
        self.closed = True
        log.info("dropping slow %s socket: %s", self.kind, reason)
        WS_DROPPED.labels(self.kind).inc()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        if not _abort_transport(self.websocket):
            closing = asyncio.ensure_future(self.websocket.close(code=CLOSE_TOO_SLOW, reason="slow consumer"))
            closing.add_done_callback(_consume_result)

    async def aclose(self) -> None:
        """Stop the writer (the socket's receive loop has ended)."""
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()


def _consume_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it: the socket is gone either way


def _abort_transport(websocket: WebSocket) -> bool:
    """Cut the TCP connection of a socket whose buffers are full: a close handshake could not get through.
    uvicorn keeps its protocol object behind the ASGI ``receive`` callable; elsewhere, False."""
    protocol = getattr(websocket._receive, "__self__", None)  # noqa: SLF001 - no public API for this
    transport = getattr(protocol, "transport", None)
    if transport is None:
        return False
    if not transport.is_closing():
        transport.abort()
    return True


class _SendWatchdog:
    """Drops sockets whose current send has lasted longer than ``SEND_TIMEOUT_S`` (checked a few times per
    timeout). One per event loop; it stops when no connection is left to watch."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watched: weakref.WeakSet[Connection] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None

    def watch(self, conn: Connection) -> None:
        self.watched.add(conn)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run(), name="gasdesk-ws-send-watchdog")

    async def _run(self) -> None:
        while self.watched:
            await asyncio.sleep(SEND_TIMEOUT_S / 5)
            deadline = self.loop.time() - SEND_TIMEOUT_S
            for conn in list(self.watched):
                if conn.closed:
                    self.watched.discard(conn)
                elif conn.sending_since is not None and conn.sending_since < deadline:
                    conn.drop("send timed out")
                    self.watched.discard(conn)


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SendWatchdog] = weakref.WeakKeyDictionary()


def _watchdog() -> _SendWatchdog:
    loop = asyncio.get_running_loop()
    found = _watchdogs.get(loop)
    if found is None:
        found = _watchdogs[loop] = _SendWatchdog(loop)
    return found


class Hub:
    def __init__(self) -> None:
        self.by_conversation: dict[int, set[Connection]] = defaultdict(set)
        self.by_user: dict[int, set[Connection]] = defaultdict(set)
        self.staff: set[Connection] = set()
        self.residents_by_visitor: dict[str, set[Connection]] = defaultdict(set)
        self.sockets_by_ip: dict[str, int] = defaultdict(int)
        # Bells of staff pages, by user: they get notification frames only (no conversation traffic).
        self.notify_by_user: dict[int, set[Connection]] = defaultdict(set)
        self._unsubscribe = bus.subscribe(self.on_event)

    # ----------------------------------------------------------- membership

    def add_staff(self, conn: Connection) -> bool:
        """Register an agent console's socket (always taken: True, like ``add_notify`` under its cap)."""
        assert conn.user_id is not None
        self.staff.add(conn)
        self.by_user[conn.user_id].add(conn)
        return True

    def add_notify(self, conn: Connection) -> bool:
        """Register a staff page's notification socket; False (refuse it) past the per-user cap."""
        assert conn.user_id is not None
        if len(self.notify_by_user.get(conn.user_id, ())) >= MAX_NOTIFY_SOCKETS_PER_USER:
            return False
        self.notify_by_user[conn.user_id].add(conn)
        return True

    def add_resident(self, conn: Connection) -> bool:
        """Register a resident socket; False (refuse it) past the per-visitor or per-IP socket cap."""
        assert conn.visitor_id is not None
        ip = conn.client_ip or "unknown"
        if (len(self.residents_by_visitor.get(conn.visitor_id, ())) >= MAX_SOCKETS_PER_VISITOR
                or (self.sockets_by_ip.get(ip, 0) >= MAX_SOCKETS_PER_IP and not limits.is_exempt_ip(ip))):
            return False
        self.residents_by_visitor[conn.visitor_id].add(conn)
        self.sockets_by_ip[ip] += 1
        return True

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
        if conn._writer is not None:  # noqa: SLF001
            conn._writer.cancel()  # noqa: SLF001
        for conversation_id in list(conn.conversations):
            self.unfollow(conn, conversation_id)
        self.staff.discard(conn)
        sockets = self.residents_by_visitor.get(conn.visitor_id or "")
        if sockets is not None and conn in sockets:
            sockets.discard(conn)
            if not sockets:
                del self.residents_by_visitor[conn.visitor_id or ""]
            ip = conn.client_ip or "unknown"
            self.sockets_by_ip[ip] -= 1
            if self.sockets_by_ip[ip] <= 0:
                del self.sockets_by_ip[ip]
        if conn.user_id is not None:
            for registry in (self.by_user, self.notify_by_user):
                members = registry.get(conn.user_id)
                if members is not None:
                    members.discard(conn)
                    if not members:
                        del registry[conn.user_id]

    def resident_follows(self, conversation_id: int) -> bool:
        """Does a resident socket of this process still follow the conversation?"""
        return any(c.kind == "resident" for c in self.by_conversation.get(conversation_id, ()))

    def online_user_ids(self) -> set[int]:
        return set(self.by_user)

    # ----------------------------------------------------------- delivery

    @staticmethod
    async def _fanout(conns: set[Connection], data: dict[str, Any]) -> None:
        if not conns:
            return
        text = encode(data)
        for conn in conns:
            conn.push_text(text)

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

    async def _on_conversation_resident_gone(self, p: dict[str, Any]) -> None:
        # Some process saw the resident's last socket there close; if this process still holds one (another
        # tab, or a reconnect that raced the close), the resident is here after all.
        cid = p["conversation_id"]
        if not self.resident_follows(cid):
            return
        async with transaction() as session:
            conversation = await session.get(Conversation, cid)
            if conversation is not None:
                conversations.do_note_resident_back(session, conversation)

    async def _on_notification_created(self, p: dict[str, Any]) -> None:
        await self._fanout(set(self.notify_by_user.get(p["user_id"], ())),
                           {"type": "notification", "notification": p["notification"]})

    async def _on_notification_read(self, p: dict[str, Any]) -> None:
        await self._fanout(set(self.notify_by_user.get(p["user_id"], ())),
                           {"type": "notification_read", "ids": p.get("ids"), "unread": p.get("unread")})

    def _bells(self, user_ids: list[int]) -> set[Connection]:
        return {conn for uid in user_ids for conn in self.notify_by_user.get(uid, ())}

    async def _on_internal_chat_message(self, p: dict[str, Any]) -> None:
        # Only the members at commit (gasdesk/internal_chat): a removed colleague's pages get nothing more.
        await self._fanout(self._bells(p["member_ids"]),
                           {"type": "ichat_message", "chat_id": p["chat_id"], "message": p["message"]})

    async def _on_internal_chat_read(self, p: dict[str, Any]) -> None:
        await self._fanout(self._bells([p["user_id"]]), {"type": "ichat_read", "chat_id": p["chat_id"],
                                                          "last_read_id": p["last_read_id"],
                                                          "unread_total": p["unread_total"]})

    async def _on_internal_chat_members(self, p: dict[str, Any]) -> None:
        await self._fanout(self._bells([*p["member_ids"], *p["removed_ids"]]),
                           {"type": "ichat_chats", "chat_id": p["chat_id"]})

    async def _on_emergency_updated(self, p: dict[str, Any]) -> None:
        # Every staff page of the people who run emergencies: the board refreshes itself (ids only here).
        targets = {conn for conns in self.notify_by_user.values() for conn in conns if conn.role in DISPATCH}
        await self._fanout(targets, {"type": "emergency", **p})

    async def _on_video_signal(self, p: dict[str, Any]) -> None:
        # One side only: a resident's frames never reach another agent's console, nor the agent's the watchers.
        frame = {**p["data"], "type": "video", "kind": p["kind"], "conversation_id": p["conversation_id"],
                 "session_id": p["session_id"]}
        if p["to"] == "resident":
            targets = {c for c in self.by_conversation.get(p["conversation_id"], ()) if c.kind == "resident"}
        else:
            targets = set(self._agents(p["agent_id"]))
        await self._fanout(targets, frame)

    async def _on_left_message_created(self, p: dict[str, Any]) -> None:
        await self._fanout(self.staff, {"type": "left_message", **p})

    async def _on_call_ringing(self, p: dict[str, Any]) -> None:
        await self._fanout(self.staff, {"type": "call_ringing", **p})

    async def _on_call_offered(self, p: dict[str, Any]) -> None:
        await self._fanout(self._agents(p["agent_id"]), {"type": "call_offered", **p})

    async def _on_call_offer_withdrawn(self, p: dict[str, Any]) -> None:
        await self._fanout(self._agents(p["agent_id"]), {"type": "call_offer_withdrawn", **p})

    async def _on_call_ended(self, p: dict[str, Any]) -> None:
        await self._fanout(self.staff, {"type": "call_ended", **p})

    async def _on_queue_changed(self, p: dict[str, Any]) -> None:
        await self._fanout(self.staff, {"type": "queue_changed", **p})
        waiting = [cid for cid in self.by_conversation if any(c.kind == "resident" for c in self.by_conversation[cid])]
        if not waiting:
            return
        async with transaction() as session:
            spots = await queue_spots(session, p["skill_group_id"])
            callbacks = {cid: await conversations.callback_of(session, cid) for cid in spots if cid in waiting}
        for cid, spot in spots.items():
            residents = {c for c in self.by_conversation.get(cid, set()) if c.kind == "resident"}
            if residents:
                await self._fanout(residents, queue_frame(cid, spot, callbacks.get(cid)))


_hub: Hub | None = None


def get_hub() -> Hub:
    global _hub
    if _hub is None:
        _hub = Hub()
    return _hub
