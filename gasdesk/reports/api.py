"""Reports as JSON: ``GET /api/v1/reports/{key}`` (supervisors and admins), one route per report so the
other ``/api/v1/reports/…`` routes (SLA compliance, 回访 outcomes) keep their paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.clock import to_local, utcnow
from gasdesk.db import DbSession
from gasdesk.fields import BoundedDate
from gasdesk.reports.builders import REPORT_TITLES, build_report, period_for
from gasdesk.reports.schemas import ReportOut, report_out

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

Filter = Annotated[str, Query(max_length=40)]


def today() -> date:
    """Today in the display zone."""
    return to_local(utcnow()).date()


def _report_route(key: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def get_report(session: DbSession, grain: Literal["day", "week", "month", "year"] = "day",
                         day: Annotated[BoundedDate | None, Query()] = None, team: Filter = "",
                         channel: Filter = "", district: Filter = "", _: User = allow(*MANAGERS)) -> dict[str, Any]:
        period = period_for(grain, day or today())
        report = await build_report(session, key, period, filters={"team": team, "channel": channel,
                                                                    "district": district})
        return report_out(report)

    return get_report


for _key, _title in REPORT_TITLES.items():
    router.add_api_route(
        f"/{_key}", _report_route(_key), methods=["GET"], response_model=ReportOut, name=f"report_{_key}",
        summary=f"{_title}报表",
        description=f"The {_key} report for the day, week, month or year holding `day` (today in Asia/Shanghai by "
                    "default), with the previous period's figures; `team` (id), `channel`, `district` limit it.")
