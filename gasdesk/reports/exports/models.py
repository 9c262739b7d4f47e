"""The scheduled report files: one row per report, period and format (the row is what makes the job
idempotent); the file itself is sealed under ``<var_dir>/reports``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime


class ReportFile(Base):
    __tablename__ = "report_files"
    __table_args__ = (UniqueConstraint("report_key", "grain", "period_start", "fmt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_key: Mapped[str] = mapped_column(String(20))  # overview, channels, …
    grain: Mapped[str] = mapped_column(String(8))  # day, week, month, year
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    label: Mapped[str] = mapped_column(String(60))  # the period as people read it: 2026-12-03
    fmt: Mapped[str] = mapped_column(String(8))  # xlsx | pdf
    filename: Mapped[str] = mapped_column(String(120))  # what the download is called: 日报-2026-12-03.xlsx
    path: Mapped[str] = mapped_column(String(300))  # the sealed file (AES-GCM, its stem as associated data)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
