from __future__ import annotations

from datetime import date

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gasdesk.db import Base, TimestampMixin


class ServiceBranch(TimestampMixin, Base):
    """A walk-in office. ``weekly_hours`` maps ISO weekday "1".."7" to "08:30-17:00" or "" when closed."""

    __tablename__ = "service_branches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    district: Mapped[str] = mapped_column(String(40), index=True)
    address: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(40))
    weekly_hours: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    holidays: Mapped[list[BranchHoliday]] = relationship(
        back_populates="branch", cascade="all, delete-orphan", order_by="BranchHoliday.day"
    )

    def snapshot(self) -> dict[str, object]:
        return {
            "name": self.name, "district": self.district, "address": self.address, "phone": self.phone,
            "weekly_hours": self.weekly_hours, "services": self.services, "is_active": self.is_active,
        }


class BranchHoliday(Base):
    """A day with special hours: closed (hours "") or changed hours (e.g. 调休 working Saturday)."""

    __tablename__ = "branch_holidays"
    __table_args__ = (UniqueConstraint("branch_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("service_branches.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    hours: Mapped[str] = mapped_column(String(20), default="")
    note: Mapped[str] = mapped_column(String(60), default="")

    branch: Mapped[ServiceBranch] = relationship(back_populates="holidays")
