"""system/cpu_priority.py and ``GASDESK_WEB_CPU_PRIORITY=background``: a reports-only web process comes after
chat's processes on the whole machine, in a child process so this test run's own priority stays as it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gasdesk.config import PROJECT_ROOT

pytestmark = pytest.mark.no_database  # child processes with databases of their own: once, in the SQLite pass

AUTOGROUP = Path("/proc/self/autogroup")
needs_autogroup = pytest.mark.skipif(not AUTOGROUP.exists(), reason="this kernel has no autogroup")

_REPORT = """
import json, os, sys
from gasdesk.system.cpu_priority import lower_own_priority
lower_own_priority(new_session=sys.argv[1] == "new")
# empty in init's session (a container's processes that never started one): no autogroup, the root group
group = (open("/proc/self/autogroup").read().split() or [None])[-1] if os.path.exists("/proc/self/autogroup") else None
print(json.dumps({"nice": os.nice(0), "leader": os.getsid(0) == os.getpid(), "autogroup_nice": group}))
"""


def _child(mode: str, *, own_session: bool) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _REPORT, mode], capture_output=True, text=True, check=True,
                          start_new_session=own_session, timeout=60, cwd=PROJECT_ROOT)
    return json.loads(done.stdout)


def _own_autogroup_nice() -> str | None:
    """This process's autogroup nice; None in init's session, which has no autogroup (CI's container runs the
    tests there: the file reads empty)."""
    return (AUTOGROUP.read_text().split() or [None])[-1]


@needs_autogroup
def test_a_session_leader_lowers_itself_and_its_autogroup() -> None:
    """A process started in a session of its own (systemd, the local cluster, the bench) weighs its whole
    autogroup machine-wide at nice 19."""
    assert _child("keep", own_session=True) == {"nice": 19, "leader": True, "autogroup_nice": "19"}


@needs_autogroup
def test_a_process_in_someone_elses_session_lowers_itself_only() -> None:
    """Started from a terminal (``gasdesk serve`` by hand): nice 19, its session kept (Ctrl-C still reaches it)
    and the session's autogroup — the terminal's, the caller's — left alone."""
    before = _own_autogroup_nice()
    report = _child("keep", own_session=False)
    assert report["nice"] == 19 and report["leader"] is False
    assert report["autogroup_nice"] == before == _own_autogroup_nice()


@needs_autogroup
def test_a_new_session_is_taken_when_asked() -> None:
    """The render processes: a session and an autogroup of their own, at nice 19."""
    assert _child("new", own_session=False) == {"nice": 19, "leader": True, "autogroup_nice": "19"}


_SERVE = """
import asyncio, json, os
from gasdesk.web.app import create_app

async def main():
    app = create_app()
    async with app.router.lifespan_context(app):
        print(json.dumps({"nice": os.nice(0)}))

asyncio.run(main())
"""


@pytest.mark.parametrize("priority", ["background", "normal"])
def test_the_web_cpu_priority_setting_lowers_the_web_process_at_start_up(tmp_path: Path, priority: str) -> None:
    env = {**os.environ, "GASDESK_WEB_CPU_PRIORITY": priority, "GASDESK_RUN_WORKER": "false",
           "GASDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gasdesk.db'}",
           "GASDESK_VAR_DIR": str(tmp_path / "var"), "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads")}
    done = subprocess.run([sys.executable, "-c", _SERVE], capture_output=True, text=True, env=env, timeout=120,
                          cwd=PROJECT_ROOT, start_new_session=True)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = 19 if priority == "background" else os.nice(0)  # "normal": as started
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"nice": expected}


def test_an_unknown_web_cpu_priority_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "GASDESK_WEB_CPU_PRIORITY": "urgent"}
    done = subprocess.run([sys.executable, "-c", "from gasdesk.config import get_settings; get_settings()"],
                          capture_output=True, text=True, env=env, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode != 0 and "web_cpu_priority" in done.stderr
