"""``/ws/staff``: the live channel of the notification bell on every staff page, for every staff role.

Server → client: ``hello {user_id, unread}``, ``notification {notification}`` (the REST form, see
``NotificationOut``), ``notification_read {ids | null, unread}`` (read on another page), ``pong``, ``error``.
Client → server: ``ping`` only. The socket carries no conversation traffic (that is ``/ws/agent``, the
agent console's own socket) and changes nothing: marking read goes through the REST API.

Frames are read and checked like on ``/ws/agent`` (``realtime/frames.py``: binary frames, bad JSON, NaN,
unstorable strings and wrong types are an ``error`` frame with a code, never a dropped socket); on top of
that a frame longer than ``MAX_FRAME`` closes the socket, since a bell has no use for long frames.
Everything the server sends goes through the connection's bounded queue (``realtime.hub.Connection``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from gasdesk.auth.access import ws_allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES
from gasdesk.db import transaction
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.notifications.service import unread_count
from gasdesk.realtime.frames import NOTIFY_FRAMES, check_frame, echo, load_frame, receive_frame
from gasdesk.realtime.hub import Connection, get_hub

log = logging.getLogger(__name__)
router = APIRouter()
# A bell sends nothing but pings: anything long is not ours.
MAX_FRAME = 1_000
CLOSE_TOO_MANY = 4429
CLOSE_FRAME_TOO_LARGE = 1009


def handle_notify_frame(frame: dict[str, Any]) -> dict[str, Any]:
    """The reply to one checked frame from a bell."""
    if frame["type"] == "ping":
        return {"type": "pong"}
    raise InvalidInput("未知的消息类型", code="unknown_frame")


@router.websocket("/ws/staff")
async def staff_socket(websocket: WebSocket, user: User = ws_allow(*ALL_ROLES)) -> None:
    """Origin-checked and authenticated like ``/ws/agent`` (4403 foreign origin or role, 4401 no login)."""
    await websocket.accept()
    hub = get_hub()
    conn = Connection(websocket, kind="notify", user_id=user.id, role=user.role)
    if not hub.add_notify(conn):
        await websocket.close(code=CLOSE_TOO_MANY, reason="too many connections")
        return
    try:
        async with transaction() as session:
            count = await unread_count(session, user)
        await conn.send({"type": "hello", "user_id": user.id, "unread": count})
        while True:
            raw = await receive_frame(websocket)
            if len(raw) > MAX_FRAME:
                await conn.aclose()  # the writer stops first: the close is the last thing sent
                await websocket.close(code=CLOSE_FRAME_TOO_LARGE, reason="frame too large")
                return
            frame: dict[str, Any] = {}
            try:
                frame = load_frame(raw)
                frame = check_frame(frame, NOTIFY_FRAMES)
                await conn.send(handle_notify_frame(frame))
            except GasdeskError as exc:
                await conn.send({"type": "error", "code": exc.code, "message": exc.message,
                                 "client_msg_id": echo(frame, "client_msg_id")})
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(conn)
        await conn.aclose()
