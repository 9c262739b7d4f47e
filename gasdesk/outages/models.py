from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.db import Base, TimestampMixin, UTCDateTime


class Outage(TimestampMixin, Base):
    __tablename__ = "outages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), index=True)  # gas | heating
    district: Mapped[str] = mapped_column(String(40), index=True)
    communities: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty = the whole district
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
    published: Mapped[bool] = mapped_column(Boolean, default=True)
