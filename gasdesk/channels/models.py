"""State shared by the channel adapters: inbound de-duplication and small per-channel settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedJSON


class InboundReceipt(Base):
    """One inbound callback already handled (WeChat retries a callback up to three times; SMS providers
    re-push receipts). ``key`` is a SHA-256 of the channel's own message identity (no personal data)."""

    __tablename__ = "inbound_receipts"
    __table_args__ = (UniqueConstraint("channel", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ChannelState(Base):
    """Small named values a channel keeps between processes: WeChat's access token (encrypted, with its
    expiry) and the official-account menu."""

    __tablename__ = "channel_state"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[Any] = mapped_column(EncryptedJSON)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
