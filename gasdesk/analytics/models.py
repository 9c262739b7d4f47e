"""Analytics facts and their hourly and daily roll-ups.

A fact is one thing that happened (a contact started, a conversation accepted after a wait, a ticket
resolved within its SLA…), written from the domain events after their commit, once per ``dedupe_key``. The
roll-up job sums the facts of each touched hour into buckets (metric × hour × dimensions), then the buckets of
each touched local day into daily rows; reports read the roll-ups only. Facts hold ids and codes, never
personal data or message text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime

# The dimensions a fact and a bucket carry, in this order (the bucket's unique key after metric and hour).
# ``detail`` is a small code that qualifies the kind: a hand-off reason, a close outcome, a bot turn's
# outcome, a 回访 problem category, an SLA deadline.
STRING_DIMENSIONS = ("channel", "district", "intent", "ticket_type", "detail")
INT_DIMENSIONS = ("skill_group_id", "team_id", "agent_id")
DIMENSIONS = STRING_DIMENSIONS + INT_DIMENSIONS


class AnalyticsFact(Base):
    """One counted event. ``value`` is what the kind measures (seconds waited, a score) or 1."""

    __tablename__ = "analytics_facts"
    __table_args__ = (Index("ix_analytics_facts_occurred_at", "occurred_at"),)  # the roll-up reads an hour

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    conversation_id: Mapped[int | None] = mapped_column(Integer)
    ticket_id: Mapped[int | None] = mapped_column(Integer)
    call_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(10))
    skill_group_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[int | None] = mapped_column(Integer)
    district: Mapped[str | None] = mapped_column(String(40))
    intent: Mapped[str | None] = mapped_column(String(40))
    ticket_type: Mapped[str | None] = mapped_column(String(24))
    detail: Mapped[str | None] = mapped_column(String(40))
    value: Mapped[float] = mapped_column(Float, default=1.0)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # codes and ids only, never personal data
    inserted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DimensionColumns:
    """The ``DIMENSIONS`` as columns, never NULL ('' or 0 for "none"): the buckets' and the daily rows' key."""

    channel: Mapped[str] = mapped_column(String(10), default="")
    district: Mapped[str] = mapped_column(String(40), default="")
    intent: Mapped[str] = mapped_column(String(40), default="")
    ticket_type: Mapped[str] = mapped_column(String(24), default="")
    detail: Mapped[str] = mapped_column(String(40), default="")
    skill_group_id: Mapped[int] = mapped_column(Integer, default=0)
    team_id: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[int] = mapped_column(Integer, default=0)


class AnalyticsBucket(DimensionColumns, Base):
    """The facts of one kind (``metric``) in one UTC hour with the same dimensions: how many, and their sum.
    Dimensions are never NULL ('' and 0 stand for none) so the unique key holds on every backend."""

    __tablename__ = "analytics_buckets"
    __table_args__ = (
        UniqueConstraint("metric", "hour", *DIMENSIONS, name="uq_analytics_buckets_key"),
        Index("ix_analytics_buckets_metric_hour", "metric", "hour"),
        Index("ix_analytics_buckets_hour", "hour"),  # the roll-up replaces a range of hours, any metric
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40))
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)


# ``AnalyticsDaily.split``: which dimensions a daily row keeps. The others are '' / 0 in it.
SPLIT_NONE = ""  # none: the metric's day total
SPLIT_ALL = "*"  # every dimension, as the hourly buckets
SPLITS = (SPLIT_ALL, SPLIT_NONE, *DIMENSIONS)  # and one row set per single dimension (its name)
# The week-hour splits (``week_hour`` set): the day's hours by local hour of the week, with no dimension or with
# one of the report filters, for the fact kinds a weekday × hour heat map reads. A yearly heat map is then
# 365 × 24 rows of one split instead of every hourly bucket of the year.
WEEK_HOUR_DIMENSIONS = ("channel", "district", "team_id")
WEEK_HOUR_SPLITS = {"hour": None, **{f"hour:{name}": name for name in WEEK_HOUR_DIMENSIONS}}
WEEK_HOUR_KINDS = ("contact.started",)


def week_hour_split(dimension: str | None) -> str:
    """The split holding week-hour rows kept by ``dimension`` (None: by no dimension)."""
    return f"hour:{dimension}" if dimension else "hour"


class AnalyticsDaily(DimensionColumns, Base):
    """The hourly buckets of one local day (Asia/Shanghai; ``day`` is its start in UTC) summed, several ways:
    by every dimension (``split`` "*"), by none ("") and by each single dimension (its name). A report over
    whole days reads the narrowest split that holds its filter and breakdown: a yearly total is 365 rows
    per metric instead of every hour × dimension combination. Rebuilt from the buckets by the roll-up job
    whenever one of the day's hours is.

    ``hours``: in how many of the day's hours the row's facts occurred (an agent's hours with an accept, for
    occupancy). ``week_hour``: in the week-hour splits (``WEEK_HOUR_SPLITS``), the local hour of the week
    the row sums (weekday × 24 + hour, Monday 00:00 is 0); 0 in the other splits."""

    __tablename__ = "analytics_daily"
    __table_args__ = (
        # also the read index
        UniqueConstraint("split", "metric", "day", *DIMENSIONS, "week_hour", name="uq_analytics_daily_key"),
        Index("ix_analytics_daily_day", "day"),  # the roll-up replaces whole days
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    split: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(40))
    day: Mapped[datetime] = mapped_column(UTCDateTime)
    week_hour: Mapped[int] = mapped_column(Integer, default=0)
    count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    hours: Mapped[int] = mapped_column(Integer, default=0)


class AnalyticsRollupState(Base):
    """Where the roll-up job got to: the highest fact id it has rolled up, and when it last ran."""

    __tablename__ = "analytics_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    last_fact_id: Mapped[int] = mapped_column(Integer, default=0)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
