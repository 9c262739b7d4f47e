"""One conversation model for every channel (webchat, WeChat, SMS, voice).

Message bodies are encrypted at rest: residents type phone numbers, addresses and ID numbers into chats.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gasdesk.clock import utcnow
from gasdesk.conversations.wire import MessageWire, message_wire
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedJSON, EncryptedString


class Channel(StrEnum):
    webchat = "webchat"
    wechat = "wechat"
    sms = "sms"
    voice = "voice"


class ConversationState(StrEnum):
    bot = "bot"
    queued = "queued"
    assigned = "assigned"
    closed = "closed"


class SenderType(StrEnum):
    resident = "resident"
    bot = "bot"
    agent = "agent"
    system = "system"


class ContentType(StrEnum):
    text = "text"
    image = "image"
    file = "file"
    card = "card"
    event = "event"


# The one table of channel names people see (pages, the agent console, the audit log, ticket history).
CHANNEL_LABELS = {Channel.webchat: "网页聊天", Channel.wechat: "微信", Channel.sms: "短信", Channel.voice: "热线"}
STATE_LABELS = {ConversationState.bot: "机器人", ConversationState.queued: "排队中",
                ConversationState.assigned: "人工服务中", ConversationState.closed: "已结束"}


def channel_label(channel: str | None) -> str:
    """A channel's name for people ("webchat" → 网页聊天); an unknown code shows as given."""
    if not channel:
        return ""
    return CHANNEL_LABELS.get(channel, channel)  # type: ignore[call-overload]


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_queue", "state", "skill_group_id", "priority", "queued_at"),
        # the 质检 scan reads the last week's closed conversations: a range, not every closed one ever
        Index("ix_conversations_state_closed", "state", "closed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), default=Channel.webchat.value)
    state: Mapped[str] = mapped_column(String(10), default=ConversationState.bot.value, index=True)
    # The resident's identity on the channel: a webchat visitor id, a WeChat openid, a phone number's index.
    visitor_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    skill_group_id: Mapped[int | None] = mapped_column(ForeignKey("skill_groups.id", ondelete="SET NULL"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    agent_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    bot_misses: Mapped[int] = mapped_column(Integer, default=0)
    # Dialogue memory between bot turns (flow, slots); may hold personal data, so encrypted.
    bot_state: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    handoff_reason: Mapped[str | None] = mapped_column(String(40))
    # What the bot understood before hand-off (intent, slots), shown to the agent.
    handoff_summary: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(20))
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(EncryptedString)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Idle residents (queued or with an agent): since when no socket of the resident follows the
    # conversation, and since when the console shows 居民已离开 (set by the idle scan, conversations/idle.py).
    resident_gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resident_left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.seq",
                                                   cascade="all, delete-orphan")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "client_msg_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    sender_type: Mapped[str] = mapped_column(String(10))
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sender_name: Mapped[str | None] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(10), default=ContentType.text.value)
    text: Mapped[str | None] = mapped_column(EncryptedString)
    # Cards, quick replies, file metadata, events: structured content (encrypted like the text).
    payload: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    channel_meta: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

    def to_wire(self) -> MessageWire:
        """The JSON form sent to widgets and consoles."""
        return message_wire(id=self.id, conversation_id=self.conversation_id, seq=self.seq, sender=self.sender_type,
                            sender_name=self.sender_name, content_type=self.content_type, text=self.text,
                            payload=self.payload, client_msg_id=self.client_msg_id, created_at=self.created_at)


class LeftMessage(Base):
    """Overflow: a resident's message left outside hours or with nobody online; becomes a ticket later."""

    __tablename__ = "left_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    skill_group_id: Mapped[int | None] = mapped_column(ForeignKey("skill_groups.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    name: Mapped[str | None] = mapped_column(EncryptedString)
    phone: Mapped[str] = mapped_column(EncryptedString)
    content: Mapped[str] = mapped_column(EncryptedString)
    reason: Mapped[str] = mapped_column(String(20))  # after_hours | no_agent | queue_full
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)  # open | handled | ticketed
    ticket_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CannedReply(Base):
    """Agent quick text with variables: {客户称呼} {坐席姓名} {户号}."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(String(1000))
    shortcut: Mapped[str | None] = mapped_column(String(20))
    skill_group_id: Mapped[int | None] = mapped_column(ForeignKey("skill_groups.id", ondelete="SET NULL"))
