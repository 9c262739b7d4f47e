"""One check at the HTTP edge for characters and numbers no handler can store or send back.

- NUL (``%00`` in a path, query string or form, ``\\u0000`` in JSON): PostgreSQL text cannot hold it.
- An unpaired surrogate from a JSON escape such as ``"\\ud800"``: it has no UTF-8 encoding, so neither the
  database nor a response that echoes it can carry it.
- ``NaN``, ``Infinity`` and numbers like ``1e999`` in JSON: Python's parser accepts them, but they are not
  JSON, PostgreSQL refuses them in json columns, and no field means them.

Each of these used to surface as a 500 wherever the value landed; here it is a 422 ``invalid_input`` before
any handler runs. Validation of the values themselves (types, ranges) stays with each route's schema.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gasdesk.fields import json_value_problem
from gasdesk.web.errors import error_response

NUL_MESSAGE = "请求含有无法保存的字符（如 \\u0000）"
NUMBER_MESSAGE = "请求含有无效数字（NaN、Infinity 或超出范围）"


class _NotANumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(name)


def json_problem(body: bytes) -> str | None:
    """What is wrong with a JSON body in the sense above, or None. Malformed JSON is left to the route
    (FastAPI answers it with its own 400)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except _NotANumber:
        return NUMBER_MESSAGE
    except (ValueError, RecursionError):
        return None
    problem = json_value_problem(value)
    return f"请求{problem}" if problem else None


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"\x00" in unquote_to_bytes(raw.replace(b"+", b" "))


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


class InputGuard:
    """ASGI middleware; JSON and urlencoded bodies are read once here and replayed to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = None
        if "\x00" in scope.get("path", "") or _has_nul(scope.get("query_string", b"")):
            problem = NUL_MESSAGE
        kind = _content_type(scope)
        # FastAPI reads a body without a content type as JSON too.
        is_json = kind in ("", "application/json") or kind.endswith("+json")
        if problem is None and (is_json or kind == "application/x-www-form-urlencoded"):
            body, receive = await _buffered(receive)
            problem = json_problem(body) if is_json else (NUL_MESSAGE if _has_nul(body) else None)
        if problem is None:
            await self.app(scope, receive, send)
            return
        response = error_response(Request(scope), 422, "invalid_input", problem)
        await response(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands the same messages to the app."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return b"".join(chunks), replay
