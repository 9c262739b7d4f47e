"""Enqueueing and running jobs.

``enqueue(session, "webhooks.deliver", {...})`` adds a Job row to the current transaction and,
after commit, wakes the workers (in-process, and over Redis in scale-out mode). Workers claim due
jobs with an atomic conditional UPDATE, run the registered handler in its own transaction, and
retry failures with exponential backoff up to ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import utcnow
from gasdesk.db import after_commit, execute_counted, transaction
from gasdesk.jobs.models import Job, Lease
from gasdesk.security.pii import redact_pii

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}
PeriodicTask = Callable[[AsyncSession], Awaitable[Any]]
PERIODIC: dict[str, tuple[int, PeriodicTask]] = {}
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
STALE_AFTER = timedelta(minutes=10)
# A periodic task slower than this is logged (the operator sees which task holds the database).
SLOW_PERIODIC_MS = 250

_wake_events: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()
remote_wake: Callable[[], Awaitable[None]] | None = None


def wake_event() -> asyncio.Event:
    """The running loop's "new work" event (one per loop: a server has one, a test run several)."""
    loop = asyncio.get_running_loop()
    if loop not in _wake_events:
        _wake_events[loop] = asyncio.Event()
    return _wake_events[loop]


# Domains define handlers and periodic tasks as plain functions; the app factory and the worker entry point
# register them (gasdesk/worker.py), so no domain imports a registry and this module imports no domain.


def register_job(name: str, handler: Handler) -> None:
    """Run ``handler(session, payload)`` for jobs enqueued under ``name``."""
    HANDLERS[name] = handler


def register_periodic(name: str, every_s: int, task: PeriodicTask) -> None:
    """Run ``task(session)`` every ``every_s`` seconds (SLA scan, follow-up dispatch); one process at a time."""
    PERIODIC[name] = (every_s, task)


def job(name: str) -> Callable[[Handler], Handler]:
    """``register_job`` as a decorator: ``@job("test.count")``."""

    def register(fn: Handler) -> Handler:
        register_job(name, fn)
        return fn

    return register


def enqueue(session: AsyncSession, name: str, payload: dict[str, Any], *, run_at: datetime | None = None,
            max_attempts: int = 5) -> Job:
    """Add a job to the current transaction; workers are woken after commit."""
    item = Job(name=name, payload=payload, status="pending", attempts=0, max_attempts=max_attempts,
               run_at=run_at or utcnow(), created_at=utcnow())
    session.add(item)
    after_commit(session, wake_workers)
    return item


def wake_local() -> None:
    wake_event().set()


async def wake_workers() -> None:
    """After commit of an enqueue: wake this process's worker, and the others through Redis."""
    wake_local()
    if remote_wake is not None:
        await remote_wake()


def backoff(attempt: int) -> timedelta:
    """30 s, 2 min, 8 min, 32 min, … capped at 6 h."""
    return timedelta(seconds=min(30 * 4 ** (attempt - 1), 6 * 3600))


async def _claim(limit: int) -> list[int]:
    now = utcnow()
    async with transaction() as session:
        candidates = list(await session.scalars(
            select(Job.id).where(
                or_(Job.status == "pending", (Job.status == "running") & (Job.locked_at < now - STALE_AFTER)),
                Job.run_at <= now,
            ).order_by(Job.run_at, Job.id).limit(limit)
        ))
        claimed = []
        for job_id in candidates:
            # Conditional update: another worker that read the same row loses the race cleanly.
            matched = await execute_counted(
                session,
                update(Job).where(Job.id == job_id, Job.status.in_(["pending", "running"]), Job.run_at <= now,
                                  or_(Job.locked_at.is_(None), Job.locked_at < now - STALE_AFTER,
                                      Job.status == "pending"))
                .values(status="running", locked_by=WORKER_ID, locked_at=now, attempts=Job.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if matched == 1:
                claimed.append(job_id)
    return claimed


async def _run_one(job_id: int) -> None:
    async with transaction() as session:
        item = await session.get(Job, job_id)
        if item is None:
            return
        name, payload, attempts, max_attempts = item.name, dict(item.payload), item.attempts, item.max_attempts
    handler = HANDLERS.get(name)
    error = None
    if handler is None:
        error = f"no handler registered for {name}"
    else:
        try:
            async with transaction() as session:
                await handler(session, payload)
        except Exception:
            error = redact_pii(traceback.format_exc(limit=5))
            log.warning("job %s #%s failed (attempt %s/%s)", name, job_id, attempts, max_attempts)
    async with transaction() as session:
        item = await session.get(Job, job_id)
        if item is None:
            return
        item.locked_by = None
        item.locked_at = None
        if error is None:
            item.status, item.finished_at, item.last_error = "done", utcnow(), None
        elif attempts >= max_attempts:
            item.status, item.finished_at, item.last_error = "failed", utcnow(), error[-4000:]
        else:
            item.status, item.run_at, item.last_error = "pending", utcnow() + backoff(attempts), error[-4000:]


async def run_due_jobs(limit: int = 50) -> int:
    """Run every job that is due now (tests call this directly). Returns how many ran."""
    ran = 0
    while True:
        claimed = await _claim(limit)
        if not claimed:
            return ran
        for job_id in claimed:
            await _run_one(job_id)
            ran += 1


async def _take_lease(name: str, seconds: int) -> bool:
    now = utcnow()
    async with transaction() as session:
        lease = await session.get(Lease, name, with_for_update=True)
        if lease is None:
            session.add(Lease(name=name, holder=WORKER_ID, expires_at=now + timedelta(seconds=seconds)))
            try:
                await session.flush()
            except Exception:  # another process created it first
                return False
            return True
        if lease.expires_at > now:
            # Another process runs it, or we ran it less than ``seconds`` ago: each task keeps its own
            # cadence even though the worker looks at them as often as the most frequent one needs.
            return False
        lease.holder, lease.expires_at = WORKER_ID, now + timedelta(seconds=seconds)
        return True


async def run_periodic_once(force: bool = False) -> list[str]:
    """Run the periodic tasks this process holds the lease for (tests pass force=True)."""
    ran = []
    for name, (every_s, fn) in PERIODIC.items():
        if force or await _take_lease(name, every_s):
            started = time.perf_counter()
            async with transaction() as session:
                await fn(session)
            took_ms = (time.perf_counter() - started) * 1000
            if took_ms >= SLOW_PERIODIC_MS:
                # On SQLite the task held the one connection all that time: chat waited behind it.
                log.warning("periodic task %s took %.0f ms", name, took_ms)
            ran.append(name)
    return ran


async def _next_due_in(poll_s: float) -> float:
    """Seconds until the next pending job is due, within (0.05, poll_s]: a job queued a second ahead (a
    throttled broadcast's next batch) runs on time rather than at the next poll."""
    try:
        async with transaction() as session:
            due = await session.scalar(select(func.min(Job.run_at)).where(Job.status == "pending"))
    except Exception:  # noqa: BLE001 - the database is busy or gone: poll as before
        return poll_s
    if due is None:
        return poll_s
    return min(poll_s, max(0.05, (due - utcnow()).total_seconds()))


async def stop_worker(stop: asyncio.Event, task: asyncio.Task[None], timeout_s: float = 5.0) -> None:
    """Stop a worker started in this loop: let it finish its iteration and leave, and cancel it only if that
    takes longer than ``timeout_s``. Cancelling it in the middle of a database call (it now asks the database
    when the next job is due before each sleep) could leave aiosqlite's connection half-closed, and the app's
    shutdown then hung disposing of the engine."""
    stop.set()
    wake_local()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=timeout_s)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except Exception:  # noqa: BLE001 - the worker's own failure is logged where it happened
        log.exception("worker ended with an error")


async def worker_loop(poll_s: float = 5.0, stop: asyncio.Event | None = None) -> None:
    """Forever: run due jobs, run periodic tasks when their lease is ours, sleep until woken or polled.
    Start it through ``gasdesk.worker.run_worker``, which registers the handlers first."""
    stop = stop or asyncio.Event()
    last_periodic = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            await run_due_jobs()
            if loop.time() - last_periodic >= min((e for e, _ in PERIODIC.values()), default=60):
                await run_periodic_once()
                last_periodic = loop.time()
        except Exception:
            log.exception("worker iteration failed")
        wake = wake_event()
        wake.clear()
        if stop.is_set():
            break
        try:
            await asyncio.wait_for(wake.wait(), timeout=await _next_due_in(poll_s))
        except TimeoutError:
            pass
