from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedString


class FollowUpPolicy(Base):
    """Per ticket type: when to survey, how often to retry, what a bad answer does."""

    __tablename__ = "followup_policies"

    ticket_type: Mapped[str] = mapped_column(String(24), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    delay_minutes: Mapped[int] = mapped_column(Integer, default=60)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_minutes: Mapped[int] = mapped_column(Integer, default=24 * 60)
    on_dissatisfied: Mapped[str] = mapped_column(String(12), default="reopen")  # reopen | complaint | none
    dissatisfied_max_score: Mapped[int] = mapped_column(Integer, default=2)


class FollowUpSurvey(Base):
    __tablename__ = "followup_surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12), default="scheduled", index=True)
    # scheduled → sent → answered | unreachable ; cancelled when the ticket reopens before it is sent
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score: Mapped[int | None] = mapped_column(Integer)
    solved: Mapped[bool | None] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(EncryptedString)
    category: Mapped[str | None] = mapped_column(String(24))  # ticket type/service, for trend reports
    outcome: Mapped[str | None] = mapped_column(String(20))  # ok | reopened | complaint_created
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
