"""The job queue over REST, for supervisors and admins: list, inspect (payload masked), retry, discard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.db import DbSession
from gasdesk.fields import Count, Id
from gasdesk.jobs import service
from gasdesk.jobs.models import STATUS_LABELS, Job
from gasdesk.jobs.queue import timeout_of
from gasdesk.jobs.schemas import JobDetailOut, JobOut, JobPage

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


def _common(row: Job) -> dict[str, Any]:
    error = (row.last_error or "").strip()
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "status_label": STATUS_LABELS.get(row.status, row.status),  # type: ignore[call-overload]
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "timeout_s": timeout_of(row.name, row.timeout_s),
        "run_at": row.run_at,
        "locked_by": row.locked_by,
        "lease_expires_at": row.lease_expires_at,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "error_summary": error.splitlines()[-1][:300] if error else None,
    }


def job_out(row: Job) -> JobOut:
    """A job's row on the list (the API and the admin page)."""
    return JobOut(**_common(row))


def job_detail_out(row: Job) -> JobDetailOut:
    """A job with its masked payload and whole last error."""
    return JobDetailOut(**_common(row), payload=service.mask_payload(row.payload), last_error=row.last_error)


@router.get("", response_model=JobPage)
async def jobs(
    session: DbSession,
    status: Annotated[str | None, Query(max_length=12)] = None,
    name: Annotated[str | None, Query(max_length=60)] = None,
    limit: int = Query(50, ge=1, le=500),
    offset: Annotated[Count, Query()] = 0,
    _: User = allow(*MANAGERS),
) -> JobPage:
    """Jobs, newest first, by status (pending, running, failed, done, dead, discarded) and name."""
    rows, total = await service.list_jobs(session, status=status, name=name, limit=limit, offset=offset)
    return JobPage(total=total, counts=await service.status_counts(session), items=[job_out(r) for r in rows])


@router.get("/{job_id}", response_model=JobDetailOut)
async def job_detail(job_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> JobDetailOut:
    """One job: payload with personal values masked, the whole last error."""
    return job_detail_out(await service.access_job(session, user, job_id))


@router.post("/{job_id}/retry", response_model=JobDetailOut)
async def retry(job_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> JobDetailOut:
    """Run a failed, dead or discarded job again now (409 for any other)."""
    row = await service.access_job(session, user, job_id)
    return job_detail_out(await service.do_retry_job(session, user, row))


@router.post("/{job_id}/discard", response_model=JobDetailOut)
async def discard(job_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> JobDetailOut:
    """Make sure a pending, failed or dead job never runs (409 for a running or finished one)."""
    row = await service.access_job(session, user, job_id)
    return job_detail_out(await service.do_discard_job(session, user, row))
