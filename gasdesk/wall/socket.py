"""``/ws/wall``: the wall screen's live channel, for the kiosk login (role ``wall``), supervisors and admins.

Server → client: ``snapshot {snapshot}`` (``WallSnapshot``: first on connect, then after every change, debounced
by ``wall/live.py``), ``pong``, ``error``. Client → server: ``ping`` only; the socket changes nothing.

The same rules as the bell's ``/ws/staff``: Origin checked and login required (``ws_allow``: 4403 foreign origin
or role, 4401 no login), ``MAX_WALL_SOCKETS_PER_USER`` sockets per user and process (more close with 4429),
frames checked by ``realtime/frames.py``, a frame longer than ``MAX_FRAME`` closes the socket (1009), and every
push goes through the connection's bounded queue (a wall that does not read is dropped and reconnects).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket

from gasdesk.auth.access import ws_allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import WALL_VIEWERS
from gasdesk.db import transaction
from gasdesk.realtime.frames import WALL_FRAMES
from gasdesk.realtime.hub import Connection
from gasdesk.realtime.sockets import Reply, serve_staff_socket, unknown_frame
from gasdesk.wall.live import get_feed
from gasdesk.wall.service import wall_snapshot

router = APIRouter()
# A wall sends nothing but pings: anything long is not ours.
MAX_FRAME = 1_000


async def handle_wall_frame(conn: Connection, frame: dict[str, Any]) -> Reply:
    """A wall's frames: ``ping`` (answered by the shared loop) and nothing else."""
    raise unknown_frame()


@router.websocket("/ws/wall")
async def wall_socket(websocket: WebSocket, user: User = ws_allow(*WALL_VIEWERS)) -> None:
    """The wall's snapshots, pushed."""
    feed = get_feed()

    async def hello() -> dict[str, Any]:
        async with transaction() as session:
            return {"type": "snapshot", "snapshot": await wall_snapshot(session)}

    await serve_staff_socket(websocket, user, kind="wall", kinds=WALL_FRAMES, handle=handle_wall_frame,
                             hello=hello, max_frame=MAX_FRAME, register=feed.add, unregister=feed.remove)
