"""The resident side of the web/H5 chat over WebSocket. Protocol: docs/chat-protocol.md.

Every frame that changes something runs in its own transaction; the acknowledgement is sent only
after commit, so an acknowledged message is a stored message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from gasdesk.auth.access import ws_public
from gasdesk.callbacks.peak import queue_frame
from gasdesk.callbacks.service import do_request_callback
from gasdesk.channels.inbound import link_known_resident
from gasdesk.channels.webchat.identity import visitor_from_token
from gasdesk.conversations import history, pipeline, service
from gasdesk.conversations.attachments import check_attachment_payload
from gasdesk.conversations.group_commit import UseRegularPath, committer
from gasdesk.conversations.models import ContentType, Conversation, ConversationState
from gasdesk.conversations.service import RESIDENT
from gasdesk.db import transaction
from gasdesk.errors import InvalidInput
from gasdesk.event_types import ConversationTyping
from gasdesk.events import publish_now
from gasdesk.followups.service import do_answer_followup
from gasdesk.realtime.frames import RESIDENT_FRAMES, load_frame, receive_frame
from gasdesk.realtime.hub import Connection, get_hub
from gasdesk.realtime.protocol import CLOSE_BAD_HELLO, CLOSE_TOO_MANY, CLOSE_UNAUTHORIZED
from gasdesk.realtime.sockets import answer_frame, unknown_frame
from gasdesk.routing.models import SkillGroup
from gasdesk.security import limits
from gasdesk.video import signalling as video

log = logging.getLogger(__name__)
router = APIRouter()


class ResidentSession:
    """State of one resident socket: who they are and which conversation they are in."""

    def __init__(self, websocket: WebSocket, visitor_id: str, client_ip: str) -> None:
        self.websocket = websocket
        self.visitor_id = visitor_id
        self.client_ip = client_ip
        self.conn = Connection(websocket, kind="resident", visitor_id=visitor_id, client_ip=client_ip)
        self.conversation_id: int | None = None

    async def send(self, data: dict[str, Any]) -> None:
        await self.conn.send(data)

    async def attach(self, conversation: Conversation, after_seq: int, session: Any) -> None:
        hub = get_hub()
        if self.conversation_id is not None and self.conversation_id != conversation.id:
            hub.unfollow(self.conn, self.conversation_id)
        self.conversation_id = conversation.id
        # Follow first (nothing committed from now on is missed), but hold live pushes until the
        # welcome and the replay are out; the client drops the duplicates by seq.
        self.conn.hold()
        hub.follow(self.conn, conversation.id)
        service.do_note_resident_back(session, conversation)  # committed with this frame's transaction
        try:
            wire = await service.conversation_wire(session, conversation)
            backlog = await service.messages_after(session, conversation.id, after_seq)
            spot = await service.queue_spot(session, conversation)
            await self.conn.send({"type": "welcome", "visitor_id": self.visitor_id, "conversation": wire}, direct=True)
            for message in backlog:
                await self.conn.send({"type": "message", "message": message.to_wire()}, direct=True)
            if spot is not None:
                await self.conn.send(queue_frame(conversation.id, spot, wire["callback"]), direct=True)
        finally:
            await self.conn.release()

    async def start_conversation(self, session: Any) -> Conversation:
        """A new web-chat conversation, limited per visitor and per client IP across sockets."""
        await limits.check_rate(("conversation.visitor", self.visitor_id), ("conversation.ip", self.client_ip))
        conversation = await pipeline.start_conversation(session, channel="webchat", visitor_id=self.visitor_id)
        await link_known_resident(session, conversation)  # the H5 chat opened from WeChat knows its follower
        return conversation

    async def conversation(self, session: Any) -> Conversation:
        if self.conversation_id is None:
            raise InvalidInput("请先发送 hello", code="no_conversation")
        return await service.access_conversation_for_visitor(session, self.visitor_id, self.conversation_id)

    # ------------------------------------------------------------ frames

    async def on_hello(self, frame: dict[str, Any]) -> None:
        after_seq = int(frame.get("after_seq") or 0)
        wanted = frame.get("conversation_id")
        async with transaction() as session:
            conversation = None
            if wanted:
                conversation = await service.access_conversation_for_visitor(session, self.visitor_id, int(wanted))
                if conversation.state == ConversationState.closed.value:
                    # A newer open conversation (e.g. a 回访 survey) takes over from the ended one.
                    newer = await service.open_conversation_of(session, self.visitor_id, "webchat")
                    if newer is not None and newer.id > conversation.id:
                        conversation, after_seq = newer, 0
            if conversation is None:
                conversation = await service.open_conversation_of(session, self.visitor_id, "webchat")
            if conversation is None:
                conversation = await self.start_conversation(session)
                after_seq = 0
        async with transaction() as session:
            conversation = await service.access_conversation_for_visitor(session, self.visitor_id, conversation.id)
            await self.attach(conversation, after_seq, session)

    async def on_resume(self, frame: dict[str, Any]) -> None:
        async with transaction() as session:
            conversation = await self.conversation(session)
            for message in await service.messages_after(session, conversation.id, int(frame.get("after_seq") or 0)):
                await self.send({"type": "message", "message": message.to_wire()})

    async def on_message(self, frame: dict[str, Any]) -> None:
        client_msg_id = frame.get("client_msg_id")
        kind = frame.get("content_type") or "text"
        if kind not in ("text", "image", "file"):
            raise InvalidInput("不支持的消息类型", code="invalid_content_type")
        if kind == "text" and self.conversation_id is not None and not isinstance(frame.get("payload"), dict):
            try:
                stored = await committer.submit(self.conversation_id, self.visitor_id, frame.get("text"),
                                                client_msg_id)
            except UseRegularPath:
                pass  # the bot holds the conversation: full pipeline below
            else:
                await self.send({"type": "ack", "client_msg_id": client_msg_id, "seq": stored.seq,
                                 "message_id": stored.id, "duplicate": stored.duplicate})
                return
        async with transaction() as session:
            conversation = await self.conversation(session)
            payload = frame.get("payload") if isinstance(frame.get("payload"), dict) else None
            if kind != "text":
                payload = await check_attachment_payload(session, conversation, payload)
            posted = await pipeline.receive_resident_message(
                session, conversation, text=frame.get("text"), client_msg_id=client_msg_id, payload=payload,
                content_type=ContentType(kind),
            )
            ack = {"type": "ack", "client_msg_id": client_msg_id, "seq": posted.message.seq,
                   "message_id": posted.message.id, "duplicate": not posted.created}
        await self.send(ack)

    async def on_handoff(self, frame: dict[str, Any]) -> None:
        async with transaction() as session:
            conversation = await self.conversation(session)
            if conversation.state == ConversationState.closed.value:
                conversation = await self.start_conversation(session)
                self.conversation_id = conversation.id
            await pipeline.request_handoff(session, conversation)
        async with transaction() as session:
            await self.attach(await self.conversation(session), 10**9, session)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        if self.conversation_id is None or not await limits.allowed("typing.visitor", self.visitor_id):
            return  # excess typing frames are dropped silently: no reply to amplify
        async with transaction() as session:
            conversation = await self.conversation(session)
            agent_id = conversation.agent_id
        await publish_now(ConversationTyping(conversation_id=self.conversation_id, sender="resident",
                                             agent_id=agent_id))

    async def on_rate(self, frame: dict[str, Any]) -> None:
        score = frame.get("score")
        async with transaction() as session:
            conversation = await self.conversation(session)
            await service.do_rate(session, conversation, score if isinstance(score, int) else -1,
                                  str(frame.get("comment") or ""))

    async def on_close(self, frame: dict[str, Any]) -> None:
        async with transaction() as session:
            conversation = await self.conversation(session)
            await service.do_close(session, conversation, by="resident")

    async def on_new_conversation(self, frame: dict[str, Any]) -> None:
        async with transaction() as session:
            current = await service.open_conversation_of(session, self.visitor_id, "webchat")
            conversation = current or await self.start_conversation(session)
        async with transaction() as session:
            await self.attach(await service.access_conversation_for_visitor(session, self.visitor_id,
                                                                             conversation.id), 0, session)

    async def on_leave_message(self, frame: dict[str, Any]) -> None:
        async with transaction() as session:
            conversation = await self.conversation(session)
            group_id = frame.get("skill_group_id")
            group = await session.get(SkillGroup, int(group_id)) if group_id else None
            await service.do_leave_message(session, conversation, phone=str(frame.get("phone") or ""),
                                           content=str(frame.get("content") or ""), name=frame.get("name"),
                                           reason=str(frame.get("reason") or "no_agent")[:20], group=group)

    async def on_callback_request(self, frame: dict[str, Any]) -> None:
        """预约回拨 at peak hours: the conversation keeps its place in the queue; the agent calls back."""
        async with transaction() as session:
            conversation = await self.conversation(session)
            booked = await do_request_callback(session, RESIDENT, conversation, str(frame.get("phone") or ""))
            reply = {"type": "callback_booked", "callback_id": booked.callback.id,
                     "position": booked.spot.position if booked.spot else None}
        await self.send(reply)

    async def on_followup_answer(self, frame: dict[str, Any]) -> None:
        score = frame.get("score")
        async with transaction() as session:
            await do_answer_followup(session, int(frame.get("followup_id") or 0),
                                     score=score if isinstance(score, int) else -1,
                                     solved=bool(frame.get("solved")), comment=str(frame.get("comment") or ""),
                                     visitor_id=self.visitor_id)

    async def on_identify(self, frame: dict[str, Any]) -> None:
        async with transaction() as session:
            conversation = await self.conversation(session)
            name = await service.do_identify_resident(session, conversation, str(frame.get("account_no") or ""),
                                                      str(frame.get("phone_last4") or ""))
        await self.send({"type": "identified", "name": name})

    async def on_history(self, frame: dict[str, Any]) -> None:
        async with transaction() as session:
            conversation = await self.conversation(session)
            if frame.get("conversation_id"):
                transcript = await history.resident_transcript(session, conversation, int(frame["conversation_id"]))
                await self.send({"type": "history_transcript", "conversation_id": int(frame["conversation_id"]),
                                 "messages": transcript})
                return
            items = await history.resident_history(session, conversation)
        await self.send({"type": "history", "conversations": items})


HANDLERS = {name[3:]: getattr(ResidentSession, name) for name in dir(ResidentSession) if name.startswith("on_")}


@router.websocket("/ws/webchat", dependencies=[ws_public()])
async def webchat_socket(websocket: WebSocket) -> None:
    """Resident chat socket. The first frame is ``hello`` carrying the visitor token from
    ``POST /api/v1/webchat/visitors`` (not the URL: URLs end up in access logs)."""
    await websocket.accept()
    try:
        first = load_frame(await receive_frame(websocket))
    except (WebSocketDisconnect, InvalidInput):
        await websocket.close(code=CLOSE_BAD_HELLO, reason="expected hello")
        return
    visitor_id = visitor_from_token(first.get("token") if isinstance(first, dict) else None)
    if visitor_id is None or first.get("type") != "hello":
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="invalid visitor token")
        return
    client_ip = websocket.client.host if websocket.client else "unknown"
    limits.client_ip.set(client_ip)  # this task serves only this socket
    resident = ResidentSession(websocket, visitor_id, client_ip)
    hub = get_hub()
    if not hub.add_resident(resident.conn):
        await websocket.close(code=CLOSE_TOO_MANY, reason="too many connections")
        return
    try:
        await _run_frame(resident, first)
        while True:
            await _run_frame(resident, await receive_frame(websocket))
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(resident.conn)
        await resident.conn.aclose()
        if resident.conversation_id is not None and not hub.resident_follows(resident.conversation_id):
            await _note_gone(resident.conversation_id)


async def _note_gone(conversation_id: int) -> None:
    """The resident's last socket here closed: start the idle clock (conversations/idle.py)."""
    try:
        async with transaction() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is not None:
                service.do_note_resident_gone(session, conversation)
    except Exception:  # the socket is gone either way (e.g. the server is shutting down)
        log.exception("could not note that a resident left conversation %s", conversation_id)


async def _check_frame_rate(resident: ResidentSession, kind: str) -> None:
    """Flood limits per visitor and per client IP, shared by all their sockets (and processes with Redis)."""
    if kind == "message":
        await limits.check_rate(("message.visitor", resident.visitor_id), ("message.ip", resident.client_ip))
    elif kind != "typing":  # typing is limited (silently) in its handler; ping is answered before this
        await limits.check_rate(("frame.visitor", resident.visitor_id))


async def _run_frame(resident: ResidentSession, raw: str | dict[str, Any]) -> None:
    """Apply one frame; domain errors and bad frames are answered, never fatal to the socket."""

    async def handle(frame: dict[str, Any]) -> dict[str, Any] | None:
        if frame["type"] in video.RESIDENT_VIDEO_FRAMES:  # limited per visitor on their own (video.visitor)
            return await video.on_resident_frame(resident.visitor_id, resident.conversation_id, frame)
        if frame["type"] not in HANDLERS:
            raise unknown_frame()
        await _check_frame_rate(resident, frame["type"])
        await HANDLERS[frame["type"]](resident, frame)
        return None

    await answer_frame(resident.conn, raw, RESIDENT_FRAMES, handle)
