"""The contact forecast a roster is solved for: simple enough to explain on the page.

For each local weekday × hour, the mean number of contacts (``contacts``, the 进线量 of the reports) over the
last ``history_weeks`` whole weeks, read from the analytics roll-ups (``analytics.service.week_hour_figures``:
the daily week-hour rows, never the conversations). The roll-ups are hourly, so each half hour gets half of
its hour. The requirement is ⌈contacts per half hour × ``agents_per_contact``⌉ agents, at least
``min_agents`` in any half hour that expects contacts.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.service import week_hour_figures
from gasdesk.clock import local_zone
from gasdesk.rostering.models import SLOTS_PER_DAY

# A weekday's 48 half hours: index 0 is Monday.
WeekForecast = list[list[float]]


def local_midnight(day: date) -> datetime:
    """The start of ``day`` in the display zone (aware)."""
    return datetime.combine(day, time(0), tzinfo=local_zone())


async def contact_forecast(session: AsyncSession, *, weeks: int, until: date) -> WeekForecast:
    """Mean contacts per half hour for each weekday (Monday first), over the ``weeks`` whole weeks before
    ``until`` (a local day, not included)."""
    since = until - timedelta(days=7 * weeks)
    cells = await week_hour_figures(session, "contacts", local_midnight(since), local_midnight(until))
    forecast: WeekForecast = [[0.0] * SLOTS_PER_DAY for _ in range(7)]
    for (weekday, hour), value in cells.items():
        per_half_hour = float(value or 0.0) / weeks / 2
        forecast[weekday][2 * hour] = forecast[weekday][2 * hour + 1] = per_half_hour
    return forecast


def required_agents(
    forecast: WeekForecast, *, agents_per_contact: float, min_agents: int = 0
) -> list[list[int]]:
    """Agents needed per weekday × half hour: ⌈contacts × ratio⌉, at least ``min_agents`` where contacts are
    expected. The small epsilon keeps 2.0000000001 (float sums) from becoming 3."""
    need = []
    for row in forecast:
        need.append([max(math.ceil(c * agents_per_contact - 1e-9), min_agents) if c > 0 else 0 for c in row])
    return need


def month_demand(days: list[date], weekly_need: list[list[int]]) -> dict[date, list[int]]:
    """The requirement of each day of a month from its weekday's."""
    return {day: list(weekly_need[day.weekday()]) for day in days}
