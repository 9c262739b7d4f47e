"""Validation of the JSON frames clients send on the two chat sockets and the bell's socket
(docs/chat-protocol.md).

Every frame is checked by type before a handler sees it: ids within the id range, sequence numbers within
the counter range, text fields strings, objects objects. Anything else — ``"text": 5``, a list where an
object belongs, ``conversation_id: 1e30``, ``NaN``, a NUL or an unpaired surrogate in a string, nesting
deeper than the parser allows — is answered with an ``error`` frame (``invalid_frame``), never an
``internal_error``. Range checks a domain function already makes (scores 1–5, text length, client_msg_id
format) stay there, with their own error codes.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr, ValidationError

from gasdesk.errors import InvalidInput
from gasdesk.fields import Count, Id, json_value_problem

MAX_FRAME_CHARS = 16_000


class Frame(BaseModel):
    # Unknown fields are kept, unchecked: handlers only read the fields declared here.
    model_config = ConfigDict(extra="allow")

    type: StrictStr


class _Conversational(Frame):
    conversation_id: Id | None = None


# ------------------------------------------------------------------ resident socket (/ws/webchat)


class Hello(_Conversational):
    token: StrictStr | None = None
    after_seq: Count | None = None


class Resume(Frame):
    after_seq: Count | None = None


class ResidentMessage(Frame):
    client_msg_id: StrictStr | None = None
    text: StrictStr | None = None
    content_type: StrictStr | None = None
    payload: dict[str, Any] | None = None


class LeaveMessage(Frame):
    # Numbers typed into a phone field arrive as JSON numbers from some clients.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    name: StrictStr | None = None
    phone: StrictStr | None = None
    content: StrictStr | None = None
    reason: StrictStr | None = None
    skill_group_id: Id | None = None


class Rate(Frame):
    score: Any = None  # do_rate refuses anything but 1–5 with its own code (invalid_rating)
    comment: StrictStr | None = None


class FollowupAnswer(Frame):
    followup_id: Id
    score: Any = None  # likewise do_answer_followup (invalid_score)
    solved: StrictBool | None = None
    comment: StrictStr | None = None


class Identify(Frame):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)  # 户号 is all digits

    account_no: StrictStr | None = None
    phone_last4: StrictStr | None = None


class CallbackRequestFrame(Frame):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)  # a number typed as digits

    phone: StrictStr | None = None


class _Video(Frame):
    """A video assist frame (gasdesk/video): about one session. Sizes and contents (SDP, candidates) are
    checked by ``video.service``, with their own error codes."""

    session_id: Id


class VideoAccept(_Video):
    recording: StrictBool = False  # the separate consent to be recorded


class VideoDescription(_Video):
    sdp: StrictStr


class VideoIce(_Video):
    candidate: dict[str, Any]


class VideoEnd(_Video):
    reason: StrictStr | None = None


RESIDENT_FRAMES: dict[str, type[Frame]] = {
    "hello": Hello, "resume": Resume, "message": ResidentMessage, "leave_message": LeaveMessage, "rate": Rate,
    "followup_answer": FollowupAnswer, "identify": Identify, "history": _Conversational,
    "callback_request": CallbackRequestFrame, "video_accept": VideoAccept, "video_decline": _Video,
    "video_offer": VideoDescription, "video_ice": VideoIce, "video_end": VideoEnd,
}


# ------------------------------------------------------------------ staff socket (/ws/agent)


class _StaffConversational(Frame):
    conversation_id: Id


class StaffMessage(_StaffConversational):
    client_msg_id: StrictStr | None = None
    text: StrictStr


class Read(_StaffConversational):
    seq: Count = 0


class VideoInvite(_StaffConversational):
    recording: StrictBool = False  # ask for the resident's separate consent to a recording


STAFF_FRAMES: dict[str, type[Frame]] = {
    "message": StaffMessage, "typing": _StaffConversational, "read": Read, "watch": _StaffConversational,
    "unwatch": _StaffConversational, "video_invite": VideoInvite, "video_answer": VideoDescription,
    "video_ice": VideoIce, "video_end": VideoEnd,
}


# ------------------------------------------------------------------ notification socket (/ws/staff)

class InternalChatReadFrame(Frame):
    """``ichat_read``: the staff chat page read ``chat_id`` up to ``message_id`` (default: the newest)."""

    chat_id: Id
    message_id: Id | None = None


# The bell sends pings; the staff chat page (gasdesk/internal_chat) also marks chats read over the same socket.
# Any other type is refused by its handler (unknown_frame).
NOTIFY_FRAMES: dict[str, type[Frame]] = {"ping": Frame, "ichat_read": InternalChatReadFrame}
# The wall screen (/ws/wall) likewise only listens.
WALL_FRAMES: dict[str, type[Frame]] = {"ping": Frame}


# ------------------------------------------------------------------ parsing and checking

_PROBLEMS = {
    "int_type": "须为整数", "int_parsing": "须为整数", "int_from_float": "须为整数", "string_type": "须为字符串",
    "dict_type": "须为对象", "bool_type": "须为 true 或 false", "missing": "缺失",
    "greater_than_equal": "超出范围", "less_than_equal": "超出范围",
}


class _Constant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


async def receive_frame(websocket: WebSocket) -> str:
    """The next frame's text. A binary frame is read as UTF-8 (and fails to parse like any other bad frame)
    instead of ``receive_text`` raising KeyError and dropping the socket."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else (message.get("bytes") or b"").decode("utf-8", "replace")


def load_frame(raw: str) -> dict[str, Any]:
    """Parse one text frame into a JSON object; ``InvalidInput`` when it is too large, not JSON, not an
    object, or uses NaN/Infinity."""
    if len(raw) > MAX_FRAME_CHARS:
        raise InvalidInput("消息过大", code="frame_too_large")
    try:
        frame = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's stack
        raise InvalidInput("消息格式错误：不是有效的 JSON", code="invalid_frame") from None
    if not isinstance(frame, dict):
        raise InvalidInput("消息格式错误：须为 JSON 对象", code="invalid_frame")
    return frame


def check_frame(frame: dict[str, Any], kinds: dict[str, type[Frame]]) -> dict[str, Any]:
    """The frame with its fields checked by type (numbers given as strings become numbers). A type not in
    ``kinds`` only gets the generic checks; the handler decides whether it exists."""
    problem = json_value_problem(frame)
    if problem is not None:
        raise InvalidInput(f"消息格式错误：{problem}", code="invalid_frame")
    kind = frame.get("type")
    model = kinds.get(kind, Frame) if isinstance(kind, str) else Frame
    try:
        return model.model_validate(frame).model_dump()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"][:1]) or "type"
        reason = _PROBLEMS.get(error["type"], "格式不正确")
        raise InvalidInput(f"消息格式错误：{field} {reason}", code="invalid_frame") from None


def echo(frame: Any, key: str) -> str | None:
    """A field of a refused frame that is safe to send back in the error (``client_msg_id``, ``type``): only a
    short plain string. Anything else could fail to encode and cost the socket its sends."""
    value = frame.get(key) if isinstance(frame, dict) else None
    if isinstance(value, str) and len(value) <= 64 and json_value_problem(value) is None:
        return value
    return None
