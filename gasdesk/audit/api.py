"""The audit log over REST (admins and supervisors); the codes as stored, for tools and exports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gasdesk.audit.schemas import AuditEntryOut, AuditPage
from gasdesk.audit.service import AuditFilter, list_audit
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.db import DbSession
from gasdesk.fields import AwareDatetime, Count

router = APIRouter(tags=["audit"])


@router.get("/api/v1/audit", response_model=AuditPage)
async def audit_api(
    session: DbSession,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: Annotated[Count, Query()] = 0,
    _: User = allow(Role.admin, Role.supervisor),
) -> AuditPage:
    filt = AuditFilter(action=action, entity_type=entity_type, entity_id=entity_id, actor_name=actor,
                       since=since, until=until)
    rows, total = await list_audit(session, filt, limit=limit, offset=offset)
    return AuditPage(total=total, items=[AuditEntryOut.model_validate(r, from_attributes=True) for r in rows])
