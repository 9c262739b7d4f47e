"""Time the roster solver on a realistic month: 60 agents, half-hour coverage, four shifts.

Usage: python bench/rostering.py [--agents 60] [--month 2027-03] [--time-limit 45] [--workers 2] [--seed 1]

Builds the ``solver.Problem`` the service would (no database): the seeded shifts (早班 08:00–16:00, 中班
14:00–22:00, 夜班 22:00–次日 08:00, 值班 24 h from 08:00 with one a day, supervisors only), ``--agents`` people
of whom a tenth are supervisors, half hold the skill the night shift needs, a fifth have a week of leave and a
third a wish; a weekday/weekend contact curve (peak ~40 contacts per half hour at 10:00 on weekdays) scaled by
0.25 agents per contact into a half-hour requirement; default rules (11 h rest, 6 days in a row, 5 a week, 22 a
month). Solves with CP-SAT and prints the solve time, status, objective, the unmet coverage (agent half-hours
short of the requirement) and whether the independent hard-rule check finds anything.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gasdesk.rostering.forecast import month_demand, required_agents  # noqa: E402
from gasdesk.rostering.schemas import parse_month  # noqa: E402
from gasdesk.rostering.service import month_days  # noqa: E402
from gasdesk.rostering.solver import (  # noqa: E402
    AgentSpec,
    Preference,
    Problem,
    Rules,
    ShiftSpec,
    find_violations,
    solve,
)


def contact_curve(weekday: int) -> list[float]:
    """Contacts per half hour: a morning and an afternoon peak, quiet nights, weekends at 60 %."""
    scale = 0.6 if weekday >= 5 else 1.0
    row = []
    for slot in range(48):
        hour = slot / 2
        daytime = 40 * math.exp(-((hour - 10) ** 2) / 6) + 30 * math.exp(-((hour - 15) ** 2) / 8)
        row.append(scale * (daytime + 2.0))
    return row


def build(agents: int, month: date, seed: int) -> Problem:
    rng = random.Random(seed)
    shifts = [
        ShiftSpec(1, "early", "早班", 8 * 60, 8 * 60),
        ShiftSpec(2, "middle", "中班", 14 * 60, 8 * 60),
        ShiftSpec(3, "night", "夜班", 22 * 60, 10 * 60, night=True),
        ShiftSpec(
            4, "duty", "值班", 8 * 60, 24 * 60, covers_contacts=False, min_staff=1, duty_role="shift_lead"
        ),
    ]
    days = month_days(month)
    people = []
    for i in range(agents):
        supervisor = i < max(2, agents // 10)
        allowed = {1, 2} | ({3} if i % 2 == 0 else set()) | ({4} if supervisor else set())
        leave: frozenset[date] = frozenset()
        if rng.random() < 0.2:
            start = rng.randrange(len(days) - 7)
            leave = frozenset(days[start : start + 7])
        wishes: tuple[Preference, ...] = ()
        if rng.random() < 0.33:
            wishes = (
                Preference(
                    rng.choice(("prefer", "avoid")), rng.choice((1, 2, 3, None)), rng.choice((None, 5, 6))
                ),
            )
            if wishes[0].shift_id is None and wishes[0].weekday is None:
                wishes = ()
        people.append(
            AgentSpec(
                id=i + 1, name=f"坐席{i + 1}", shift_ids=frozenset(allowed), leave=leave, preferences=wishes
            )
        )
    need = required_agents([contact_curve(w) for w in range(7)], agents_per_contact=0.25)
    return Problem(days=days, shifts=shifts, agents=people, demand=month_demand(days, need), rules=Rules())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=60)
    parser.add_argument("--month", default="2027-03")
    parser.add_argument("--time-limit", type=float, default=45.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    problem = build(args.agents, parse_month(args.month), args.seed)
    required = sum(map(sum, problem.demand.values()))
    started = time.monotonic()
    solution = solve(problem, time_limit_s=args.time_limit, workers=args.workers, seed=args.seed)
    wall = time.monotonic() - started
    broken = find_violations(problem, solution.assignments)
    print(
        f"agents={args.agents} days={len(problem.days)} shifts={len(problem.shifts)} "
        f"required_agent_half_hours={required}"
    )
    print(f"status={solution.status} solve_s={wall:.1f} objective={solution.objective}")
    print(
        f"unmet_agent_half_hours={solution.unmet_total} ({100 * solution.unmet_total / max(required, 1):.2f} %) "
        f"half_hours_short={len(solution.unmet)} duty_days_short={len(solution.staff_short)}"
    )
    print(f"assignments={len(solution.assignments)} hard_rule_violations={len(broken)}")
    return 0 if solution.objective is not None and not broken else 1


if __name__ == "__main__":
    sys.exit(main())
