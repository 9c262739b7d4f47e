"""The staff side over WebSocket: live messages, typing, assignments and queue hints for the console."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket

from gasdesk.auth.access import ws_allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import STAFF_DESK
from gasdesk.conversations import service
from gasdesk.conversations.models import SenderType
from gasdesk.db import transaction
from gasdesk.errors import InvalidInput
from gasdesk.event_types import ConversationTyping
from gasdesk.events import publish_now
from gasdesk.realtime.frames import STAFF_FRAMES
from gasdesk.realtime.hub import Connection, get_hub
from gasdesk.realtime.sockets import Reply, serve_staff_socket, unknown_frame
from gasdesk.video import signalling as video

router = APIRouter()


async def _user(user_id: int, session: Any) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise InvalidInput("账号已停用", code="inactive")
    return user


async def handle_staff_frame(conn: Connection, frame: dict[str, Any]) -> Reply:
    """Apply one frame from a staff socket; returns the reply frame (ack) if any."""
    kind = frame.get("type")
    cid = int(frame.get("conversation_id") or 0)
    if kind == "message":
        async with transaction() as session:
            user = await _user(conn.user_id, session)  # type: ignore[arg-type]
            conversation = await service.access_conversation_for_user(session, user, cid)
            posted = await service.do_post_message(session, conversation, SenderType.agent, text=frame.get("text"),
                                                   client_msg_id=frame.get("client_msg_id"), user=user)
            ack = {"type": "ack", "client_msg_id": frame.get("client_msg_id"), "conversation_id": cid,
                   "seq": posted.message.seq, "message_id": posted.message.id, "duplicate": not posted.created}
        return ack
    if kind == "typing":
        async with transaction() as session:
            user = await _user(conn.user_id, session)  # type: ignore[arg-type]
            await service.access_conversation_for_user(session, user, cid)
        await publish_now(ConversationTyping(conversation_id=cid, sender="staff", agent_id=conn.user_id))
        return None
    if kind == "read":
        async with transaction() as session:
            user = await _user(conn.user_id, session)  # type: ignore[arg-type]
            conversation = await service.access_conversation_for_user(session, user, cid)
            await service.do_mark_read(session, conversation, int(frame.get("seq") or 0))
        return None
    if kind in ("watch", "unwatch"):
        async with transaction() as session:
            user = await _user(conn.user_id, session)  # type: ignore[arg-type]
            await service.access_conversation_for_user(session, user, cid)
        hub = get_hub()
        (hub.follow if kind == "watch" else hub.unfollow)(conn, cid)
        return None
    if kind in video.STAFF_VIDEO_FRAMES:
        async with transaction() as session:
            user = await _user(conn.user_id, session)  # type: ignore[arg-type]
        return await video.on_staff_frame(user, frame)
    raise unknown_frame()


@router.websocket("/ws/agent")
async def agent_socket(websocket: WebSocket, user: User = ws_allow(*STAFF_DESK)) -> None:
    """The agent console's socket (4403 foreign origin or role, 4401 no login)."""

    async def hello() -> dict[str, Any]:
        return {"type": "hello", "user_id": user.id, "name": user.display_name, "role": user.role}

    await serve_staff_socket(websocket, user, kind="staff", kinds=STAFF_FRAMES, handle=handle_staff_frame,
                             hello=hello)
