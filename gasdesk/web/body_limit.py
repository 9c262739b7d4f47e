"""Request body caps, enforced before anything reads the body.

Without a cap, one 400 MB JSON body to the (public) login endpoint grows the process by a gigabyte. Every
HTTP request is capped by route: a declared ``Content-Length`` above the cap is refused at once with 413,
and a streamed (chunked) body is counted as it arrives and cut off at the cap.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KB = 1024
MB = 1024 * KB
DEFAULT_MAX_BODY = 256 * KB  # JSON and forms: the largest is a knowledge article with its phrasings


@dataclass(frozen=True)
class BodyCap:
    method: str
    path: re.Pattern[str]
    max_bytes: int


# Routes that take files, the one list of upload caps (``web.uploads.read_upload_form`` applies the same
# ones while parsing). Multipart adds a little framing on top of the files themselves.
UPLOAD_CAPS: tuple[BodyCap, ...] = (
    BodyCap("POST", re.compile(r"^/api/v1/webchat/uploads$"), 10 * MB + 64 * KB),  # one file ≤ 10 MB
    BodyCap("POST", re.compile(r"^/api/v1/tickets/\d+/photos$"), 10 * MB + 64 * KB),
    BodyCap("POST", re.compile(r"^/api/v1/internal-chats/\d+/files$"), 10 * MB + 64 * KB),  # a staff chat file
    BodyCap("POST", re.compile(r"^/crew/tickets/\d+/writeback$"), 50 * MB),  # up to 20 photos and the form
    BodyCap("POST", re.compile(r"^(/api/v1/kb|/admin/kb)/import$"), 5 * MB + 64 * KB),  # xlsx/csv ≤ 5 MB
    # a training material's document (PDF/.docx ≤ 10 MB, .txt ≤ 1 MB: the chat file limits)
    BodyCap("POST", re.compile(r"^(/api/v1/training|/admin/training)/materials/upload$"), 10 * MB + 64 * KB),
    # an IVR prompt recording (WAV/MP3) ≤ 5 MB (also ``tts_upload_max_bytes``, whichever is smaller)
    BodyCap("POST", re.compile(r"^(/api/v1/ivr/prompts|/admin/ivr/prompts)/[a-z0-9][a-z0-9_.-]{0,63}$"), 5 * MB + 64 * KB),
    # video assist: a snapshot (JPEG/PNG ≤ 5 MB); a recording (WebM, ``video_recording_max_bytes`` ≤ 60 MB, which
    # ``read_upload_form`` applies while reading)
    BodyCap("POST", re.compile(r"^/api/v1/video/\d+/snapshots$"), 5 * MB + 64 * KB),
    BodyCap("POST", re.compile(r"^/api/v1/video/\d+/recordings$"), 60 * MB + 64 * KB),
    # an outage notice's customer list: up to 100,000 户号 in a CSV ≤ 2 MB
    BodyCap("POST", re.compile(r"^(/api/v1/outages/notices|/outages)/\d+/customers$"), 2 * MB + 64 * KB),
)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` past the cap. An HTTPException, so FastAPI's body parsing passes it on as is
    instead of turning it into a generic 400."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"请求内容过大（上限 {_human(cap)}）")


# Callbacks from WeChat and SMS providers: small XML/JSON documents; anything bigger is not theirs.
CALLBACK_CAPS: tuple[BodyCap, ...] = (
    BodyCap("POST", re.compile(r"^/channels/wechat/callback$"), 64 * KB),
    BodyCap("POST", re.compile(r"^/channels/sms/"), 256 * KB),
)


# The softphone's SDP offer (a browser's, with its ICE candidates gathered): a few KB; 32 KB is plenty.
SOFTPHONE_CAPS: tuple[BodyCap, ...] = (
    BodyCap("POST", re.compile(r"^/api/v1/calls/\d+/softphone/"), 32 * KB),
)


def is_upload_route(method: str, path: str) -> bool:
    """Routes that take files (their bodies are parsed by ``web.uploads.read_upload_form``)."""
    return any(cap.method == method and cap.path.match(path) for cap in UPLOAD_CAPS)


def body_cap(method: str, path: str) -> int:
    """The most bytes a request to ``method path`` may carry."""
    for cap in (*UPLOAD_CAPS, *CALLBACK_CAPS, *SOFTPHONE_CAPS):
        if cap.method == method and cap.path.match(path):
            return cap.max_bytes
    return DEFAULT_MAX_BODY


class BodyLimitMiddleware:
    """ASGI middleware: refuse or cut off request bodies above the route's cap with 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = body_cap(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await _too_large(send, cap)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge(cap)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, cap)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _human(cap: int) -> str:
    return f"{cap // MB} MB" if cap >= MB else f"{cap // KB} KB"


async def _too_large(send: Send, cap: int) -> None:
    body = json.dumps({"error": {"code": "body_too_large", "message": f"请求内容过大（上限 {_human(cap)}）"}},
                      ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
