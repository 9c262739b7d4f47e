"""The roll-up job: facts → hourly buckets → daily rows, for every hour touched since the last run.

The hours to redo are those of the facts inserted since the watermark (the highest fact id rolled up), plus
those of facts inserted in the minute before the last run (on PostgreSQL a lower id can commit after a
higher one was seen). Each run of touched hours is replaced in one statement (``INSERT … SELECT … GROUP BY``
over all of its facts, the hour computed in SQL), then each local day holding one of them is summed again
from its hourly buckets; so a late or repeated event ends in the right hour and day, and running the job
twice changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    String,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.models import (
    DIMENSIONS,
    INT_DIMENSIONS,
    SPLIT_ALL,
    SPLITS,
    WEEK_HOUR_DIMENSIONS,
    WEEK_HOUR_KINDS,
    WEEK_HOUR_SPLITS,
    AnalyticsBucket,
    AnalyticsDaily,
    AnalyticsFact,
    AnalyticsRollupState,
)
from gasdesk.analytics.service import next_slot, slot_start
from gasdesk.clock import as_utc, to_local, utcnow
from gasdesk.db import UTCDateTime

EVERY_S = 60
OVERLAP = timedelta(seconds=60)
# A backlog (a year of history imported at once) is worked off over several runs, each short: the job runs
# in the web process on SQLite, whose one connection chat is waiting for.
FACTS_PER_PASS = 20_000
HOUR = timedelta(hours=1)


def hour_of(at: datetime) -> datetime:
    """The start of ``at``'s UTC hour."""
    return as_utc(at).replace(minute=0, second=0, microsecond=0)


def _fact_hour(dialect: str) -> ColumnElement[datetime]:
    """A fact's UTC hour start, computed by the database in the form the ``hour`` column stores."""
    if dialect == "postgresql":
        utc_wall = func.timezone("UTC", AnalyticsFact.occurred_at)
        return type_coerce(func.timezone("UTC", func.date_trunc("hour", utc_wall)), UTCDateTime)
    # SQLite stores UTC times as text 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's format): keep up to the hour.
    text_hour = type_coerce(func.substr(AnalyticsFact.occurred_at, 1, 13), String) + ":00:00.000000"
    return type_coerce(text_hour, UTCDateTime)


def _none(name: str) -> Any:
    return 0 if name in INT_DIMENSIONS else ""


async def _state(session: AsyncSession) -> AnalyticsRollupState:
    state = await session.get(AnalyticsRollupState, 1, with_for_update=True)
    if state is None:
        state = AnalyticsRollupState(id=1, last_fact_id=0, last_run_at=None)
        session.add(state)
        await session.flush()
    return state


def _runs(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours as [start, end) runs of consecutive hours."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


async def rollup(session: AsyncSession) -> dict[str, int]:
    """Periodic task ``analytics.rollup``: recompute the buckets of every hour touched since the last run, and
    the daily rows of their days."""
    state = await _state(session)
    started = utcnow()
    # The next FACTS_PER_PASS new facts (ids in order), and those inserted in the overlap.
    top = await session.scalar(select(func.max(AnalyticsFact.id)).where(
        AnalyticsFact.id.in_(select(AnalyticsFact.id).where(AnalyticsFact.id > state.last_fact_id)
                             .order_by(AnalyticsFact.id).limit(FACTS_PER_PASS))))
    top = int(top) if top is not None else state.last_fact_id
    since: list[ColumnElement[bool]] = [AnalyticsFact.id.between(state.last_fact_id + 1, top)]
    if state.last_run_at is not None:
        since.append(AnalyticsFact.inserted_at >= as_utc(state.last_run_at) - OVERLAP)
    hour = _fact_hour(session.get_bind().dialect.name)
    hours = sorted(set(await session.scalars(select(hour).where(or_(*since)).group_by(hour))))
    for start, end in _runs(hours):
        await rebuild_range(session, start, end, days=False)
    await rebuild_days(session, {slot_start(hour, "day") for hour in hours})
    state.last_fact_id = top
    state.last_run_at = started
    return {"hours": len(hours), "last_fact_id": top}


async def rebuild_range(session: AsyncSession, start: datetime, end: datetime, *, days: bool = True) -> int:
    """Replace the buckets of the UTC hours in [start, end) (hour starts) with the sums of their facts, in one
    statement, and (``days``) the daily rows of the local days they fall in; returns the number of buckets."""
    start, end = hour_of(start), hour_of(end)
    await session.execute(delete(AnalyticsBucket).where(AnalyticsBucket.hour >= start, AnalyticsBucket.hour < end))
    hour = _fact_hour(session.get_bind().dialect.name)
    # NULL and '' (or 0) are one bucket: dimensions are never NULL in the buckets
    dims = [func.coalesce(getattr(AnalyticsFact, name), _none(name)) for name in DIMENSIONS]
    grouped = (select(hour, AnalyticsFact.kind, *dims, func.count(),
                      func.coalesce(func.sum(AnalyticsFact.value), 0.0))
               .where(AnalyticsFact.occurred_at >= start, AnalyticsFact.occurred_at < end)
               .group_by(hour, AnalyticsFact.kind, *dims))
    result = await session.execute(insert(AnalyticsBucket).from_select(
        ["hour", "metric", *DIMENSIONS, "count", "total"], grouped))
    if days:
        await rebuild_days(session, {slot_start(at, "day") for at in _hours(start, end)})
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


def _hours(start: datetime, end: datetime) -> list[datetime]:
    out, at = [], start
    while at < end:
        out.append(at)
        at += HOUR
    return out


async def rebuild_hour(session: AsyncSession, hour: datetime) -> int:
    """Replace the buckets of one UTC hour (and its day's daily rows); returns the number of buckets."""
    return await rebuild_range(session, hour, hour_of(hour) + HOUR)


def week_hour_of(at: datetime) -> int:
    """The local hour of the week ``at`` falls in: weekday × 24 + hour (Monday 00:00–01:00 is 0)."""
    local = to_local(at)
    return local.weekday() * 24 + local.hour


def day_statements(day: datetime) -> list[Executable]:
    """The statements that replace the daily rows of the local day starting at ``day`` (UTC) with sums of its
    hourly buckets: one row set per split (every dimension, none, each single one), and the week-hour splits
    (``WEEK_HOUR_SPLITS``) for ``WEEK_HOUR_KINDS``. Plain Core statements, so a migration that changes the
    table can fill it with them too."""
    end = next_slot(day, "day")
    in_day = (AnalyticsBucket.hour >= day, AnalyticsBucket.hour < end)
    statements: list[Executable] = [delete(AnalyticsDaily).where(AnalyticsDaily.day == day)]
    into = ["split", "day", "metric", *DIMENSIONS, "week_hour", "count", "total", "hours"]
    for split in SPLITS:
        kept = DIMENSIONS if split == SPLIT_ALL else tuple(name for name in DIMENSIONS if name == split)
        columns = [getattr(AnalyticsBucket, name) if name in kept else literal(_none(name)) for name in DIMENSIONS]
        grouped = (select(literal(split, String), literal(day, UTCDateTime), AnalyticsBucket.metric, *columns,
                          literal(0), func.sum(AnalyticsBucket.count), func.sum(AnalyticsBucket.total),
                          func.count(func.distinct(AnalyticsBucket.hour)))
                   .where(*in_day)
                   .group_by(AnalyticsBucket.metric, *(getattr(AnalyticsBucket, name) for name in kept)))
        statements.append(insert(AnalyticsDaily).from_select(into, grouped))
    # Each bucket's local hour of the week, worked out here (the zone's rules are Python's) as a CASE over the
    # day's hours; grouped in an outer query so two UTC hours with one local hour (a DST fall-back) make one row.
    hours = _hours(day, end)
    week_hour = case(*((AnalyticsBucket.hour < at + HOUR, week_hour_of(at)) for at in hours[:-1]),
                     else_=week_hour_of(hours[-1]))
    source = (select(AnalyticsBucket.metric, AnalyticsBucket.hour, AnalyticsBucket.count, AnalyticsBucket.total,
                     *(getattr(AnalyticsBucket, name) for name in WEEK_HOUR_DIMENSIONS),
                     week_hour.label("week_hour"))
              .where(*in_day, AnalyticsBucket.metric.in_(WEEK_HOUR_KINDS)).subquery())
    for split, kept_name in WEEK_HOUR_SPLITS.items():
        columns = [source.c[name] if name == kept_name else literal(_none(name)) for name in DIMENSIONS]
        grouped = (select(literal(split, String), literal(day, UTCDateTime), source.c.metric, *columns,
                          source.c.week_hour, func.sum(source.c.count), func.sum(source.c.total),
                          func.count(func.distinct(source.c.hour)))
                   .group_by(source.c.metric, source.c.week_hour, *([source.c[kept_name]] if kept_name else [])))
        statements.append(insert(AnalyticsDaily).from_select(into, grouped))
    return statements


async def rebuild_days(session: AsyncSession, days: set[datetime]) -> None:
    """Replace the daily rows of each local day in ``days`` (its start, UTC) from its hourly buckets."""
    for day in sorted(days):
        for statement in day_statements(day):
            await session.execute(statement)


async def rebuild_all(session: AsyncSession) -> int:
    """Recompute every bucket and daily row from the facts (after a change to how they are made, or a bulk
    import), set-based, and move the job's watermark past them; returns the number of hours that have facts."""
    state = await _state(session)
    state.last_fact_id = int(await session.scalar(select(func.coalesce(func.max(AnalyticsFact.id), 0))) or 0)
    state.last_run_at = utcnow()
    first, last = (await session.execute(select(func.min(AnalyticsFact.occurred_at),
                                                func.max(AnalyticsFact.occurred_at)))).one()
    await session.execute(delete(AnalyticsBucket))
    await session.execute(delete(AnalyticsDaily))
    if first is None or last is None:
        return 0
    start, end = hour_of(first), hour_of(last) + HOUR
    await rebuild_range(session, start, end, days=False)
    day, days = slot_start(start, "day"), set()
    while day < end:
        days.add(day)
        day = next_slot(day, "day")
    await rebuild_days(session, days)
    return int(await session.scalar(select(func.count(func.distinct(AnalyticsBucket.hour)))) or 0)
