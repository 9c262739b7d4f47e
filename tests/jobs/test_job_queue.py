"""The durable job queue: transactional enqueue, retries with backoff, no double runs under concurrency."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from gasdesk import clock, db
from gasdesk.db import commit, rollback
from gasdesk.jobs.models import Job
from gasdesk.jobs.queue import backoff, enqueue, job, run_due_jobs, stop_worker, worker_loop

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
CALLS: Counter[int] = Counter()


@job("test.wo_count")
async def _count(session, payload) -> None:
    CALLS[payload["n"]] += 1
    await asyncio.sleep(0.005)


@job("test.wo_fail")
async def _fail(session, payload) -> None:
    CALLS[payload["n"]] += 1
    raise RuntimeError("计费系统超时")


async def _jobs(session) -> list[Job]:
    session.expire_all()
    return list(await session.scalars(select(Job).where(Job.name.like("test.%")).order_by(Job.id)))


def test_backoff_schedule() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 120, 480, 1920]
    assert backoff(20) == timedelta(hours=6)


async def test_enqueue_in_a_rolled_back_transaction_leaves_no_job(session) -> None:
    enqueue(session, "test.wo_count", {"n": 1})
    await session.flush()
    await rollback(session)
    assert await session.scalar(select(func.count()).select_from(Job)) == 0
    assert await run_due_jobs() == 0
    enqueue(session, "test.wo_count", {"n": 2})
    await commit(session)
    assert len(await _jobs(session)) == 1


async def test_future_jobs_wait(session) -> None:
    clock.set_now(T0)
    CALLS.clear()
    enqueue(session, "test.wo_count", {"n": 7}, run_at=T0 + timedelta(minutes=5))
    await commit(session)
    assert await run_due_jobs() == 0
    clock.set_now(T0 + timedelta(minutes=5))
    assert await run_due_jobs() == 1 and CALLS[7] == 1
    [item] = await _jobs(session)
    assert (item.status, item.attempts, item.finished_at, item.locked_by) == ("done", 1, T0 + timedelta(minutes=5), None)


async def test_failing_job_is_retried_with_backoff_then_dead(session) -> None:
    clock.set_now(T0)
    CALLS.clear()
    enqueue(session, "test.wo_fail", {"n": 1}, max_attempts=3)
    await commit(session)
    now = T0
    for attempt in (1, 2):
        assert await run_due_jobs() == 1
        [item] = await _jobs(session)
        assert (item.status, item.attempts) == ("failed", attempt)
        assert item.run_at == now + backoff(attempt) and "计费系统超时" in item.last_error
        clock.set_now(item.run_at - timedelta(seconds=1))
        assert await run_due_jobs() == 0
        now = item.run_at
        clock.set_now(now)
    assert await run_due_jobs() == 1
    [item] = await _jobs(session)
    assert (item.status, item.attempts, item.finished_at) == ("dead", 3, now)
    assert "RuntimeError" in item.last_error
    clock.set_now(now + timedelta(days=1))
    assert await run_due_jobs() == 0
    assert CALLS[1] == 3


async def test_unknown_handler_fails_cleanly(session) -> None:
    enqueue(session, "test.wo_nobody", {}, max_attempts=1)
    await commit(session)
    assert await run_due_jobs() == 1
    [item] = await _jobs(session)
    assert item.status == "dead" and "no handler" in item.last_error


async def test_concurrent_workers_never_run_a_job_twice(session) -> None:
    CALLS.clear()
    for n in range(30):
        enqueue(session, "test.wo_count", {"n": n})
    await commit(session)
    ran = await asyncio.gather(run_due_jobs(limit=5), run_due_jobs(limit=5), run_due_jobs(limit=5))
    assert sum(ran) == 30
    assert CALLS == Counter(range(30))
    assert {j.status for j in await _jobs(session)} == {"done"}
    assert {j.attempts for j in await _jobs(session)} == {1}


async def test_job_runs_in_its_own_transaction(session) -> None:
    """A handler's writes commit with the job; a failing handler's writes roll back."""
    from gasdesk.notifications.service import do_notify
    from tests.factories import staff_user

    user = await staff_user(session, "agent")

    @job("test.wo_notify_then_fail")
    async def notify_then_fail(s, payload) -> None:
        do_notify(s, payload["user_id"], "test", "半途而废")
        await s.flush()
        raise RuntimeError("boom")

    enqueue(session, "test.wo_notify_then_fail", {"user_id": user.id}, max_attempts=1)
    await commit(session)
    assert await run_due_jobs() == 1
    from gasdesk.notifications.models import Notification

    async with db.sessionmaker()() as s:
        assert await s.scalar(select(func.count()).select_from(Notification)) == 0


async def test_stopping_the_worker_lets_it_finish_instead_of_cancelling_it_mid_query(session) -> None:
    # The app's shutdown used to cancel the worker task; since the worker asks the database when the next job
    # is due before each sleep, a cancel could land inside an aiosqlite call and the shutdown then hung in
    # dispose_engine (seen as a TestClient that never exited). Stopped at any moment, it now ends by itself.

    for delay in (0.0, 0.01, 0.03, 0.1):
        stop = asyncio.Event()
        task = asyncio.create_task(worker_loop(poll_s=0.02, stop=stop))
        await asyncio.sleep(delay)
        await asyncio.wait_for(stop_worker(stop, task, timeout_s=5.0), timeout=10)
        assert task.done() and not task.cancelled()
