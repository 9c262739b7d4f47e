"""What a render process reports about its own scheduling, kept apart from the test modules: unpickling a
function of a test module imports that whole module in the child, at idle priority (seconds on a busy machine)."""

from __future__ import annotations

import os
import threading
import time

from gasdesk.reports import idle_group, render


def policy_while_reading() -> tuple[int, int]:
    """The scheduling policy inside ``render._reading()`` and after it."""
    with render._reading():
        reading = os.sched_getscheduler(0)
    return reading, os.sched_getscheduler(0)


def _wait_for_the_guard(within_s: float = 10.0) -> None:
    """Until the read guard has moved this process out of the idle class (it leaves the idle cgroup first), or
    ``within_s``: the guard's own thread is in the idle class, and on a loaded machine it may wait well past its
    0.05 s before it gets the CPU to act."""
    if not hasattr(os, "sched_getscheduler"):  # no scheduling classes: nothing to wait for
        return
    deadline = time.monotonic() + within_s
    while os.sched_getscheduler(0) != os.SCHED_OTHER and time.monotonic() < deadline:
        time.sleep(0.02)


def policies_when_a_read_starves() -> tuple[tuple[int, int], tuple[int, int]]:
    """(this thread's, another thread's) policy inside a read that outlasts its starvation guard, and after it."""
    seen: dict[str, int] = {}
    inside, leave = threading.Event(), threading.Event()

    def other_thread() -> None:  # stands in for the database driver's thread, started before the read
        inside.wait()
        seen["other inside"] = os.sched_getscheduler(0)
        leave.wait()
        seen["other after"] = os.sched_getscheduler(0)

    driver = threading.Thread(target=other_thread)
    driver.start()
    with render._reading(starved_after_s=0.05):
        _wait_for_the_guard()
        mine = os.sched_getscheduler(0)
        inside.set()
        time.sleep(0.05)
    after = os.sched_getscheduler(0)
    leave.set()
    driver.join()
    return (mine, seen["other inside"]), (after, seen["other after"])


def render_cpu_share() -> float:
    """The share of one core the render process draws with."""
    return render._render_cpu_share


def session_and_group() -> tuple[int, int, str | None]:
    """This process's pid, its session id and its autogroup line (None where the kernel has no autogroup)."""
    try:
        with open("/proc/self/autogroup") as group:
            line: str | None = group.read().strip()
    except OSError:
        line = None
    return os.getpid(), os.getsid(0), line


def cpu_cgroup_dir() -> str | None:
    """The directory of this process's cgroup in the ``cpu`` hierarchy (None where there is none)."""
    where = idle_group.cpu_cgroup()
    return str(where.own) if where is not None else None


def cpu_cgroups_when_a_read_starves() -> tuple[str | None, str | None]:
    """This process's ``cpu`` cgroup inside a read that outlasts its starvation guard, and after it."""
    with render._reading(starved_after_s=0.05):
        _wait_for_the_guard()
        inside = cpu_cgroup_dir()
    return inside, cpu_cgroup_dir()
