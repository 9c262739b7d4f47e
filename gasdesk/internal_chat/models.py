"""Staff chats, their members and messages.

Message text is staff data that often quotes residents (names, addresses, phone numbers of a job), so it is
encrypted at rest like ``messages.text``; so is a shared card's title (ticket titles are encrypted too).
Files are ``attachments`` rows (``conversations/attachments.py``: sealed on disk) that belong to no
conversation or ticket, so the resident file route never serves them; this domain serves them to members.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedString


class ChatKind(StrEnum):
    direct = "direct"  # two people; one chat per pair (``direct_key``)
    group = "group"  # a team or ad-hoc group with an owner and admins


class MemberRole(StrEnum):
    owner = "owner"  # created the group; cannot be removed
    admin = "admin"  # may add and remove members
    member = "member"


class MessageKind(StrEnum):
    text = "text"
    image = "image"
    file = "file"
    card = "card"  # a shared ticket or conversation
    system = "system"  # 某某 加入了群聊…


class CardType(StrEnum):
    ticket = "ticket"
    conversation = "conversation"


class InternalChat(Base):
    __tablename__ = "internal_chats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    # A group's name (改线一班, 巡线…) is a staff-chosen label like a team's: plain. Direct chats have none.
    name: Mapped[str | None] = mapped_column(String(60))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # "<smaller user id>:<larger user id>" for a direct chat, so a pair has one chat however it is opened.
    direct_key: Mapped[str | None] = mapped_column(String(24), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class InternalChatMember(Base):
    __tablename__ = "internal_chat_members"
    __table_args__ = (UniqueConstraint("chat_id", "user_id", name="uq_internal_chat_members_chat_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("internal_chats.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10), default=MemberRole.member.value)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The newest message id this member has seen: unread = messages after it from others.
    last_read_id: Mapped[int] = mapped_column(Integer, default=0)


class InternalChatMessage(Base):
    __tablename__ = "internal_chat_messages"
    __table_args__ = (Index("ix_internal_chat_messages_chat_id_id", "chat_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("internal_chats.id", ondelete="CASCADE"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(10), default=MessageKind.text.value)
    text: Mapped[str | None] = mapped_column(EncryptedString)
    mentions: Mapped[list[int]] = mapped_column(JSON, default=list)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id", ondelete="SET NULL"))
    card_type: Mapped[str | None] = mapped_column(String(15))
    card_id: Mapped[int | None] = mapped_column(Integer)
    card_title: Mapped[str | None] = mapped_column(EncryptedString)  # as it read when shared
    card_status: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
