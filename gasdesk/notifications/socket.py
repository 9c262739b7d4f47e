"""``/ws/staff``: the live channel of the notification bell on every staff page, for every staff role.

Server → client: ``hello {user_id, unread}``, ``notification {notification}`` (the REST form, see
``NotificationOut``), ``notification_read {ids | null, unread}`` (read on another page), ``pong``, ``error``.
Client → server: ``ping``, and ``ichat_read`` from the staff chat page (``internal_chat/live.py``; pushes
``ichat_message``/``ichat_read``/``ichat_chats`` go to chat members only). The socket carries no resident
conversation traffic (that is ``/ws/agent``, the agent console's own socket); notifications are marked read
through the REST API.

Frames are read and checked like on ``/ws/agent`` (``realtime/frames.py``: binary frames, bad JSON, NaN,
unstorable strings and wrong types are an ``error`` frame with a code, never a dropped socket); on top of
that a frame longer than ``MAX_FRAME`` closes the socket, since a bell has no use for long frames.
Everything the server sends goes through the connection's bounded queue (``realtime.hub.Connection``); the
socket's loop is the staff sockets' shared one (``realtime/sockets.py``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket

from gasdesk.auth.access import ws_allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES
from gasdesk.db import transaction
from gasdesk.internal_chat.live import handle_read_frame
from gasdesk.notifications.service import unread_count
from gasdesk.realtime.frames import NOTIFY_FRAMES
from gasdesk.realtime.hub import Connection
from gasdesk.realtime.sockets import Reply, serve_staff_socket, unknown_frame

router = APIRouter()
# A bell sends nothing but pings: anything long is not ours.
MAX_FRAME = 1_000


async def handle_notify_frame(conn: Connection, frame: dict[str, Any]) -> Reply:
    """A staff page's frames: ``ping`` (answered by the shared loop) and the staff chat's ``ichat_read``."""
    if frame["type"] == "ichat_read" and conn.user_id is not None:
        return await handle_read_frame(conn.user_id, frame)
    raise unknown_frame()


@router.websocket("/ws/staff")
async def staff_socket(websocket: WebSocket, user: User = ws_allow(*ALL_ROLES)) -> None:
    """Origin-checked and authenticated like ``/ws/agent`` (4403 foreign origin or role, 4401 no login)."""

    async def hello() -> dict[str, Any]:
        async with transaction() as session:
            count = await unread_count(session, user)
        return {"type": "hello", "user_id": user.id, "unread": count}

    await serve_staff_socket(websocket, user, kind="notify", kinds=NOTIFY_FRAMES, handle=handle_notify_frame,
                             hello=hello, max_frame=MAX_FRAME)
