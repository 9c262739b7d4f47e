"""The message object on the wire (docs/chat-protocol.md "Message object"), built in one place.

``Message.to_wire()`` (ORM rows) and group commit (rows it inserts without the ORM) both call
``message_wire``, so widgets, consoles, Redis peers and replays see one format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict  # pydantic validates typing.TypedDict only from Python 3.12

# Wire objects have exactly their declared keys: a validator refuses any other.
CLOSED = ConfigDict(extra="forbid")


@with_config(CLOSED)
class MessageWire(TypedDict):
    id: int
    conversation_id: int
    seq: int
    sender: str  # resident | bot | agent | system
    sender_name: str | None
    type: str  # text | image | file | card | event
    text: str | None
    payload: dict[str, Any] | None
    client_msg_id: str | None
    created_at: str  # ISO-8601 UTC


def message_wire(*, id: int, conversation_id: int, seq: int, sender: str, sender_name: str | None,
                 content_type: str, text: str | None, payload: dict[str, Any] | None, client_msg_id: str | None,
                 created_at: datetime) -> MessageWire:
    """The JSON form of one stored message sent to widgets and consoles."""
    return {
        "id": id, "conversation_id": conversation_id, "seq": seq,
        "sender": sender, "sender_name": sender_name, "type": content_type,
        "text": text, "payload": payload, "client_msg_id": client_msg_id,
        "created_at": created_at.isoformat(),
    }
