"""The roster problem, its CP-SAT model and the rule check used for manual edits.

Everything here is pure (no database): ``rostering.service`` builds a ``Problem`` from the tables, ``solve``
returns the best roster OR-Tools' CP-SAT finds within the time limit, and ``find_violations`` re-checks any
assignment (an admin's edit) against the hard rules, in Chinese.

The model. ``x[a, d, s]`` = person ``a`` works shift ``s`` on day ``d``; it exists only where ``a`` may work ``s``
(skills and role) and is not on leave on ``d`` — so leave and skills hold by construction. Hard: at most one
shift a day; at least ``min_rest_min`` between the end of one shift and the start of the next (pairs of days
up to two apart, and the last days of the previous month); at most ``max_consecutive_days`` days worked in a
row; at most ``max_shifts_per_week`` per calendar week (Monday–Sunday, counting the previous month's days of
the first week) and ``max_shifts_per_month``. Soft, in the objective (weights below): each agent half-hour
short of the forecast's requirement; each person short of a shift's daily minimum (值班); avoided / preferred
shifts; the spread (max − min) of night shifts and of weekend shifts between people; a small cost per shift so
nobody is rostered for nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from gasdesk.rostering.models import SLOT_MIN, SLOTS_PER_DAY

DAY_MIN = 24 * 60

# Objective weights: coverage dominates, then the daily minimum of duty shifts, then wishes, then fairness.
W_SHORT = 100  # per agent half-hour short of the requirement
W_MIN_STAFF = 2000  # per person short of a shift's daily minimum (值班 must be staffed)
W_AVOID = 30  # per shift a person asked to avoid
W_PREFER = 10  # reward per preferred shift taken
W_FAIR = 40  # per unit of spread (max − min) in night shifts and in weekend shifts
W_SHIFT = 1  # per shift worked: among equal rosters, the one rostering fewer people for nothing


@dataclass(frozen=True)
class ShiftSpec:
    id: int
    code: str
    name: str
    start_min: int  # after local midnight of the shift's day
    duration_min: int
    covers_contacts: bool = True
    night: bool = False
    min_staff: int = 0
    duty_role: str | None = None

    @property
    def end_min(self) -> int:
        return self.start_min + self.duration_min


@dataclass(frozen=True)
class Preference:
    kind: str  # prefer | avoid
    shift_id: int | None  # None: any shift
    weekday: int | None  # 0 = Monday; None: any day


@dataclass(frozen=True)
class AgentSpec:
    id: int
    name: str
    shift_ids: frozenset[int]  # the shifts their skills and role allow
    leave: frozenset[date] = frozenset()
    preferences: tuple[Preference, ...] = ()


@dataclass(frozen=True)
class Rules:
    min_rest_min: int = 11 * 60
    max_consecutive_days: int = 6
    max_shifts_per_week: int = 5
    max_shifts_per_month: int = 22


@dataclass
class Problem:
    days: list[date]  # the month, in order
    shifts: list[ShiftSpec]
    agents: list[AgentSpec]
    demand: dict[date, list[int]]  # agents needed per half hour of each day (48 values)
    rules: Rules = field(default_factory=Rules)
    # What people worked on the days just before the month: (user id, day) → shift id (rest, runs, weeks).
    history: dict[tuple[int, date], int] = field(default_factory=dict)


@dataclass
class Solution:
    status: str  # OPTIMAL | FEASIBLE | INFEASIBLE | UNKNOWN | MODEL_INVALID
    objective: float | None
    seconds: float
    assignments: dict[tuple[int, date], int]  # (user id, day) → shift id
    unmet: list[tuple[date, int, int]]  # (day, half-hour slot, agents short)
    staff_short: list[tuple[date, int, int]]  # (day, shift id, people short of the shift's minimum)

    @property
    def unmet_total(self) -> int:
        return sum(short for _, _, short in self.unmet)


def slots_covered(shift: ShiftSpec, day_index: int) -> list[tuple[int, int]]:
    """(day index, slot) of every half hour the shift on day ``day_index`` covers (past midnight: the next day)."""
    first = (day_index * DAY_MIN + shift.start_min) // SLOT_MIN
    last = (day_index * DAY_MIN + shift.end_min) // SLOT_MIN  # exclusive
    return [divmod(slot, SLOTS_PER_DAY) for slot in range(first, last)]


def coverage(problem: Problem, assignments: dict[tuple[int, date], int]) -> dict[date, list[int]]:
    """Agents at work per half hour of each day of the month (contact-covering shifts only)."""
    shifts = {s.id: s for s in problem.shifts}
    index = {d: i for i, d in enumerate(problem.days)}
    start = problem.days[0]
    counts = {d: [0] * SLOTS_PER_DAY for d in problem.days}
    for (_, day), shift_id in assignments.items():
        shift = shifts.get(shift_id)
        i = index.get(day, (day - start).days)
        if shift is None or not shift.covers_contacts:
            continue
        for di, slot in slots_covered(shift, i):
            if 0 <= di < len(problem.days):
                counts[problem.days[di]][slot] += 1
    return counts


def unmet_coverage(problem: Problem, assignments: dict[tuple[int, date], int]) -> list[tuple[date, int, int]]:
    """(day, slot, short) wherever fewer agents work than the requirement."""
    have = coverage(problem, assignments)
    return [
        (d, slot, need - have[d][slot])
        for d in problem.days
        for slot, need in enumerate(problem.demand.get(d, [0] * SLOTS_PER_DAY))
        if need > have[d][slot]
    ]


def staff_shortfall(
    problem: Problem, assignments: dict[tuple[int, date], int]
) -> list[tuple[date, int, int]]:
    """(day, shift id, short) wherever a shift has fewer people than its daily minimum."""
    counts: dict[tuple[date, int], int] = defaultdict(int)
    for (_, day), shift_id in assignments.items():
        counts[day, shift_id] += 1
    return [
        (d, s.id, s.min_staff - counts[d, s.id])
        for d in problem.days
        for s in problem.shifts
        if s.min_staff > counts[d, s.id]
    ]


def solve(problem: Problem, *, time_limit_s: float = 20.0, workers: int = 2, seed: int = 1) -> Solution:
    """The best roster CP-SAT finds within ``time_limit_s`` (the model is in the module's docstring). Blocking and
    CPU-bound: the web process calls it in a thread."""
    from ortools.sat.python import cp_model  # noqa: PLC0415 - heavy (protobuf, C++ solver): only when solving

    started = time.monotonic()
    model = cp_model.CpModel()
    days, shifts, rules = problem.days, problem.shifts, problem.rules
    n_days = len(days)
    x: dict[tuple[int, int, int], cp_model.IntVar] = {}
    for agent in problem.agents:
        for di, day in enumerate(days):
            if day in agent.leave:
                continue
            for s in shifts:
                if s.id in agent.shift_ids:
                    x[agent.id, di, s.id] = model.new_bool_var(f"x_{agent.id}_{di}_{s.id}")

    x_of: dict[int, list[tuple[int, int, Any]]] = defaultdict(list)  # agent → (day index, shift, var)
    for (aid, di, sid), var in x.items():
        x_of[aid].append((di, sid, var))
    first = days[0]

    def history(agent_id: int, day_index: int) -> int | None:
        """The shift worked on a day before the month (negative index), from the previous roster."""
        return problem.history.get((agent_id, first + timedelta(days=day_index)))

    works: dict[tuple[int, int], Any] = {}  # (agent, day index) → linear expression (0/1) or a constant
    for agent in problem.agents:
        for di in range(n_days):
            todays = [x[agent.id, di, s.id] for s in shifts if (agent.id, di, s.id) in x]
            if todays:
                model.add_at_most_one(todays)
            works[agent.id, di] = sum(todays) if todays else 0

    # Rest between shifts, within the month and from the previous month's last days.
    for agent in problem.agents:
        for di in range(-2, n_days):
            for gap in (1, 2):
                dj = di + gap
                if dj < 0 or dj >= n_days:
                    continue
                for s1 in shifts:
                    for s2 in shifts:
                        rest = gap * DAY_MIN + s2.start_min - s1.end_min
                        if rest >= rules.min_rest_min:
                            continue
                        later = x.get((agent.id, dj, s2.id))
                        if later is None:
                            continue
                        if di < 0:
                            if history(agent.id, di) == s1.id:
                                model.add(later == 0)
                        elif (earlier := x.get((agent.id, di, s1.id))) is not None:
                            model.add_bool_or([earlier.Not(), later.Not()])

    # Days in a row, counting the run that ended the previous month.
    k = rules.max_consecutive_days
    for agent in problem.agents:
        for start in range(-k, n_days - k):
            window = range(start, start + k + 1)
            known = sum(1 for di in window if di < 0 and history(agent.id, di) is not None)
            inside = [works[agent.id, di] for di in window if di >= 0]
            model.add(sum(inside) + known <= k)

    # Per calendar week (Monday–Sunday) and per month.
    weeks: dict[date, list[int]] = defaultdict(list)
    for di, day in enumerate(days):
        weeks[day - timedelta(days=day.weekday())].append(di)
    for agent in problem.agents:
        for monday, indexes in weeks.items():
            before = sum(
                1
                for offset in range((first - monday).days)
                if problem.history.get((agent.id, monday + timedelta(days=offset))) is not None
            )
            model.add(sum(works[agent.id, di] for di in indexes) + before <= rules.max_shifts_per_week)
        model.add(sum(works[agent.id, di] for di in range(n_days)) <= rules.max_shifts_per_month)

    terms: list[Any] = []
    # Coverage per half hour: people per (day, shift), then the slots each covers.
    on_shift: dict[tuple[int, int], Any] = {}
    for di in range(n_days):
        for s in shifts:
            on_shift[di, s.id] = sum(x[a.id, di, s.id] for a in problem.agents if (a.id, di, s.id) in x)
    covering: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for di in range(-1, n_days):
        for s in shifts:
            if not s.covers_contacts:
                continue
            for dj, slot in slots_covered(s, di):
                if 0 <= dj < n_days:
                    if di < 0:
                        # the previous month's night shift still at work on the first morning
                        known = sum(1 for a in problem.agents if history(a.id, di) == s.id)
                        covering[dj, slot].append(known)
                    else:
                        covering[dj, slot].append(on_shift[di, s.id])
    for di, day in enumerate(days):
        need_row = problem.demand.get(day, [0] * SLOTS_PER_DAY)
        for slot, need in enumerate(need_row):
            if need <= 0:
                continue
            short = model.new_int_var(0, need, f"short_{di}_{slot}")
            model.add(sum(covering[di, slot]) + short >= need)
            terms.append(W_SHORT * short)
    for di in range(n_days):
        for s in shifts:
            if s.min_staff > 0:
                short = model.new_int_var(0, s.min_staff, f"staff_{di}_{s.id}")
                model.add(on_shift[di, s.id] + short >= s.min_staff)
                terms.append(W_MIN_STAFF * short)

    # Wishes.
    for agent in problem.agents:
        for pref in agent.preferences:
            for di, sid, var in x_of[agent.id]:
                if pref.shift_id is not None and pref.shift_id != sid:
                    continue
                if pref.weekday is not None and days[di].weekday() != pref.weekday:
                    continue
                terms.append((W_AVOID if pref.kind == "avoid" else -W_PREFER) * var)

    # Fairness: the spread of night shifts (among those who may work one) and of weekend shifts.
    def spread(name: str, counts: list[Any]) -> None:
        if len(counts) < 2:
            return
        hi = model.new_int_var(0, n_days, f"{name}_max")
        lo = model.new_int_var(0, n_days, f"{name}_min")
        model.add_max_equality(hi, counts)
        model.add_min_equality(lo, counts)
        terms.append(W_FAIR * (hi - lo))

    nights = [s.id for s in shifts if s.night]
    night_counts: list[Any] = []
    weekend_counts: list[Any] = []
    for agent in problem.agents:
        if any(sid in agent.shift_ids for sid in nights):
            night_vars = [var for _, sid, var in x_of[agent.id] if sid in nights]
            night_counts.append(_count_var(model, f"nights_{agent.id}", night_vars, n_days))
        weekend_vars = [var for di, _, var in x_of[agent.id] if days[di].weekday() >= 5]
        if agent.shift_ids:
            weekend_counts.append(_count_var(model, f"weekends_{agent.id}", weekend_vars, n_days))
    spread("nights", night_counts)
    spread("weekends", weekend_counts)
    terms.extend(W_SHIFT * var for var in x.values())

    model.minimize(sum(terms))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.5, float(time_limit_s))
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    code = solver.solve(model)
    status = solver.status_name(code)
    assignments: dict[tuple[int, date], int] = {}
    objective: float | None = None
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        objective = float(solver.objective_value)
        for (aid, di, sid), var in x.items():
            if solver.value(var):
                assignments[aid, days[di]] = sid
    return Solution(
        status=status,
        objective=objective,
        seconds=time.monotonic() - started,
        assignments=assignments,
        unmet=unmet_coverage(problem, assignments) if objective is not None else [],
        staff_short=staff_shortfall(problem, assignments) if objective is not None else [],
    )


def _count_var(model: Any, name: str, variables: list[Any], upper: int) -> Any:
    """An integer variable equal to the number of ``variables`` set."""
    count = model.new_int_var(0, upper, name)
    model.add(count == sum(variables))
    return count


# ------------------------------------------------------------------ checking a roster (manual edits)


@dataclass(frozen=True)
class Violation:
    user_id: int
    day: date
    code: str  # leave | not_qualified | rest | consecutive | week | month | two_shifts
    message: str  # in Chinese, for the page


def _md(day: date) -> str:
    return f"{day.month}月{day.day}日"


def find_violations(problem: Problem, assignments: dict[tuple[int, date], int]) -> list[Violation]:
    """Every hard rule the assignments break (``problem.history`` counts as worked), in Chinese. Manual edits are
    saved anyway: this is the warning shown beside the grid."""
    shifts = {s.id: s for s in problem.shifts}
    agents = {a.id: a for a in problem.agents}
    rules = problem.rules
    found: list[Violation] = []
    by_agent: dict[int, dict[date, int]] = defaultdict(dict)
    for (uid, day), sid in {**problem.history, **assignments}.items():
        by_agent[uid][day] = sid
    month = set(problem.days)
    for uid, worked in sorted(by_agent.items()):
        agent = agents.get(uid)
        name = agent.name if agent else f"#{uid}"
        for day, sid in sorted(worked.items()):
            if day not in month:
                continue
            shift = shifts.get(sid)
            label = shift.name if shift else "?"
            if agent is not None and day in agent.leave:
                found.append(Violation(uid, day, "leave", f"{name} {_md(day)} 请假，不应排{label}"))
            if agent is None or sid not in agent.shift_ids:
                found.append(
                    Violation(
                        uid, day, "not_qualified", f"{name} 不具备{label}所需的技能或岗位（{_md(day)}）"
                    )
                )
        days_worked = sorted(worked)
        for i, day in enumerate(days_worked):
            for later in days_worked[i + 1 :]:
                gap = (later - day).days
                if gap > 2:
                    break
                if later not in month:
                    continue
                s1, s2 = shifts.get(worked[day]), shifts.get(worked[later])
                if s1 is None or s2 is None:
                    continue
                rest = gap * DAY_MIN + s2.start_min - s1.end_min
                if rest < rules.min_rest_min:
                    found.append(
                        Violation(
                            uid,
                            later,
                            "rest",
                            f"{name} {_md(day)}{s1.name}与{_md(later)}{s2.name}之间只休息 "
                            f"{max(rest, 0) / 60:g} 小时，少于 {rules.min_rest_min / 60:g} 小时",
                        )
                    )
        run: list[date] = []
        for day in days_worked:
            run = run + [day] if run and (day - run[-1]).days == 1 else [day]
            if len(run) == rules.max_consecutive_days + 1 and day in month:
                found.append(
                    Violation(
                        uid,
                        day,
                        "consecutive",
                        f"{name} {_md(run[0])}起连续工作超过 {rules.max_consecutive_days} 天",
                    )
                )
        weeks: dict[date, int] = defaultdict(int)
        for day in days_worked:
            weeks[day - timedelta(days=day.weekday())] += 1
        for monday, count in sorted(weeks.items()):
            if count > rules.max_shifts_per_week and any(
                monday + timedelta(days=k) in month for k in range(7)
            ):
                found.append(
                    Violation(
                        uid,
                        max(monday, problem.days[0]),
                        "week",
                        f"{name} {_md(monday)}所在周排班 {count} 次，超过每周 {rules.max_shifts_per_week} 次",
                    )
                )
        in_month = sum(1 for day in days_worked if day in month)
        if in_month > rules.max_shifts_per_month:
            found.append(
                Violation(
                    uid,
                    problem.days[-1],
                    "month",
                    f"{name} 本月排班 {in_month} 次，超过每月 {rules.max_shifts_per_month} 次",
                )
            )
    return found
