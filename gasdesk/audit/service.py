"""Writing and reading the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.models import AuditEntry
from gasdesk.clock import utcnow
from gasdesk.db import table_of

if TYPE_CHECKING:
    from gasdesk.auth.models import User


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a user, or the system (CLI, jobs, imports) under a name."""

    user_id: int | None
    name: str
    source: str = "web"

    @classmethod
    def of(cls, user: User, source: str = "web") -> Actor:
        return cls(user.id, user.username, source)

    @classmethod
    def system(cls, name: str = "system", source: str = "cli") -> Actor:
        return cls(None, name, source)


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Keep only the fields that changed, as {"before": {...}, "after": {...}}."""
    before = before or {}
    after = after or {}
    keys = sorted(set(before) | set(after))
    changed = [k for k in keys if before.get(k) != after.get(k)]
    return {
        "before": {k: before.get(k) for k in changed if k in before} or None,
        "after": {k: after.get(k) for k in changed if k in after} or None,
    }


def record_audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit row to the current transaction (it commits or rolls back with the change)."""
    entry = AuditEntry(
        at=utcnow(),
        actor_id=actor.user_id,
        actor_name=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        changes=diff(before, after),
        source=actor.source,
    )
    session.add(entry)
    return entry


async def record_audit_bulk(session: AsyncSession, actor: Actor, rows: list[dict[str, Any]]) -> None:
    """Insert many audit rows at once (imports). Each row: action, entity_type, entity_id, before, after."""
    if not rows:
        return
    now = utcnow()
    await session.execute(
        insert(table_of(AuditEntry)),  # Core insert: the ORM bookkeeping costs more than the rows here
        [
            {
                "at": now,
                "actor_id": actor.user_id,
                "actor_name": actor.name,
                "action": r["action"],
                "entity_type": r["entity_type"],
                "entity_id": str(r["entity_id"]),
                "changes": diff(r.get("before"), r.get("after")),
                "source": actor.source,
            }
            for r in rows
        ],
    )


@dataclass
class AuditFilter:
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    actor_name: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_audit(
    session: AsyncSession, filt: AuditFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[AuditEntry], int]:
    """Newest first, filtered; returns (page, total)."""
    query = select(AuditEntry)
    if filt.action:
        query = query.where(AuditEntry.action.startswith(filt.action))
    if filt.entity_type:
        query = query.where(AuditEntry.entity_type == filt.entity_type)
    if filt.entity_id:
        query = query.where(AuditEntry.entity_id == filt.entity_id)
    if filt.actor_name:
        query = query.where(AuditEntry.actor_name == filt.actor_name)
    if filt.since:
        query = query.where(AuditEntry.at >= filt.since)
    if filt.until:
        query = query.where(AuditEntry.at < filt.until)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total or 0)
