"""Staff pages of the outbound queue: the outbox (every message to residents and its delivery status — with
the log provider, the only place an SMS "sent" is read) and the admin's notice templates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.config import get_settings
from gasdesk.conversations.models import channel_label
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError
from gasdesk.outbound.models import PURPOSE_LABELS, STATUS_LABELS
from gasdesk.outbound.service import (
    CHANNELS,
    NOTICE_KEYS,
    check_notice_template,
    do_save_notice_template,
    notice_label,
    notice_overrides,
    outbound_out,
    outbox,
    parse_fields_text,
)
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)

CHANNEL_LABELS = {channel: channel_label(channel) for channel in CHANNELS}


@router.get("/admin/outbox")
async def outbox_page(request: Request, session: DbSession, channel: str = "", status: str = "",
                      _: User = allow(*MANAGERS)) -> Response:
    channel = channel if channel in CHANNELS else ""
    status = status if status in {s.value for s in STATUS_LABELS} else ""
    rows = await outbox(session, channel=channel or None, status=status or None, limit=200)
    overrides = await notice_overrides(session)
    return render(request, "admin_outbox.html", {
        "messages": [outbound_out(row, overrides) for row in rows], "channel": channel, "status": status,
        "channel_labels": CHANNEL_LABELS, "status_labels": {s.value: label for s, label in STATUS_LABELS.items()},
        "purpose_labels": PURPOSE_LABELS, "sms_provider": get_settings().sms_provider})


async def _templates_context(session: AsyncSession) -> dict[str, Any]:
    overrides = await notice_overrides(session)
    rows = []
    for channel in CHANNELS:
        for key in NOTICE_KEYS[channel]:
            row = overrides.get((channel, key))
            rows.append({"channel_code": channel, "purpose": key, "label": notice_label(channel, key), "row": row,
                         "fields_text": "\n".join(f"{k}={v}" for k, v in (row.fields or {}).items()) if row else ""})
    return {"notices": rows, "channel_labels": CHANNEL_LABELS}


@router.get("/admin/notice-templates")
async def notice_templates_page(request: Request, session: DbSession, _: User = allow(Role.admin)) -> Response:
    return render(request, "admin_notice_templates.html", await _templates_context(session))


@router.post("/admin/notice-templates")
async def notice_templates_save(request: Request, session: DbSession, channel: Annotated[str, Form(max_length=10)],
                                purpose: Annotated[str, Form(max_length=40)],
                                provider_template_id: Annotated[str, Form(max_length=80)],
                                fields: Annotated[str, Form(max_length=2000)] = "",
                                body: Annotated[str, Form(max_length=500)] = "",
                                enabled: Annotated[str, Form(max_length=10)] = "",
                                admin: User = allow(Role.admin)) -> Response:
    error = saved = None
    try:
        checked = check_notice_template(channel=channel, purpose=purpose, provider_template_id=provider_template_id,
                                        fields=parse_fields_text(fields), body=body, enabled=bool(enabled))
        await do_save_notice_template(session, Actor.of(admin, "web"), checked)
        saved = f"{CHANNEL_LABELS.get(channel, channel)} · {notice_label(channel, purpose)}"
    except GasdeskError as exc:
        await rollback(session, admin)
        error = exc.message
    context = await _templates_context(session)
    context.update(error=error, saved=saved, form={"channel": channel, "purpose": purpose})
    return render(request, "admin_notice_templates.html", context, 200 if error is None else 422)
