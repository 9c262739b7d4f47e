"""Browsing the audit log (admins and supervisors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from gasdesk.audit.service import AuditFilter, list_audit
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.db import DbSession
from gasdesk.fields import MAX_DB_INT, AwareDatetime, Count
from gasdesk.web.templating import render

router = APIRouter(tags=["audit"])
PAGE_SIZE = 50


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor_name: str
    action: str
    entity_type: str
    entity_id: str | None
    source: str
    changes: dict[str, Any] | None


class AuditPage(BaseModel):
    total: int
    items: list[AuditEntryOut]


def _filter(action: str | None, entity_type: str | None, entity_id: str | None, actor: str | None,
            since: datetime | None, until: datetime | None) -> AuditFilter:
    return AuditFilter(action=action or None, entity_type=entity_type or None, entity_id=entity_id or None,
                       actor_name=actor or None, since=since, until=until)


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
    rows, total = await list_audit(session, _filter(action, entity_type, entity_id, actor, since, until),
                                   limit=limit, offset=offset)
    return AuditPage(total=total, items=[AuditEntryOut.model_validate(r, from_attributes=True) for r in rows])


@router.get("/admin/audit", include_in_schema=False)
async def audit_page(
    request: Request,
    session: DbSession,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    page: int = Query(1, ge=1, le=MAX_DB_INT // PAGE_SIZE),
    _: User = allow(Role.admin, Role.supervisor),
) -> Response:
    filt = _filter(action, entity_type, entity_id, actor, None, None)
    rows, total = await list_audit(session, filt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(request, "admin_audit.html", {
        "rows": rows, "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE)),
        "filters": {"action": action or "", "entity_type": entity_type or "", "entity_id": entity_id or "",
                    "actor": actor or ""},
    })
