"""/admin/hours (节假日与营业时间): the national calendar's coverage, the current notice, local overrides."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.config import get_settings
from gasdesk.db import DbSession, commit, rollback
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.fields import Id
from gasdesk.hours import service
from gasdesk.hours.models import SERVICE_LINE_LABELS
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


async def _page(request: Request, session: DbSession, *, error: str | None = None, notice: str | None = None,
                status: int = 200) -> Response:
    today = service.local_now().date()
    found = await service.holiday_notice(session)
    days = await service.special_days(session, "counters", today, 60)
    return render(request, "hours_admin.html", {
        "overrides": await service.list_overrides(session, since=today - timedelta(days=30)),
        "lines": SERVICE_LINE_LABELS, "label": service.line_label, "warning": service.calendar_warning(),
        "holiday_notice": found.text if found else None, "days": days, "error": error, "notice": notice,
        "notice_days": get_settings().holiday_notice_days, "peak_s": get_settings().peak_wait_threshold_s,
    }, status)


@router.get("/admin/hours")
async def hours_page(request: Request, session: DbSession, saved: bool = False,
                     _: User = allow(Role.admin)) -> Response:
    return await _page(request, session, notice="已保存" if saved else None)


@router.post("/admin/hours")
async def hours_submit(request: Request, session: DbSession, admin: User = allow(Role.admin)) -> Response:
    form = await request.form()
    try:
        try:
            day = date.fromisoformat(str(form.get("day") or ""))
        except ValueError:
            raise InvalidInput("请填写日期（YYYY-MM-DD）", code="invalid_day") from None
        closed = form.get("closed") == "1"
        await service.do_set_override(session, Actor.of(admin, "web"), line=str(form.get("line") or ""), day=day,
                                      hours="" if closed else str(form.get("hours") or ""),
                                      note=str(form.get("note") or ""))
    except GasdeskError as exc:
        await rollback(session)
        return await _page(request, session, error=exc.message, status=exc.status_code)
    await commit(session)
    return RedirectResponse("/admin/hours?saved=1", status_code=303)


@router.post("/admin/hours/{override_id}/delete")
async def hours_delete(request: Request, override_id: Id, session: DbSession,
                       admin: User = allow(Role.admin)) -> Response:
    try:
        await service.do_delete_override(session, Actor.of(admin, "web"), override_id)
    except GasdeskError as exc:
        await rollback(session)
        return await _page(request, session, error=exc.message, status=exc.status_code)
    await commit(session)
    return RedirectResponse("/admin/hours?saved=1", status_code=303)
