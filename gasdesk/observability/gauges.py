"""Gauges read from the database and the disk when ``/metrics`` is scraped: queue lengths and waits per skill
group, job lag and failed jobs, free disk. Three small indexed queries (the queue index, the jobs' due index, the
skill groups), run at most every ``REFRESH_S`` seconds per process, so a scrape every 15 s from each of several
processes costs the database nothing noticeable."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import as_utc, utcnow
from gasdesk.config import get_settings
from gasdesk.conversations.models import Conversation, ConversationState
from gasdesk.jobs.models import Job
from gasdesk.observability import metrics
from gasdesk.routing.models import SkillGroup

REFRESH_S = 5.0
NO_GROUP = "(none)"
_refreshed_at: float | None = None


def forget() -> None:
    """Read again at the next scrape (tests)."""
    global _refreshed_at
    _refreshed_at = None


def is_fresh() -> bool:
    return _refreshed_at is not None and time.monotonic() - _refreshed_at < REFRESH_S


async def refresh(session: AsyncSession) -> None:
    """Set the database and disk gauges (callers skip this while ``is_fresh()``)."""
    global _refreshed_at
    now = utcnow()
    groups = {gid: code for gid, code in await session.execute(select(SkillGroup.id, SkillGroup.code))}
    waiting = await session.execute(
        select(Conversation.skill_group_id, func.count(), func.min(Conversation.queued_at))
        .where(Conversation.state == ConversationState.queued.value)
        .group_by(Conversation.skill_group_id)
    )
    due = (
        await session.execute(
            select(func.count(), func.min(Job.run_at)).where(Job.status == "pending", Job.run_at <= now)
        )
    ).one()
    failed = await session.scalar(select(func.count()).select_from(Job).where(Job.status == "failed"))

    counts = {code: (0, 0.0) for code in groups.values()}
    for group_id, count, oldest in waiting:
        wait = max(0.0, (now - as_utc(oldest)).total_seconds()) if oldest is not None else 0.0
        counts[groups.get(group_id, NO_GROUP) if group_id is not None else NO_GROUP] = (int(count), wait)
    # no await from here on: a scrape never sees the gauges half set
    metrics.QUEUE_WAITING.clear()
    metrics.QUEUE_OLDEST_WAIT.clear()
    for code, (count, wait) in counts.items():
        metrics.QUEUE_WAITING.labels(code).set(count)
        metrics.QUEUE_OLDEST_WAIT.labels(code).set(wait)
    metrics.JOBS_PENDING_DUE.set(int(due[0]))
    metrics.JOB_LAG.set(max(0.0, (now - as_utc(due[1])).total_seconds()) if due[1] is not None else 0.0)
    metrics.JOBS_FAILED.set(int(failed or 0))
    _disk_gauges()
    _refreshed_at = time.monotonic()


def _disk_gauges() -> None:
    settings = get_settings()
    paths = {"var": settings.var_dir, "uploads": settings.upload_dir}
    if settings.is_sqlite:
        paths["database"] = Path(settings.database_url.split("///", 1)[-1]).parent
    for name, path in paths.items():
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is None:
            continue
        usage = shutil.disk_usage(existing)
        metrics.DISK_FREE.labels(name).set(usage.free)
        metrics.DISK_TOTAL.labels(name).set(usage.total)
