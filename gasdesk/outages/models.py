"""Outage and incident notices (停气/停暖公告): what is off, where, when, why, until when; and who is affected.

A notice targets areas (``OutageArea``: district / street / community / building, a blank level meaning the
whole level above) and, optionally, an imported list of 户号 (``OutageCustomer``). Its resident-facing content
has a ``content_hash``: a change of content raises ``version`` and is broadcast again, anything else is not.
District, street and community are plain (area-level data, like ``addresses``); a building number alone says
nothing about a person, but it is stored normalised so that matching is exact.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gasdesk.db import Base, TimestampMixin, UTCDateTime


class OutageStatus(StrEnum):
    draft = "draft"  # being written; residents see nothing
    published = "published"  # in force (or coming), announced
    updated = "updated"  # published, then changed (new window, progress note…)
    closed = "closed"  # supply restored / notice withdrawn


ACTIVE_STATUSES = (OutageStatus.published.value, OutageStatus.updated.value)
STATUS_LABELS = {OutageStatus.draft: "草稿", OutageStatus.published: "已发布", OutageStatus.updated: "已更新",
                 OutageStatus.closed: "已结束"}
KIND_LABELS = {"gas": "停气", "heating": "停暖"}


class OutageNotice(TimestampMixin, Base):
    __tablename__ = "outages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), index=True)  # gas | heating
    # Summary of the areas for lists and the legacy API (the areas are ``OutageArea`` rows).
    district: Mapped[str] = mapped_column(String(40), index=True)
    communities: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty = the whole district
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
    # Kept in step with ``status`` (published or updated) for the readers that only ask "is it announced".
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    planned: Mapped[bool] = mapped_column(Boolean, default=True)  # 计划 or 突发
    status: Mapped[str] = mapped_column(String(10), default=OutageStatus.published.value, index=True)
    title: Mapped[str] = mapped_column(String(80), default="")
    expected_restore_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress_note: Mapped[str] = mapped_column(String(300), default="")  # the latest update, as residents read it
    version: Mapped[int] = mapped_column(Integer, default=0)  # 0 while a draft; +1 per published content change
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    areas: Mapped[list[OutageArea]] = relationship(cascade="all, delete-orphan", order_by="OutageArea.id",
                                                   lazy="selectin")


# The old name, for the callers written before notices had a life cycle.
Outage = OutageNotice


class OutageArea(Base):
    """One targeted area; a blank level is the whole of the level above (district only = the whole district)."""

    __tablename__ = "outage_areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outage_id: Mapped[int] = mapped_column(ForeignKey("outages.id", ondelete="CASCADE"), index=True)
    district: Mapped[str] = mapped_column(String(40), default="")
    street: Mapped[str] = mapped_column(String(60), default="")
    community: Mapped[str] = mapped_column(String(80), default="")
    building: Mapped[str] = mapped_column(String(20), default="")


class OutageCustomer(Base):
    """A customer on the notice's imported list (by 户号), whatever their address says."""

    __tablename__ = "outage_customers"
    __table_args__ = (UniqueConstraint("outage_id", "customer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outage_id: Mapped[int] = mapped_column(ForeignKey("outages.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
