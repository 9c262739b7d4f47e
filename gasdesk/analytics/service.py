"""Reading the roll-ups: totals, time series and breakdowns of the catalogue's figures.

Every function reads the roll-ups only (never conversations or messages): the whole local days of a range
from ``analytics_daily``, in the narrowest split that holds the filter and breakdown asked for (a yearly
total is 365 rows per metric), and the hours at its edges from ``analytics_buckets``; series per hour read
the hourly buckets, a weekday × hour heat map (``week_hour_figures``) the daily week-hour rows. ``since``/
``until`` are aware datetimes, [since, until), counted by whole hours (a bucket is counted when its hour
starts in the range). ``where`` limits to dimension values (``{"channel": "wechat", "team_id": 3}``); the
dimensions are those of ``models.DIMENSIONS``. A metric is a catalogue name (``catalogue.CATALOGUE``:
``contacts``, ``ai_rate``…) or a fact kind, counted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.catalogue import Metric, figure, metric
from gasdesk.analytics.models import (
    DIMENSIONS,
    INT_DIMENSIONS,
    SPLIT_ALL,
    SPLIT_NONE,
    WEEK_HOUR_DIMENSIONS,
    WEEK_HOUR_KINDS,
    AnalyticsBucket,
    AnalyticsDaily,
    week_hour_split,
)
from gasdesk.clock import as_utc, local_zone, to_local
from gasdesk.errors import InvalidInput

SeriesGrain = Literal["hour", "day", "month"]


@dataclass(frozen=True)
class _Part:
    """One read of a range: the hourly buckets or the daily rows (of one split) over [start, end)."""

    model: type[AnalyticsBucket] | type[AnalyticsDaily]
    start: datetime
    end: datetime
    split: str = SPLIT_ALL

    @property
    def at(self) -> Any:
        return AnalyticsBucket.hour if self.model is AnalyticsBucket else AnalyticsDaily.day


def _check_where(where: dict[str, str | int] | None) -> dict[str, str | int]:
    checked: dict[str, str | int] = {}
    for name, value in (where or {}).items():
        if name not in DIMENSIONS:
            raise InvalidInput(f"未知的统计维度: {name}", code="invalid_dimension")
        if name in INT_DIMENSIONS:
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise InvalidInput(f"{name} 应为整数", code="invalid_dimension") from None
        checked[name] = value
    return checked


def _parts(since: datetime, until: datetime, where: dict[str, str | int], by: str | None = None, *,
           hourly: bool = False, split: str | None = None) -> list[_Part]:
    """The reads covering [since, until): daily rows for its whole local days (unless ``hourly``; in ``split``
    if given, else the narrowest that holds ``where`` and ``by``), hourly buckets for the rest. Both count the
    same hours: a day's row holds exactly its hours' buckets."""
    since, until = as_utc(since), as_utc(until)
    first = slot_start(since, "day")
    if first < since:
        first = next_slot(first, "day")
    last = slot_start(until, "day")
    if hourly or first >= last:
        return [_Part(AnalyticsBucket, since, until)]
    if split is None:
        used = set(where) | ({by} if by else set())
        split = SPLIT_NONE if not used else (next(iter(used)) if len(used) == 1 else SPLIT_ALL)
    parts = [_Part(AnalyticsDaily, first, last, split)]
    if since < first:
        parts.append(_Part(AnalyticsBucket, since, first))
    if last < until:
        parts.append(_Part(AnalyticsBucket, last, until))
    return parts


def _conditions(part: _Part, kinds: set[str], where: dict[str, str | int]) -> list[ColumnElement[bool]]:
    model = part.model
    conditions = [model.metric.in_(sorted(kinds)), part.at >= part.start, part.at < part.end]
    if model is AnalyticsDaily:
        conditions.append(AnalyticsDaily.split == part.split)
    conditions += [getattr(model, name) == value for name, value in where.items()]
    return conditions


def _sums_query(part: _Part, kinds: set[str], where: dict[str, str | int], *group: Any) -> Select[Any]:
    model = part.model
    return (select(*group, model.metric, func.sum(model.count), func.sum(model.total))
            .where(*_conditions(part, kinds, where)).group_by(*group, model.metric))


async def figures(session: AsyncSession, metrics: list[str], since: datetime, until: datetime, *,
                  where: dict[str, str | int] | None = None) -> dict[str, float | None]:
    """Each metric over [since, until); None where a mean or ratio has nothing to divide by."""
    wanted = [metric(name) for name in metrics]
    kinds = {kind for m in wanted for kind in m.kinds}
    checked = _check_where(where)
    sums: dict[str, tuple[int, float]] = {}
    for part in _parts(since, until, checked):
        for kind, count, total in await session.execute(_sums_query(part, kinds, checked)):
            before = sums.get(kind, (0, 0.0))
            sums[kind] = (before[0] + int(count or 0), before[1] + float(total or 0.0))
    return {m.name: figure(m, sums) for m in wanted}


async def totals(session: AsyncSession, metrics: list[str], since: datetime, until: datetime, *,
                 where: dict[str, str | int] | None = None) -> dict[str, float]:
    """Each metric over [since, until) (a mean or ratio of nothing is 0.0; ``figures`` tells it apart)."""
    found = await figures(session, metrics, since, until, where=where)
    return {name: value if value is not None else 0.0 for name, value in found.items()}


def slot_start(at: datetime, grain: SeriesGrain) -> datetime:
    """The start (UTC) of the hour, or of the local day or month, that ``at`` falls in."""
    if grain == "hour":
        return as_utc(at).replace(minute=0, second=0, microsecond=0)
    local = as_utc(at).astimezone(local_zone())
    local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "month":
        local = local.replace(day=1)
    return as_utc(local)


def next_slot(start: datetime, grain: SeriesGrain) -> datetime:
    """The start (UTC) of the hour, local day or local month after the one starting at ``start``."""
    if grain == "hour":
        return start + timedelta(hours=1)
    local = start.astimezone(local_zone())
    if grain == "day":
        return as_utc((local + timedelta(days=1, hours=3)).replace(hour=0))  # safe across a DST change
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return as_utc(local.replace(year=year, month=month, day=1))


def slots(since: datetime, until: datetime, grain: SeriesGrain) -> list[datetime]:
    """Every slot start from the one holding ``since`` up to ``until`` (exclusive)."""
    out, at = [], slot_start(since, grain)
    while at < as_utc(until):
        out.append(at)
        at = next_slot(at, grain)
    return out


async def series_figures(session: AsyncSession, metric_name: str, since: datetime, until: datetime, *,
                         grain: SeriesGrain, where: dict[str, str | int] | None = None
                         ) -> list[tuple[datetime, float | None]]:
    """``metric_name`` per slot; None where a mean or ratio has nothing to divide by."""
    m = metric(metric_name)
    checked = _check_where(where)
    per_slot: dict[datetime, dict[str, tuple[int, float]]] = defaultdict(dict)
    for part in _parts(since, until, checked, hourly=grain == "hour"):
        for at, kind, count, total in await session.execute(_sums_query(part, set(m.kinds), checked, part.at)):
            sums = per_slot[slot_start(at, grain)]
            before = sums.get(kind, (0, 0.0))
            sums[kind] = (before[0] + int(count or 0), before[1] + float(total or 0.0))
    return [(at, figure(m, per_slot.get(at, {}))) for at in slots(since, until, grain)]


async def series(session: AsyncSession, metric: str, since: datetime, until: datetime, *,
                 grain: Literal["hour", "day", "month"], where: dict[str, str | int] | None = None
                 ) -> list[tuple[datetime, float]]:
    """``metric`` per hour, local day or local month over [since, until), every slot present (0.0 when empty);
    each slot is named by its start in UTC."""
    found = await series_figures(session, metric, since, until, grain=grain, where=where)
    return [(at, value if value is not None else 0.0) for at, value in found]


async def breakdown_figures(session: AsyncSession, metric_name: str, since: datetime, until: datetime, *,
                            by: str, where: dict[str, str | int] | None = None) -> dict[str, float | None]:
    """``metric_name`` per value of dimension ``by`` (key "" for facts without one), largest first."""
    if by not in DIMENSIONS:
        raise InvalidInput(f"未知的统计维度: {by}", code="invalid_dimension")
    m: Metric = metric(metric_name)
    checked = _check_where(where)
    per_key: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
    for part in _parts(since, until, checked, by):
        column = getattr(part.model, by)
        for key, kind, count, total in await session.execute(_sums_query(part, set(m.kinds), checked, column)):
            label = "" if key in (None, "", 0) else str(key)
            before = per_key[label].get(kind, (0, 0.0))
            per_key[label][kind] = (before[0] + int(count or 0), before[1] + float(total or 0.0))
    found = {key: figure(m, sums) for key, sums in per_key.items()}
    # only the keys where the figure's own kind occurred (a ratio's base alone is not a row)
    found = {key: value for key, value in found.items() if per_key[key].get(m.kind, (0, 0.0))[0]}
    return dict(sorted(found.items(), key=lambda item: (-(item[1] or 0.0), item[0])))


async def breakdown(session: AsyncSession, metric: str, since: datetime, until: datetime, *, by: str,
                    where: dict[str, str | int] | None = None) -> dict[str, float]:
    """``metric`` per value of the dimension ``by`` (``channel``, ``team_id``, ``intent``…), largest first;
    facts without a value for ``by`` come under the key ""."""
    found = await breakdown_figures(session, metric, since, until, by=by, where=where)
    return {key: value if value is not None else 0.0 for key, value in found.items()}


async def hours_with(session: AsyncSession, metric_name: str, since: datetime, until: datetime, *, by: str,
                     where: dict[str, str | int] | None = None) -> dict[str, int]:
    """Per value of dimension ``by``: in how many hours of [since, until) the metric's kind occurred (an
    agent's hours at work, approximated by the hours they took conversations). Whole days read the daily rows'
    ``hours`` of the split ``by`` when ``where`` names no other dimension (a row of a split by two dimensions
    would count an hour once per combination); otherwise the hourly buckets."""
    if by not in DIMENSIONS:
        raise InvalidInput(f"未知的统计维度: {by}", code="invalid_dimension")
    checked = _check_where(where)
    kinds = {metric(metric_name).kind}
    found: dict[str, int] = defaultdict(int)
    for part in _parts(since, until, checked, by, hourly=bool(set(checked) - {by}), split=by):
        column = getattr(part.model, by)
        measure = (func.sum(AnalyticsDaily.hours) if part.model is AnalyticsDaily
                   else func.count(func.distinct(AnalyticsBucket.hour)))
        rows = await session.execute(select(column, measure).where(*_conditions(part, kinds, checked))
                                     .group_by(column))
        for key, n in rows:
            found["" if key in (None, "", 0) else str(key)] += int(n or 0)
    return dict(found)


def _week_hour_split(kinds: set[str], where: dict[str, str | int]) -> str | None:
    """The week-hour split that holds ``kinds`` with ``where`` (no filter or one report filter), if any."""
    if not kinds <= set(WEEK_HOUR_KINDS) or len(where) > 1:
        return None
    dimension = next(iter(where), None)
    if dimension is not None and dimension not in WEEK_HOUR_DIMENSIONS:
        return None
    return week_hour_split(dimension)


async def week_hour_figures(session: AsyncSession, metric_name: str, since: datetime, until: datetime, *,
                            where: dict[str, str | int] | None = None) -> dict[tuple[int, int], float | None]:
    """``metric_name`` per local (weekday, hour) over [since, until) — Monday is 0 — every one of the 168
    present (None where a mean or ratio has nothing to divide by): a heat map's cells. Whole days read the
    daily week-hour rows when the metric and filter have them (``WEEK_HOUR_KINDS``, no filter or one of
    ``WEEK_HOUR_DIMENSIONS``), a few thousand rows for a year; otherwise, and at the edges, the hourly buckets."""
    m = metric(metric_name)
    checked = _check_where(where)
    kinds = set(m.kinds)
    split = _week_hour_split(kinds, checked)
    per_cell: dict[int, dict[str, tuple[int, float]]] = defaultdict(dict)

    def add(cell: int, kind: str, count: Any, total: Any) -> None:
        before = per_cell[cell].get(kind, (0, 0.0))
        per_cell[cell][kind] = (before[0] + int(count or 0), before[1] + float(total or 0.0))

    for part in _parts(since, until, checked, hourly=split is None, split=split):
        if part.model is AnalyticsDaily:
            for cell, kind, count, total in await session.execute(
                    _sums_query(part, kinds, checked, AnalyticsDaily.week_hour)):
                add(int(cell), kind, count, total)
        else:
            for at, kind, count, total in await session.execute(_sums_query(part, kinds, checked, part.at)):
                local = to_local(at)
                add(local.weekday() * 24 + local.hour, kind, count, total)
    return {divmod(cell, 24): figure(m, per_cell.get(cell, {})) for cell in range(7 * 24)}
