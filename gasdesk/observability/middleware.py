"""The outermost middleware: a request id for every HTTP request and WebSocket connection (sent back as
``X-Request-ID``), the context the log lines read, and the HTTP latency and WebSocket metrics."""

from __future__ import annotations

import ipaddress
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gasdesk.config import get_settings
from gasdesk.observability import metrics
from gasdesk.observability.logs import CONVERSATION_ID, REQUEST_ID

# What a proxy may hand us as a request id: no spaces, quotes or separators that would break a log line.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:=+/-]{1,128}$")
SOCKET_KINDS = {"/ws/webchat": "resident", "/ws/agent": "staff", "/ws/staff": "notify", "/ws/wall": "wall"}


def route_label(scope: Scope) -> str:
    """The route's path template (``/api/v1/tickets/{ticket_id}``) — never the raw path, whose ids and tokens
    would make a label per request — ``/static`` for static files, ``(unmatched)`` for the rest."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return str(template)
    if str(scope.get("path", "")).startswith("/static/"):
        return "/static"
    return "(unmatched)"


def _request_id(scope: Scope) -> str:
    header = get_settings().trusted_request_id_header
    if header:
        wanted = header.lower().encode("latin-1")
        for name, value in scope.get("headers", ()):
            if name == wanted:
                candidate = value.decode("latin-1")
                if _REQUEST_ID_RE.match(candidate):
                    return candidate
                break
    return uuid.uuid4().hex


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RequestContextMiddleware:
    """Sets ``REQUEST_ID`` (and clears ``CONVERSATION_ID``) for the whole request or socket session, adds
    ``X-Request-ID`` to the response (or to the socket's accept), and records the metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        header = (b"x-request-id", request_id.encode("latin-1"))
        rid_token = REQUEST_ID.set(request_id)
        conv_token = CONVERSATION_ID.set(None)
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send, header)
            else:
                await self._websocket(scope, receive, send, header)
        finally:
            CONVERSATION_ID.reset(conv_token)
            REQUEST_ID.reset(rid_token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, header: tuple[bytes, bytes]) -> None:
        started = time.perf_counter()
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.HTTP_LATENCY.labels(
                scope.get("method", ""), route_label(scope), f"{status[0] // 100}xx"
            ).observe(time.perf_counter() - started)

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, header: tuple[bytes, bytes]
    ) -> None:
        kind = SOCKET_KINDS.get(scope.get("path", ""), "other")
        state: dict[str, object] = {"accepted": False, "by": None}  # by: who ended it first

        async def watch_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message = {**message, "headers": [*message.get("headers", ()), header]}
                await send(message)
                state["accepted"] = True
                metrics.WS_OPEN.labels(kind).inc()
                return
            if message["type"] == "websocket.close" and state["by"] is None:
                state["by"] = "server"
            await send(message)

        async def watch_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect" and state["by"] is None:
                state["by"] = "client" if message.get("code", 1000) in (1000, 1001) else "abnormal"
            return message

        try:
            await self.app(scope, watch_receive, watch_send)
        finally:
            if state["accepted"]:
                metrics.WS_OPEN.labels(kind).dec()
                metrics.WS_CLOSED.labels(kind, str(state["by"] or "server")).inc()
