"""A process's CPU weight against the rest of the machine: the report render processes, and a web process that
serves only supervisors' reports (``Settings.web_cpu_priority``), come after chat's processes.

On Linux a nice level ranks a process only within its scheduling group: its cgroup, or, in the root cgroup,
its session's *autogroup* (on by default: a terminal, ``make run``, a VM's shell). Against every other group its
group competes as one equal entity, so a process at nice 19 in the same autogroup as chat's clients took CPU
from them as if at nice 0. A session's autogroup has a nice of its own (``/proc/self/autogroup``) that weighs
the whole group machine-wide. Under systemd each unit is a cgroup of its own: there ``CPUWeight=`` in the unit
is the knob (docs/production-checklist.md), and this changes the process's nice level only.
"""

from __future__ import annotations

import contextlib
import os

LOWEST = 19


def lower_own_priority(niceness: int = LOWEST, *, new_session: bool = False,
                       autogroup: str = "/proc/self/autogroup") -> None:
    """Lower this process (its calling thread and the threads it starts from now on) to ``niceness`` and, where
    it leads a session of its own, that session's autogroup too. ``new_session``: first start a session (a
    process nobody types Ctrl-C into: the render processes); a web process started from a terminal keeps its
    session, so Ctrl-C still reaches it. Elsewhere (no autogroup, another OS) what cannot change stays."""
    if new_session:
        with contextlib.suppress(OSError, AttributeError):
            os.setsid()  # fails when already a session leader: then it is one
    with contextlib.suppress(OSError, AttributeError):
        os.nice(max(0, niceness - os.nice(0)))
    with contextlib.suppress(OSError, AttributeError):
        if os.getsid(0) == os.getpid():
            with open(autogroup, "w") as group:
                group.write(str(niceness))
