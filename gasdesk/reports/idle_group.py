"""An idle CPU cgroup for the render processes: the one way to rank a process below every other on a Linux machine.

A process's scheduling class (``SCHED_IDLE``) and nice level only rank it inside its own group: its cgroup, or,
where the process sits in the root cgroup, its session's autogroup. Against any other group — chat's clients in
another session, the worker, PostgreSQL — the render's group competes as an ordinary one, and a waking chat
process waits for the render's time slice (on a 2-vCPU machine the chat bench's p99 rose by ~65 % while yearly
exports ran, docs/performance.md). A cgroup whose ``cpu.idle`` is 1 is idle against its siblings: anything that
wakes beside it runs at once. So a render process joins ``gasdesk-render`` (created on first use, shared by every
render process of the machine or service) where the kernel lets it:

- cgroup v1's ``cpu`` hierarchy: a child of the process's own cgroup (v1 allows processes beside child groups);
- cgroup v2: a child of its own cgroup when that is the hierarchy's root, or a sibling when the parent is
  delegated to this service (systemd marks delegated cgroups with the ``trusted.delegate``/``user.delegate``
  attribute; with ``Delegate=cpu`` and ``DelegateSubgroup=`` the service's processes sit in a leaf below it).
  Nowhere else: another manager's cgroups are not ours to change.

Elsewhere (no write access, no ``cpu.idle`` — kernels before 5.15 —, not Linux) ``join`` returns None and the
caller falls back to an autogroup of its own. A process that must not be starved for a moment (a read holding
its database snapshot) leaves the group and joins it again afterwards."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

IDLE_GROUP_NAME = "gasdesk-render"
DELEGATE_ATTRIBUTES = ("trusted.delegate", "user.delegate")


@dataclass(frozen=True)
class CpuCgroup:
    """Where this process sits in the hierarchy that has the ``cpu`` controller."""

    own: Path  # the directory of the process's cgroup
    unified: bool  # cgroup v2
    at_root: bool  # ``own`` is the hierarchy's (or the namespace's) root


def cpu_cgroup(proc_cgroup: str = "/proc/self/cgroup",
               mountinfo: str = "/proc/self/mountinfo") -> CpuCgroup | None:
    """The cgroup of this process in the hierarchy holding the ``cpu`` controller (v1's ``cpu`` hierarchy when
    mounted, else v2's), or None where there is none or it is not mounted."""
    try:
        membership = Path(proc_cgroup).read_text().splitlines()
        mounts = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in membership:
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            v1_path = path
        elif controllers == "" and line.startswith("0:"):
            v2_path = path
    v1_mount = v2_mount = None
    for line in mounts:
        fields, _, tail = line.partition(" - ")
        parts, fs = fields.split(), tail.split()
        if len(parts) < 5 or len(fs) < 3:
            continue
        root, mount_point = parts[3], parts[4]
        if fs[0] == "cgroup" and "cpu" in fs[2].split(","):
            v1_mount = (root, mount_point)
        elif fs[0] == "cgroup2":
            v2_mount = (root, mount_point)
    if v1_path is not None and v1_mount is not None:
        return _located(v1_path, v1_mount, unified=False)
    if v2_path is not None and v2_mount is not None:
        located = _located(v2_path, v2_mount, unified=True)
        with contextlib.suppress(OSError):
            if "cpu" in (located.own / "cgroup.controllers").read_text().split():
                return located
    return None


def _located(path: str, mount: tuple[str, str], *, unified: bool) -> CpuCgroup:
    root, mount_point = mount
    relative = path[len(root):] if root != "/" and path.startswith(root) else path
    relative = relative.strip("/")
    return CpuCgroup(own=Path(mount_point) / relative, unified=unified, at_root=not relative)


def idle_group_dir(where: CpuCgroup) -> Path | None:
    """The directory the idle group goes in (see the module's doc), or None where this process may not make one."""
    if not where.unified or where.at_root:
        return where.own / IDLE_GROUP_NAME
    if _delegated(where.own.parent):
        return where.own.parent / IDLE_GROUP_NAME
    return None


def _delegated(directory: Path) -> bool:
    for attribute in DELEGATE_ATTRIBUTES:
        with contextlib.suppress(OSError, AttributeError):
            if os.getxattr(directory, attribute).strip(b"\0") in (b"1", b"true", b"yes"):
                return True
    return False


class IdleGroup:
    """This process's membership of the idle group: ``join`` once, ``leave``/``rejoin`` around work that must
    not be starved."""

    def __init__(self, where: CpuCgroup | None) -> None:
        self._where = where
        self.directory: Path | None = None

    def join(self) -> Path | None:
        """Create the idle group if needed, mark it idle and move this whole process into it; its directory, or
        None (nothing changed) where the kernel or the permissions do not allow it."""
        if self._where is None or (target := idle_group_dir(self._where)) is None:
            return None
        try:
            if self._where.unified:
                _check_cpu_below(target.parent)
            target.mkdir(exist_ok=True)
            (target / "cpu.idle").write_text("1")
            _move_here(target)
        except OSError:
            return None
        self.directory = target
        return target

    def leave(self) -> bool:
        """Move this process back to the cgroup it came from; False when it was not in the idle group."""
        if self.directory is None or self._where is None:
            return False
        try:
            _move_here(self._where.own)
        except OSError:
            return False
        return True

    def rejoin(self) -> None:
        """Back into the idle group after ``leave``."""
        if self.directory is not None:
            with contextlib.suppress(OSError):
                _move_here(self.directory)


def _check_cpu_below(directory: Path) -> None:
    # Enabling the controller below a cgroup changes it for every other child: that is its manager's call.
    if "cpu" not in (directory / "cgroup.subtree_control").read_text().split():
        raise OSError(f"no cpu controller below {directory}")


def _move_here(directory: Path) -> None:
    # cgroup.procs moves every thread of the process (the database driver's too), in v1 and v2 alike.
    (directory / "cgroup.procs").write_text(str(os.getpid()))
