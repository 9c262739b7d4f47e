"""What every socket of ours does with a frame, and the whole loop of the two staff sockets.

``answer_frame`` parses and checks one frame (``realtime/frames.py``), hands it to the socket's own handler
and turns every failure into an ``error`` frame with a code — the resident socket (/ws/webchat), the agent
console's (/ws/agent) and the bell's (/ws/staff) all answer the same way, and none is dropped for one bad
frame. ``serve_staff_socket`` is the rest of a staff socket's life: register with the hub (or close
``CLOSE_TOO_MANY``), greet, read frames until the client leaves, unregister. The sockets keep only their
frame handlers (``conversations/agent_socket.py``, ``notifications/socket.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from gasdesk.auth.models import User
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.realtime.frames import Frame, check_frame, echo, load_frame, receive_frame
from gasdesk.realtime.hub import Connection, get_hub
from gasdesk.realtime.protocol import CLOSE_FRAME_TOO_LARGE, CLOSE_TOO_MANY

log = logging.getLogger(__name__)

Reply = dict[str, Any] | None
Handler = Callable[[dict[str, Any]], Awaitable[Reply]]


def unknown_frame() -> InvalidInput:
    """The refusal of a frame type the socket does not take."""
    return InvalidInput("未知的消息类型", code="unknown_frame")


def error_frame(exc: GasdeskError, frame: Any) -> dict[str, Any]:
    """The ``error`` answer to a refused frame: its code and message, the frame's ``client_msg_id`` and type
    (so the client can tell which send failed), and ``retry_after_s`` when the refusal was a rate limit."""
    error = {"type": "error", "code": exc.code, "message": exc.message,
             "client_msg_id": echo(frame, "client_msg_id"), "request_type": echo(frame, "type")}
    if isinstance(exc.details, dict) and "retry_after_s" in exc.details:
        error["retry_after_s"] = exc.details["retry_after_s"]
    return error


async def answer_frame(conn: Connection, raw: str | dict[str, Any], kinds: dict[str, type[Frame]],
                       handle: Handler) -> None:
    """Check one frame against ``kinds`` and apply it with ``handle``; send its reply, or an ``error`` frame for
    anything that goes wrong. ``ping`` is answered here for every socket."""
    frame: dict[str, Any] = {}
    try:
        frame = raw if isinstance(raw, dict) else load_frame(raw)
        frame = check_frame(frame, kinds)
        reply = {"type": "pong"} if frame["type"] == "ping" else await handle(frame)
        if reply is not None:
            await conn.send(reply)
    except GasdeskError as exc:
        await conn.send(error_frame(exc, frame))
    except (ValueError, TypeError) as exc:
        await conn.send({"type": "error", "code": "invalid_frame", "message": f"消息格式错误: {exc}"[:200]})
    except WebSocketDisconnect:
        raise
    except Exception:  # keep the socket: one failed frame must not drop it
        log.exception("%s frame failed", conn.kind)
        await conn.send({"type": "error", "code": "internal_error", "message": "服务器繁忙，请稍后重试",
                         "client_msg_id": echo(frame, "client_msg_id")})


async def serve_staff_socket(websocket: WebSocket, user: User, *, kind: str, kinds: dict[str, type[Frame]],
                             handle: Callable[[Connection, dict[str, Any]], Awaitable[Reply]],
                             hello: Callable[[], Awaitable[dict[str, Any]]], max_frame: int | None = None,
                             register: Callable[[Connection], bool] | None = None,
                             unregister: Callable[[Connection], None] | None = None) -> None:
    """Run an authenticated staff socket (``ws_allow`` has checked origin and role) until it closes.

    ``kind`` is ``"staff"`` (the console: conversation traffic) or ``"notify"`` (a bell); ``hello()`` builds the
    greeting once the socket is registered, so nothing pushed meanwhile is missed. A frame longer than
    ``max_frame`` closes the socket (1009) instead of being answered. A socket with its own audience (the
    wall) brings ``register`` (False: over its cap) and ``unregister`` instead of the hub's registries."""
    await websocket.accept()
    hub = get_hub()
    conn = Connection(websocket, kind=kind, user_id=user.id, role=user.role)
    if register is not None:
        added = register(conn)
    else:
        added = hub.add_staff(conn) if kind == "staff" else hub.add_notify(conn)
    if not added:
        await websocket.close(code=CLOSE_TOO_MANY, reason="too many connections")
        return
    try:
        await conn.send(await hello())
        while True:
            raw = await receive_frame(websocket)
            if max_frame is not None and len(raw) > max_frame:
                await conn.aclose()  # the writer stops first: the close is the last thing sent
                await websocket.close(code=CLOSE_FRAME_TOO_LARGE, reason="frame too large")
                return
            await answer_frame(conn, raw, kinds, lambda frame: handle(conn, frame))
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(conn)
        if unregister is not None:
            unregister(conn)
        await conn.aclose()
