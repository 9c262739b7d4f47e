"""``/ws/staff``: the live channel of the notification bell on every staff page, for every staff role.

Server → client: ``hello {user_id, unread}``, ``notification {notification}`` (the REST form, see
``NotificationOut``), ``notification_read {ids | null, unread}`` (read on another page), ``pong``, ``error``.
Client → server: ``ping`` only. The socket carries no conversation traffic (that is ``/ws/agent``, the
agent console's own socket) and changes nothing: marking read goes through the REST API.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from gasdesk.auth.access import ws_allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES
from gasdesk.db import transaction
from gasdesk.notifications.service import unread_count
from gasdesk.realtime.hub import Connection, get_hub

log = logging.getLogger(__name__)
router = APIRouter()
# A bell sends nothing but pings: anything long is not ours.
MAX_FRAME = 1_000
CLOSE_TOO_MANY = 4429
CLOSE_FRAME_TOO_LARGE = 1009


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
            raw = await websocket.receive_text()
            if len(raw) > MAX_FRAME:
                await websocket.close(code=CLOSE_FRAME_TOO_LARGE, reason="frame too large")
                return
            try:
                frame = json.loads(raw)
            except ValueError:
                frame = None
            if isinstance(frame, dict) and frame.get("type") == "ping":
                await conn.send({"type": "pong"})
            else:
                await conn.send({"type": "error", "code": "unknown_frame", "message": "未知的消息类型"})
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(conn)
        await conn.aclose()
