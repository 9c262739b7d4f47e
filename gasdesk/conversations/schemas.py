from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gasdesk.conversations.wire import MessageWire
from gasdesk.fields import Id
from gasdesk.schemas import Out


class AgentMessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    client_msg_id: str | None = Field(default=None, max_length=64)


class TransferIn(BaseModel):
    to_agent_id: Id | None = None
    to_group_id: Id | None = None
    note: str = Field(default="", max_length=200)


class LinkCustomerIn(BaseModel):
    customer_id: Id


class PresenceIn(BaseModel):
    presence: str


class CannedRenderIn(BaseModel):
    conversation_id: Id | None = None


# ---------------------------------------------------------------- responses


class CallbackWire(Out):
    id: int
    phone: str
    status: str
    attempts: int
    outcome: str | None
    channel: str


class ConversationWire(Out):
    """A conversation's header as widgets and consoles get it (``service.conversation_wire``)."""

    id: int
    channel: str
    state: str
    agent_id: int | None
    agent_name: str | None
    accepted: bool
    skill_group: str | None
    skill_group_id: int | None
    priority: int
    customer_id: int | None
    last_seq: int
    rating: int | None
    handoff_reason: str | None
    handoff_summary: dict[str, Any] | None
    created_at: str
    assigned_at: str | None
    accepted_at: str | None
    queued_at: str | None
    resident_left: bool
    resident_left_at: str | None
    # WeChat/SMS: what replying on the channel means right now (the 48-hour window, SMS fallback).
    channel_note: str | None
    # A callback the resident booked instead of waiting (gasdesk/callbacks): the number masked.
    callback: CallbackWire | None


class LastMessage(Out):
    text: str
    sender: str
    at: str


class ConversationRow(ConversationWire):
    """A conversation in the agent's list: the header, unread count, customer and last message."""

    unread: int
    customer_name: str | None
    last_message: LastMessage | None


class QueueItem(Out):
    id: int
    skill_group: str | None
    skill_group_id: int
    priority: int
    channel: str
    handoff_reason: str | None
    handoff_summary: dict[str, Any] | None
    position: int | None
    waited_s: int
    resident_left: bool
    callback: CallbackWire | None


class ConversationDetail(Out):
    conversation: ConversationRow
    messages: list[MessageWire]


class PostedMessage(Out):
    message: MessageWire
    duplicate: bool


class ConversationSummary(Out):
    """An earlier conversation in a customer's history (``history.customer_conversations``)."""

    id: int
    channel: str
    channel_label: str
    state: str
    state_label: str
    created_at: str
    closed_at: str | None
    rating: int | None
    preview: str


class PresenceSet(Out):
    presence: str
    label: str


class PresenceOut(PresenceSet):
    max_concurrent: int
    active: int


class Colleague(Out):
    id: int
    name: str
    presence: str


class GroupRef(Out):
    id: int
    code: str
    name: str


class Colleagues(Out):
    agents: list[Colleague]
    groups: list[GroupRef]


class CannedReplyOut(Out):
    id: int
    title: str
    shortcut: str | None
    body: str
    text: str  # the body with its variables filled


class LeftMessageOut(Out):
    id: int
    name: str | None
    phone: str
    content: str
    reason: str
    conversation_id: int | None
    skill_group_id: int | None
    created_at: str
    status: str


class AttachmentOut(Out):
    """An uploaded file (``Attachment.to_payload``): its token, name, type, size and download URL."""

    file_token: str
    name: str
    mime: str
    size: int
    url: str


class LeftMessageStatus(Out):
    id: int
    status: str
