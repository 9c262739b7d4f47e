"""Rostering (智能排班): configuration, generating a month's roster, manual edits, publishing, and who is on duty.

Configuration (each ``do_*`` audited): the rules (``do_save_rules``), shift templates (``do_save_shift``), leave
(``do_add_leave`` / ``do_remove_leave``) and preferences (``do_add_preference`` / ``do_remove_preference``).
Skills are the routing skill groups (``routing.models.AgentSkill``): a shift template lists the groups and
roles its people need.

A month: ``generate_roster`` reads everything into a ``solver.Problem`` (the requirement from
``forecast``), commits so no database connection waits on the solver, solves in a thread (CP-SAT, a time
limit), and stores a new draft (``do_store_roster``, audited, ``roster.updated``). ``do_edit_cell`` changes one
person's day and answers the hard rules the roster now breaks (in Chinese; never refused). ``do_publish_roster``
makes the draft the month's roster (the previous publication is superseded), notifies everyone on it and emits
``roster.published``. ``roster_on_duty`` answers the emergency escalation: who holds a duty role at an instant
by the published roster, or None when no published roster schedules that role then (the duty list decides).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.clock import as_utc, to_local, utcnow
from gasdesk.db import commit
from gasdesk.emergency.models import DUTY_ROLES
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.event_types import RosterPublished, RosterUpdated
from gasdesk.events import emit
from gasdesk.notifications.service import do_notify
from gasdesk.rostering.forecast import contact_forecast, local_midnight, month_demand, required_agents
from gasdesk.rostering.models import (
    SLOT_MIN,
    Roster,
    RosterAssignment,
    RosterLeave,
    RosterPreference,
    RosterSettings,
    RosterStatus,
    ShiftTemplate,
)
from gasdesk.rostering.schemas import LeaveIn, PreferenceIn, RulesIn, ShiftIn
from gasdesk.rostering.solver import (
    AgentSpec,
    Preference,
    Problem,
    Rules,
    ShiftSpec,
    Solution,
    Violation,
    find_violations,
    solve,
    unmet_coverage,
)
from gasdesk.routing.models import AgentSkill, SkillGroup

NOTIFY_KIND = "roster.published"
HISTORY_DAYS = 7  # days of the previous month's roster that count for rest, runs and the first week
MAX_LEAVE_DAYS = 366
# One solve at a time per process: two admins pressing 生成 together would otherwise share two cores.
_solve_lock = asyncio.Lock()


def month_days(month: date) -> list[date]:
    """Every day of ``month`` (any day of it)."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return [first + timedelta(days=i) for i in range((following - first).days)]


def month_key(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def shift_time_label(shift: ShiftTemplate | ShiftSpec) -> str:
    start, end = shift.start_min, shift.start_min + shift.duration_min
    tail = "次日" if end > 24 * 60 else ""
    end %= 24 * 60
    return f"{start // 60:02d}:{start % 60:02d}–{tail}{end // 60:02d}:{end % 60:02d}"


# ------------------------------------------------------------------ rules


async def current_rules(session: AsyncSession) -> RulesIn:
    """The rules in force (the defaults until an admin saves them)."""
    row = await session.get(RosterSettings, 1)
    return RulesIn.model_validate(row.rules) if row is not None and row.rules else RulesIn()


async def do_save_rules(session: AsyncSession, actor: Actor, rules: RulesIn) -> RulesIn:
    """Save the rules (already validated by ``RulesIn``). Audited with before/after."""
    before = await current_rules(session)
    row = await session.get(RosterSettings, 1)
    if row is None:
        row = RosterSettings(id=1)
        session.add(row)
    row.rules, row.updated_at, row.updated_by_id = rules.model_dump(), utcnow(), actor.user_id
    await session.flush()
    record_audit(
        session,
        actor,
        "config.roster_rules",
        "config",
        "roster_rules",
        before=before.model_dump(),
        after=rules.model_dump(),
    )
    return rules


def solver_rules(rules: RulesIn) -> Rules:
    return Rules(
        min_rest_min=round(rules.min_rest_hours * 60),
        max_consecutive_days=rules.max_consecutive_days,
        max_shifts_per_week=rules.max_shifts_per_week,
        max_shifts_per_month=rules.max_shifts_per_month,
    )


# ------------------------------------------------------------------ shift templates


async def shift_templates(session: AsyncSession, *, active_only: bool = False) -> list[ShiftTemplate]:
    query = select(ShiftTemplate).order_by(ShiftTemplate.position, ShiftTemplate.start_min, ShiftTemplate.id)
    if active_only:
        query = query.where(ShiftTemplate.active.is_(True))
    return list(await session.scalars(query))


async def check_shift(session: AsyncSession, data: ShiftIn, shift_id: int | None) -> None:
    """The references of a template: a known duty role, known roles and skill groups, a free code."""
    if data.duty_role and data.duty_role not in DUTY_ROLES:
        raise InvalidInput("未知的值班岗位", code="invalid_duty_role")
    if not data.roles or any(role not in Role.__members__ or role == Role.wall.value for role in data.roles):
        raise InvalidInput("班次的适用角色无效", code="invalid_shift_roles")
    if data.skill_ids:
        known = set(await session.scalars(select(SkillGroup.id).where(SkillGroup.id.in_(data.skill_ids))))
        if set(data.skill_ids) - known:
            raise InvalidInput("技能组不存在", code="invalid_shift_skill")
    clash = await session.scalar(select(ShiftTemplate.id).where(ShiftTemplate.code == data.code))
    if clash is not None and clash != shift_id:
        raise Conflict("班次代码已存在", code="shift_code_taken")


def _shift_snapshot(row: ShiftTemplate) -> dict[str, Any]:
    return {
        "code": row.code,
        "name": row.name,
        "start_min": row.start_min,
        "duration_min": row.duration_min,
        "covers_contacts": row.covers_contacts,
        "night": row.night,
        "min_staff": row.min_staff,
        "duty_role": row.duty_role,
        "skill_ids": list(row.skill_ids or []),
        "roles": list(row.roles or []),
        "active": row.active,
    }


async def do_save_shift(
    session: AsyncSession, actor: Actor, data: ShiftIn, shift_id: int | None = None
) -> ShiftTemplate:
    """Create a shift template, or change one (rosters already made keep their times). Audited."""
    await check_shift(session, data, shift_id)
    before = None
    if shift_id is None:
        row = ShiftTemplate()
        session.add(row)
    else:
        found = await session.get(ShiftTemplate, shift_id)
        if found is None:
            raise NotFound("班次不存在", code="shift_not_found")
        row, before = found, _shift_snapshot(found)
    hours, minutes = (int(part) for part in data.start.split(":"))
    row.code, row.name = data.code, data.name
    row.start_min, row.duration_min = hours * 60 + minutes, round(data.hours * 60)
    row.covers_contacts, row.night, row.min_staff = data.covers_contacts, data.night, data.min_staff
    row.duty_role = data.duty_role or None
    row.skill_ids, row.roles, row.active = sorted(set(data.skill_ids)), sorted(set(data.roles)), data.active
    await session.flush()
    record_audit(
        session,
        actor,
        "config.roster_shift",
        "config",
        f"roster_shift:{row.id}",
        before=before,
        after=_shift_snapshot(row),
    )
    return row


# ------------------------------------------------------------------ leave and preferences


async def _check_person(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active or user.role == Role.wall.value:
        raise InvalidInput("人员不存在或已停用", code="invalid_roster_user")
    return user


async def do_add_leave(session: AsyncSession, actor: Actor, data: LeaveIn) -> RosterLeave:
    """Record leave (hard: the solver never rosters the person then; an edit that does is warned). Audited."""
    await _check_person(session, data.user_id)
    if data.end_day < data.start_day:
        raise InvalidInput("请假结束日期不能早于开始日期", code="invalid_leave")
    if (data.end_day - data.start_day).days >= MAX_LEAVE_DAYS:
        raise InvalidInput("一次请假最长一年", code="invalid_leave")
    row = RosterLeave(
        user_id=data.user_id,
        start_day=data.start_day,
        end_day=data.end_day,
        note=data.note.strip(),
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    record_audit(
        session,
        actor,
        "roster.leave_add",
        "user",
        data.user_id,
        after=_leave_snapshot(row),
    )
    return row


def _leave_snapshot(row: RosterLeave) -> dict[str, object]:
    """A leave as its audit rows show it (added and removed alike)."""
    return {"leave_id": row.id, "start_day": row.start_day.isoformat(), "end_day": row.end_day.isoformat(),
            "note": row.note}


def _preference_snapshot(row: RosterPreference) -> dict[str, object]:
    return {"preference_id": row.id, "kind": row.kind, "shift_id": row.shift_id, "weekday": row.weekday}


async def do_remove_leave(session: AsyncSession, actor: Actor, leave_id: int) -> None:
    row = await session.get(RosterLeave, leave_id)
    if row is None:
        raise NotFound("请假记录不存在", code="leave_not_found")
    record_audit(
        session,
        actor,
        "roster.leave_remove",
        "user",
        row.user_id,
        before=_leave_snapshot(row),
    )
    await session.delete(row)
    await session.flush()


async def leave_list(session: AsyncSession, *, since: date | None = None) -> list[RosterLeave]:
    query = select(RosterLeave).order_by(RosterLeave.start_day, RosterLeave.id)
    if since is not None:
        query = query.where(RosterLeave.end_day >= since)
    return list(await session.scalars(query.limit(1000)))


async def do_add_preference(session: AsyncSession, actor: Actor, data: PreferenceIn) -> RosterPreference:
    """Record a wish (prefer / avoid a shift, a weekday or both). Audited."""
    await _check_person(session, data.user_id)
    if data.shift_id is None and data.weekday is None:
        raise InvalidInput("请选择班次或星期", code="invalid_preference")
    if data.shift_id is not None and await session.get(ShiftTemplate, data.shift_id) is None:
        raise InvalidInput("班次不存在", code="invalid_preference")
    row = RosterPreference(
        user_id=data.user_id,
        kind=data.kind,
        shift_id=data.shift_id,
        weekday=data.weekday,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    record_audit(
        session,
        actor,
        "roster.preference_add",
        "user",
        data.user_id,
        after=_preference_snapshot(row),
    )
    return row


async def do_remove_preference(session: AsyncSession, actor: Actor, preference_id: int) -> None:
    row = await session.get(RosterPreference, preference_id)
    if row is None:
        raise NotFound("偏好不存在", code="preference_not_found")
    record_audit(
        session,
        actor,
        "roster.preference_remove",
        "user",
        row.user_id,
        before=_preference_snapshot(row),
    )
    await session.delete(row)
    await session.flush()


async def preference_list(session: AsyncSession) -> list[RosterPreference]:
    return list(
        await session.scalars(
            select(RosterPreference).order_by(RosterPreference.user_id, RosterPreference.id).limit(1000)
        )
    )


# ------------------------------------------------------------------ the problem of a month


def _spec(row: ShiftTemplate) -> ShiftSpec:
    return ShiftSpec(
        id=row.id,
        code=row.code,
        name=row.name,
        start_min=row.start_min,
        duration_min=row.duration_min,
        covers_contacts=row.covers_contacts,
        night=row.night,
        min_staff=row.min_staff,
        duty_role=row.duty_role,
    )


async def rostered_people(
    session: AsyncSession, templates: list[ShiftTemplate]
) -> list[tuple[User, set[int]]]:
    """Active people whose role some active template takes, with the shift ids their skills and role allow."""
    roles = {role for t in templates if t.active for role in (t.roles or [])}
    if not roles:
        return []
    users = list(
        await session.scalars(
            select(User).where(User.is_active.is_(True), User.role.in_(roles)).order_by(User.id)
        )
    )
    skills: dict[int, set[int]] = defaultdict(set)
    for user_id, group_id in await session.execute(select(AgentSkill.user_id, AgentSkill.skill_group_id)):
        skills[user_id].add(group_id)
    people = []
    for user in users:
        allowed = {
            t.id
            for t in templates
            if t.active and user.role in (t.roles or []) and set(t.skill_ids or []) <= skills[user.id]
        }
        people.append((user, allowed))
    return people


async def forecast_for(
    session: AsyncSession, rules: RulesIn, month: date
) -> tuple[list[list[float]], list[list[int]]]:
    """(mean contacts, agents needed) per weekday × half hour, from the weeks before the month (or before today
    for the current and later months)."""
    until = min(month.replace(day=1), to_local(utcnow()).date())
    contacts = await contact_forecast(session, weeks=rules.history_weeks, until=until)
    return contacts, required_agents(
        contacts, agents_per_contact=rules.agents_per_contact, min_agents=rules.min_agents
    )


async def published_roster(session: AsyncSession, month: date) -> Roster | None:
    return await session.scalar(
        select(Roster)
        .where(Roster.month == month.replace(day=1), Roster.status == RosterStatus.published.value)
        .order_by(Roster.id.desc())
        .limit(1)
    )


async def draft_roster(session: AsyncSession, month: date) -> Roster | None:
    return await session.scalar(
        select(Roster)
        .where(Roster.month == month.replace(day=1), Roster.status == RosterStatus.draft.value)
        .order_by(Roster.id.desc())
        .limit(1)
    )


async def build_problem(
    session: AsyncSession,
    month: date,
    *,
    demand: dict[date, list[int]] | None = None,
    include_inactive_shifts: bool = False,
) -> Problem:
    """Everything the solver and the rule check need for ``month``: days, active shifts, people (eligibility,
    leave, wishes), the requirement (from the forecast unless given), the rules and the previous month's last
    week from its published roster."""
    days = month_days(month)
    templates = await shift_templates(session, active_only=not include_inactive_shifts)
    rules = await current_rules(session)
    people = await rostered_people(session, [t for t in templates if t.active])
    leave: dict[int, set[date]] = defaultdict(set)
    for row in await session.scalars(
        select(RosterLeave).where(RosterLeave.end_day >= days[0], RosterLeave.start_day <= days[-1])
    ):
        day = max(row.start_day, days[0])
        while day <= min(row.end_day, days[-1]):
            leave[row.user_id].add(day)
            day += timedelta(days=1)
    wishes: dict[int, list[Preference]] = defaultdict(list)
    for pref in await preference_list(session):
        wishes[pref.user_id].append(Preference(pref.kind, pref.shift_id, pref.weekday))
    agents = [
        AgentSpec(
            id=user.id,
            name=user.display_name,
            shift_ids=frozenset(allowed),
            leave=frozenset(leave[user.id]),
            preferences=tuple(wishes[user.id]),
        )
        for user, allowed in people
    ]
    if demand is None:
        _, need = await forecast_for(session, rules, month)
        demand = month_demand(days, need)
    history: dict[tuple[int, date], int] = {}
    previous = await published_roster(session, days[0] - timedelta(days=1))
    if previous is not None:
        for earlier in await session.scalars(
            select(RosterAssignment).where(
                RosterAssignment.roster_id == previous.id,
                RosterAssignment.day >= days[0] - timedelta(days=HISTORY_DAYS),
            )
        ):
            history[earlier.user_id, earlier.day] = earlier.shift_id
    shifts = [_spec(t) for t in templates]
    return Problem(
        days=days, shifts=shifts, agents=agents, demand=demand, rules=solver_rules(rules), history=history
    )


# ------------------------------------------------------------------ generating


def _times(day: date, shift: ShiftSpec | ShiftTemplate) -> tuple[datetime, datetime]:
    start = local_midnight(day) + timedelta(minutes=shift.start_min)
    return as_utc(start), as_utc(start + timedelta(minutes=shift.duration_min))


def _unmet_rows(unmet: list[tuple[date, int, int]]) -> list[list[Any]]:
    return [[day.isoformat(), slot, short] for day, slot, short in unmet]


async def do_store_roster(
    session: AsyncSession, actor: Actor, problem: Problem, solution: Solution
) -> Roster:
    """Store a solved month as the month's new draft (an older draft of the month is replaced). Audited;
    ``roster.updated`` after commit."""
    if solution.objective is None:
        raise Conflict(
            f"求解器未找到可行排班（{solution.status}），请放宽规则或延长求解时间", code="roster_infeasible"
        )
    month = problem.days[0]
    await session.execute(
        delete(Roster).where(Roster.month == month, Roster.status == RosterStatus.draft.value)
    )
    roster = Roster(
        month=month,
        status=RosterStatus.draft.value,
        solve_status=solution.status,
        objective=solution.objective,
        solve_seconds=round(solution.seconds, 3),
        demand={d.isoformat(): need for d, need in problem.demand.items()},
        unmet=_unmet_rows(solution.unmet),
        unmet_total=solution.unmet_total,
        created_at=utcnow(),
        created_by_id=actor.user_id,
    )
    session.add(roster)
    await session.flush()
    shifts = {s.id: s for s in problem.shifts}
    for (user_id, day), shift_id in sorted(solution.assignments.items()):
        shift = shifts[shift_id]
        starts_at, ends_at = _times(day, shift)
        session.add(
            RosterAssignment(
                roster_id=roster.id,
                user_id=user_id,
                day=day,
                shift_id=shift_id,
                starts_at=starts_at,
                ends_at=ends_at,
                duty_role=shift.duty_role,
            )
        )
    await session.flush()
    record_audit(
        session,
        actor,
        "roster.generate",
        "roster",
        roster.id,
        after={
            "month": month_key(month),
            "status": solution.status,
            "objective": solution.objective,
            "assignments": len(solution.assignments),
            "unmet_total": solution.unmet_total,
            "seconds": round(solution.seconds, 2),
        },
    )
    emit(
        session,
        RosterUpdated(roster_id=roster.id, month=month_key(month), status=roster.status, change="generated"),
    )
    return roster


async def generate_roster(
    session: AsyncSession, actor: Actor, month: date, *, time_limit_s: float | None = None
) -> Roster:
    """Read the month's problem, commit (so no connection — SQLite has one — waits on the solver), solve in a
    thread within the time limit (the rules' default unless given), then store the draft."""
    problem = await build_problem(session, month)
    if not problem.agents:
        raise InvalidInput("没有可排班的人员（检查班次的适用角色与技能）", code="roster_no_people")
    if not problem.shifts:
        raise InvalidInput("没有启用的班次", code="roster_no_shifts")
    limit = time_limit_s if time_limit_s is not None else (await current_rules(session)).time_limit_s
    await commit(session)
    async with _solve_lock:
        # CPU-bound C++ (the GIL is released while it searches): off the event loop.
        solution = await asyncio.to_thread(solve, problem, time_limit_s=limit)
    return await do_store_roster(session, actor, problem, solution)


# ------------------------------------------------------------------ reading, editing, publishing


async def access_roster(session: AsyncSession, roster_id: int) -> Roster:
    roster = await session.get(Roster, roster_id)
    if roster is None:
        raise NotFound("排班表不存在", code="roster_not_found")
    return roster


async def roster_assignments(session: AsyncSession, roster: Roster) -> list[RosterAssignment]:
    return list(
        await session.scalars(
            select(RosterAssignment)
            .where(RosterAssignment.roster_id == roster.id)
            .order_by(RosterAssignment.user_id, RosterAssignment.day)
        )
    )


def _demand_of(roster: Roster) -> dict[date, list[int]]:
    return {date.fromisoformat(day): list(need) for day, need in (roster.demand or {}).items()}


async def roster_problem(session: AsyncSession, roster: Roster) -> Problem:
    """The problem a stored roster is checked against: today's people, leave and rules, its own requirement
    (templates it uses that were since deactivated still count)."""
    return await build_problem(session, roster.month, demand=_demand_of(roster), include_inactive_shifts=True)


async def roster_violations(
    session: AsyncSession, roster: Roster, problem: Problem | None = None
) -> list[Violation]:
    """The hard rules a stored roster breaks now (leave or rules may have changed since it was made)."""
    problem = problem or await roster_problem(session, roster)
    rows = await roster_assignments(session, roster)
    return find_violations(problem, {(r.user_id, r.day): r.shift_id for r in rows})


@dataclass(frozen=True)
class CellResult:
    assignment: RosterAssignment | None
    violations: list[Violation]


async def do_edit_cell(
    session: AsyncSession, actor: Actor, roster: Roster, user_id: int, day: date, shift_id: int | None
) -> CellResult:
    """Put ``user_id`` on ``shift_id`` on ``day`` (None: a day off) and answer every hard rule the roster now
    breaks — saved anyway: managers know things the rules do not. Updates the roster's unmet coverage. Audited;
    ``roster.updated``; on a published roster the person is notified."""
    if roster.status == RosterStatus.superseded.value:
        raise Conflict("该排班表已被替代，不能修改", code="roster_superseded")
    if day.replace(day=1) != roster.month:
        raise InvalidInput("日期不在该排班月份内", code="invalid_roster_day")
    person = await _check_person(session, user_id)
    shift = None
    if shift_id is not None:
        shift = await session.get(ShiftTemplate, shift_id)
        if shift is None:
            raise InvalidInput("班次不存在", code="invalid_roster_shift")
    row = await session.scalar(
        select(RosterAssignment).where(
            RosterAssignment.roster_id == roster.id,
            RosterAssignment.user_id == user_id,
            RosterAssignment.day == day,
        )
    )
    before_shift = row.shift_id if row is not None else None
    names = {t.id: t.name for t in await shift_templates(session)}
    if shift is None:
        if row is not None:
            await session.delete(row)
        row = None
    else:
        starts_at, ends_at = _times(day, shift)
        if row is None:
            row = RosterAssignment(roster_id=roster.id, user_id=user_id, day=day)
            session.add(row)
        row.shift_id, row.starts_at, row.ends_at, row.duty_role = (
            shift.id,
            starts_at,
            ends_at,
            shift.duty_role,
        )
    await session.flush()
    problem = await roster_problem(session, roster)
    current = {(r.user_id, r.day): r.shift_id for r in await roster_assignments(session, roster)}
    unmet = unmet_coverage(problem, current)
    roster.unmet, roster.unmet_total = _unmet_rows(unmet), sum(short for _, _, short in unmet)
    await session.flush()
    violations = find_violations(problem, current)
    record_audit(
        session,
        actor,
        "roster.edit",
        "roster",
        roster.id,
        before={
            "user_id": user_id,
            "day": day.isoformat(),
            "shift": names.get(before_shift) if before_shift else None,
        },
        after={
            "user_id": user_id,
            "day": day.isoformat(),
            "shift": shift.name if shift else None,
            "violations": len(violations),
        },
    )
    emit(
        session,
        RosterUpdated(
            roster_id=roster.id, month=month_key(roster.month), status=roster.status, change="edited"
        ),
    )
    if roster.status == RosterStatus.published.value and before_shift != shift_id:
        was = names.get(before_shift, "休息") if before_shift else "休息"
        now = shift.name if shift else "休息"
        do_notify(
            session,
            person.id,
            NOTIFY_KIND,
            f"排班调整：{day.month}月{day.day}日 {was} → {now}",
            link=f"/roster/mine?month={month_key(roster.month)}",
        )
    return CellResult(row, violations)


async def do_publish_roster(session: AsyncSession, actor: Actor, roster: Roster) -> Roster:
    """Publish a draft: it becomes the month's roster (the previous publication is superseded), each person
    on it is notified (their shift count, a link to 我的排班), emergency duty reads it from now on. Audited;
    ``roster.published`` after commit."""
    if roster.status != RosterStatus.draft.value:
        raise Conflict("只能发布草稿排班表", code="roster_not_draft")
    previous = await published_roster(session, roster.month)
    if previous is not None:
        previous.status = RosterStatus.superseded.value
    roster.status, roster.published_at, roster.published_by_id = (
        RosterStatus.published.value,
        utcnow(),
        actor.user_id,
    )
    await session.flush()
    counts: dict[int, int] = defaultdict(int)
    for row in await roster_assignments(session, roster):
        counts[row.user_id] += 1
    key = month_key(roster.month)
    for user_id, count in sorted(counts.items()):
        do_notify(
            session,
            user_id,
            NOTIFY_KIND,
            f"{roster.month.year}年{roster.month.month}月排班已发布",
            f"本月共 {count} 个班次，请查看我的排班。",
            link=f"/roster/mine?month={key}",
        )
    record_audit(
        session,
        actor,
        "roster.publish",
        "roster",
        roster.id,
        before={"superseded": previous.id if previous else None},
        after={"month": key, "people": len(counts), "assignments": sum(counts.values())},
    )
    emit(session, RosterPublished(roster_id=roster.id, month=key, people=len(counts)))
    return roster


def coverage_summary(problem: Problem, roster: Roster) -> dict[str, Any]:
    """Figures for the page: the month's required agent half-hours, those short, and the 值班 days short."""
    required = sum(sum(row) for row in problem.demand.values())
    return {
        "required": required,
        "short": roster.unmet_total,
        "covered_pct": 100.0 if required == 0 else round(100 * (required - roster.unmet_total) / required, 1),
    }


# ------------------------------------------------------------------ who is on duty; one's own schedule


async def roster_on_duty(session: AsyncSession, duty_role: str, at: datetime) -> list[int] | None:
    """Active people holding ``duty_role`` at ``at`` by the published roster, earliest shift first; None when no
    published roster covering ``at`` schedules that role (the caller then uses its duty list)."""
    local_day = to_local(at).date()
    months = {local_day.replace(day=1), (local_day - timedelta(days=1)).replace(day=1)}
    ids = list(
        await session.scalars(
            select(Roster.id).where(Roster.month.in_(months), Roster.status == RosterStatus.published.value)
        )
    )
    if not ids:
        return None
    scheduled = await session.scalar(
        select(RosterAssignment.id)
        .where(RosterAssignment.roster_id.in_(ids), RosterAssignment.duty_role == duty_role)
        .limit(1)
    )
    if scheduled is None:
        return None
    rows = await session.scalars(
        select(RosterAssignment.user_id)
        .join(User, User.id == RosterAssignment.user_id)
        .where(
            RosterAssignment.roster_id.in_(ids),
            RosterAssignment.duty_role == duty_role,
            RosterAssignment.starts_at <= at,
            RosterAssignment.ends_at > at,
            User.is_active.is_(True),
        )
        .order_by(RosterAssignment.starts_at, RosterAssignment.id)
    )
    return list(dict.fromkeys(rows))


async def my_schedule(
    session: AsyncSession, user: User, month: date
) -> list[tuple[RosterAssignment, ShiftTemplate]]:
    """``user``'s shifts in the published roster of ``month``, by day."""
    roster = await published_roster(session, month)
    if roster is None:
        return []
    rows = await session.execute(
        select(RosterAssignment, ShiftTemplate)
        .join(ShiftTemplate, ShiftTemplate.id == RosterAssignment.shift_id)
        .where(RosterAssignment.roster_id == roster.id, RosterAssignment.user_id == user.id)
        .order_by(RosterAssignment.day)
    )
    return [(a, t) for a, t in rows.all()]


def slot_label(slot: int) -> str:
    start = slot * SLOT_MIN
    end = start + SLOT_MIN
    return f"{start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d}"
