from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.webhooks.models import WebhookDelivery, WebhookEndpoint
from gasdesk.webhooks.schemas import DeliveryOut, EndpointCreated, EndpointIn, EndpointOut
from gasdesk.webhooks.service import do_create_endpoint

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.get("", response_model=list[EndpointOut])
async def endpoints(session: DbSession, _: User = allow(Role.admin)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    return [{"id": e.id, "name": e.name, "url": e.url, "events": e.events, "active": e.active} for e in rows]


@router.post("", status_code=201, response_model=EndpointCreated)
async def create(body: EndpointIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Register an endpoint. The signing secret is returned once; store it on the receiving side."""
    endpoint, secret = await do_create_endpoint(session, Actor.of(admin, "api"), name=body.name, url=body.url,
                                                events=body.events)
    return {"id": endpoint.id, "name": endpoint.name, "url": endpoint.url, "events": endpoint.events, "secret": secret}


@router.get("/deliveries", response_model=list[DeliveryOut])
async def deliveries(session: DbSession, status: str | None = None, endpoint_id: Id | None = None,
                     limit: int = Query(100, ge=1, le=500), _: User = allow(Role.admin)) -> list[dict[str, Any]]:
    """The delivery log: every event, its attempts, the last status code or error."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if endpoint_id:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return [{"id": d.id, "endpoint_id": d.endpoint_id, "event": d.event, "event_id": d.event_id, "status": d.status,
             "attempts": d.attempts, "last_status_code": d.last_status_code, "last_error": d.last_error,
             "created_at": d.created_at, "delivered_at": d.delivered_at, "next_attempt_at": d.next_attempt_at}
            for d in await session.scalars(query)]
