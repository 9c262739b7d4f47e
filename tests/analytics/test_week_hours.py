"""The daily rows' measures beyond count and sum: a weekday × hour heat map read from the week-hour splits,
and the hours with facts (an agent's active hours) read from the daily rows, equal what the facts themselves
give — with and without a filter, over whole days and hours at a range's edges, after late and repeated
events; and the full rebuild writes them as the job does."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.analytics.facts import FactIn, write_facts
from gasdesk.analytics.models import WEEK_HOUR_SPLITS, AnalyticsDaily, AnalyticsFact
from gasdesk.analytics.rollup import rebuild_all, rollup
from gasdesk.analytics.service import hours_with, week_hour_figures
from gasdesk.db import transaction

DAY0 = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # Monday 2026-11-30 00:00 in Shanghai
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
KINDS = ("contact.started", "contact.started", "conversation.accepted", "kb.hit")


def _facts(n: int, seed: int, start: datetime, span: timedelta, tag: str) -> list[FactIn]:
    rng = random.Random(seed)
    return [FactIn(rng.choice(KINDS), start + timedelta(seconds=rng.random() * span.total_seconds()), f"{tag}:{i}",
                   value=float(rng.randint(1, 120)), channel=rng.choice(("webchat", "wechat", None)),
                   district=rng.choice(("和平区", "河西区", None)), team_id=rng.choice((None, 2, 3)),
                   agent_id=rng.choice((None, 7, 9)), intent=rng.choice(("repair", None)))
            for i in range(n)]


async def _write_and_roll(facts: list[FactIn]) -> None:
    async with transaction() as s:
        await write_facts(s, facts)
    async with transaction() as s:
        await rollup(s)


def _hour(fact: AnalyticsFact) -> datetime:
    return clock.as_utc(fact.occurred_at).replace(minute=0, second=0, microsecond=0)


def _selected(facts: list[AnalyticsFact], kind: str, since: datetime, until: datetime,
              where: dict[str, Any]) -> list[AnalyticsFact]:
    return [f for f in facts if f.kind == kind and since <= _hour(f) < until
            and all((getattr(f, name) or ("" if isinstance(v, str) else 0)) == v for name, v in where.items())]


def _heat_map(facts: list[AnalyticsFact], since: datetime, until: datetime,
              where: dict[str, Any]) -> dict[tuple[int, int], float]:
    """The oracle: contacts per local (weekday, hour), counted fact by fact."""
    cells = {(d, h): 0.0 for d in range(7) for h in range(24)}
    for fact in _selected(facts, "contact.started", since, until, where):
        local = clock.to_local(fact.occurred_at)
        cells[(local.weekday(), local.hour)] += 1
    return cells


RANGES = [
    (DAY0, DAY0 + 14 * DAY),  # two whole weeks: daily rows only
    (DAY0 + timedelta(hours=5), DAY0 + 9 * DAY + timedelta(hours=7)),  # hours at both edges
    (DAY0 + timedelta(hours=3), DAY0 + timedelta(hours=20)),  # within a day: hourly only
]
WHERES: list[dict[str, Any]] = [{}, {"channel": "wechat"}, {"district": "和平区"}, {"team_id": 2}, {"channel": ""},
                                {"agent_id": 7}, {"channel": "webchat", "district": "河西区"}]


async def test_heat_map_and_hours_from_the_daily_rows_equal_the_facts(session) -> None:
    clock.set_now(DAY0 + 15 * DAY)
    await _write_and_roll(_facts(1000, 1, DAY0 - 6 * HOUR, 14 * DAY + 12 * HOUR, "a"))
    # a late contact and accept (their events held up two weeks), each event delivered again
    late = [FactIn("contact.started", DAY0 + 2 * DAY + timedelta(hours=9, minutes=10), "late:1", channel="wechat",
                   district="和平区", team_id=2),
            FactIn("conversation.accepted", DAY0 + timedelta(days=3, hours=4, minutes=1), "late:2", agent_id=7)]
    await _write_and_roll(late + late)
    await _write_and_roll(late)
    facts = list(await session.scalars(select(AnalyticsFact)))
    for since, until in RANGES:
        for where in WHERES:
            found = await week_hour_figures(session, "contacts", since, until, where=where)
            assert found == _heat_map(facts, since, until, where), (since, until, where)
        # a metric without week-hour rows (a mean over accepts) is read from the hourly buckets, still right
        waits = await week_hour_figures(session, "avg_wait_s", since, until, where={"channel": "wechat"})
        for (day, hour), value in waits.items():
            cell = [f for f in _selected(facts, "conversation.accepted", since, until, {"channel": "wechat"})
                    if (clock.to_local(f.occurred_at).weekday(), clock.to_local(f.occurred_at).hour) == (day, hour)]
            assert value == (pytest.approx(sum(f.value for f in cell) / len(cell)) if cell else None)
        for where in ({}, {"agent_id": 7}, {"channel": "wechat"}, {"team_id": 2, "district": "和平区"}):
            expected: dict[str, set[datetime]] = {}
            for fact in _selected(facts, "conversation.accepted", since, until, where):
                expected.setdefault(str(fact.agent_id) if fact.agent_id else "", set()).add(_hour(fact))
            found_hours = await hours_with(session, "accepted", since, until, by="agent_id", where=where)
            assert found_hours == {key: len(hours) for key, hours in expected.items()}, (since, until, where)


async def test_week_hour_rows_are_few_and_follow_the_late_fact(session) -> None:
    clock.set_now(DAY0 + 3 * DAY)
    await _write_and_roll(_facts(400, 2, DAY0, 2 * DAY, "b"))
    rows = select(AnalyticsDaily.week_hour, AnalyticsDaily.count).where(
        AnalyticsDaily.split == "hour", AnalyticsDaily.metric == "contact.started", AnalyticsDaily.day == DAY0)
    before = dict((await session.execute(rows)).all())
    assert set(before) <= set(range(24))  # Monday's hours: weekday 0
    splits = set(await session.scalars(select(AnalyticsDaily.split).distinct()))
    assert set(WEEK_HOUR_SPLITS) <= splits
    kinds = set(await session.scalars(select(AnalyticsDaily.metric).where(AnalyticsDaily.split.like("hour%"))))
    assert kinds == {"contact.started"}
    clock.set_now(DAY0 + 3 * DAY + 2 * HOUR)
    late = FactIn("contact.started", DAY0 + timedelta(hours=10, minutes=59), "late:b", channel="sms")
    await _write_and_roll([late, late])
    session.expire_all()
    after = dict((await session.execute(rows)).all())
    assert after[10] == before.get(10, 0) + 1  # DAY0 is Monday 00:00 in Shanghai: Monday 10:59, cell 10
    assert {k: v for k, v in after.items() if k != 10} == {k: v for k, v in before.items() if k != 10}


async def test_rebuild_all_writes_the_same_measures_as_the_job(session) -> None:
    clock.set_now(DAY0 + 3 * DAY)
    await _write_and_roll(_facts(300, 4, DAY0, 2 * DAY, "d"))
    await _write_and_roll(_facts(100, 5, DAY0 - 20 * DAY, 25 * DAY, "e"))  # late ones, spread wide
    columns = (AnalyticsDaily.split, AnalyticsDaily.metric, AnalyticsDaily.day, AnalyticsDaily.channel,
               AnalyticsDaily.district, AnalyticsDaily.team_id, AnalyticsDaily.agent_id, AnalyticsDaily.week_hour,
               AnalyticsDaily.count, AnalyticsDaily.hours)
    incremental = set((await session.execute(select(*columns))).all())
    async with transaction() as s:
        await rebuild_all(s)
    session.expire_all()
    assert set((await session.execute(select(*columns))).all()) == incremental
