"""Reports as JSON: ``GET /api/v1/reports/{key}`` (supervisors and admins)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.clock import to_local, utcnow
from gasdesk.db import DbSession
from gasdesk.fields import BoundedDate
from gasdesk.reports.builders import build_report, period_for
from gasdesk.reports.schemas import ReportOut, report_out

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

Filter = Annotated[str, Query(max_length=40)]


@router.get("/{key}", response_model=ReportOut)
async def get_report(key: str, session: DbSession, grain: Literal["day", "week", "month", "year"] = "day",
                     day: Annotated[BoundedDate | None, Query()] = None, team: Filter = "", channel: Filter = "",
                     district: Filter = "", _: User = allow(*MANAGERS)) -> dict[str, Any]:
    """Report ``key`` (overview, channels, ai, kb, tickets, followups, agents, peaks, topics, quality) for the
    day, week, month or year holding ``day`` (today in Asia/Shanghai by default), with the previous period."""
    period = period_for(grain, day or today())
    report = await build_report(session, key, period, filters={"team": team, "channel": channel,
                                                                "district": district})
    return report_out(report)


def today() -> date:
    """Today in the display zone."""
    return to_local(utcnow()).date()
