"""The report pages (/reports): a tab per report, the period picker, filters, KPI tiles with the change
against the previous period, and ECharts charts drawn from the same JSON the API returns."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.conversations.models import CHANNEL_LABELS
from gasdesk.db import DbSession
from gasdesk.fields import BoundedDate
from gasdesk.reports.api import today
from gasdesk.reports.builders import GRAIN_LABELS, REPORT_TITLES, build_report, period_for
from gasdesk.reports.model import Kpi
from gasdesk.reports.schemas import ReportOut, report_out
from gasdesk.tickets.models import Team
from gasdesk.web.templating import render, templates

router = APIRouter(include_in_schema=False)


def number(value: float | int) -> str:
    """A figure as people read it: whole numbers without decimals, others with at most two."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


templates.env.filters["rp_number"] = number

Filter = Annotated[str, Query(max_length=40)]


def change(kpi: Kpi) -> dict[str, str] | None:
    """How a KPI moved against the previous period: the text and whether that is good, bad or neither."""
    if kpi.value is None or kpi.previous is None:
        return None
    delta = kpi.value - kpi.previous
    if kpi.unit == "%":
        text = f"{delta:+.1f} 个百分点"
    elif kpi.previous:
        text = f"{100 * delta / kpi.previous:+.1f}%"
    else:
        text = "新增" if delta else "持平"
    if not delta or kpi.better == "neither":
        tone = "flat"
    else:
        tone = "good" if (delta > 0) == (kpi.better == "higher") else "bad"
    return {"text": text, "tone": tone}


@router.get("/reports")
async def reports_home(request: Request, session: DbSession, grain: Literal["day", "week", "month", "year"] = "day",
                       day: Annotated[BoundedDate | None, Query()] = None, team: Filter = "", channel: Filter = "",
                       district: Filter = "", user: User = allow(*MANAGERS)) -> Response:
    return await report_page(request, session, "overview", grain, day, team, channel, district, user)


@router.get("/reports/{key}")
async def report_page(request: Request, session: DbSession, key: str,
                      grain: Literal["day", "week", "month", "year"] = "day",
                      day: Annotated[BoundedDate | None, Query()] = None, team: Filter = "", channel: Filter = "",
                      district: Filter = "", _: User = allow(*MANAGERS)) -> Response:
    chosen: date = day or today()
    filters = {"team": team, "channel": channel, "district": district}
    report = await build_report(session, key, period_for(grain, chosen), filters=filters)
    data: dict[str, Any] = ReportOut.model_validate(report_out(report)).model_dump(mode="json")
    teams = (await session.execute(select(Team.id, Team.name).order_by(Team.name))).all()
    return render(request, "reports.html", {
        "report": report, "data": data, "key": key, "tabs": REPORT_TITLES, "grain": grain,
        "grains": GRAIN_LABELS, "day": chosen.isoformat(), "filters": filters, "teams": teams,
        "channels": {str(k): v for k, v in CHANNEL_LABELS.items()}, "change": change,
        "query": urlencode({"grain": grain, "day": chosen.isoformat(), **filters})})
