"""A broadcast (one version of one subject's content) and one delivery row per customer it goes to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime


class DeliveryStatus(StrEnum):
    queued = "queued"  # waiting for the throttled drain
    handed = "handed"  # handed to a channel (the outbound row or the web-chat message says what happened next)
    unreachable = "unreachable"  # no channel reaches this customer
    superseded = "superseded"  # a newer version of the content replaced it before it went out


class Broadcast(Base):
    """One version of a subject's content (``subject`` = "outage:12"). Unique per content hash: publishing the
    same content again finds this row, and its deliveries' unique key stops a second message."""

    __tablename__ = "broadcasts"
    __table_args__ = (UniqueConstraint("subject", "content_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(40), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(30))
    # The notice's parameters (area-level text, no personal data): every channel's message is built from them.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    text: Mapped[str] = mapped_column(String(600), default="")
    queued_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BroadcastDelivery(Base):
    """One customer's copy of a broadcast. Customers are selected by id; the sender reads (and decrypts) their
    contacts only when the row is drained."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (UniqueConstraint("broadcast_id", "customer_id"),
                      Index("ix_broadcast_deliveries_status_id", "status", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.queued.value)
    channel: Mapped[str | None] = mapped_column(String(10))  # wechat | sms | webchat once handed
    outbound_id: Mapped[int | None] = mapped_column(Integer, index=True)
    message_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
