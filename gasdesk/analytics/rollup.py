"""The roll-up job: facts → hourly buckets, for every hour touched since the last run.

The hours to redo are those of the facts inserted since the watermark (the highest fact id rolled up), plus
those of facts inserted in the minute before the last run (on PostgreSQL a lower id can commit after a
higher one was seen). Each such hour's buckets are deleted and summed again from all of that hour's facts,
so a late or repeated event ends in the right bucket and running the job twice changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.models import (
    DIMENSIONS,
    INT_DIMENSIONS,
    AnalyticsBucket,
    AnalyticsFact,
    AnalyticsRollupState,
)
from gasdesk.clock import as_utc, utcnow
from gasdesk.db import table_of

EVERY_S = 60
OVERLAP = timedelta(seconds=60)
HOURS_PER_PASS = 2000  # a backlog (a year of history imported at once) is worked off over several runs


def hour_of(at: datetime) -> datetime:
    """The start of ``at``'s UTC hour."""
    return as_utc(at).replace(minute=0, second=0, microsecond=0)


async def _state(session: AsyncSession) -> AnalyticsRollupState:
    state = await session.get(AnalyticsRollupState, 1, with_for_update=True)
    if state is None:
        state = AnalyticsRollupState(id=1, last_fact_id=0, last_run_at=None)
        session.add(state)
        await session.flush()
    return state


async def rollup(session: AsyncSession) -> dict[str, int]:
    """Periodic task ``analytics.rollup``: recompute the buckets of every hour touched since the last run."""
    state = await _state(session)
    started = utcnow()
    since: list[ColumnElement[bool]] = [AnalyticsFact.id > state.last_fact_id]
    if state.last_run_at is not None:
        since.append(AnalyticsFact.inserted_at >= as_utc(state.last_run_at) - OVERLAP)
    touched = select(AnalyticsFact.id, AnalyticsFact.occurred_at).where(or_(*since))
    hours: set[datetime] = set()
    top = state.last_fact_id
    for fact_id, occurred_at in await session.execute(touched.order_by(AnalyticsFact.id)):
        hours.add(hour_of(occurred_at))
        top = max(top, int(fact_id))
        if len(hours) >= HOURS_PER_PASS:
            break
    for hour in sorted(hours):
        await rebuild_hour(session, hour)
    state.last_fact_id = top
    state.last_run_at = started
    return {"hours": len(hours), "last_fact_id": top}


async def rebuild_hour(session: AsyncSession, hour: datetime) -> int:
    """Replace the buckets of one UTC hour with the sums of its facts; returns the number of buckets."""
    end = hour + timedelta(hours=1)
    await session.execute(delete(AnalyticsBucket).where(AnalyticsBucket.hour == hour))
    columns = [getattr(AnalyticsFact, name) for name in DIMENSIONS]
    grouped = await session.execute(
        select(AnalyticsFact.kind, *columns, func.count(), func.coalesce(func.sum(AnalyticsFact.value), 0.0))
        .where(AnalyticsFact.occurred_at >= hour, AnalyticsFact.occurred_at < end)
        .group_by(AnalyticsFact.kind, *columns))
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for kind, *rest in grouped:
        dims, count, total = rest[:len(DIMENSIONS)], int(rest[-2]), float(rest[-1])
        values = {name: (value if value is not None else (0 if name in INT_DIMENSIONS else ""))
                  for name, value in zip(DIMENSIONS, dims, strict=True)}
        key = (kind, *values.values())
        if key in merged:  # NULL and '' (or 0) grouped apart in SQL are one bucket
            merged[key]["count"] += count
            merged[key]["total"] += total
            continue
        merged[key] = {"metric": kind, "hour": hour, **values, "count": count, "total": total}
    rows = list(merged.values())
    if rows:
        await session.execute(table_of(AnalyticsBucket).insert(), rows)
    return len(rows)


async def rebuild_all(session: AsyncSession) -> int:
    """Recompute every hour that has facts (after a change to how buckets are made); returns the hours."""
    hours = {hour_of(at) for at in await session.scalars(select(AnalyticsFact.occurred_at))}
    for hour in sorted(hours):
        await rebuild_hour(session, hour)
    return len(hours)

