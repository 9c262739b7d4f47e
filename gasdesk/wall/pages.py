"""The wall screen (``/wall``), its thresholds page for admins (``/admin/wall``), the agent's dashboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import STAFF_DESK, WALL_VIEWERS, Role
from gasdesk.db import DbSession, after_commit, commit, rollback
from gasdesk.errors import InvalidInput
from gasdesk.wall.live import refresh_walls
from gasdesk.wall.service import (
    THRESHOLD_METRICS,
    agent_dashboard,
    do_set_thresholds,
    thresholds,
    wall_snapshot,
)
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/wall")
async def wall_page(request: Request, session: DbSession, user: User = allow(*WALL_VIEWERS)) -> Response:
    """Full screen, dark, large: the first snapshot is in the page, the rest arrives over ``/ws/wall``."""
    return render(request, "wall.html", {"snapshot": await wall_snapshot(session),
                                         "kiosk": user.role == Role.wall.value})


async def _thresholds_page(request: Request, session: DbSession, *, error: str | None = None,
                           notice: str | None = None, status: int = 200) -> Response:
    current = await thresholds(session)
    rows = [{"metric": metric, "label": label, "unit": unit, "amber": current[metric].amber,
             "red": current[metric].red} for metric, (label, unit, _) in THRESHOLD_METRICS.items()]
    return render(request, "wall_thresholds.html", {"rows": rows, "error": error, "notice": notice}, status)


@router.get("/admin/wall")
async def thresholds_page(request: Request, session: DbSession, saved: bool = False,
                          _: User = allow(Role.admin)) -> Response:
    return await _thresholds_page(request, session, notice="阈值已保存，大屏将随即更新" if saved else None)


@router.post("/admin/wall")
async def thresholds_submit(request: Request, session: DbSession, admin: User = allow(Role.admin)) -> Response:
    form = await request.form()
    values: dict[str, dict[str, Any]] = {
        metric: {"amber": form.get(f"{metric}.amber") or None, "red": form.get(f"{metric}.red") or None}
        for metric in THRESHOLD_METRICS}
    try:
        await do_set_thresholds(session, Actor.of(admin, "web"), values)
    except InvalidInput as exc:
        await rollback(session)
        return await _thresholds_page(request, session, error=exc.message, status=exc.status_code)
    after_commit(session, refresh_walls)
    await commit(session)
    return RedirectResponse("/admin/wall?saved=1", status_code=303)


@router.get("/agent/dashboard")
async def dashboard_page(request: Request, session: DbSession, user: User = allow(*STAFF_DESK)) -> Response:
    return render(request, "agent_dashboard.html", {"d": await agent_dashboard(session, user)})
