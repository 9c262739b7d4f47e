"""Rostering pages: the month's roster (/admin/roster: generate, edit cells in place with rule warnings, publish),
its set-up (/admin/roster/setup: rules, shift templates, leave, preferences, the forecast) and one's own
published schedule (/roster/mine)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE, ROLE_LABELS, Role
from gasdesk.clock import to_local, utcnow
from gasdesk.db import DbSession, rollback
from gasdesk.emergency.models import DUTY_ROLES
from gasdesk.errors import GasdeskError
from gasdesk.fields import Id
from gasdesk.rostering import service
from gasdesk.rostering.api import month_of
from gasdesk.rostering.models import (
    PREFERENCE_LABELS,
    STATUS_LABELS,
    WEEKDAY_LABELS,
    PreferenceKind,
    Roster,
    RosterStatus,
)
from gasdesk.rostering.schemas import (
    CellIn,
    LeaveIn,
    PreferenceIn,
    RulesIn,
    ShiftIn,
    from_form,
    shift_form,
)
from gasdesk.rostering.solver import Violation, staff_shortfall
from gasdesk.routing.models import SkillGroup
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)
MAX_TIME_LIMIT_S = 300


def _this_month() -> date:
    return to_local(utcnow()).date().replace(day=1)


def _next_month(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1)


def _month_or_default(text: str | None) -> date:
    if text:
        try:
            return month_of(text)
        except GasdeskError:
            pass
    return _next_month(_this_month())


# ------------------------------------------------------------------ the month's roster


async def _board(
    session: AsyncSession, roster: Roster | None, month: date, violations: list[Violation] | None = None
) -> dict[str, Any]:
    """What the board shows: the grid (people × days), the rules it breaks, coverage and 值班 gaps."""
    shifts = await service.shift_templates(session)
    days = service.month_days(month)
    context: dict[str, Any] = {
        "roster": roster,
        "month": month,
        "month_key": service.month_key(month),
        "days": days,
        "weekdays": WEEKDAY_LABELS,
        "shifts": shifts,
        "status_labels": {s.value: label for s, label in STATUS_LABELS.items()},
    }
    if roster is None:
        return context
    problem = await service.roster_problem(session, roster)
    rows = await service.roster_assignments(session, roster)
    grid = {(r.user_id, r.day): r.shift_id for r in rows}
    if violations is None:
        violations = service.find_violations(problem, grid)
    people = {a.id: a.name for a in problem.agents}
    missing = {r.user_id for r in rows} - set(people)
    if missing:  # someone deactivated or moved role since: still on the grid
        for uid, name in await session.execute(
            select(User.id, User.display_name).where(User.id.in_(missing))
        ):
            people[uid] = name
    flagged: dict[tuple[int, date], list[str]] = defaultdict(list)
    for v in violations:
        flagged[v.user_id, v.day].append(v.message)
    short_by_day: dict[str, int] = defaultdict(int)
    for day, _slot, short in roster.unmet:
        short_by_day[day] += short
    shifts_by_id = {s.id: s for s in shifts}
    duty_gaps = [
        f"{d.month}月{d.day}日 {shifts_by_id[sid].name} 缺 {n} 人"
        for d, sid, n in staff_shortfall(problem, grid)
        if sid in shifts_by_id
    ]
    context.update(
        people=sorted(people.items(), key=lambda p: p[0]),
        grid=grid,
        flagged=flagged,
        violations=violations,
        short_by_day=short_by_day,
        duty_gaps=duty_gaps,
        shifts_by_id=shifts_by_id,
        leave={(a.id, d) for a in problem.agents for d in a.leave},
        coverage=service.coverage_summary(problem, roster),
        counts={uid: sum(1 for (u, _), _s in grid.items() if u == uid) for uid in people},
    )
    return context


async def _roster_context(session: AsyncSession, month: date) -> dict[str, Any]:
    draft = await service.draft_roster(session, month)
    published = await service.published_roster(session, month)
    context = await _board(session, draft or published, month)
    rules = await service.current_rules(session)
    context.update(
        published=published,
        draft=draft,
        time_limit_s=rules.time_limit_s,
        month_options=[
            service.month_key(m)
            for m in (_this_month(), _next_month(_this_month()), _next_month(_next_month(_this_month())))
        ],
    )
    return context


@router.get("/admin/roster")
async def roster_page(
    request: Request,
    session: DbSession,
    month: Annotated[str | None, Query(max_length=7)] = None,
    _: User = allow(*MANAGERS),
) -> Response:
    return render(request, "roster.html", await _roster_context(session, _month_or_default(month)))


@router.post("/admin/roster/generate")
async def generate(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    form = await request.form()
    month = _month_or_default(str(form.get("month") or ""))
    try:
        month = month_of(str(form.get("month") or ""))
        limit_text = str(form.get("time_limit_s") or "").strip()
        limit = min(max(int(limit_text), 1), MAX_TIME_LIMIT_S) if limit_text.isdigit() else None
        await service.generate_roster(session, Actor.of(user, "web"), month, time_limit_s=limit)
    except GasdeskError as exc:
        await rollback(session, user)
        context = await _roster_context(session, month)
        context["error"] = exc.message
        return render(request, "roster.html", context, exc.status_code)
    return RedirectResponse(f"/admin/roster?month={service.month_key(month)}", status_code=303)


@router.post("/admin/roster/{roster_id}/cell")
async def edit_cell(
    request: Request, roster_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    """htmx: the board again, with every rule the roster now breaks (saved anyway), or the error in place (htmx
    swaps only 2xx answers). A plain form post goes back to the page."""
    htmx = request.headers.get("HX-Request") == "true"
    form = await request.form()
    roster = await service.access_roster(session, roster_id)
    try:
        cell = from_form(
            CellIn, {"user_id": form.get("user_id"), "day": form.get("day"), "shift_id": form.get("shift_id")}
        )
        result = await service.do_edit_cell(
            session, Actor.of(user, "web"), roster, cell.user_id, cell.day, cell.shift_id
        )
    except GasdeskError as exc:
        await rollback(session, user)
        roster = await service.access_roster(session, roster_id)
        if not htmx:
            context = await _roster_context(session, roster.month)
            context["error"] = exc.message
            return render(request, "roster.html", context, exc.status_code)
        context = await _board(session, roster, roster.month)
        context["error"] = exc.message
        return render(request, "roster_board.html", context)
    if not htmx:
        return RedirectResponse(f"/admin/roster?month={service.month_key(roster.month)}", status_code=303)
    context = await _board(session, roster, roster.month, result.violations)
    context["notice"] = "已保存" + (
        f"，违反 {len(result.violations)} 条规则（见下方提示）" if result.violations else ""
    )
    return render(request, "roster_board.html", context)


@router.post("/admin/roster/{roster_id}/publish")
async def publish(
    request: Request, roster_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    try:
        roster = await service.access_roster(session, roster_id)
        await service.do_publish_roster(session, Actor.of(user, "web"), roster)
    except GasdeskError as exc:
        await rollback(session, user)
        context = await _roster_context(session, _this_month())
        context["error"] = exc.message
        return render(request, "roster.html", context, exc.status_code)
    return RedirectResponse(f"/admin/roster?month={service.month_key(roster.month)}", status_code=303)


# ------------------------------------------------------------------ set-up


async def _setup_context(session: AsyncSession, month: date) -> dict[str, Any]:
    rules = await service.current_rules(session)
    shifts = await service.shift_templates(session)
    contacts, agents = await service.forecast_for(session, rules, month)
    staff = list(
        await session.scalars(
            select(User).where(User.is_active.is_(True), User.role != Role.wall.value).order_by(User.id)
        )
    )
    names = {u.id: u.display_name for u in staff}
    groups = list(await session.scalars(select(SkillGroup).order_by(SkillGroup.id)))
    return {
        "rules": rules,
        "shifts": shifts,
        "staff": staff,
        "names": names,
        "groups": groups,
        "group_names": {g.id: g.name for g in groups},
        "duty_roles": DUTY_ROLES,
        "roles": [(r.value, ROLE_LABELS[r]) for r in Role if r != Role.wall],
        "role_labels": {r.value: label for r, label in ROLE_LABELS.items()},
        "leave": await service.leave_list(session, since=to_local(utcnow()).date() - timedelta(days=31)),
        "preferences": await service.preference_list(session),
        "preference_kinds": [(k.value, PREFERENCE_LABELS[k]) for k in PreferenceKind],
        "preference_labels": {k.value: label for k, label in PREFERENCE_LABELS.items()},
        "weekdays": WEEKDAY_LABELS,
        "shift_names": {s.id: s.name for s in shifts},
        "time_label": service.shift_time_label,
        "slot_label": service.slot_label,
        "contacts": contacts,
        "agents": agents,
        "month": month,
        "month_key": service.month_key(month),
    }


@router.get("/admin/roster/setup")
async def setup_page(
    request: Request,
    session: DbSession,
    month: Annotated[str | None, Query(max_length=7)] = None,
    _: User = allow(*MANAGERS),
) -> Response:
    return render(request, "roster_setup.html", await _setup_context(session, _month_or_default(month)))


async def _setup_change(
    request: Request, session: AsyncSession, user: User, change: Callable[[Actor], Awaitable[object]]
) -> Response:
    """Run one change of the setup page: back to the page on success, or the page again with the error (the
    transaction rolled back) — every setup form posts through here."""
    try:
        await change(Actor.of(user, "web"))
    except GasdeskError as exc:
        await rollback(session, user)
        context = await _setup_context(session, _month_or_default(None))
        context["error"] = exc.message
        return render(request, "roster_setup.html", context, exc.status_code)
    return RedirectResponse("/admin/roster/setup", status_code=303)


@router.post("/admin/roster/setup/rules")
async def save_rules(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    form = await request.form()
    return await _setup_change(request, session, user, lambda actor: service.do_save_rules(
        session, actor, from_form(RulesIn, {name: form.get(name) for name in RulesIn.model_fields})))


@router.post("/admin/roster/setup/shifts")
async def add_shift(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    form = await request.form()
    return await _setup_change(request, session, user, lambda actor: service.do_save_shift(
        session, actor, from_form(ShiftIn, shift_form(form))))


@router.post("/admin/roster/setup/shifts/{shift_id}")
async def save_shift(
    request: Request, shift_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    form = await request.form()
    return await _setup_change(request, session, user, lambda actor: service.do_save_shift(
        session, actor, from_form(ShiftIn, shift_form(form)), shift_id))


@router.post("/admin/roster/setup/leave")
async def add_leave(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    form = await request.form()
    return await _setup_change(request, session, user, lambda actor: service.do_add_leave(
        session, actor, from_form(LeaveIn, {k: form.get(k) for k in ("user_id", "start_day", "end_day", "note")})))


@router.post("/admin/roster/setup/leave/{leave_id}/delete")
async def remove_leave(
    request: Request, leave_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    return await _setup_change(request, session, user, lambda actor: service.do_remove_leave(session, actor, leave_id))


@router.post("/admin/roster/setup/preferences")
async def add_preference(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    form = await request.form()
    return await _setup_change(request, session, user, lambda actor: service.do_add_preference(
        session, actor, from_form(PreferenceIn, {k: form.get(k) for k in ("user_id", "kind", "shift_id", "weekday")})))


@router.post("/admin/roster/setup/preferences/{preference_id}/delete")
async def remove_preference(
    request: Request, preference_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    return await _setup_change(request, session, user,
                               lambda actor: service.do_remove_preference(session, actor, preference_id))


# ------------------------------------------------------------------ one's own schedule


@router.get("/roster/mine")
async def my_roster(
    request: Request,
    session: DbSession,
    month: Annotated[str | None, Query(max_length=7)] = None,
    user: User = allow(*OFFICE),
) -> Response:
    chosen = _this_month()
    if month:
        try:
            chosen = month_of(month)
        except GasdeskError:
            pass
    rows = await service.my_schedule(session, user, chosen)
    published = await service.published_roster(session, chosen)
    return render(
        request,
        "roster_mine.html",
        {
            "month": chosen,
            "rows": rows,
            "published": published,
            "weekdays": WEEKDAY_LABELS,
            "prev_key": service.month_key((chosen - timedelta(days=1)).replace(day=1)),
            "next_key": service.month_key(_next_month(chosen)),
            "duty_roles": DUTY_ROLES,
            "draft_status": RosterStatus.draft.value,
        },
    )
