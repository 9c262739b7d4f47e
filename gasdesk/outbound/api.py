"""The outbound API: messages sent to residents about a ticket, appointment, conversation or customer, and
the admin's notice templates."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Query

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import OFFICE, Role
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.outbound.schemas import NoticeTemplateIn, NoticeTemplateOut, OutboundOut
from gasdesk.outbound.service import (
    check_notice_template,
    do_save_notice_template,
    notice_overrides,
    notice_template_out,
    notice_templates,
    outbound_for,
    outbound_out,
)

router = APIRouter(prefix="/api/v1", tags=["outbound"])


@router.get("/outbound", response_model=list[OutboundOut])
async def outbound(session: DbSession, ticket_id: Id | None = None, appointment_id: Id | None = None,
                   conversation_id: Id | None = None, customer_id: Id | None = None,
                   limit: int = Query(50, ge=1, le=200), _: User = allow(*OFFICE)) -> list[dict[str, Any]]:
    """WeChat and SMS messages sent (or queued, failed, skipped) about the given ticket / appointment /
    conversation / customer, newest first, with their delivery status. Recipients are masked."""
    rows = await outbound_for(session, ticket_id=ticket_id, appointment_id=appointment_id,
                              conversation_id=conversation_id, customer_id=customer_id, limit=limit)
    overrides = await notice_overrides(session)
    return [outbound_out(row, overrides) for row in rows]


@router.get("/notice-templates", response_model=list[NoticeTemplateOut])
async def list_notice_templates(session: DbSession, _: User = allow(Role.admin)) -> list[dict[str, Any]]:
    """The provider templates admins mapped to notices (unmapped notices use the built-in ones)."""
    return [notice_template_out(row) for row in await notice_templates(session)]


@router.put("/notice-templates/{channel}/{purpose}", response_model=NoticeTemplateOut)
async def save_notice_template(body: NoticeTemplateIn, session: DbSession,
                               channel: Literal["sms", "wechat"] = Path(),
                               purpose: str = Path(max_length=40), admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Create or replace the provider template of one notice on one channel (audited)."""
    checked = check_notice_template(channel=channel, purpose=purpose, provider_template_id=body.provider_template_id,
                                    fields=body.fields, body=body.body, enabled=body.enabled)
    row = await do_save_notice_template(session, Actor.of(admin, "api"), checked)
    return notice_template_out(row)
