"""The daily roll-up above the hourly buckets: reads over whole local days (daily rows, in the split that
fits the filter and breakdown) and over hours at a range's edges (hourly buckets) give the figures counted
straight from the facts; a late fact corrects its day; the set-based full rebuild equals the job's work."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from gasdesk import clock
from gasdesk.analytics.facts import FactIn, write_facts
from gasdesk.analytics.models import (
    DIMENSIONS,
    SPLIT_NONE,
    AnalyticsBucket,
    AnalyticsDaily,
    AnalyticsFact,
    AnalyticsRollupState,
)
from gasdesk.analytics.rollup import rebuild_all, rollup
from gasdesk.analytics.service import breakdown_figures, figures, hours_with, series_figures
from gasdesk.db import transaction

# 2026-12-05 00:00 in Shanghai; the facts spread over three local days from here, with hours either side
DAY0 = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KINDS = ("contact.started", "conversation.accepted", "conversation.closed", "conversation.bot_only", "kb.hit")
CHANNELS = ("webchat", "wechat", None, "")
DISTRICTS = ("和平区", "河西区", None)


def _facts(n: int, seed: int, start: datetime, span: timedelta, tag: str) -> list[FactIn]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        at = start + timedelta(seconds=rng.random() * span.total_seconds())
        out.append(FactIn(rng.choice(KINDS), at, f"{tag}:{i}", value=float(rng.randint(1, 300)),
                          channel=rng.choice(CHANNELS), district=rng.choice(DISTRICTS),
                          agent_id=rng.choice((None, 0, 7, 9)), team_id=rng.choice((None, 2)),
                          intent=rng.choice(("bill_query", "repair", None)), detail=rng.choice(("agent", "bot", None))))
    return out


async def _write_and_roll(facts: list[FactIn]) -> None:
    async with transaction() as s:
        await write_facts(s, facts)
    async with transaction() as s:
        await rollup(s)


def _matches(fact: AnalyticsFact, where: dict[str, Any]) -> bool:
    return all((getattr(fact, name) or ("" if isinstance(value, str) else 0)) == value for name, value in where.items())


def _from_facts(facts: list[AnalyticsFact], since: datetime, until: datetime, where: dict[str, Any],
                by: str | None = None) -> dict[tuple[str, str], tuple[int, float]]:
    """(kind, value of ``by``) → (count, sum) of the facts whose hour starts in [since, until): the oracle."""
    sums: dict[tuple[str, str], tuple[int, float]] = {}
    for fact in facts:
        hour = clock.as_utc(fact.occurred_at).replace(minute=0, second=0, microsecond=0)
        if not (since <= hour < until) or not _matches(fact, where):
            continue
        key = getattr(fact, by) if by else None
        key = "" if key in (None, "", 0) else str(key)
        count, total = sums.get((fact.kind, key), (0, 0.0))
        sums[(fact.kind, key)] = (count + 1, total + fact.value)
    return sums


RANGES = [
    (DAY0, DAY0 + 3 * DAY),  # whole days: daily rows only
    (DAY0 + timedelta(hours=5), DAY0 + 2 * DAY + timedelta(hours=7)),  # hours at both edges
    (DAY0 - timedelta(hours=3), DAY0 + DAY),  # an edge before the first whole day
    (DAY0 + timedelta(hours=2, minutes=30), DAY0 + timedelta(hours=9, minutes=10)),  # within a day: hourly only
    (DAY0 - 400 * DAY, DAY0 + 400 * DAY),  # a wide range with empty days
]
WHERES: list[dict[str, Any]] = [{}, {"channel": "wechat"}, {"channel": ""}, {"agent_id": 7},
                                {"channel": "webchat", "district": "和平区"}]


@pytest.mark.parametrize("since,until", RANGES)
async def test_daily_and_hourly_reads_agree_with_the_facts(session, since, until) -> None:
    clock.set_now(DAY0 + 4 * DAY)
    await _write_and_roll(_facts(600, 1, DAY0 - timedelta(hours=6), 3 * DAY + timedelta(hours=12), "a"))
    facts = list(await session.scalars(select(AnalyticsFact)))
    for where in WHERES:
        expected = _from_facts(facts, since, until, where)
        found = await figures(session, list(KINDS), since, until, where=where)
        assert found == {kind: float(expected.get((kind, ""), (0, 0.0))[0]) for kind in KINDS}, where
        means = await figures(session, ["avg_wait_s"], since, until, where=where)
        count, total = expected.get(("conversation.accepted", ""), (0, 0.0))
        assert means["avg_wait_s"] == (pytest.approx(total / count) if count else None)
        for by in ("channel", "agent_id", "district", "detail"):
            oracle = _from_facts(facts, since, until, where, by)
            got = await breakdown_figures(session, "contact.started", since, until, by=by, where=where)
            assert got == {key: float(c) for (kind, key), (c, _) in oracle.items()
                           if kind == "contact.started"}, (where, by)
    # series per local day: each slot's figure is its own day's count (edges included)
    days = await series_figures(session, "contact.started", since, until, grain="day")
    hours = await series_figures(session, "contact.started", since, until, grain="hour")
    assert sum(v or 0.0 for _, v in days) == sum(v or 0.0 for _, v in hours)
    for at, value in days:
        if value:
            expected = _from_facts(facts, max(at, since), min(at + DAY, until), {})
            assert value == expected[("contact.started", "")][0], at
    assert sum(v or 0.0 for _, v in days) == _from_facts(facts, since, until, {}).get(("contact.started", ""),
                                                                                     (0, 0.0))[0]


async def test_a_late_fact_corrects_its_day_and_hour(session) -> None:
    clock.set_now(DAY0 + 3 * DAY)
    await _write_and_roll(_facts(200, 2, DAY0, 2 * DAY, "b"))
    whole = (DAY0, DAY0 + DAY)
    before = (await figures(session, ["contacts"], *whole))["contacts"]
    day_row = select(AnalyticsDaily.count).where(AnalyticsDaily.split == SPLIT_NONE, AnalyticsDaily.day == DAY0,
                                                 AnalyticsDaily.metric == "contact.started")
    assert await session.scalar(day_row) == before
    # two days later, a contact from the first day (its event was held up) and a duplicate of it
    clock.set_now(DAY0 + 3 * DAY + timedelta(hours=2))
    late = FactIn("contact.started", DAY0 + timedelta(hours=10, minutes=5), "late:1", channel="sms")
    await _write_and_roll([late, late])
    session.expire_all()
    assert (await figures(session, ["contacts"], *whole))["contacts"] == before + 1
    assert await session.scalar(day_row) == before + 1
    assert (await figures(session, ["contacts"], *whole, where={"channel": "sms"}))["contacts"] >= 1
    hour = DAY0 + timedelta(hours=10)
    facts = list(await session.scalars(select(AnalyticsFact)))
    assert dict(await series_figures(session, "contacts", *whole, grain="hour"))[hour] == \
        _from_facts(facts, hour, hour + timedelta(hours=1), {})[("contact.started", "")][0]
    rows = {tuple(r) for r in (await session.execute(select(AnalyticsDaily.split, AnalyticsDaily.metric,
                                                            AnalyticsDaily.count))).all()}
    async with transaction() as s:
        await rollup(s)  # nothing new: nothing changes
    session.expire_all()
    assert {tuple(r) for r in (await session.execute(select(AnalyticsDaily.split, AnalyticsDaily.metric,
                                                            AnalyticsDaily.count))).all()} == rows


def _rows(model: Any, at: Any, extra: tuple[str, ...] = ()) -> Any:
    return select(*(getattr(model, name) for name in (*extra, "metric", *DIMENSIONS, "count")), at, model.total)


async def _snapshot(session: Any) -> tuple[set[Any], set[Any]]:
    session.expire_all()
    buckets = {(*r[:-1], round(r[-1], 6)) for r in (await session.execute(_rows(AnalyticsBucket, AnalyticsBucket.hour)))}
    daily = {(*r[:-1], round(r[-1], 6)) for r in (await session.execute(_rows(AnalyticsDaily, AnalyticsDaily.day,
                                                                              ("split",))))}
    return buckets, daily


async def test_rebuild_all_equals_the_jobs_work(session) -> None:
    clock.set_now(DAY0 + 3 * DAY)
    await _write_and_roll(_facts(300, 3, DAY0, 2 * DAY, "c"))
    await _write_and_roll(_facts(100, 4, DAY0 - 30 * DAY, 40 * DAY, "d"))  # late ones, spread wide
    incremental = await _snapshot(session)
    assert incremental[0] and incremental[1]
    async with transaction() as s:
        hours = await rebuild_all(s)
    assert hours == len({row[-2] for row in incremental[0]})
    assert await _snapshot(session) == incremental
    async with transaction() as s:
        state = await s.get(AnalyticsRollupState, 1)
        assert state is not None and state.last_fact_id == await s.scalar(select(func.max(AnalyticsFact.id)))
    # hours_with (daily rows for whole days, buckets at the edges): an agent's hours with an accept
    found = await hours_with(session, "accepted", DAY0 - 30 * DAY, DAY0 + 10 * DAY, by="agent_id")
    facts = await session.scalars(select(AnalyticsFact).where(AnalyticsFact.kind == "conversation.accepted",
                                                              AnalyticsFact.agent_id == 7))
    assert found["7"] == len({clock.as_utc(f.occurred_at).replace(minute=0, second=0, microsecond=0) for f in facts})
