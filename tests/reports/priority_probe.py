"""What a render process reports about its own scheduling, kept apart from the test modules: unpickling a
function of a test module imports that whole module in the child, at idle priority (seconds on a busy machine)."""

from __future__ import annotations

import os

from gasdesk.reports import render


def policy_while_reading() -> tuple[int, int]:
    """The scheduling policy inside ``render._reading()`` and after it."""
    with render._reading():
        reading = os.sched_getscheduler(0)
    return reading, os.sched_getscheduler(0)


def render_cpu_share() -> float:
    """The share of one core the render process draws with."""
    return render._render_cpu_share
