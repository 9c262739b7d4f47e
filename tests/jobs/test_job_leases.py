"""Per-job time limits, dead letters and stale-lease recovery of the job queue (in one process; the
multi-process proofs are in test_worker_processes.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from gasdesk import clock
from gasdesk.db import commit, transaction
from gasdesk.errors import InvalidInput
from gasdesk.jobs import queue
from gasdesk.jobs.models import Job
from gasdesk.jobs.queue import DEFAULT_TIMEOUT_S, enqueue, job, run_due_jobs, timeout_of
from gasdesk.notifications.models import Notification
from gasdesk.notifications.service import do_notify
from tests.factories import staff_user

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)  # the default job_lease_grace_s
CALLS: Counter[int] = Counter()


@job("test.lease_count", timeout_s=100)
async def _count(session, payload) -> None:
    CALLS[payload["n"]] += 1


@job("test.lease_slow", timeout_s=1)
async def _slow(session, payload) -> None:
    CALLS[payload["n"]] += 1
    await asyncio.sleep(30)


@job("test.lease_own_timeout")
async def _own_timeout(session, payload) -> None:
    # A handler's own timeout (a provider that did not answer) is its error, not the queue's time limit.
    await asyncio.wait_for(asyncio.sleep(5), timeout=0.01)


async def _job(session, job_id: int) -> Job:
    session.expire_all()
    item = await session.get(Job, job_id)
    assert item is not None
    return item


async def _claim_as(monkeypatch: pytest.MonkeyPatch, worker: str) -> list[queue.Claim]:
    """Claim due jobs as another worker process would (and never run them: that worker dies)."""
    with monkeypatch.context() as m:
        m.setattr(queue, "WORKER_ID", worker)
        return await queue._claim(10)


def test_time_limits_default_per_name_and_per_job() -> None:
    assert timeout_of("test.lease_count", None) == 100
    assert timeout_of("test.lease_count", 7) == 7
    assert timeout_of("test.nobody", None) == DEFAULT_TIMEOUT_S
    for bad in (0, -1, 24 * 3600 + 1, 1.5, True):
        with pytest.raises(InvalidInput):
            queue.check_timeout(bad)  # type: ignore[arg-type]


async def test_the_lease_is_the_attempts_time_limit_plus_grace(session, monkeypatch) -> None:
    clock.set_now(T0)
    by_name = enqueue(session, "test.lease_count", {"n": 1})
    own = enqueue(session, "test.lease_count", {"n": 2}, timeout_s=7)
    await commit(session)
    ids = (by_name.id, own.id)
    claims = await _claim_as(monkeypatch, "host-a:1")
    assert [(c.job_id, c.attempt) for c in claims] == [(ids[0], 1), (ids[1], 1)]
    first = await _job(session, ids[0])
    assert (first.status, first.locked_by, first.lease_expires_at) == (
        "running",
        "host-a:1",
        T0 + timedelta(seconds=100) + GRACE,
    )
    assert (await _job(session, ids[1])).lease_expires_at == T0 + timedelta(seconds=7) + GRACE


async def test_a_job_running_longer_than_its_time_limit_is_cancelled_and_counted_as_failed(session) -> None:
    clock.set_now(T0)
    CALLS.clear()
    item = enqueue(session, "test.lease_slow", {"n": 1}, max_attempts=2)
    await commit(session)
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(run_due_jobs(), timeout=10) == 1
    assert asyncio.get_running_loop().time() - started < 5
    row = await _job(session, item.id)
    assert (row.status, row.attempts, row.run_at) == ("failed", 1, T0 + queue.backoff(1))
    assert "ran longer than 1 s and was cancelled" in row.last_error
    assert (row.locked_by, row.lease_expires_at) == (None, None)


async def test_a_handlers_own_timeout_is_an_ordinary_failure(session) -> None:
    item = enqueue(session, "test.lease_own_timeout", {}, max_attempts=1)
    await commit(session)
    assert await run_due_jobs() == 1
    row = await _job(session, item.id)
    assert row.status == "dead" and "wait_for" in row.last_error and "cancelled" not in row.last_error


async def test_dead_letters_keep_their_attempts_and_last_error(session) -> None:
    clock.set_now(T0)
    item = enqueue(session, "test.lease_own_timeout", {}, max_attempts=2)
    await commit(session)
    assert await run_due_jobs() == 1
    clock.set_now(T0 + queue.backoff(1))
    assert await run_due_jobs() == 1
    row = await _job(session, item.id)
    assert (row.status, row.attempts, row.finished_at) == ("dead", 2, T0 + queue.backoff(1))
    assert "TimeoutError" in row.last_error
    clock.set_now(T0 + timedelta(days=30))
    assert await run_due_jobs() == 0, "a dead letter never runs by itself"


async def test_a_job_left_running_by_a_dead_worker_is_taken_again_after_its_lease(
    session, monkeypatch
) -> None:
    clock.set_now(T0)
    CALLS.clear()
    item = enqueue(session, "test.lease_count", {"n": 5}, timeout_s=10)
    await commit(session)
    [claim] = await _claim_as(monkeypatch, "host-dead:99")
    assert claim.attempt == 1
    expires = T0 + timedelta(seconds=10) + GRACE
    clock.set_now(expires - timedelta(seconds=1))
    assert await run_due_jobs() == 0, "the lease still holds"
    assert await queue._next_due_in(600) == pytest.approx(1.0)  # the worker wakes when it expires
    clock.set_now(expires + timedelta(seconds=1))
    assert await run_due_jobs() == 1
    row = await _job(session, item.id)
    assert (row.status, row.attempts, row.locked_by, CALLS[5]) == ("done", 2, None, 1)


async def test_a_lost_last_attempt_makes_a_dead_letter(session, monkeypatch) -> None:
    clock.set_now(T0)
    item = enqueue(session, "test.lease_count", {"n": 6}, max_attempts=1, timeout_s=10)
    await commit(session)
    await _claim_as(monkeypatch, "host-dead:99")
    clock.set_now(T0 + timedelta(minutes=5))
    assert await run_due_jobs() == 0
    row = await _job(session, item.id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert "attempt 1 lost: worker host-dead:99 stopped without finishing" in row.last_error


async def test_two_workers_racing_for_a_stale_job_take_it_once(session, monkeypatch) -> None:
    clock.set_now(T0)
    CALLS.clear()
    for n in range(20):
        enqueue(session, "test.lease_count", {"n": n}, timeout_s=10)
    await commit(session)
    await _claim_as(monkeypatch, "host-dead:99")
    await _claim_as(monkeypatch, "host-dead:99")
    clock.set_now(T0 + timedelta(minutes=5))
    ran = await asyncio.gather(run_due_jobs(limit=3), run_due_jobs(limit=3), run_due_jobs(limit=3))
    assert sum(ran) == 20 and CALLS == Counter(range(20))
    assert set((await session.execute(select(Job.status, Job.attempts))).all()) == {("done", 2)}


async def test_a_worker_that_lost_its_lease_commits_nothing(session) -> None:
    """A worker stalled past its lease while another took the job: its handler's writes roll back, and the
    other worker's state of the job stands."""
    user = await staff_user(session, "agent")
    await commit(session)

    @job("test.lease_stalled")
    async def stalled(s, payload) -> None:
        do_notify(s, payload["user_id"], "test", "写了两次？")
        async with transaction() as other:  # meanwhile the lease expired and another worker took the job
            await other.execute(
                update(Job)
                .where(Job.name == "test.lease_stalled")
                .values(locked_by="host-b:2", attempts=Job.attempts + 1)
            )

    item = enqueue(session, "test.lease_stalled", {"user_id": user.id})
    await commit(session)
    assert await run_due_jobs() == 1
    row = await _job(session, item.id)
    assert (row.status, row.locked_by, row.attempts) == ("running", "host-b:2", 2)
    assert await session.scalar(select(func.count()).select_from(Notification)) == 0


async def test_a_handlers_writes_commit_with_done(session) -> None:
    user = await staff_user(session, "agent")
    await commit(session)

    @job("test.lease_writes")
    async def writes(s, payload) -> None:
        do_notify(s, payload["user_id"], "test", "一次")

    item = enqueue(session, "test.lease_writes", {"user_id": user.id})
    await commit(session)
    assert await run_due_jobs() == 1
    assert (await _job(session, item.id)).status == "done"
    assert await session.scalar(select(func.count()).select_from(Notification)) == 1
