"""Opening state of a service line, branch or skill group; local overrides (admins); the current notice."""

from __future__ import annotations

from fastapi import APIRouter

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow, public
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, Role
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.hours import service
from gasdesk.hours.models import HoursOverride
from gasdesk.hours.schemas import CalendarOut, NoticeOut, OpeningStateOut, OverrideIn, OverrideOut

router = APIRouter(prefix="/api/v1/hours", tags=["hours"])


def override_out(row: HoursOverride) -> OverrideOut:
    return OverrideOut(id=row.id, line=row.line, day=row.day, hours=row.hours, note=row.note)


@router.get("/state", response_model=OpeningStateOut)
async def state(session: DbSession, kind: str = "counters", _: User = allow(*ALL_ROLES)) -> OpeningStateOut:
    """``kind``: counters, hotline, branch:<id>, group:<id or code>."""
    now = await service.opening_state(session, kind[:60])
    return OpeningStateOut(kind=kind[:60], is_open=now.is_open, hours_today=now.hours_today, note=now.note,
                           day_kind=now.kind.value, holiday=now.holiday)


@router.get("/notice", response_model=NoticeOut, dependencies=[public()])
async def notice(session: DbSession) -> NoticeOut:
    """The holiday notice residents see now (public: the web chat shows it)."""
    found = await service.holiday_notice(session)
    return NoticeOut(text=found.text if found else None)


@router.get("/calendar", response_model=CalendarOut)
async def calendar(_: User = allow(Role.admin, Role.supervisor)) -> CalendarOut:
    """Whether the holiday library covers the days ahead (else enter overrides for that year)."""
    return CalendarOut(warning=service.calendar_warning())


@router.get("/overrides", response_model=list[OverrideOut])
async def list_overrides(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[OverrideOut]:
    return [override_out(r) for r in await service.list_overrides(session)]


@router.put("/overrides", response_model=OverrideOut)
async def set_override(body: OverrideIn, session: DbSession, admin: User = allow(Role.admin)) -> OverrideOut:
    row = await service.do_set_override(session, Actor.of(admin, "api"), line=body.line, day=body.day,
                                        hours=body.hours, note=body.note)
    return override_out(row)


@router.delete("/overrides/{override_id}", status_code=204)
async def delete_override(override_id: Id, session: DbSession, admin: User = allow(Role.admin)) -> None:
    await service.do_delete_override(session, Actor.of(admin, "api"), override_id)
