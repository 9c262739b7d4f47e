"""Emergency escalation: per-level policies, the duty list, emergency events and every notification sent.

Escalation is durable: an event stores which step it reached (``seq``, a counter of steps run, and
``current_step``) and when that step's acknowledgement time runs out (``next_due_at``). The periodic task
advances an event with a compare-and-set on (id, seq), so two workers or a restart never send a step twice
or skip one; each step's notifications are written in the same transaction as the advance.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import BlindIndex, EncryptedString

# Risk levels: I is the most severe.
LEVELS = (1, 2, 3, 4)
LEVEL_LABELS = {1: "Ⅰ级（特别重大）", 2: "Ⅱ级（重大）", 3: "Ⅲ级（较大）", 4: "Ⅳ级（一般）"}
LEVEL_NUMERALS = {1: "Ⅰ", 2: "Ⅱ", 3: "Ⅲ", 4: "Ⅳ"}

# Duty roles of the duty list (值班表); a policy step names them and gets whoever is on duty at the step.
DUTY_ROLES = {"shift_lead": "值班长", "repair_dispatch": "抢修调度", "safety_lead": "安检主管"}

CHANNELS = ("in_app", "sms", "wechat", "phone")
CHANNEL_LABELS = {"in_app": "站内通知", "sms": "短信", "wechat": "微信", "phone": "电话"}

SOURCES = {"gas_leak": "燃气泄漏报告", "outage": "重大停气", "manual": "人工宣布"}


class EmergencyStatus(StrEnum):
    open = "open"  # declared; no step run yet (a policy without steps stays here)
    escalating = "escalating"  # step ``current_step`` notified, waiting for an acknowledgement
    acknowledged = "acknowledged"  # someone took it: escalation stopped
    closed = "closed"  # handled, with a summary
    cancelled = "cancelled"  # false alarm or withdrawn, with a reason


STATUS_LABELS = {EmergencyStatus.open: "已开启", EmergencyStatus.escalating: "升级通知中",
                 EmergencyStatus.acknowledged: "已确认", EmergencyStatus.closed: "已关闭",
                 EmergencyStatus.cancelled: "已取消"}
ACTIVE_STATUSES = (EmergencyStatus.open.value, EmergencyStatus.escalating.value, EmergencyStatus.acknowledged.value)


class EmergencyPolicy(Base):
    """One saved version of a level's escalation path. The newest version of a level is the one in force;
    an event keeps a copy of the steps it started with (``EmergencyEvent.steps``)."""

    __tablename__ = "emergency_policies"
    __table_args__ = (UniqueConstraint("level", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    # [{"users": [id…], "duty_roles": [code…], "channels": [code…], "timeout_min": int, "next_step": int|None}]
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class DutyAssignment(Base):
    """Who holds a duty role from ``starts_at`` to ``ends_at`` (UTC): the simple duty list."""

    __tablename__ = "duty_assignments"
    __table_args__ = (Index("ix_duty_assignments_role_time", "duty_role", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    duty_role: Mapped[str] = mapped_column(String(30))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffContact(Base):
    """How to reach a staff member outside the app in an emergency: a mobile number and a WeChat openid,
    both encrypted (the number also has a blind index, never shown unmasked)."""

    __tablename__ = "staff_contacts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    mobile: Mapped[str | None] = mapped_column(EncryptedString)
    mobile_index: Mapped[str | None] = mapped_column(BlindIndex())
    wechat_openid: Mapped[str | None] = mapped_column(EncryptedString)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmergencyEvent(Base):
    __tablename__ = "emergency_events"
    __table_args__ = (Index("ix_emergency_events_due", "status", "next_due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))  # gas_leak | outage | manual
    title: Mapped[str] = mapped_column(EncryptedString)  # may quote a resident: redacted, then encrypted
    description: Mapped[str] = mapped_column(EncryptedString, default="")
    ticket_id: Mapped[int | None] = mapped_column(Integer, index=True)
    outage_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=EmergencyStatus.open.value, index=True)
    policy_version: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # How many steps have run (the compare-and-set key) and which step ran last (0-based; -1: none yet).
    seq: Mapped[int] = mapped_column(Integer, default=0)
    current_step: Mapped[int] = mapped_column(Integer, default=-1)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exhausted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # every step ran, nobody acknowledged
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_via: Mapped[str | None] = mapped_column(String(20))  # board | notification | api | sms | phone
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    summary: Mapped[str | None] = mapped_column(EncryptedString)
    cancel_reason: Mapped[str | None] = mapped_column(EncryptedString)


class EmergencyNotification(Base):
    """One notification of one step to one person on one channel, with its times. Unique per
    (event, seq, user, channel): even a bug that ran a step twice could not store (or send) it twice."""

    __tablename__ = "emergency_notifications"
    __table_args__ = (UniqueConstraint("event_id", "seq", "user_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("emergency_events.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # the run of the step (1 = the first step run)
    step: Mapped[int] = mapped_column(Integer)  # 0-based index into the event's steps
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    duty_role: Mapped[str | None] = mapped_column(String(30))  # how they were chosen, when by duty
    channel: Mapped[str] = mapped_column(String(10))  # in_app | sms | wechat | phone | none
    # sent | queued (outbound row: its own status is the delivery) | unavailable | no_contact | no_one_on_duty
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40))
    notification_id: Mapped[int | None] = mapped_column(Integer)
    outbound_id: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
