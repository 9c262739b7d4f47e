"""An agent's correction of the intent the bot understood in one resident message."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedString


class CorrectionStatus(StrEnum):
    pending = "pending"
    approved = "approved"  # becomes training data at the next `gasdesk bot retrain`
    rejected = "rejected"


STATUS_LABELS = {
    CorrectionStatus.pending: "待审核",
    CorrectionStatus.approved: "已采纳",
    CorrectionStatus.rejected: "已驳回",
}


class IntentCorrection(Base):
    """One per message (a second correction before review replaces the intent).

    ``text`` is the resident's message with phone, ID, 户号, bank card numbers and e-mail addresses replaced by
    placeholders (``corrections.service.mask_text``) — the form reviewers see and training reads — and still
    encrypted at rest like the message itself, since names and addresses cannot be found by patterns.
    """

    __tablename__ = "intent_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(EncryptedString)
    predicted_intent: Mapped[str | None] = mapped_column(String(30))
    predicted_confidence: Mapped[float | None] = mapped_column(Float)
    intent: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10), default=CorrectionStatus.pending.value, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
