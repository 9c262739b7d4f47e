from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, Role
from gasdesk.db import DbSession
from gasdesk.outages.schemas import OutageAnnounced, OutageIn, OutageOut
from gasdesk.outages.service import describe, do_announce_outage, outages_affecting

router = APIRouter(prefix="/api/v1/outages", tags=["outages"])


@router.get("", response_model=list[OutageOut])
async def current(session: DbSession, district: str | None = None, kind: str | None = None,
                  _: User = allow(*ALL_ROLES)) -> list[dict[str, Any]]:
    """Outages in force now or within 24 hours."""
    return [{"id": o.id, "kind": o.kind, "district": o.district, "communities": o.communities,
             "starts_at": o.starts_at, "ends_at": o.ends_at, "reason": o.reason, "text": describe(o)}
            for o in await outages_affecting(session, district=district, kind=kind)]


@router.post("", status_code=201, response_model=OutageAnnounced)
async def announce(body: OutageIn, session: DbSession, user: User = allow(Role.admin, Role.supervisor)) -> dict:
    outage = await do_announce_outage(session, Actor.of(user, "api"), **body.model_dump())
    return {"id": outage.id, "text": describe(outage)}
