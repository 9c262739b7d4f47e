"""The audit log page (admins and supervisors): Chinese labels and a field-by-field diff."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gasdesk.audit import display
from gasdesk.audit.service import AuditFilter, list_audit
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.db import DbSession
from gasdesk.fields import MAX_DB_INT
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@router.get("/admin/audit")
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
    filt = AuditFilter(action=action, entity_type=entity_type, entity_id=entity_id, actor_name=actor)
    rows, total = await list_audit(session, filt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(request, "admin_audit.html", {
        "rows": rows, "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE)),
        "filters": {"action": action or "", "entity_type": entity_type or "", "entity_id": entity_id or "",
                    "actor": actor or ""},
        # Chinese labels and a field-by-field diff instead of codes and raw JSON.
        "action_labels": display.ACTION_LABELS, "entity_labels": display.ENTITY_LABELS,
        "action_label": display.action_label, "entity_label": display.entity_label,
        "source_label": display.source_label, "describe_changes": display.describe_changes,
    })
