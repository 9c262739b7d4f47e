"""Work-order pages: ticket list (filters, saved views), detail with history and actions, create form,
dispatcher board and the crew's mobile pages.

Handlers stay thin: they parse the form, call the service functions and render. A ``GasdeskError`` from
a form post rolls the transaction back and re-renders the page with the Chinese message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.appointments import service as appointments
from gasdesk.appointments.models import Appointment, AppointmentSlot, ServiceOffering
from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, DISPATCH, OFFICE, Role
from gasdesk.clock import format_local, utcnow
from gasdesk.conversations.models import LeftMessage
from gasdesk.conversations.service import access_conversation_for_user
from gasdesk.customers.models import Customer
from gasdesk.customers.service import CustomerQuery, access_customer, find_customers, summarize
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError, InvalidInput, NotFound, PermissionDenied
from gasdesk.fields import MAX_DB_INT, Id, parse_id
from gasdesk.outbound.notices import do_send_guidance, guidance_services, notices_of_ticket
from gasdesk.tickets import service
from gasdesk.tickets.draft import draft_from_conversation
from gasdesk.tickets.lifecycle import ACTION_LABELS, allowed_actions
from gasdesk.tickets.models import (
    OPEN_STATUSES,
    PRIORITY_LABELS,
    PRIORITY_RANK,
    STATUS_LABELS,
    TYPE_LABELS,
    Priority,
    Team,
    Ticket,
    TicketStatus,
    TicketType,
)
from gasdesk.tickets.schemas import MAX_MATERIAL_QTY, CrewWriteback, TicketCreate
from gasdesk.web.templating import render
from gasdesk.web.uploads import read_upload_form

router = APIRouter(include_in_schema=False)

SLA_LABELS = {"ok": "正常", "at_risk": "即将超时", "breached": "已超时"}
BOARD_COLUMNS = (TicketStatus.new, TicketStatus.assigned, TicketStatus.in_progress, TicketStatus.reopened)
PAGE_SIZE = 20
LIST_KEYS = ("status", "type", "priority", "district", "team_id", "sla_state", "mine", "q")
EVENT_LABELS = {**ACTION_LABELS, "create": "创建", "writeback": "现场回写", "reschedule": "改约",
                "sla_at_risk": "SLA 预警", "sla_breached": "SLA 超时", "note": "补充说明", "contact": "补充地址/电话"}


def _labels() -> dict[str, Any]:
    return {"TYPE_LABELS": {t.value: v for t, v in TYPE_LABELS.items()},
            "STATUS_LABELS": {s.value: v for s, v in STATUS_LABELS.items()},
            "PRIORITY_LABELS": {p.value: v for p, v in PRIORITY_LABELS.items()},
            "SLA_LABELS": SLA_LABELS, "ACTION_LABELS": ACTION_LABELS, "EVENT_LABELS": EVENT_LABELS}


def _countdown(ticket: Ticket, now: datetime) -> str:
    """"剩余 3小时05分" / "超时 20分" against the next open deadline."""
    due = ticket.respond_by if ticket.responded_at is None else ticket.resolve_by
    if due is None or ticket.status not in {s.value for s in OPEN_STATUSES}:
        return ""
    seconds = int((due - now).total_seconds())
    minutes = abs(seconds) // 60
    text = (f"{minutes // 1440}天" if minutes >= 1440 else "") + \
        (f"{minutes % 1440 // 60}小时" if minutes >= 60 else "") + f"{minutes % 60:02d}分"
    which = "响应" if ticket.responded_at is None else "办结"
    return f"{which}剩余 {text}" if seconds >= 0 else f"{which}超时 {text}"


async def _people(session: AsyncSession, ids: set[int | None]) -> dict[int, str]:
    ids.discard(None)
    if not ids:
        return {}
    return {u.id: u.display_name for u in await session.scalars(select(User).where(User.id.in_(ids)))}


async def _crews(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).where(User.role == Role.field_crew.value,
                                                         User.is_active.is_(True)).order_by(User.display_name)))


async def _card(session: AsyncSession, tickets: list[Ticket]) -> list[dict[str, Any]]:
    """What list rows and board cards show."""
    now = utcnow()
    names = await _people(session, {t.crew_id for t in tickets} | {t.handler_id for t in tickets})
    teams = {t.id: t.name for t in await session.scalars(select(Team))}
    return [{
        "t": t, "type_label": TYPE_LABELS[TicketType(t.type)], "status_label": STATUS_LABELS[TicketStatus(t.status)],
        "priority_label": PRIORITY_LABELS[Priority(t.priority)], "sla_label": SLA_LABELS.get(t.sla_state, t.sla_state),
        "team": teams.get(t.team_id or 0), "crew": names.get(t.crew_id or 0), "handler": names.get(t.handler_id or 0),
        "countdown": _countdown(t, now),
    } for t in tickets]


# ---------------------------------------------------------------- ticket list + saved views


def _filters_from(request: Request) -> tuple[service.TicketFilters, dict[str, Any]]:
    params = request.query_params

    def one(key: str) -> str:
        return (params.get(key) or "").strip()

    def as_int(key: str) -> int | None:
        return parse_id(one(key))

    # Typed values first (unknown codes dropped); the page's form and the saved-view query echo them as raw.
    status = [s for s in params.getlist("status") if s in TicketStatus.__members__]
    ticket_type = one("type") if one("type") in TicketType.__members__ else ""
    priority = one("priority") if one("priority") in Priority.__members__ else ""
    district = one("district")[:40]
    team_id = as_int("team_id")
    sla_state = one("sla_state") if one("sla_state") in SLA_LABELS else ""
    mine = one("mine") in ("1", "true", "on")
    q = one("q")[:40]
    raw = {"status": status, "type": ticket_type, "priority": priority, "district": district, "team_id": team_id,
           "sla_state": sla_state, "mine": mine, "q": q}
    filters = service.TicketFilters(status=status or None, type=[ticket_type] if ticket_type else None,
                                    priority=priority or None, district=district or None, team_id=team_id,
                                    sla_state=sla_state or None, mine=mine, q=q or None)
    return filters, raw


def _query_string(raw: dict[str, Any]) -> str:
    pairs: list[tuple[str, Any]] = [("status", s) for s in raw["status"]]
    pairs += [(k, raw[k]) for k in ("type", "priority", "district", "team_id", "sla_state", "q") if raw[k]]
    if raw["mine"]:
        pairs.append(("mine", "1"))
    return urlencode(pairs)


async def _list_context(request: Request, session: AsyncSession, user: User) -> dict[str, Any]:
    filters, raw = _filters_from(request)
    page = min(parse_id(request.query_params.get("page")) or 1, MAX_DB_INT // PAGE_SIZE)
    total, rows = await service.search_tickets(session, user, filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    districts = [d for d in await session.scalars(select(Ticket.district).distinct().order_by(Ticket.district)) if d]
    return {"rows": await _card(session, rows), "total": total, "page": page,
            "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), "f": raw, "qs": _query_string(raw),
            "districts": districts, "teams": list(await session.scalars(select(Team).order_by(Team.id))),
            "views": await service.saved_views(session, user, "tickets"), **_labels()}


@router.get("/tickets")
async def tickets_page(request: Request, session: DbSession, user: User = allow(*OFFICE)) -> Response:
    context = await _list_context(request, session, user)
    partial = request.headers.get("hx-request") and request.headers.get("hx-target") == "ticket-results"
    return render(request, "tickets_results.html" if partial else "tickets_list.html", context)


@router.post("/tickets/views")
async def save_view(request: Request, session: DbSession, user: User = allow(*OFFICE)) -> Response:
    form = await request.form()
    raw: dict[str, Any] = {"status": [s for s in form.getlist("status") if s in TicketStatus.__members__]}
    for key in ("type", "priority", "district", "team_id", "sla_state", "q"):
        raw[key] = str(form.get(key) or "").strip()[:40]
    raw["mine"] = bool(form.get("mine"))
    error = notice = None
    try:
        view = await service.do_save_view(session, user, "tickets", str(form.get("view_name") or ""),
                                          _query_string(raw))
        notice = f"已保存视图“{view.name}”"
    except GasdeskError as exc:
        await rollback(session, user)
        error = exc.message
    return render(request, "tickets_views.html",
                  {"views": await service.saved_views(session, user, "tickets"), "error": error, "notice": notice})


@router.post("/tickets/views/{view_id}/delete")
async def delete_view(request: Request, view_id: Id, session: DbSession, user: User = allow(*OFFICE)) -> Response:
    await service.do_delete_view(session, user, view_id)
    return render(request, "tickets_views.html",
                  {"views": await service.saved_views(session, user, "tickets"), "error": None, "notice": "已删除视图"})


# ---------------------------------------------------------------- create ticket


async def _offerings(session: AsyncSession) -> dict[str, ServiceOffering]:
    return {o.code: o for o in await session.scalars(select(ServiceOffering).where(ServiceOffering.active.is_(True)))}


async def _new_context(session: AsyncSession, values: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    customer = None
    customer_id = parse_id(values.get("customer_id"))
    if customer_id is not None:
        try:
            customer = summarize(await access_customer(session, customer_id))
        except GasdeskError:
            customer = None
    return {"v": values, "error": error, "customer": customer, "service_types": service.SERVICE_TYPES,
            "offerings": await _offerings(session), "types": list(TicketType), **_labels()}


@router.get("/tickets/new")
async def new_ticket_page(request: Request, session: DbSession, conversation_id: Id | None = None,
                          left_message_id: Id | None = None, user: User = allow(*OFFICE)) -> Response:
    """The create form, prefilled from a conversation draft (``?conversation_id=``) or a left message."""
    values: dict[str, Any] = {"type": TicketType.repair.value, "priority": ""}
    notice = None
    open_tickets: list[dict[str, Any]] = []
    if conversation_id is not None:
        conversation = await access_conversation_for_user(session, user, conversation_id)
        draft = await draft_from_conversation(session, conversation)
        values.update(type=draft.type, service_type=draft.service_type or "", description=draft.description,
                      contact_phone=draft.phone or "", address_text=draft.address_text or "",
                      district=draft.district or "", preferred_time=draft.preferred_time or "",
                      customer_id=draft.customer_id or "", conversation_id=conversation.id)
        notice = f"已根据会话 #{conversation.id} 预填，请核对后提交"
        open_tickets = draft.open_tickets
        if open_tickets:  # one report, one ticket: offer the existing one first; a new one is linked to it
            values["parent_ticket_id"] = open_tickets[0]["id"]
    if left_message_id is not None:
        left = await session.get(LeftMessage, left_message_id)
        if left is None:
            raise NotFound("留言不存在", code="left_message_not_found")
        values.update(contact_phone=values.get("contact_phone") or left.phone, contact_name=left.name or "",
                      description=values.get("description") or left.content, left_message_id=left.id,
                      customer_id=values.get("customer_id") or left.customer_id or "")
        if left.conversation_id and not values.get("conversation_id"):
            values["conversation_id"] = left.conversation_id
        notice = f"已根据留言 #{left.id} 预填" + ("（该留言已生成工单）" if left.status == "ticketed" else "")
    context = await _new_context(session, values)
    context.update(notice=notice, open_tickets=open_tickets)
    return render(request, "ticket_new.html", context)


@router.post("/tickets/new/customers")
async def new_ticket_customers(request: Request, session: DbSession, customer_q: Annotated[str, Form()] = "",
                               user: User = allow(*OFFICE)) -> Response:
    """Customer search for the create form (phone, 户号, name or address); posted, so the searched phone
    number or 户号 stays out of URLs and access logs."""
    results = []
    if customer_q.strip():
        results = [summarize(c) for c in await find_customers(session, CustomerQuery(q=customer_q[:120]), limit=10)]
    return render(request, "ticket_new_customers.html", {"results": results, "searched": bool(customer_q.strip())})


@router.get("/tickets/new/service-info")
async def new_ticket_service_info(request: Request, session: DbSession, service_type: str = "",
                                  customer_id: str = "", user: User = allow(*OFFICE)) -> Response:
    """Guidance for guidance-only services; free slots for bookable ones (when the customer is known)."""
    offering = (await _offerings(session)).get(service_type)
    slots: list[dict[str, Any]] = []
    district = None
    customer = parse_id(customer_id)
    if offering is not None and offering.bookable and customer is not None:
        addresses = await appointments.customer_addresses(session, customer)
        district = addresses[0].district if addresses else None
        if district:
            slots = [{"id": s.id, "label": appointments.slot_label(s), "free": s.capacity - s.booked}
                     for s in await appointments.available_slots(session, district, offering.code)]
    return render(request, "ticket_service_info.html", {
        "offering": offering, "guide": appointments.guidance(offering) if offering else None,
        "slots": slots[:30], "district": district, "customer_known": customer is not None})


def _int_or_none(value: Any) -> int | None:
    return parse_id(value)


@router.post("/tickets/new")
async def create_ticket(request: Request, session: DbSession, user: User = allow(*OFFICE)) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in (
        "type", "priority", "title", "customer_id", "service_type", "description", "contact_name", "contact_phone",
        "address_text", "district", "preferred_time", "conversation_id", "left_message_id", "slot_id",
        "parent_ticket_id")}
    actor = Actor.of(user, "web")
    try:
        try:
            body = TicketCreate(
                type=values["type"], priority=values["priority"] or None, title=values["title"] or None,
                description=values["description"], customer_id=_int_or_none(values["customer_id"]),
                address_text=values["address_text"] or None, district=values["district"] or None,
                contact_name=values["contact_name"] or None, contact_phone=values["contact_phone"] or None,
                service_type=values["service_type"] or None, conversation_id=_int_or_none(values["conversation_id"]),
                left_message_id=_int_or_none(values["left_message_id"]),
                parent_ticket_id=_int_or_none(values["parent_ticket_id"]),
                preferred_time=values["preferred_time"] or None)
        except ValidationError:
            raise InvalidInput("填写内容过长或格式有误，请检查后重试", code="invalid_input") from None
        slot_id = _int_or_none(values["slot_id"])
        if slot_id is None:
            ticket = await service.do_create_desk_ticket(session, user, actor, body)
        else:
            ticket = await appointments.do_book_desk_ticket(session, user, actor, body, slot_id)
    except GasdeskError as exc:
        await rollback(session, user)
        return render(request, "ticket_new.html", await _new_context(session, values, exc.message), exc.status_code)
    return RedirectResponse(f"/tickets/{ticket.id}?created=1", status_code=303)


# ---------------------------------------------------------------- ticket detail + actions


async def _detail_context(session: AsyncSession, user: User, ticket: Ticket) -> dict[str, Any]:
    card = (await _card(session, [ticket]))[0]
    names = await _people(session, {e.actor_id for e in ticket.events})
    actions = []
    for action in allowed_actions(ticket.status):
        try:
            service.check_may_act(user, ticket, action)
        except PermissionDenied:
            continue
        actions.append(action)
    customer = await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    parent = await session.get(Ticket, ticket.parent_ticket_id) if ticket.parent_ticket_id else None
    linked = list(await session.scalars(select(Ticket).where(Ticket.parent_ticket_id == ticket.id)
                                        .order_by(Ticket.id)))
    appointment = await session.scalar(select(Appointment).where(Appointment.ticket_id == ticket.id)
                                       .order_by(Appointment.id.desc()))
    slot = await session.get(AppointmentSlot, appointment.slot_id) if appointment else None
    is_crew = Role(user.role) is Role.field_crew
    # 通知记录: what the resident was sent about this ticket / appointment, and whether it arrived.
    notices = [] if is_crew else await notices_of_ticket(session, ticket.id, appointment.id if appointment else None)
    guides = await guidance_services(session) if customer is not None and not is_crew else []
    return {"notices": notices, "guides": guides, "c": card, "t": ticket, "events": [{"e": e, "actor": names.get(e.actor_id or 0, e.actor_name)}
                                              for e in ticket.events],
            "actions": actions, "crews": await _crews(session) if "assign" in actions else [],
            "customer": customer, "appointment": appointment, "slot_label": appointments.slot_label(slot) if slot else None,
            "result": ticket.result, "arrived_local": _iso_local((ticket.result or {}).get("arrived_at")),
            "is_crew": is_crew, "parent": parent, "linked": linked, **_labels()}


def _iso_local(value: str | None) -> str:
    """An ISO timestamp stored in JSON (the crew result), shown in the display zone."""
    if not value:
        return ""
    try:
        return format_local(datetime.fromisoformat(value))
    except ValueError:
        return value


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> Response:
    ticket = await service.access_ticket(session, user, ticket_id)
    context = await _detail_context(session, user, ticket)
    context["notice"] = "工单已创建" if request.query_params.get("created") else (
        {"note": "已补充到工单", "guidance": "办理指引已发送"}.get(request.query_params.get("done") or "", "操作成功")
        if request.query_params.get("done") else None)
    return render(request, "ticket_detail.html", context)


@router.post("/tickets/{ticket_id}/action")
async def ticket_action(request: Request, ticket_id: Id, session: DbSession, action: Annotated[str, Form()],
                        note: Annotated[str, Form(max_length=1000)] = "", crew_id: Annotated[str, Form()] = "",
                        user: User = allow(*ALL_ROLES)) -> Response:
    ticket = await service.access_ticket(session, user, ticket_id)
    try:
        if action == "assign" and parse_id(crew_id) is None:
            raise InvalidInput("请选择外勤人员", code="assignee_required")
        await service.do_ticket_action(session, Actor.of(user, "web"), ticket, action, note=note,
                                       crew_id=parse_id(crew_id), user=user)
    except GasdeskError as exc:
        await rollback(session, user)
        ticket = await service.access_ticket(session, user, ticket_id)
        context = await _detail_context(session, user, ticket)
        context.update(error=exc.message, failed_action=action, note=note)
        return render(request, "ticket_detail.html", context, exc.status_code)
    return RedirectResponse(f"/tickets/{ticket.id}?done={action}", status_code=303)


@router.post("/tickets/{ticket_id}/note")
async def ticket_note(request: Request, ticket_id: Id, session: DbSession,
                      note: Annotated[str, Form(max_length=1000)] = "", user: User = allow(*OFFICE)) -> Response:
    """Add to an existing ticket (offered on 生成工单 when the conversation already has one)."""
    ticket = await service.access_ticket(session, user, ticket_id)
    try:
        await service.do_add_ticket_note(session, Actor.of(user, "web"), ticket, note)
    except GasdeskError as exc:
        await rollback(session, user)
        ticket = await service.access_ticket(session, user, ticket_id)
        context = await _detail_context(session, user, ticket)
        context.update(error=exc.message, note=note)
        return render(request, "ticket_detail.html", context, exc.status_code)
    return RedirectResponse(f"/tickets/{ticket.id}?done=note", status_code=303)


@router.post("/tickets/{ticket_id}/guidance")
async def ticket_guidance(request: Request, ticket_id: Id, session: DbSession,
                          service_code: Annotated[str, Form(max_length=20)] = "",
                          user: User = allow(*OFFICE)) -> Response:
    """Send the 办理指引 of a service that cannot be booked online to the ticket's customer (WeChat or SMS)."""
    ticket = await service.access_ticket(session, user, ticket_id)
    try:
        if ticket.customer_id is None:
            raise InvalidInput("工单未关联客户，无法发送办理指引", code="customer_required")
        await do_send_guidance(session, Actor.of(user, "web"), customer_id=ticket.customer_id,
                               service_code=service_code, ticket_id=ticket.id)
    except GasdeskError as exc:
        await rollback(session, user)
        ticket = await service.access_ticket(session, user, ticket_id)
        context = await _detail_context(session, user, ticket)
        context.update(error=exc.message)
        return render(request, "ticket_detail.html", context, exc.status_code)
    return RedirectResponse(f"/tickets/{ticket.id}?done=guidance", status_code=303)


# ---------------------------------------------------------------- dispatcher board


async def _board_context(session: AsyncSession) -> dict[str, Any]:
    rows = list(await session.scalars(select(Ticket).where(Ticket.status.in_([s.value for s in BOARD_COLUMNS]))
                                      .order_by(Ticket.id.desc()).limit(400)))
    far = datetime.max.replace(tzinfo=utcnow().tzinfo)
    rows.sort(key=lambda t: (t.crew_id is not None, PRIORITY_RANK[Priority(t.priority)], t.resolve_by or far, t.id))
    cards = await _card(session, rows)
    columns = [{"status": s.value, "label": STATUS_LABELS[s], "cards": [c for c in cards if c["t"].status == s.value]}
               for s in BOARD_COLUMNS]
    return {"columns": columns, "crews": await _crews(session), "now": utcnow(), **_labels()}


@router.get("/dispatch")
async def dispatch_page(request: Request, session: DbSession, user: User = allow(*DISPATCH)) -> Response:
    return render(request, "dispatch.html", await _board_context(session))


@router.get("/dispatch/board")
async def dispatch_board(request: Request, session: DbSession, user: User = allow(*DISPATCH)) -> Response:
    return render(request, "dispatch_board.html", await _board_context(session))


@router.post("/dispatch/{ticket_id}/assign")
async def dispatch_assign(request: Request, ticket_id: Id, session: DbSession, crew_id: Annotated[str, Form()] = "",
                          user: User = allow(*DISPATCH)) -> Response:
    error = notice = None
    try:
        crew = parse_id(crew_id)
        if crew is None:
            raise InvalidInput("请选择外勤人员", code="assignee_required")
        ticket = await service.access_ticket(session, user, ticket_id)
        await service.do_ticket_action(session, Actor.of(user, "web"), ticket, "assign", crew_id=crew, user=user)
        names = await _people(session, {crew})
        notice = f"工单 {ticket.number} 已派给 {names.get(crew, '')}"
    except GasdeskError as exc:
        await rollback(session, user)
        error = exc.message
    context = await _board_context(session)
    context.update(error=error, notice=notice)
    return render(request, "dispatch_board.html", context)


# ---------------------------------------------------------------- crew (mobile)


async def _crew_card(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    appointment = await session.scalar(select(Appointment).where(Appointment.ticket_id == ticket.id,
                                                                 Appointment.status == "booked"))
    slot = await session.get(AppointmentSlot, appointment.slot_id) if appointment else None
    return {"t": ticket, "type_label": TYPE_LABELS[TicketType(ticket.type)],
            "status_label": STATUS_LABELS[TicketStatus(ticket.status)],
            "priority_label": PRIORITY_LABELS[Priority(ticket.priority)],
            "when": appointments.slot_label(slot) if slot else None, "phone_digits": "".join(
                ch for ch in (ticket.contact_phone or "") if ch.isdigit() or ch == "+")}


@router.get("/crew")
async def crew_home(request: Request, session: DbSession, user: User = allow(Role.field_crew)) -> Response:
    _, rows = await service.search_tickets(session, user, service.TicketFilters(
        status=[TicketStatus.assigned.value, TicketStatus.in_progress.value]), limit=100)
    rows.sort(key=lambda t: (PRIORITY_RANK[Priority(t.priority)], t.id))
    return render(request, "crew_home.html", {"cards": [await _crew_card(session, t) for t in rows],
                                              "notice": request.query_params.get("notice")})


async def _crew_ticket_context(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    card = await _crew_card(session, ticket)
    arrived = next((e.at for e in ticket.events if e.action == "start"), None)
    return {**card, "arrived_at": arrived, "result": ticket.result,
            "can_start": ticket.status == TicketStatus.assigned.value,
            "can_writeback": ticket.status in (TicketStatus.assigned.value, TicketStatus.in_progress.value)}


@router.get("/crew/tickets/{ticket_id}")
async def crew_ticket(request: Request, ticket_id: Id, session: DbSession, user: User = allow(Role.field_crew)) -> Response:
    ticket = await service.access_ticket(session, user, ticket_id)
    context = await _crew_ticket_context(session, ticket)
    context["notice"] = {"start": "已记录到达现场", "saved": "结果已回写"}.get(request.query_params.get("done", ""))
    return render(request, "crew_ticket.html", context)


@router.post("/crew/tickets/{ticket_id}/start")
async def crew_start(request: Request, ticket_id: Id, session: DbSession, user: User = allow(Role.field_crew)) -> Response:
    ticket = await service.access_ticket(session, user, ticket_id)
    try:
        await service.do_ticket_action(session, Actor.of(user, "crew"), ticket, "start", note="到达现场", user=user)
    except GasdeskError as exc:
        await rollback(session, user)
        ticket = await service.access_ticket(session, user, ticket_id)
        context = await _crew_ticket_context(session, ticket)
        context["error"] = exc.message
        return render(request, "crew_ticket.html", context, exc.status_code)
    return RedirectResponse(f"/crew/tickets/{ticket.id}?done=start", status_code=303)


def _materials(names: list[str], qtys: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, qty in zip(names, qtys + [""] * (len(names) - len(qtys)), strict=False):
        name, qty = name.strip()[:40], qty.strip()[:10]
        if not name:
            continue
        try:
            amount: Any = float(qty) if qty else 1
        except ValueError:
            amount = None
        # "nan", "inf" and "1e999" parse as floats but are no quantity (and not valid JSON to store).
        if amount is None or not 0 < amount <= MAX_MATERIAL_QTY:
            raise InvalidInput(f"材料“{name}”的数量须为 0–{MAX_MATERIAL_QTY} 之间的数字", code="invalid_material")
        amount = int(amount) if float(amount).is_integer() else amount
        out.append({"name": name, "qty": amount})
    return out


# The write-back form: text fields and up to 20 photos of ≤ 5 MB each, within this total.


@router.post("/crew/tickets/{ticket_id}/writeback")
async def crew_writeback(request: Request, ticket_id: Id, session: DbSession,
                         user: User = allow(Role.field_crew)) -> Response:
    # The form is read only once the crew member and the ticket are checked (photos show homes).
    ticket = await service.access_ticket(session, user, ticket_id)
    form = await read_upload_form(request, max_files=20, max_fields=220,
                                  session=session)
    result, signature_name = form.value("result"), form.value("signature_name")
    resolved, material_name, material_qty = form.value("resolved"), form.values("material_name"), \
        form.values("material_qty")
    try:
        if not result.strip():
            raise InvalidInput("请填写处理结果", code="result_required")
        tokens = []
        for upload in form.files.get("photos", []):
            photo = await service.do_store_ticket_photo(session, user, ticket, upload.filename, upload.data)
            tokens.append(photo.token)
        arrived = next((e.at for e in ticket.events if e.action == "start"), None)
        try:
            body = CrewWriteback(arrived_at=arrived, result=result.strip(), resolved=bool(resolved),
                                 materials=_materials(material_name or [], material_qty or []), photo_tokens=tokens,
                                 signature_name=signature_name.strip() or None)
        except ValidationError:
            raise InvalidInput("回写内容过长或条目过多（材料 ≤ 50 项，照片 ≤ 20 张）", code="invalid_input") from None
        await service.do_crew_writeback(session, user, ticket, body)
    except GasdeskError as exc:
        await rollback(session, user)
        ticket = await service.access_ticket(session, user, ticket_id)
        context = await _crew_ticket_context(session, ticket)
        context.update(error=exc.message, form={"result": result, "signature_name": signature_name})
        return render(request, "crew_ticket.html", context, exc.status_code)
    return RedirectResponse(f"/crew/tickets/{ticket.id}?done=saved", status_code=303)
