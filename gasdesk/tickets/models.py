"""Tickets. Descriptions, contacts and crew results carry personal data, so they are encrypted."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gasdesk.clock import utcnow
from gasdesk.db import Base, TimestampMixin, UTCDateTime
from gasdesk.security.crypto import EncryptedJSON, EncryptedString


class TicketType(StrEnum):
    repair = "repair"
    service_appointment = "service_appointment"
    complaint = "complaint"
    praise = "praise"
    no_gas = "no_gas"
    gas_leak = "gas_leak"
    consultation = "consultation"
    info_change = "info_change"


class TicketStatus(StrEnum):
    new = "new"
    assigned = "assigned"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"
    reopened = "reopened"
    cancelled = "cancelled"


class Priority(StrEnum):
    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


TYPE_LABELS = {
    TicketType.repair: "维修", TicketType.service_appointment: "预约服务", TicketType.complaint: "投诉",
    TicketType.praise: "表扬", TicketType.no_gas: "无气", TicketType.gas_leak: "燃气泄漏",
    TicketType.consultation: "咨询", TicketType.info_change: "信息变更",
}
STATUS_LABELS = {
    TicketStatus.new: "新建", TicketStatus.assigned: "已派单", TicketStatus.in_progress: "处理中",
    TicketStatus.resolved: "已解决", TicketStatus.closed: "已关闭", TicketStatus.reopened: "重新打开",
    TicketStatus.cancelled: "已取消",
}
PRIORITY_LABELS = {Priority.urgent: "紧急", Priority.high: "高", Priority.normal: "普通", Priority.low: "低"}
PRIORITY_RANK = {Priority.urgent: 0, Priority.high: 1, Priority.normal: 2, Priority.low: 3}
OPEN_STATUSES = (TicketStatus.new, TicketStatus.assigned, TicketStatus.in_progress, TicketStatus.reopened)


class Team(TimestampMixin, Base):
    """A group that handles tickets: a dispatch desk, a complaints desk, a field crew."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20), default="dispatch")  # dispatch | complaint | crew
    districts: Mapped[list[str]] = mapped_column(JSON, default=list)
    lead_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TeamMember(Base):
    __tablename__ = "team_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class Ticket(TimestampMixin, Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_open_sla", "status", "resolve_by"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    type: Mapped[str] = mapped_column(String(24), index=True)
    priority: Mapped[str] = mapped_column(String(10), default=Priority.normal.value)
    status: Mapped[str] = mapped_column(String(12), default=TicketStatus.new.value, index=True)
    title: Mapped[str] = mapped_column(EncryptedString)  # free text (names, addresses): encrypted like the rest
    description: Mapped[str | None] = mapped_column(EncryptedString)
    service_type: Mapped[str | None] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id", ondelete="SET NULL"))
    district: Mapped[str | None] = mapped_column(String(40), index=True)
    address_text: Mapped[str | None] = mapped_column(EncryptedString)
    contact_name: Mapped[str | None] = mapped_column(EncryptedString)
    contact_phone: Mapped[str | None] = mapped_column(EncryptedString)
    channel: Mapped[str | None] = mapped_column(String(10))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"),
                                                        index=True)
    left_message_id: Mapped[int | None] = mapped_column(ForeignKey("left_messages.id", ondelete="SET NULL"))
    parent_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    routing_rule: Mapped[str | None] = mapped_column(String(60))
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sla_state: Mapped[str] = mapped_column(String(12), default="ok", index=True)  # ok | at_risk | breached
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # Crew write-back: arrival, result, materials, photos, signature.
    result: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    events: Mapped[list[TicketEvent]] = relationship(back_populates="ticket", order_by="TicketEvent.id",
                                                     cascade="all, delete-orphan")


class TicketEvent(Base):
    """History: every transition and note, with actor and time."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str | None] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(EncryptedString)
    data: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class RoutingRule(TimestampMixin, Base):
    """Ticket routing, evaluated by ``position``: all given conditions must match."""

    __tablename__ = "ticket_routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    name: Mapped[str] = mapped_column(String(60))
    ticket_types: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty = any
    districts: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    customer_tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # For complaints: "live_agent" hands the resident to the complaint queue at once instead of a ticket.
    complaint_mode: Mapped[str | None] = mapped_column(String(12))
    priority: Mapped[str | None] = mapped_column(String(10))  # override
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class SlaPolicy(Base):
    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_type: Mapped[str] = mapped_column(String(24))
    priority: Mapped[str] = mapped_column(String(10))
    respond_minutes: Mapped[int] = mapped_column(Integer)
    resolve_minutes: Mapped[int] = mapped_column(Integer)
    at_risk_ratio_pct: Mapped[int] = mapped_column(Integer, default=80)


class SavedView(Base):
    """A named filter set a user saved on a list page (``page`` e.g. "tickets"); picked again later."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("user_id", "page", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    page: Mapped[str] = mapped_column(String(40))
    query_string: Mapped[str] = mapped_column(EncryptedString)  # may hold a searched name or number
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
