"""What the job queue's admin API answers."""

from __future__ import annotations

from typing import Any

from gasdesk.schemas import IsoDatetime, Out


class JobOut(Out):
    id: int
    name: str
    status: str  # pending | running | failed | done | dead | discarded
    status_label: str
    attempts: int
    max_attempts: int
    timeout_s: int  # the time limit of one attempt: the job's own, else its name's, else the default
    run_at: IsoDatetime
    locked_by: str | None  # the worker (host:pid) running it
    lease_expires_at: IsoDatetime | None  # when another worker may take it if that worker died
    created_at: IsoDatetime
    finished_at: IsoDatetime | None
    error_summary: str | None  # the last line of the last error


class JobDetailOut(JobOut):
    payload: Any  # personal values masked (gasdesk/jobs/service.py mask_payload)
    last_error: str | None  # phone/ID/户号 numbers were replaced before it was stored


class JobPage(Out):
    total: int
    counts: dict[str, int]  # jobs per status, every status listed
    items: list[JobOut]
