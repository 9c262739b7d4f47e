"""Rostering (智能排班): shift templates, the rules a roster keeps, agents' leave and preferences, and the monthly
rosters with their assignments.

A roster is one month's plan (``Roster``: draft → published; a newer publication of the same month supersedes
the older). Each ``RosterAssignment`` is one person on one shift on one local day; it keeps the shift's times
(UTC) and duty role as they were when it was made, so a later change of a template never moves a published
shift, and "who is on duty now" is one indexed range query (``emergency`` reads it through
``rostering.service.roster_on_duty``).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, TimestampMixin, UTCDateTime

# Half-hour coverage: a day is 48 slots; shift starts and lengths are whole half hours.
SLOT_MIN = 30
SLOTS_PER_DAY = 24 * 60 // SLOT_MIN


class RosterStatus(StrEnum):
    draft = "draft"  # generated or being edited; nobody sees it but managers
    published = "published"  # the month's roster in force: agents see it, emergency duty reads it
    superseded = "superseded"  # an older publication of the same month


STATUS_LABELS = {
    RosterStatus.draft: "草稿",
    RosterStatus.published: "已发布",
    RosterStatus.superseded: "已被替代",
}


class PreferenceKind(StrEnum):
    prefer = "prefer"
    avoid = "avoid"


PREFERENCE_LABELS = {PreferenceKind.prefer: "希望", PreferenceKind.avoid: "避免"}
WEEKDAY_LABELS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


class ShiftTemplate(TimestampMixin, Base):
    """A kind of shift (早班 08:00–16:00, 夜班 22:00–次日 08:00, 值班…). ``start_min`` is minutes after local
    midnight of the shift's day; a shift may run past midnight. Templates are deactivated, never deleted, since
    assignments name them."""

    __tablename__ = "roster_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(20))
    start_min: Mapped[int] = mapped_column(Integer)
    duration_min: Mapped[int] = mapped_column(Integer)
    # Counts towards the half-hour contact coverage (a pure emergency-duty shift does not).
    covers_contacts: Mapped[bool] = mapped_column(Boolean, default=True)
    night: Mapped[bool] = mapped_column(Boolean, default=False)  # shared out fairly
    # People this shift needs every day whatever the forecast (值班: one); a shortfall is penalised heavily.
    min_staff: Mapped[int] = mapped_column(Integer, default=0)
    # The emergency duty role (emergency.models.DUTY_ROLES) its people hold while on it, or none.
    duty_role: Mapped[str | None] = mapped_column(String(30))
    # Who may work it: every skill group listed (routing AgentSkill) and one of the roles listed.
    skill_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=100)


class RosterSettings(Base):
    """The rules (one row, id 1): ``rules`` is ``rostering.schemas.RulesIn`` as JSON."""

    __tablename__ = "roster_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class RosterLeave(Base):
    """A person's leave from ``start_day`` to ``end_day`` (local days, inclusive): never rostered then."""

    __tablename__ = "roster_leave"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    start_day: Mapped[date] = mapped_column(Date)
    end_day: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RosterPreference(Base):
    """A wish the solver weighs: prefer or avoid a shift (``shift_id``; none: any shift) on a weekday
    (``weekday`` 0 = Monday; none: any day)."""

    __tablename__ = "roster_preferences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("roster_shifts.id", ondelete="CASCADE"))
    weekday: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Roster(Base):
    """One month's roster. ``demand`` is the half-hour requirement it was solved for ({"YYYY-MM-DD": [48
    ints]}); ``unmet`` what the assignments leave uncovered ([[day, slot, short], …]), kept current on edits."""

    __tablename__ = "rosters"
    __table_args__ = (Index("ix_rosters_month_status", "month", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[date] = mapped_column(Date)  # the first day of the month
    status: Mapped[str] = mapped_column(String(12), default=RosterStatus.draft.value)
    solve_status: Mapped[str] = mapped_column(String(16), default="")  # OPTIMAL | FEASIBLE | …
    objective: Mapped[float | None] = mapped_column(Float)
    solve_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    demand: Mapped[dict[str, list[int]]] = mapped_column(JSON, default=dict)
    unmet: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)
    unmet_total: Mapped[int] = mapped_column(Integer, default=0)  # agent half-hours short in the month
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class RosterAssignment(Base):
    """One person on one shift on one local day of a roster (off: no row)."""

    __tablename__ = "roster_assignments"
    __table_args__ = (
        UniqueConstraint("roster_id", "user_id", "day"),
        Index("ix_roster_assignments_duty", "duty_role", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    roster_id: Mapped[int] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    shift_id: Mapped[int] = mapped_column(ForeignKey("roster_shifts.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duty_role: Mapped[str | None] = mapped_column(String(30))
