"""Enqueueing and running jobs.

``enqueue(session, "webhooks.deliver", {...})`` adds a Job row to the current transaction and,
after commit, wakes the workers (in-process, and over Redis in scale-out mode). Workers claim due
jobs with an atomic conditional UPDATE that also sets the job's lease (its start + its timeout + a grace),
run the registered handler in its own transaction under that timeout, and mark the job done *in the
handler's transaction*, fenced by (worker, attempt): what a handler writes to the database commits exactly
once, together with "done", or not at all. A failed attempt is retried with exponential backoff
(``failed``) up to ``max_attempts``, then kept as a dead letter (``dead``). A job left ``running`` by a worker
that died is taken again once its lease has expired; that worker's attempt counts as a failed one.
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.db import after_commit, execute_counted, transaction
from gasdesk.errors import InvalidInput
from gasdesk.jobs.models import CLAIMABLE, Job, JobStatus, Lease
from gasdesk.security.pii import redact_pii

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}
# Per job name: how long one attempt may run before it is cancelled and counted as failed.
TIMEOUTS: dict[str, int] = {}
DEFAULT_TIMEOUT_S = 300
MAX_TIMEOUT_S = 24 * 3600
PeriodicTask = Callable[[AsyncSession], Awaitable[Any]]
PERIODIC: dict[str, tuple[int, PeriodicTask]] = {}
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
# Jobs claimed per round trip. Small, so that several workers share a burst instead of one taking it all;
# each job's lease is renewed when its attempt starts, so a job waiting behind others is never taken twice.
CLAIM_BATCH = 10
# A periodic task slower than this is logged (the operator sees which task holds the database).
SLOW_PERIODIC_MS = 250

_wake_events: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
    weakref.WeakKeyDictionary()
)
remote_wake: Callable[[], Awaitable[None]] | None = None


def wake_event() -> asyncio.Event:
    """The running loop's "new work" event (one per loop: a server has one, a test run several)."""
    loop = asyncio.get_running_loop()
    if loop not in _wake_events:
        _wake_events[loop] = asyncio.Event()
    return _wake_events[loop]


# Domains define handlers and periodic tasks as plain functions; the app factory and the worker entry point
# register them (gasdesk/worker.py), so no domain imports a registry and this module imports no domain.


def register_job(name: str, handler: Handler, *, timeout_s: int | None = None) -> None:
    """Run ``handler(session, payload)`` for jobs enqueued under ``name``; an attempt running longer than
    ``timeout_s`` (default ``DEFAULT_TIMEOUT_S``; a job may carry its own) is cancelled and counts as failed."""
    HANDLERS[name] = handler
    if timeout_s is None:
        TIMEOUTS.pop(name, None)
    else:
        TIMEOUTS[name] = check_timeout(timeout_s)


def register_periodic(name: str, every_s: int, task: PeriodicTask) -> None:
    """Run ``task(session)`` every ``every_s`` seconds (SLA scan, follow-up dispatch); one process at a time."""
    PERIODIC[name] = (every_s, task)


def job(name: str, *, timeout_s: int | None = None) -> Callable[[Handler], Handler]:
    """``register_job`` as a decorator: ``@job("test.count")``."""

    def register(fn: Handler) -> Handler:
        register_job(name, fn, timeout_s=timeout_s)
        return fn

    return register


def check_timeout(timeout_s: int) -> int:
    """A job time limit: whole seconds, 1 s to 24 h."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or not 1 <= timeout_s <= MAX_TIMEOUT_S:
        raise InvalidInput(
            f"任务时限须为 1 至 {MAX_TIMEOUT_S} 秒 / job timeout out of range", code="invalid_timeout"
        )
    return timeout_s


def timeout_of(name: str, own: int | None) -> int:
    """The time limit of one attempt of a job: its own, else its name's, else the default."""
    return own or TIMEOUTS.get(name, DEFAULT_TIMEOUT_S)


def lease_grace() -> timedelta:
    return timedelta(seconds=get_settings().job_lease_grace_s)


def enqueue(
    session: AsyncSession,
    name: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
    max_attempts: int = 5,
    timeout_s: int | None = None,
) -> Job:
    """Add a job to the current transaction; workers are woken after commit. ``timeout_s`` overrides the
    time limit registered for ``name`` for this job only."""
    item = Job(
        name=name,
        payload=payload,
        status=JobStatus.pending.value,
        attempts=0,
        max_attempts=max_attempts,
        timeout_s=None if timeout_s is None else check_timeout(timeout_s),
        run_at=run_at or utcnow(),
        created_at=utcnow(),
    )
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


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: the attempt number is the fencing token of every later write."""

    job_id: int
    attempt: int


def _due(now: datetime) -> Any:
    """Due work: claimable and its time has come, or running under a lease that expired (its worker died)."""
    return or_(
        and_(Job.status.in_(CLAIMABLE), Job.run_at <= now),
        and_(Job.status == JobStatus.running.value, Job.lease_expires_at < now),
    )


def _held(claim: Claim) -> Any:
    """The job is still ours: running, by this worker, in this attempt (no other worker took it since)."""
    return and_(
        Job.id == claim.job_id,
        Job.status == JobStatus.running.value,
        Job.locked_by == WORKER_ID,
        Job.attempts == claim.attempt,
    )


def _lost_attempt(row: Any) -> str:
    return (
        f"attempt {row.attempts} lost: worker {row.locked_by} stopped without finishing "
        f"(lease expired at {row.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC)"
    )


async def _claim(limit: int) -> list[Claim]:
    now = utcnow()
    grace = lease_grace()
    claimed = []
    async with transaction() as session:
        candidates = (
            await session.execute(
                select(
                    Job.id,
                    Job.name,
                    Job.timeout_s,
                    Job.status,
                    Job.attempts,
                    Job.max_attempts,
                    Job.locked_by,
                    Job.lease_expires_at,
                )
                .where(_due(now))
                .order_by(Job.run_at, Job.id)
                .limit(limit)
            )
        ).all()
        for row in candidates:
            # Conditional update: of two workers (or processes) that read the same row, the second's UPDATE
            # waits for the first's commit and then matches nothing (PostgreSQL re-checks the WHERE clause
            # on the row the first wrote; SQLite runs one writer at a time).
            condition = and_(Job.id == row.id, _due(now))
            if row.status == JobStatus.running.value:
                # Taken again from a worker that died: its attempt counts as a failed one.
                lost = _lost_attempt(row)
                if row.attempts >= row.max_attempts:
                    await execute_counted(
                        session,
                        update(Job)
                        .where(condition)
                        .values(
                            status=JobStatus.dead.value,
                            finished_at=now,
                            last_error=lost,
                            locked_by=None,
                            locked_at=None,
                            lease_expires_at=None,
                        )
                        .execution_options(synchronize_session=False),
                    )
                    log.warning("job %s #%s dead: %s", row.name, row.id, lost)
                    continue
                log.warning("job %s #%s taken again: %s", row.name, row.id, lost)
                extra: dict[str, Any] = {"last_error": lost}
            else:
                extra = {}
            lease = now + timedelta(seconds=timeout_of(row.name, row.timeout_s)) + grace
            matched = await execute_counted(
                session,
                update(Job)
                .where(condition)
                .values(
                    status=JobStatus.running.value,
                    locked_by=WORKER_ID,
                    locked_at=now,
                    lease_expires_at=lease,
                    attempts=Job.attempts + 1,
                    **extra,
                )
                .execution_options(synchronize_session=False),
            )
            if matched == 1:
                claimed.append(Claim(row.id, row.attempts + 1))
    return claimed


async def _start(claim: Claim) -> tuple[str, dict[str, Any], int, int] | None:
    """Renew the lease as the attempt starts (a job claimed in a batch may have waited behind the others);
    None when the job is no longer ours."""
    now = utcnow()
    async with transaction() as session:
        item = await session.get(Job, claim.job_id)
        if item is None:
            return None
        timeout = timeout_of(item.name, item.timeout_s)
        matched = await execute_counted(
            session,
            update(Job)
            .where(_held(claim))
            .values(locked_at=now, lease_expires_at=now + timedelta(seconds=timeout) + lease_grace())
            .execution_options(synchronize_session=False),
        )
        if matched != 1:
            return None
        return item.name, dict(item.payload), item.max_attempts, timeout


class _LeaseLost(Exception):
    """Another worker took the job while this one ran it (this one was stalled past its lease)."""


async def _run_one(claim: Claim) -> None:
    started = await _start(claim)
    if started is None:
        log.warning("job #%s: lease lost before attempt %s started", claim.job_id, claim.attempt)
        return
    name, payload, max_attempts, timeout = started
    handler = HANDLERS.get(name)
    error = None
    if handler is None:
        error = f"no handler registered for {name}"
    else:
        deadline = asyncio.timeout(timeout)
        try:
            async with transaction() as session:
                async with deadline:
                    await handler(session, payload)
                # Done in the handler's own transaction: its writes and "done" commit together, and only while
                # the job is still ours, so a handler's database effect happens once even if it ran twice.
                matched = await execute_counted(
                    session,
                    update(Job)
                    .where(_held(claim))
                    .values(
                        status=JobStatus.done.value,
                        finished_at=utcnow(),
                        last_error=None,
                        locked_by=None,
                        locked_at=None,
                        lease_expires_at=None,
                    )
                    .execution_options(synchronize_session=False),
                )
                if matched != 1:
                    raise _LeaseLost
        except _LeaseLost:
            log.warning(
                "job %s #%s: another worker took it during attempt %s; its writes were rolled back",
                name,
                claim.job_id,
                claim.attempt,
            )
            return
        except TimeoutError:
            if not deadline.expired():  # the handler's own timeout (a provider that did not answer)
                error = redact_pii(traceback.format_exc(limit=5))
            else:
                error = f"TimeoutError: attempt {claim.attempt} ran longer than {timeout} s and was cancelled"
            log.warning(
                "job %s #%s timed out (attempt %s/%s)", name, claim.job_id, claim.attempt, max_attempts
            )
        except Exception:
            error = redact_pii(traceback.format_exc(limit=5))
            log.warning("job %s #%s failed (attempt %s/%s)", name, claim.job_id, claim.attempt, max_attempts)
        else:
            return
    await _record_failure(claim, max_attempts, error)


async def _record_failure(claim: Claim, max_attempts: int, error: str) -> None:
    now = utcnow()
    if claim.attempt >= max_attempts:
        values: dict[str, Any] = {"status": JobStatus.dead.value, "finished_at": now}
    else:
        values = {"status": JobStatus.failed.value, "run_at": now + backoff(claim.attempt)}
    async with transaction() as session:
        await execute_counted(
            session,
            update(Job)
            .where(_held(claim))
            .values(last_error=error[-4000:], locked_by=None, locked_at=None, lease_expires_at=None, **values)
            .execution_options(synchronize_session=False),
        )


async def run_due_jobs(limit: int = CLAIM_BATCH) -> int:
    """Run every job that is due now (tests call this directly). Returns how many ran."""
    ran = 0
    while True:
        claimed = await _claim(limit)
        if not claimed:
            return ran
        for claim in claimed:
            await _run_one(claim)
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
            due = await session.scalar(select(func.min(Job.run_at)).where(Job.status.in_(CLAIMABLE)))
            # A job whose worker died is due again when its lease expires.
            stale = await session.scalar(
                select(func.min(Job.lease_expires_at)).where(Job.status == JobStatus.running.value)
            )
    except Exception:  # noqa: BLE001 - the database is busy or gone: poll as before
        return poll_s
    times = [t for t in (due, stale) if t is not None]
    if not times:
        return poll_s
    return min(poll_s, max(0.05, (min(times) - utcnow()).total_seconds()))


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
