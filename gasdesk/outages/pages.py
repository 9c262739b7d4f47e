"""Staff pages of outage notices (停气停暖公告): the list, the create/edit form, and a notice's page with its
actions (publish, update, close, import a 户号 list) and the delivery to every affected customer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import DISPATCH
from gasdesk.broadcasts.service import STATUS_TEXT, delivery_rows, delivery_stats
from gasdesk.clock import local_zone, to_local
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.fields import Id
from gasdesk.outages.api import read_account_list
from gasdesk.outages.models import KIND_LABELS, STATUS_LABELS, OutageNotice, OutageStatus
from gasdesk.outages.service import (
    AreaSpec,
    access_outage,
    check_outage,
    describe,
    do_close_outage,
    do_create_outage,
    do_edit_draft,
    do_import_outage_customers,
    do_publish_outage,
    do_update_outage,
    imported_count,
    list_outages,
)
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)

STATUS_TEXTS = {s.value: label for s, label in STATUS_LABELS.items()}


def parse_local(value: str, label: str) -> datetime | None:
    """A ``datetime-local`` field (Beijing time) → an aware UTC datetime; blank → None."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{label}格式不正确", code="invalid_outage_time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=local_zone())
    return parsed


def parse_area_lines(text: str) -> list[AreaSpec]:
    """One area a line: 区,街道,小区,楼栋 (commas, Chinese commas or tabs; trailing parts may be left out)."""
    areas = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.replace("，", ",").replace("\t", ",").split(",")]
        if len(parts) > 4:
            raise InvalidInput(f"区域第 {number} 行最多四项：区,街道,小区,楼栋", code="invalid_outage_area")
        parts += [""] * (4 - len(parts))
        areas.append(AreaSpec(district=parts[0], street=parts[1], community=parts[2], building=parts[3]))
    return areas


def _area_lines(notice: OutageNotice) -> str:
    return "\n".join(",".join([a.district, a.street, a.community, a.building]).rstrip(",") for a in notice.areas)


def _local_input(moment: datetime | None) -> str:
    local = to_local(moment)
    return local.strftime("%Y-%m-%dT%H:%M") if local else ""


def _form_of(notice: OutageNotice | None) -> dict[str, Any]:
    if notice is None:
        return {"kind": "gas", "planned": True, "title": "", "areas": "", "starts_at": "", "ends_at": "",
                "expected_restore_at": "", "reason": "", "progress_note": ""}
    return {"kind": notice.kind, "planned": notice.planned, "title": notice.title, "areas": _area_lines(notice),
            "starts_at": _local_input(notice.starts_at), "ends_at": _local_input(notice.ends_at),
            "expected_restore_at": _local_input(notice.expected_restore_at), "reason": notice.reason,
            "progress_note": notice.progress_note}


@router.get("/outages")
async def outages_page(request: Request, session: DbSession, status: str = "",
                       _: User = allow(*DISPATCH)) -> Response:
    status = status if status in STATUS_TEXTS else ""
    rows = await list_outages(session, status=status or None)
    return render(request, "outages.html", {"notices": rows, "status": status, "status_labels": STATUS_TEXTS,
                                            "kind_labels": KIND_LABELS, "describe": describe})


@router.get("/outages/new")
async def new_page(request: Request, _: User = allow(*DISPATCH)) -> Response:
    return render(request, "outage_form.html", {"notice": None, "form": _form_of(None), "error": None})


async def _save(request: Request, session: DbSession, user: User, notice: OutageNotice | None,
                form: dict[str, Any]) -> Response:
    try:
        starts_at = parse_local(form["starts_at"], "开始时间")
        ends_at = parse_local(form["ends_at"], "结束时间")
        if starts_at is None or ends_at is None:
            raise InvalidInput("请填写开始和结束时间", code="invalid_outage_time")
        content = check_outage(kind=form["kind"], planned=form["planned"], title=form["title"],
                               areas=parse_area_lines(form["areas"]), starts_at=starts_at, ends_at=ends_at,
                               expected_restore_at=parse_local(form["expected_restore_at"], "预计恢复时间"),
                               reason=form["reason"], progress_note=form["progress_note"])
        actor = Actor.of(user, "web")
        if notice is None:
            notice = await do_create_outage(session, actor, content)
            flash = "草稿已保存"
        elif notice.status == OutageStatus.draft.value:
            await do_edit_draft(session, actor, notice, content)
            flash = "草稿已保存"
        else:
            queued = await do_update_outage(session, actor, notice, content)
            flash = f"公告已更新，{queued} 位用户将收到更新通知" if queued else "公告已保存（居民可见内容未变，不重复通知）"
    except GasdeskError as exc:
        await rollback(session, user)
        return render(request, "outage_form.html", {"notice": notice, "form": form, "error": exc.message}, 422)
    return RedirectResponse(f"/outages/{notice.id}?flash={flash}", status_code=303)


def _form_fields(kind: str, planned: str, title: str, areas: str, starts_at: str, ends_at: str,
                 expected_restore_at: str, reason: str, progress_note: str) -> dict[str, Any]:
    return {"kind": kind, "planned": planned != "sudden", "title": title, "areas": areas, "starts_at": starts_at,
            "ends_at": ends_at, "expected_restore_at": expected_restore_at, "reason": reason,
            "progress_note": progress_note}


@router.post("/outages/new")
async def create(request: Request, session: DbSession, kind: Annotated[str, Form(max_length=10)],
                 areas: Annotated[str, Form(max_length=20_000)], starts_at: Annotated[str, Form(max_length=40)],
                 ends_at: Annotated[str, Form(max_length=40)], planned: Annotated[str, Form(max_length=10)] = "planned",
                 title: Annotated[str, Form(max_length=80)] = "",
                 expected_restore_at: Annotated[str, Form(max_length=40)] = "",
                 reason: Annotated[str, Form(max_length=200)] = "",
                 progress_note: Annotated[str, Form(max_length=300)] = "",
                 user: User = allow(*DISPATCH)) -> Response:
    return await _save(request, session, user, None, _form_fields(kind, planned, title, areas, starts_at, ends_at,
                                                                  expected_restore_at, reason, progress_note))


@router.get("/outages/{outage_id}")
async def detail_page(request: Request, outage_id: Id, session: DbSession, flash: str = "", delivery: str = "",
                      _: User = allow(*DISPATCH)) -> Response:
    notice = await access_outage(session, outage_id)
    subject = f"outage:{notice.id}"
    return render(request, "outage_detail.html", {
        "notice": notice, "text": describe(notice), "status_label": STATUS_TEXTS[notice.status],
        "kind_label": KIND_LABELS.get(notice.kind, notice.kind), "imported": await imported_count(session, notice),
        "versions": await delivery_stats(session, subject), "status_text": STATUS_TEXT,
        "deliveries": await delivery_rows(session, subject, status=delivery or None), "delivery": delivery,
        "flash": flash[:120], "error": None})


@router.get("/outages/{outage_id}/edit")
async def edit_page(request: Request, outage_id: Id, session: DbSession, _: User = allow(*DISPATCH)) -> Response:
    notice = await access_outage(session, outage_id)
    return render(request, "outage_form.html", {"notice": notice, "form": _form_of(notice), "error": None})


@router.post("/outages/{outage_id}/edit")
async def edit(request: Request, outage_id: Id, session: DbSession, kind: Annotated[str, Form(max_length=10)],
               areas: Annotated[str, Form(max_length=20_000)], starts_at: Annotated[str, Form(max_length=40)],
               ends_at: Annotated[str, Form(max_length=40)], planned: Annotated[str, Form(max_length=10)] = "planned",
               title: Annotated[str, Form(max_length=80)] = "",
               expected_restore_at: Annotated[str, Form(max_length=40)] = "",
               reason: Annotated[str, Form(max_length=200)] = "",
               progress_note: Annotated[str, Form(max_length=300)] = "",
               user: User = allow(*DISPATCH)) -> Response:
    notice = await access_outage(session, outage_id)
    return await _save(request, session, user, notice, _form_fields(kind, planned, title, areas, starts_at, ends_at,
                                                                    expected_restore_at, reason, progress_note))


@router.post("/outages/{outage_id}/publish")
async def publish(outage_id: Id, session: DbSession, user: User = allow(*DISPATCH)) -> Response:
    notice = await access_outage(session, outage_id)
    queued = await do_publish_outage(session, Actor.of(user, "web"), notice)
    return RedirectResponse(f"/outages/{notice.id}?flash=已发布，{queued} 位受影响用户已加入通知队列", status_code=303)


@router.post("/outages/{outage_id}/close")
async def close(outage_id: Id, session: DbSession, note: Annotated[str, Form(max_length=300)] = "",
                user: User = allow(*DISPATCH)) -> Response:
    notice = await access_outage(session, outage_id)
    queued = await do_close_outage(session, Actor.of(user, "web"), notice, note=note)
    return RedirectResponse(f"/outages/{notice.id}?flash=公告已结束，{queued} 位用户将收到恢复通知", status_code=303)


@router.post("/outages/{outage_id}/customers")
async def import_customers(request: Request, outage_id: Id, session: DbSession,
                           user: User = allow(*DISPATCH)) -> Response:
    text = await read_account_list(request, session)
    notice = await access_outage(session, outage_id)
    result = await do_import_outage_customers(session, Actor.of(user, "web"), notice, text)
    flash = f"名单已导入：匹配 {result.matched} 位用户，未找到 {result.unknown} 个户号，无效 {len(result.invalid)} 行"
    return RedirectResponse(f"/outages/{notice.id}?flash={flash}", status_code=303)
