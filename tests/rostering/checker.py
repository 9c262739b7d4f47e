"""An independent check of a stored roster's hard rules, written apart from the solver's model and from
``rostering.solver.find_violations``: it reads the tables (assignments with their stored times, shift templates,
users, skills, leave, rules) and works on real datetimes, not on minute offsets."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.auth.models import User
from gasdesk.clock import as_utc, local_zone
from gasdesk.rostering.models import RosterAssignment, RosterLeave, RosterSettings, ShiftTemplate
from gasdesk.rostering.schemas import RulesIn
from gasdesk.routing.models import AgentSkill


async def hard_violations(session: AsyncSession, roster_id: int) -> list[str]:
    """Every broken hard rule of roster ``roster_id``, as plain strings (empty: none)."""
    rows = list(
        await session.scalars(select(RosterAssignment).where(RosterAssignment.roster_id == roster_id))
    )
    shifts = {s.id: s for s in await session.scalars(select(ShiftTemplate))}
    users = {u.id: u for u in await session.scalars(select(User))}
    skills: dict[int, set[int]] = defaultdict(set)
    for s in await session.scalars(select(AgentSkill)):
        skills[s.user_id].add(s.skill_group_id)
    leave: dict[int, list[tuple[date, date]]] = defaultdict(list)
    for row in await session.scalars(select(RosterLeave)):
        leave[row.user_id].append((row.start_day, row.end_day))
    settings = await session.get(RosterSettings, 1)
    rules = RulesIn.model_validate(settings.rules) if settings and settings.rules else RulesIn()
    problems: list[str] = []

    per_day = Counter((r.user_id, r.day) for r in rows)
    problems += [f"two shifts: {key}" for key, n in per_day.items() if n > 1]
    by_user: dict[int, list[RosterAssignment]] = defaultdict(list)
    for r in rows:
        by_user[r.user_id].append(r)
        shift = shifts[r.shift_id]
        zone = local_zone()
        expected_start = datetime(r.day.year, r.day.month, r.day.day, tzinfo=zone) + timedelta(
            minutes=shift.start_min
        )
        if as_utc(r.starts_at) != expected_start or as_utc(r.ends_at) - as_utc(r.starts_at) != timedelta(
            minutes=shift.duration_min
        ):
            problems.append(f"times of {r.user_id} {r.day}")
        if any(start <= r.day <= end for start, end in leave[r.user_id]):
            problems.append(f"on leave: {r.user_id} {r.day}")
        user = users[r.user_id]
        if user.role not in (shift.roles or []) or not set(shift.skill_ids or []) <= skills[r.user_id]:
            problems.append(f"not qualified: {r.user_id} {shift.code}")
    for user_id, mine in by_user.items():
        mine.sort(key=lambda r: r.starts_at)
        for before, after in zip(mine, mine[1:], strict=False):
            rest = as_utc(after.starts_at) - as_utc(before.ends_at)
            if rest < timedelta(hours=rules.min_rest_hours):
                problems.append(f"rest {rest} for {user_id} before {after.day}")
        days = sorted({r.day for r in mine})
        longest = run = 1
        for a, b in zip(days, days[1:], strict=False):
            run = run + 1 if b == a + timedelta(days=1) else 1
            longest = max(longest, run)
        if days and longest > rules.max_consecutive_days:
            problems.append(f"{longest} days in a row for {user_id}")
        weeks = Counter(d.isocalendar()[:2] for d in days)
        problems += [
            f"{n} shifts in week {w} for {user_id}" for w, n in weeks.items() if n > rules.max_shifts_per_week
        ]
        if len(days) > rules.max_shifts_per_month:
            problems.append(f"{len(days)} shifts in the month for {user_id}")
    return problems
