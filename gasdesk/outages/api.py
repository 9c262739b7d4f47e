"""Outage notices (停气/停暖公告) over REST: the notices in force for an area or a customer, and the staff's
life cycle of a notice (draft → publish → update → close, imported customer lists)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, DISPATCH, OFFICE, Role
from gasdesk.broadcasts.service import delivery_stats
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Id
from gasdesk.outages.models import STATUS_LABELS, OutageNotice, OutageStatus
from gasdesk.outages.schemas import (
    ChangeOut,
    CloseIn,
    ImportOut,
    OutageAnnounced,
    OutageIn,
    OutageNoticeIn,
    OutageNoticeOut,
    OutageOut,
)
from gasdesk.outages.service import (
    AreaSpec,
    OutageContent,
    access_outage,
    check_outage,
    describe,
    do_announce_outage,
    do_close_outage,
    do_create_outage,
    do_edit_draft,
    do_import_outage_customers,
    do_publish_outage,
    do_update_outage,
    imported_count,
    list_outages,
    notices_for_customer,
    outages_affecting,
)
from gasdesk.web.uploads import read_upload_form

router = APIRouter(prefix="/api/v1/outages", tags=["outages"])


def _brief(o: OutageNotice) -> dict[str, Any]:
    return {"id": o.id, "kind": o.kind, "district": o.district, "communities": o.communities,
            "starts_at": o.starts_at, "ends_at": o.ends_at, "reason": o.reason, "text": describe(o)}


async def notice_out(session: DbSession, o: OutageNotice) -> dict[str, Any]:
    """A notice as staff see it, with its deliveries per content version."""
    return {"id": o.id, "kind": o.kind, "planned": o.planned, "status": o.status,
            "status_label": STATUS_LABELS[OutageStatus(o.status)], "title": o.title,
            "areas": [{"district": a.district, "street": a.street, "community": a.community, "building": a.building}
                      for a in o.areas],
            "starts_at": o.starts_at, "ends_at": o.ends_at, "expected_restore_at": o.expected_restore_at,
            "reason": o.reason, "progress_note": o.progress_note, "version": o.version,
            "imported_customers": await imported_count(session, o), "text": describe(o),
            "deliveries": [s.__dict__ for s in await delivery_stats(session, f"outage:{o.id}")]}


def content_of(body: OutageNoticeIn) -> OutageContent:
    """The request's content, checked."""
    return check_outage(kind=body.kind, planned=body.planned, title=body.title,
                        areas=[AreaSpec(**a.model_dump()) for a in body.areas], starts_at=body.starts_at,
                        ends_at=body.ends_at, expected_restore_at=body.expected_restore_at, reason=body.reason,
                        progress_note=body.progress_note)


@router.get("", response_model=list[OutageOut])
async def current(session: DbSession, district: str | None = None, kind: str | None = None,
                  community: str | None = None, building: str | None = None,
                  _: User = allow(*ALL_ROLES)) -> list[dict[str, Any]]:
    """Outages in force now or within 24 hours (for an area down to the building, when given)."""
    return [_brief(o) for o in await outages_affecting(session, district=district, community=community,
                                                       building=building, kind=kind)]


@router.post("", status_code=201, response_model=OutageAnnounced)
async def announce(body: OutageIn, session: DbSession, user: User = allow(Role.admin, Role.supervisor)) -> dict:
    """Create and publish a district-level notice in one step."""
    outage = await do_announce_outage(session, Actor.of(user, "api"), **body.model_dump())
    return {"id": outage.id, "text": describe(outage)}


@router.get("/for-customer/{customer_id}", response_model=list[OutageOut])
async def for_customer(customer_id: Id, session: DbSession, _: User = allow(*OFFICE)) -> list[dict[str, Any]]:
    """Notices in force for the customer's addresses or listing the customer (the agent console's panel)."""
    return [_brief(o) for o in await notices_for_customer(session, customer_id)]


@router.get("/notices", response_model=list[OutageNoticeOut])
async def notices(session: DbSession, status: str | None = None,
                  _: User = allow(*DISPATCH)) -> list[dict[str, Any]]:
    """Every notice, newest first (optionally of one status)."""
    return [await notice_out(session, o) for o in await list_outages(session, status=status, limit=100)]


@router.post("/notices", status_code=201, response_model=OutageNoticeOut)
async def create(body: OutageNoticeIn, session: DbSession, user: User = allow(*DISPATCH)) -> dict[str, Any]:
    """A new draft."""
    notice = await do_create_outage(session, Actor.of(user, "api"), content_of(body))
    return await notice_out(session, notice)


@router.get("/notices/{outage_id}", response_model=OutageNoticeOut)
async def detail(outage_id: Id, session: DbSession, _: User = allow(*DISPATCH)) -> dict[str, Any]:
    """One notice with its delivery statistics."""
    return await notice_out(session, await access_outage(session, outage_id))


@router.put("/notices/{outage_id}", response_model=ChangeOut)
async def change(outage_id: Id, body: OutageNoticeIn, session: DbSession,
                 user: User = allow(*DISPATCH)) -> dict[str, Any]:
    """Edit a draft, or update a published notice (broadcast again only when residents' content changed)."""
    notice = await access_outage(session, outage_id)
    content = content_of(body)
    queued = 0
    if notice.status == OutageStatus.draft.value:
        await do_edit_draft(session, Actor.of(user, "api"), notice, content)
    else:
        queued = await do_update_outage(session, Actor.of(user, "api"), notice, content)
    return {"id": notice.id, "status": notice.status, "version": notice.version, "queued": queued}


@router.post("/notices/{outage_id}/publish", response_model=ChangeOut)
async def publish(outage_id: Id, session: DbSession, user: User = allow(*DISPATCH)) -> dict[str, Any]:
    """Publish a draft and queue every affected customer."""
    notice = await access_outage(session, outage_id)
    queued = await do_publish_outage(session, Actor.of(user, "api"), notice)
    return {"id": notice.id, "status": notice.status, "version": notice.version, "queued": queued}


@router.post("/notices/{outage_id}/close", response_model=ChangeOut)
async def close(outage_id: Id, body: CloseIn, session: DbSession, user: User = allow(*DISPATCH)) -> dict[str, Any]:
    """Supply restored: the notice ends and affected customers are told."""
    notice = await access_outage(session, outage_id)
    queued = await do_close_outage(session, Actor.of(user, "api"), notice, note=body.note)
    return {"id": notice.id, "status": notice.status, "version": notice.version, "queued": queued}


async def read_account_list(request: Request, session: DbSession) -> str:
    """The uploaded 户号 list (multipart field ``file``: CSV, UTF-8 or GBK), read after authorisation."""
    form = await read_upload_form(request, session=session)
    upload = form.file("file")
    if upload is None:
        raise InvalidInput("请上传户号名单（CSV）", code="invalid_outage_list")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return upload.data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("名单文件编码无法识别（请用 UTF-8 或 GBK）", code="invalid_outage_list")


@router.post("/notices/{outage_id}/customers", response_model=ImportOut)
async def import_customers(outage_id: Id, request: Request, session: DbSession,
                           user: User = allow(*DISPATCH)) -> dict[str, Any]:
    """Replace the notice's imported customer list (a CSV of 户号, first column; at most 100,000)."""
    text = await read_account_list(request, session)
    notice = await access_outage(session, outage_id)
    result = await do_import_outage_customers(session, Actor.of(user, "api"), notice, text)
    return {"matched": result.matched, "unknown": result.unknown, "invalid": result.invalid, "queued": result.queued}
