"""Local overrides of a service line's hours for one day (a branch's own days stay ``branches.BranchHoliday``)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime


class ServiceLine(StrEnum):
    counters = "counters"  # 营业厅: every branch
    hotline = "hotline"  # 热线 and online service: every skill group


SERVICE_LINE_LABELS = {ServiceLine.counters: "营业厅", ServiceLine.hotline: "热线/在线客服"}


class HoursOverride(Base):
    """One day of a service line with other hours than the calendar gives: closed (``hours`` "") or changed
    hours, with a note residents see (国庆、系统升级…). Needed where the holiday library's data stops."""

    __tablename__ = "hours_overrides"
    __table_args__ = (UniqueConstraint("line", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[str] = mapped_column(String(20))
    day: Mapped[date] = mapped_column(Date, index=True)
    hours: Mapped[str] = mapped_column(String(20), default="")
    note: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def snapshot(self) -> dict[str, str]:
        return {"line": self.line, "day": self.day.isoformat(), "hours": self.hours, "note": self.note}
