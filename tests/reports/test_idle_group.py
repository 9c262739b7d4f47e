"""The render processes' idle CPU cgroup: finding the ``cpu`` hierarchy from /proc, choosing where the group
may go (cgroup v1, v2 at the root, v2 delegated by systemd — and nowhere else), joining and leaving it. On
directories laid out like cgroupfs; the live join (a real render process) is checked in test_export_routes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gasdesk.reports.idle_group import IDLE_GROUP_NAME, CpuCgroup, IdleGroup, cpu_cgroup, idle_group_dir

V1_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / {cpu} rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / {unified} rw,relatime - cgroup2 cgroup2 rw
"""
V2_MOUNTS = "29 23 0:26 {root} {unified} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def proc_files(tmp_path: Path, cgroup: str, mounts: str) -> tuple[str, str]:
    (tmp_path / "cgroup").write_text(cgroup)
    (tmp_path / "mountinfo").write_text(mounts)
    return str(tmp_path / "cgroup"), str(tmp_path / "mountinfo")


def cgroup_dir(path: Path, controllers: str = "cpu memory", subtree: str = "") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cgroup.controllers").write_text(controllers + "\n")
    (path / "cgroup.subtree_control").write_text(subtree + "\n")
    (path / "cgroup.procs").write_text("")
    return path


def test_v1_cpu_hierarchy_is_found_and_preferred(tmp_path: Path) -> None:
    cpu, unified = tmp_path / "cpu", tmp_path / "unified"
    files = proc_files(tmp_path, "4:memory:/jobs/x\n1:cpu,cpuacct:/batch\n0::/\n",
                       V1_MOUNTS.format(cpu=cpu, unified=unified))
    where = cpu_cgroup(*files)
    assert where == CpuCgroup(own=cpu / "batch", unified=False, at_root=False)
    # v1 allows processes beside child groups: the group goes below the process's own cgroup
    assert idle_group_dir(where) == cpu / "batch" / IDLE_GROUP_NAME


def test_v2_hierarchy_only_when_it_has_the_cpu_controller(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    cgroup_dir(unified / "system.slice" / "gasdesk.service", controllers="memory pids")
    files = proc_files(tmp_path, "0::/system.slice/gasdesk.service\n", V2_MOUNTS.format(root="/", unified=unified))
    assert cpu_cgroup(*files) is None
    (unified / "system.slice" / "gasdesk.service" / "cgroup.controllers").write_text("cpu memory pids\n")
    assert cpu_cgroup(*files) == CpuCgroup(own=unified / "system.slice" / "gasdesk.service", unified=True,
                                           at_root=False)


def test_a_cgroup_namespace_root_is_the_mounts_root(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    cgroup_dir(unified)
    files = proc_files(tmp_path, "0::/\n", V2_MOUNTS.format(root="/", unified=unified))
    assert cpu_cgroup(*files) == CpuCgroup(own=unified, unified=True, at_root=True)
    # a bind mount of a subtree: /proc says the full path, the mount's root is stripped from it
    cgroup_dir(unified / "app")
    files = proc_files(tmp_path, "0::/kubepods/pod1/app\n", V2_MOUNTS.format(root="/kubepods/pod1", unified=unified))
    assert cpu_cgroup(*files) == CpuCgroup(own=unified / "app", unified=True, at_root=False)


def test_unreadable_or_missing_hierarchies_give_none(tmp_path: Path) -> None:
    assert cpu_cgroup(str(tmp_path / "missing"), str(tmp_path / "missing")) is None
    files = proc_files(tmp_path, "1:cpu:/\n", "41 31 0:38 / /x rw - tmpfs tmpfs rw\n")
    assert cpu_cgroup(*files) is None  # in a cpu cgroup, but its hierarchy is not mounted here


def test_v2_places_the_group_only_where_it_is_ours(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    service = cgroup_dir(unified / "system.slice" / "gasdesk.service", subtree="cpu")
    leaf = cgroup_dir(service / "web")
    # the root: below it (the root may hold processes beside child groups)
    assert idle_group_dir(CpuCgroup(own=unified, unified=True, at_root=True)) == unified / IDLE_GROUP_NAME
    # a leaf of a cgroup nobody delegated to us (a login session, another service): nowhere
    assert idle_group_dir(CpuCgroup(own=leaf, unified=True, at_root=False)) is None
    # systemd's mark on a delegated cgroup (Delegate=cpu, DelegateSubgroup=web): beside the leaf
    os.setxattr(service, "user.delegate", b"1")
    assert idle_group_dir(CpuCgroup(own=leaf, unified=True, at_root=False)) == service / IDLE_GROUP_NAME


def test_join_marks_the_group_idle_and_moves_the_process(tmp_path: Path) -> None:
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    (cpu / "cgroup.procs").write_text("")
    group = IdleGroup(CpuCgroup(own=cpu, unified=False, at_root=True))
    joined = group.join()
    assert joined == cpu / IDLE_GROUP_NAME == group.directory
    assert (joined / "cpu.idle").read_text() == "1"
    assert (joined / "cgroup.procs").read_text() == str(os.getpid())
    # out for a read that must not starve, and back after
    assert group.leave()
    assert (cpu / "cgroup.procs").read_text() == str(os.getpid())
    (joined / "cgroup.procs").write_text("")
    group.rejoin()
    assert (joined / "cgroup.procs").read_text() == str(os.getpid())


def test_v2_join_needs_the_cpu_controller_enabled_below_and_never_enables_it(tmp_path: Path) -> None:
    unified = cgroup_dir(tmp_path / "unified", subtree="memory")
    group = IdleGroup(CpuCgroup(own=unified, unified=True, at_root=True))
    assert group.join() is None and group.directory is None
    assert not (unified / IDLE_GROUP_NAME).exists()
    assert (unified / "cgroup.subtree_control").read_text().split() == ["memory"]  # left to its manager
    assert not group.leave()  # never joined: nothing to leave
    (unified / "cgroup.subtree_control").write_text("cpu memory\n")
    assert group.join() == unified / IDLE_GROUP_NAME


@pytest.mark.parametrize("where", [None, CpuCgroup(own=Path("/nonexistent/cpu"), unified=False, at_root=True)])
def test_join_changes_nothing_where_it_may_not(where: CpuCgroup | None) -> None:
    group = IdleGroup(where)
    assert group.join() is None
    assert group.directory is None and not group.leave()
