"""The job queue across real ``gasdesk worker`` processes: a worker killed with SIGKILL mid-job (its job is
taken again by another once the lease expires, and done once), and two workers sharing many jobs (each job's
database effect exactly once; on PostgreSQL the claim's conditional UPDATE is what keeps them apart).

Every process is started in its own session and killed at the end whatever happens; every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gasdesk.db import commit
from gasdesk.jobs.models import Job
from gasdesk.jobs.queue import enqueue
from gasdesk.notifications.models import Notification
from tests.factories import staff_user
from tests.jobs.worker_handlers import BLOCK_ONCE, RECORD

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 1  # the workers' GASDESK_JOB_LEASE_GRACE_S


class Workers:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        """A ``gasdesk worker`` process on this test's database (the environment the fixtures set)."""
        n = len(self.procs)
        ready = self.tmp_path / f"ready-{n}"
        env = {
            **os.environ,
            "GASDESK_JOB_LEASE_GRACE_S": str(GRACE_S),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        with open(self.tmp_path / f"worker-{n}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.jobs.worker_handlers", str(ready), "--poll", "0.2"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc.ready_file = ready  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp_path.glob("worker-*.log"))
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.stop()


async def _until(check: Callable[[], object], what: str, workers: Workers, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await _call(check):
        for proc in workers.procs:
            assert proc.poll() is None or proc.returncode == -signal.SIGKILL, (
                f"a worker exited:\n{workers.logs()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{workers.logs()}")
        await asyncio.sleep(0.05)


async def _call(check: Callable[[], object]) -> object:
    result = check()
    if asyncio.iscoroutine(result):
        result = await result
    return result


async def _statuses(session) -> Counter[str]:
    session.expire_all()
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return Counter({status: count for status, count in rows})


async def _effects(session) -> Counter[str]:
    rows = await session.scalars(select(Notification.link).where(Notification.kind == "test"))
    return Counter(rows)


async def test_a_job_of_a_killed_worker_is_taken_again_after_its_lease_and_done_once(
    session, workers: Workers, tmp_path: Path
) -> None:
    user = await staff_user(session, "agent")
    marker, log = tmp_path / "marker", tmp_path / "ran.log"
    item = enqueue(
        session, BLOCK_ONCE, {"n": 1, "user_id": user.id, "marker": str(marker), "log": str(log)}, timeout_s=3
    )
    await commit(session)
    job_id = item.id
    first, second = workers.start(), workers.start()
    await _until(marker.exists, "a worker to start the job", workers)
    await _until(lambda: marker.read_text().strip(), "the marker's pid", workers)
    victim = int(marker.read_text())
    session.expire_all()
    running = await session.get(Job, job_id)
    assert running.status == "running" and running.locked_by.endswith(f":{victim}")
    lease = running.lease_expires_at
    assert (lease - running.locked_at).total_seconds() == 3 + GRACE_S

    os.killpg(victim, signal.SIGKILL)  # mid-job: no cleanup, no rollback of anything but the open transaction
    survivor = second if victim == first.pid else first
    assert victim in (first.pid, second.pid)

    async def done() -> bool:
        session.expire_all()
        return (await session.get(Job, job_id)).status == "done"

    await _until(done, "the other worker to finish the job", workers, timeout_s=30)
    row = await session.get(Job, job_id)
    assert row.attempts == 2 and row.finished_at >= lease, "taken again only once the lease had expired"
    assert await _effects(session) == Counter({"/test/1": 1})
    assert log.read_text().split() == ["1", str(survivor.pid)]


async def test_two_worker_processes_share_many_jobs_and_each_effect_happens_once(
    session, workers: Workers, tmp_path: Path
) -> None:
    user = await staff_user(session, "agent")
    await commit(session)
    log = tmp_path / "ran.log"
    procs = [workers.start(), workers.start()]
    for proc in procs:
        await _until(proc.ready_file.exists, "the workers to start", workers)  # type: ignore[attr-defined]
    jobs = 150
    for n in range(jobs):
        enqueue(session, RECORD, {"n": n, "user_id": user.id, "log": str(log)})
    await commit(session)

    async def all_done() -> bool:
        return (await _statuses(session))["done"] == jobs

    await _until(all_done, "every job to be done", workers, timeout_s=90)
    assert await _statuses(session) == Counter({"done": jobs})
    assert set((await session.execute(select(Job.attempts))).scalars()) == {1}
    assert await _effects(session) == Counter({f"/test/{n}": 1 for n in range(jobs)})
    lines = [line.split() for line in log.read_text().splitlines()]
    assert Counter(n for n, _ in lines) == Counter(str(n) for n in range(jobs)), "no handler ran twice"
    by_process = Counter(pid for _, pid in lines)
    assert set(by_process) == {str(p.pid) for p in procs}, f"both workers took jobs: {by_process}"
