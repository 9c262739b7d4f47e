from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedString


class JobStatus(StrEnum):
    """Where a job is. pending → running → done; a failed attempt → failed (retried at ``run_at``); the last
    attempt failed → dead (the dead letters, kept with their last error until someone retries or discards them)."""

    pending = "pending"
    running = "running"
    failed = "failed"  # an attempt failed; runs again at run_at (backoff)
    done = "done"
    dead = "dead"  # every attempt failed (or a worker died during the last one)
    discarded = "discarded"  # an admin decided it must not run (audited)


STATUS_LABELS: dict[JobStatus, str] = {
    JobStatus.pending: "待执行",
    JobStatus.running: "执行中",
    JobStatus.failed: "失败待重试",
    JobStatus.done: "已完成",
    JobStatus.dead: "死信（已放弃）",
    JobStatus.discarded: "已丢弃",
}
# A worker takes these when due (run_at has come).
CLAIMABLE = (JobStatus.pending.value, JobStatus.failed.value)
# Work that will still happen: queued, retrying or in a worker's hands.
ACTIVE = (JobStatus.pending.value, JobStatus.running.value, JobStatus.failed.value)


class Job(Base):
    """One unit of background work. Written in the same transaction as the change that needs it
    (a transactional outbox), so work is never lost and never runs for a rolled-back change."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_due", "status", "run_at"),
        Index("ix_jobs_lease", "status", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default=JobStatus.pending.value)  # JobStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    # This job's own time limit in seconds; None: its name's (register_job), else the queue's default.
    timeout_s: Mapped[int | None] = mapped_column(Integer)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(80))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # While running: when another worker may take it (the attempt started + its timeout + a grace period);
    # a worker that died leaves the job running, and it is taken again once this has passed.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(EncryptedString)  # a traceback can quote what it processed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Lease(Base):
    """Who runs a periodic task right now: one process at a time across the cluster."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
