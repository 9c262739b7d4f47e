"""The job queue seen by people: the admin page and API list jobs (pending, running, failed, dead…), show one
with its payload masked, and retry or discard it.

``do_retry_job`` puts a failed, dead or discarded job back in the queue now (a dead one with a fresh set of
attempts) and wakes the workers after commit; ``do_discard_job`` stops a job that waits, retries or died from
ever running. Both are audited (``job.retry``, ``job.discard``). No event is declared for them: nothing but the
workers acts on a job's state, and they are woken through the outbox's own after-commit wake-up.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.clock import utcnow
from gasdesk.db import after_commit, execute_counted
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.jobs.models import Job, JobStatus
from gasdesk.jobs.queue import wake_workers
from gasdesk.security.pii import redact_pii

RETRYABLE = (JobStatus.failed, JobStatus.dead, JobStatus.discarded)
DISCARDABLE = (JobStatus.pending, JobStatus.failed, JobStatus.dead)
MASK = "***"
# Payload keys whose values are about a person, whatever they hold: hidden on the admin page and the API.
_PERSONAL_KEY = re.compile(
    r"name|phone|mobile|tel|address|addr|room|openid|unionid|recipient|contact|email|id_?card|id_?number|"
    r"account|text|body|content|message|note|title|params|signature|secret|token|password",
    re.IGNORECASE,
)
# A job name: lower-case words with dots, underscores and dashes (webhooks.deliver, analytics.ingest).
_NAME = re.compile(r"[a-z0-9_.\-]{1,60}")


def mask_payload(value: Any, key: str = "") -> Any:
    """A payload fit to show staff: values under personal keys hidden, phone/ID/户号 numbers in any other text
    replaced by placeholders, numbers and flags (the ids jobs carry) kept."""
    if _PERSONAL_KEY.search(key) and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, dict):
        return {str(k): mask_payload(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_payload(v, key) for v in value]
    if isinstance(value, str):
        return redact_pii(value)
    return value


def check_status_filter(status: str | None) -> str | None:
    """A job status to filter by (None or empty: all), else ``InvalidInput``."""
    if not status:
        return None
    if status not in JobStatus.__members__:
        raise InvalidInput(
            f"未知的任务状态 / unknown status; 可选 {', '.join(s.value for s in JobStatus)}",
            code="invalid_status",
        )
    return status


def check_name_filter(name: str | None) -> str | None:
    """A job name to filter by (None or empty: all), else ``InvalidInput``."""
    name = (name or "").strip()
    if not name:
        return None
    if not _NAME.fullmatch(name):
        raise InvalidInput("任务名称格式不正确 / invalid job name", code="invalid_name")
    return name


async def list_jobs(
    session: AsyncSession,
    *,
    status: str | None = None,
    name: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """Newest first, filtered by status and name; returns (page, total)."""
    query = select(Job)
    if (status := check_status_filter(status)) is not None:
        query = query.where(Job.status == status)
    if (name := check_name_filter(name)) is not None:
        query = query.where(Job.name == name)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total or 0)


async def status_counts(session: AsyncSession) -> dict[str, int]:
    """How many jobs are in each status (every status listed, zero included)."""
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    counts = {status: count for status, count in rows}
    return {s.value: int(counts.get(s.value, 0)) for s in JobStatus}


async def job_names(session: AsyncSession) -> list[str]:
    """The names of the jobs stored (the page's name filter)."""
    return list(await session.scalars(select(Job.name).distinct().order_by(Job.name)))


def _require_manager(user: User) -> None:
    if Role(user.role) not in MANAGERS:
        raise PermissionDenied(
            "只有班长和管理员可以管理后台任务 / supervisors and admins only", code="forbidden"
        )


async def access_job(session: AsyncSession, user: User, job_id: int) -> Job:
    """A job, for a supervisor or admin."""
    _require_manager(user)
    row = await session.get(Job, job_id)
    if row is None:
        raise NotFound("后台任务不存在 / no such job", code="job_not_found")
    return row


def _snapshot(row: Job) -> dict[str, Any]:
    return {
        "name": row.name,
        "status": row.status,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "run_at": row.run_at.isoformat() if row.run_at else None,
    }


async def _change(session: AsyncSession, row: Job, values: dict[str, Any]) -> None:
    """Change a job only in the status it was read in: a worker may claim it at the same moment (a failed job
    whose backoff just ended), and then the person is told instead of overwriting the worker's state."""
    matched = await execute_counted(
        session,
        update(Job)
        .where(Job.id == row.id, Job.status == row.status)
        .values(**values)
        .execution_options(synchronize_session=False),
    )
    if matched != 1:
        raise Conflict("任务状态刚刚发生了变化，请刷新后再试 / the job changed meanwhile", code="job_changed")
    await session.refresh(row)


async def do_retry_job(session: AsyncSession, user: User, row: Job) -> Job:
    """Run a failed, dead or discarded job again now. A dead or discarded one gets a fresh set of attempts (its
    last error stays until the next attempt); a failed one keeps its count and skips the rest of its backoff."""
    _require_manager(user)
    if row.status not in RETRYABLE:
        raise Conflict(
            "只有失败、死信或已丢弃的任务可以重试 / only failed, dead or discarded jobs can be retried",
            code="job_not_retryable",
        )
    before = _snapshot(row)
    values: dict[str, Any] = {
        "status": JobStatus.pending.value,
        "run_at": utcnow(),
        "finished_at": None,
        "locked_by": None,
        "locked_at": None,
        "lease_expires_at": None,
    }
    if row.status != JobStatus.failed:
        values["attempts"] = 0
    await _change(session, row, values)
    record_audit(session, Actor.of(user), "job.retry", "job", row.id, before=before, after=_snapshot(row))
    after_commit(session, wake_workers)
    return row


async def do_discard_job(session: AsyncSession, user: User, row: Job) -> Job:
    """Make sure a waiting, retrying or dead job never runs (kept, as ``discarded``). A running job is in a
    worker's hands and cannot be discarded."""
    _require_manager(user)
    if row.status not in DISCARDABLE:
        raise Conflict(
            "只有待执行、失败待重试或死信任务可以丢弃 / only pending, failed or dead jobs can be discarded",
            code="job_not_discardable",
        )
    before = _snapshot(row)
    await _change(session, row, {"status": JobStatus.discarded.value, "finished_at": utcnow()})
    record_audit(session, Actor.of(user), "job.discard", "job", row.id, before=before, after=_snapshot(row))
    return row
