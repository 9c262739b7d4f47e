"""The job queue's admin page (/admin/jobs, supervisors and admins): what waits, runs, retries or died, each
job's details with its payload masked, and retry / discard (audited)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError
from gasdesk.fields import Id
from gasdesk.jobs import service
from gasdesk.jobs.api import job_detail_out, job_out
from gasdesk.jobs.models import STATUS_LABELS, Job, JobStatus
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 200


@router.get("/admin/jobs")
async def jobs_page(
    request: Request, session: DbSession, status: str = "", name: str = "", _: User = allow(*MANAGERS)
) -> Response:
    """The newest jobs, by status and name; bad filters are a 422 page."""
    rows, total = await service.list_jobs(session, status=status, name=name, limit=PAGE_SIZE)
    return render(
        request,
        "admin_jobs.html",
        {
            "rows": [job_out(r) for r in rows],
            "total": total,
            "status": status,
            "name": name.strip(),
            "counts": await service.status_counts(session),
            "names": await service.job_names(session),
            "statuses": [(s.value, STATUS_LABELS[s]) for s in JobStatus],
        },
    )


def _detail(row: Job) -> dict[str, Any]:
    job = job_detail_out(row)
    return {
        "job": job,
        "payload_json": json.dumps(job.payload, ensure_ascii=False, indent=2),
        "retryable": row.status in service.RETRYABLE,
        "discardable": row.status in service.DISCARDABLE,
    }


@router.get("/admin/jobs/{job_id}")
async def job_page(
    request: Request, job_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    return render(request, "admin_job.html", _detail(await service.access_job(session, user, job_id)))


async def _act(request: Request, session: AsyncSession, user: User, job_id: int, action: str) -> Response:
    """Retry or discard, then the job's page again with the outcome (an error in place, with its status)."""
    row = await service.access_job(session, user, job_id)
    error = notice = None
    status_code = 200
    try:
        if action == "retry":
            await service.do_retry_job(session, user, row)
            notice = f"已重新排队：#{row.id}（{row.name}），后台任务进程将立即执行"
        else:
            await service.do_discard_job(session, user, row)
            notice = f"已丢弃：#{row.id}（{row.name}），它不会再执行"
    except GasdeskError as exc:
        await rollback(session, user, row)
        error, status_code = exc.message, exc.status_code
    return render(request, "admin_job.html", {**_detail(row), "error": error, "notice": notice}, status_code)


@router.post("/admin/jobs/{job_id}/retry")
async def retry_form(
    request: Request, job_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    return await _act(request, session, user, job_id, "retry")


@router.post("/admin/jobs/{job_id}/discard")
async def discard_form(
    request: Request, job_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    return await _act(request, session, user, job_id, "discard")
