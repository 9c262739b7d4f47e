"""Rostering over REST: the forecast, a month's roster, generating, editing a cell, publishing (supervisors and
admins), and one's own published schedule (every desk)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.fields import Id
from gasdesk.rostering import service
from gasdesk.rostering.models import Roster, RosterAssignment, ShiftTemplate
from gasdesk.rostering.schemas import (
    AssignmentOut,
    CellIn,
    CellOut,
    ForecastOut,
    GenerateIn,
    MyShiftOut,
    RosterOut,
    UnmetOut,
    ViolationOut,
    parse_month,
)
from gasdesk.rostering.solver import Violation

router = APIRouter(prefix="/api/v1/roster", tags=["rostering"])


def month_of(text: str) -> date:
    """A YYYY-MM month from a query or form, else ``InvalidInput``."""
    try:
        return parse_month(text)
    except ValueError:
        raise InvalidInput("月份格式应为 YYYY-MM", code="invalid_month") from None


def assignment_out(row: RosterAssignment, codes: dict[int, str]) -> AssignmentOut:
    return AssignmentOut(
        user_id=row.user_id,
        day=row.day,
        shift_id=row.shift_id,
        shift_code=codes.get(row.shift_id, ""),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        duty_role=row.duty_role,
    )


def violation_out(v: Violation) -> ViolationOut:
    return ViolationOut(user_id=v.user_id, day=v.day, code=v.code, message=v.message)


async def roster_out(session: DbSession, roster: Roster) -> RosterOut:
    codes = {t.id: t.code for t in await service.shift_templates(session)}
    rows = await service.roster_assignments(session, roster)
    return RosterOut(
        id=roster.id,
        month=roster.month,
        status=roster.status,
        solve_status=roster.solve_status,
        objective=roster.objective,
        solve_seconds=roster.solve_seconds,
        unmet_total=roster.unmet_total,
        unmet=[
            UnmetOut(day=date.fromisoformat(d), slot=slot, short=short) for d, slot, short in roster.unmet
        ],
        assignments=[assignment_out(r, codes) for r in rows],
        violations=[violation_out(v) for v in await service.roster_violations(session, roster)],
    )


@router.get("/forecast", response_model=ForecastOut)
async def forecast(
    session: DbSession, month: Annotated[str, Query(max_length=7)], _: User = allow(*MANAGERS)
) -> ForecastOut:
    """Mean contacts and agents needed per weekday × half hour for ``month`` (from the weeks before it)."""
    rules = await service.current_rules(session)
    contacts, agents = await service.forecast_for(session, rules, month_of(month))
    return ForecastOut(
        history_weeks=rules.history_weeks,
        agents_per_contact=rules.agents_per_contact,
        contacts=[[round(c, 3) for c in row] for row in contacts],
        agents=agents,
    )


@router.get("/months/{month}", response_model=RosterOut)
async def month_roster(
    session: DbSession,
    month: str,
    status: Annotated[str, Query(max_length=12)] = "draft",
    _: User = allow(*MANAGERS),
) -> RosterOut:
    """The month's draft (``status=draft``) or published roster, with its unmet coverage and rule violations."""
    first = month_of(month)
    roster = await (
        service.published_roster(session, first)
        if status == "published"
        else service.draft_roster(session, first)
    )
    if roster is None:
        raise NotFound("该月没有此状态的排班表", code="roster_not_found")
    return await roster_out(session, roster)


@router.post("/generate", response_model=RosterOut)
async def generate(body: GenerateIn, session: DbSession, user: User = allow(*MANAGERS)) -> RosterOut:
    """Solve the month (CP-SAT, within ``time_limit_s`` or the rules' default) into a new draft."""
    roster = await service.generate_roster(
        session, Actor.of(user, "api"), month_of(body.month), time_limit_s=body.time_limit_s
    )
    return await roster_out(session, roster)


@router.put("/{roster_id}/cells", response_model=CellOut)
async def edit_cell(
    roster_id: Id, body: CellIn, session: DbSession, user: User = allow(*MANAGERS)
) -> CellOut:
    """Set one person's shift on one day (``shift_id`` null: off). Saved even when it breaks a rule: the answer
    lists every rule the roster now breaks."""
    roster = await service.access_roster(session, roster_id)
    result = await service.do_edit_cell(
        session, Actor.of(user, "api"), roster, body.user_id, body.day, body.shift_id
    )
    codes = {t.id: t.code for t in await service.shift_templates(session)}
    return CellOut(
        assignment=assignment_out(result.assignment, codes) if result.assignment else None,
        unmet_total=roster.unmet_total,
        violations=[violation_out(v) for v in result.violations],
    )


@router.post("/{roster_id}/publish", response_model=RosterOut)
async def publish(roster_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> RosterOut:
    """Publish a draft: the month's roster for agents and for emergency duty."""
    roster = await service.access_roster(session, roster_id)
    return await roster_out(session, await service.do_publish_roster(session, Actor.of(user, "api"), roster))


@router.get("/mine", response_model=list[MyShiftOut])
async def mine(
    session: DbSession, month: Annotated[str, Query(max_length=7)], user: User = allow(*OFFICE)
) -> list[MyShiftOut]:
    """Your shifts in the month's published roster."""
    return [shift_out(a, t) for a, t in await service.my_schedule(session, user, month_of(month))]


def shift_out(row: RosterAssignment, shift: ShiftTemplate) -> MyShiftOut:
    return MyShiftOut(
        day=row.day,
        shift_code=shift.code,
        shift_name=shift.name,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        duty_role=row.duty_role,
    )
