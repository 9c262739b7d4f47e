from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedString

APPOINTMENT_STATUS_LABELS = {"booked": "已预约", "cancelled": "已取消", "done": "已完成"}


class ServiceOffering(Base):
    """An on-site service: bookable online, or guidance-only (materials, where to go, phone, hours)."""

    __tablename__ = "service_offerings"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)  # 开栓, 维修, 改线, 安检, 阀管改造, 旧改施工, 报警器安装
    name: Mapped[str] = mapped_column(String(40))
    bookable: Mapped[bool] = mapped_column(Boolean, default=True)
    duration_min: Mapped[int] = mapped_column(Integer, default=60)
    description: Mapped[str] = mapped_column(String(500), default="")
    materials: Mapped[list[str]] = mapped_column(JSON, default=list)
    where_to_go: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    hours: Mapped[str] = mapped_column(String(80), default="")
    fee_note: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AppointmentSlot(Base):
    __tablename__ = "appointment_slots"
    __table_args__ = (UniqueConstraint("district", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district: Mapped[str] = mapped_column(String(40), index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty = every bookable service


class Appointment(Base):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slots.id", ondelete="RESTRICT"), index=True)
    service_code: Mapped[str] = mapped_column(ForeignKey("service_offerings.code"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id", ondelete="SET NULL"))
    contact_phone: Mapped[str | None] = mapped_column(EncryptedString)
    status: Mapped[str] = mapped_column(String(12), default="booked", index=True)  # booked | cancelled | done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
