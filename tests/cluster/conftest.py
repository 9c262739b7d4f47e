"""The local cluster of gasdesk/system/cluster.py for fault tests: PostgreSQL, Redis, two ``gasdesk serve``
processes, one more for the report routes and nginx, started once per module (~15 s) and torn down after it.
Every server is this test run's own, on loopback; the tests kill and restart them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gasdesk.system.cluster import LocalCluster, wait_ready

AGENT_PASSWORD = "cluster-agent-pass-1"

# Staff created in the cluster's database by a child process (this process's settings belong to the per-test
# database of tests/conftest.py): agents with every skill group, or supervisors.
_CREATE_STAFF = """
import asyncio, json, sys
from sqlalchemy import select
from gasdesk.audit.service import Actor
from gasdesk.auth.service import do_create_user
from gasdesk.db import dispose_engine, transaction
from gasdesk.routing.models import SkillGroup
from gasdesk.routing.service import do_set_skills

async def main(names, password, role, cap):
    async with transaction() as s:
        groups = list(await s.scalars(select(SkillGroup.id)))
        for name in names:
            user = await do_create_user(s, Actor.system("test"), username=name, password=password, role=role,
                                        display_name=name)
            if role == "agent":
                await do_set_skills(s, user, groups, max_concurrent=cap)
    await dispose_engine()

asyncio.run(main(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


class Cluster:
    """The running cluster and what the tests need from it."""

    def __init__(self, local: LocalCluster) -> None:
        self.local = local

    @property
    def url(self) -> str:
        return self.local.url

    def app_by_port(self, port: int):  # noqa: ANN201 - gasdesk.system.cluster.App
        return next(app for app in self.local.apps if app.port == port)

    def create_staff(self, *names: str, role: str, max_concurrent: int = 10) -> None:
        subprocess.run(
            [sys.executable, "-c", _CREATE_STAFF, json.dumps(names), AGENT_PASSWORD, role, str(max_concurrent)],
            env=self.local.gasdesk_env(),
            check=True,
            timeout=60,
        )

    def create_agents(self, *names: str, max_concurrent: int = 10) -> None:
        self.create_staff(*names, role="agent", max_concurrent=max_concurrent)

    def make_whole(self) -> None:
        """Start again any web process a previous test killed, so each test begins with all of them."""
        dead = [app for app in self.local.web_processes() if not app.alive()]
        for app in dead:
            app.start()
        if dead:
            wait_ready(dead)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Not pytest's tmp_path: its folders are private to this user, and PostgreSQL runs as "postgres" under root.
    run_dir = Path(tempfile.mkdtemp(prefix="gasdesk-cluster-test-"))
    local = LocalCluster(
        run_dir,
        worker=False,
        env={
            "GASDESK_ENV": "test",
            "GASDESK_BOT_ENGINE": "rules",
            "GASDESK_UPLOAD_DIR": str(run_dir / "uploads"),
            "GASDESK_VAR_DIR": str(run_dir / "var"),
            "GASDESK_REPORTS_SCHEDULE_ENABLED": "false",
            # the render at normal priority: the machine is busy with the whole cluster, and an idle-class
            # render would wait for a free core (tests/reports checks the default)
            "GASDESK_REPORTS_RENDER_IDLE": "false",
            # a resident here types faster than the per-visitor limit (50 / 10 s) allows, resends included
            "GASDESK_RATE_LIMITS": '{"message.visitor": "1000/10"}',
        },
    )
    local.start()
    try:
        yield Cluster(local)
    finally:
        local.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
