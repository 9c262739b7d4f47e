"""Webhook admin page: the endpoints, adding one (its signing secret shown once) and the delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError
from gasdesk.web.templating import render
from gasdesk.webhooks.models import EVENTS, WebhookDelivery, WebhookEndpoint
from gasdesk.webhooks.service import do_create_endpoint

router = APIRouter(include_in_schema=False)


async def _webhooks_context(session: AsyncSession, status: str = "") -> dict[str, Any]:
    endpoints = list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(200)
    if status in ("pending", "delivered", "failed"):
        query = query.where(WebhookDelivery.status == status)
    return {"endpoints": endpoints, "names": {e.id: e.name for e in endpoints}, "events": EVENTS,
            "deliveries": list(await session.scalars(query)), "status": status,
            "status_labels": {"pending": "待发送", "delivered": "已送达", "failed": "失败"}}


@router.get("/admin/webhooks")
async def webhooks_page(request: Request, session: DbSession, status: str = "", _: User = allow(Role.admin)) -> Response:
    return render(request, "admin_webhooks.html", await _webhooks_context(session, status))


@router.post("/admin/webhooks")
async def webhooks_create(request: Request, session: DbSession, url: Annotated[str, Form(max_length=500)],
                          name: Annotated[str, Form(max_length=60)] = "",
                          events: Annotated[list[str] | None, Form()] = None, admin: User = allow(Role.admin)) -> Response:
    error = created = secret = None
    try:
        created, secret = await do_create_endpoint(session, Actor.of(admin, "web"), name=name, url=url.strip(),
                                                   events=events or [])
    except GasdeskError as exc:
        await rollback(session, admin)
        error = exc.message
    context = await _webhooks_context(session)
    context.update(error=error, created=created, secret=secret, form={"name": name, "url": url, "events": events or []})
    return render(request, "admin_webhooks.html", context, 200 if error is None else 422)
