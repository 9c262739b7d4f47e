"""A resident's request to be called back instead of waiting: their queued conversation keeps its place."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedString


class CallbackStatus(StrEnum):
    waiting = "waiting"  # in the queue (the conversation's place) or with an agent who has not finished it
    done = "done"  # reached, or given up after the last unanswered attempt
    cancelled = "cancelled"


class CallbackOutcome(StrEnum):
    reached = "reached"
    no_answer = "no_answer"  # tried again later (back in the queue) until callback_max_attempts
    cancelled = "cancelled"


OUTCOME_LABELS = {CallbackOutcome.reached: "已接通", CallbackOutcome.no_answer: "未接通，稍后重试",
                  CallbackOutcome.cancelled: "取消回拨"}


class CallbackRequest(Base):
    """The conversation (web chat, WeChat, SMS or a call) stays queued as the callback's place in the ACD: the
    same order and the same offer to agents as any conversation. The number is personal data: encrypted."""

    __tablename__ = "callback_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str] = mapped_column(EncryptedString)
    status: Mapped[str] = mapped_column(String(10), default=CallbackStatus.waiting.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(12))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
