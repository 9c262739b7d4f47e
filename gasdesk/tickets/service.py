"""Creating tickets, moving them through the state machine, crew write-back. Every change writes a
TicketEvent (history), an audit row, a domain event and the outbound webhook."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.clock import to_local, utcnow
from gasdesk.conversations.attachments import Attachment, check_upload, sealed_path, store_sealed_file
from gasdesk.conversations.models import LeftMessage, channel_label
from gasdesk.conversations.service import access_conversation_for_user
from gasdesk.customers.models import Account, Address, Customer
from gasdesk.customers.service import address_parts
from gasdesk.customers.validation import check_phone, mask_phone
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.event_types import TicketCreated, TicketSla, TicketUpdated, TicketWebhookData
from gasdesk.events import emit
from gasdesk.notifications.service import do_notify
from gasdesk.security.pii import redact_pii
from gasdesk.tickets import sla
from gasdesk.tickets.lifecycle import next_status
from gasdesk.tickets.models import (
    OPEN_STATUSES,
    PRIORITY_LABELS,
    STATUS_LABELS,
    TYPE_LABELS,
    Priority,
    SavedView,
    Ticket,
    TicketEvent,
    TicketStatus,
    TicketType,
)
from gasdesk.tickets.routing import check_ticket_type, route_ticket
from gasdesk.tickets.schemas import CrewWriteback, TicketCreate
from gasdesk.webhooks.service import publish

# What else a resolve does in the same transaction (follow-ups schedules the 回访 survey). Follow-ups builds
# on tickets (it reopens them and files complaints), so tickets cannot import it: the app factory and the
# worker register the hook (gasdesk/worker.py register_handlers).
ResolvedHook = Callable[[AsyncSession, Ticket], Awaitable[Any]]
ON_RESOLVED: list[ResolvedHook] = []


def on_ticket_resolved(hook: ResolvedHook) -> None:
    """Run ``hook(session, ticket)`` whenever a ticket is resolved, inside the resolving transaction."""
    if hook not in ON_RESOLVED:
        ON_RESOLVED.append(hook)


# What else a new ticket or a state change does in the same transaction (the resident's 工单进度 notices on
# WeChat/SMS, gasdesk/outbound/notices.py). Registered by gasdesk/worker.py like ON_RESOLVED.
CreatedHook = Callable[[AsyncSession, Ticket], Awaitable[Any]]
# (session, ticket, action, status before the action)
TransitionHook = Callable[[AsyncSession, Ticket, str, str], Awaitable[Any]]
ON_CREATED: list[CreatedHook] = []
ON_TRANSITION: list[TransitionHook] = []


def on_ticket_created(hook: CreatedHook) -> None:
    """Run ``hook(session, ticket)`` for every new ticket, inside the creating transaction."""
    if hook not in ON_CREATED:
        ON_CREATED.append(hook)


def on_ticket_transition(hook: TransitionHook) -> None:
    """Run ``hook(session, ticket, action, previous_status)`` after every state-machine action, inside its
    transaction (after the ticket's own hooks such as ON_RESOLVED)."""
    if hook not in ON_TRANSITION:
        ON_TRANSITION.append(hook)


SERVICE_TYPES = ("开栓", "维修", "改线", "安检", "阀管改造", "旧改施工", "报警器安装")
DEFAULT_PRIORITY = {TicketType.gas_leak: Priority.urgent, TicketType.no_gas: Priority.high,
                    TicketType.complaint: Priority.high}


def check_priority(value: str) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        raise InvalidInput(f"未知优先级 {value!r}；可选: urgent/high/normal/low", code="invalid_priority") from None


def check_service_type(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in SERVICE_TYPES:
        raise InvalidInput(f"未知服务类型 {value!r}；可选: {'、'.join(SERVICE_TYPES)}", code="invalid_service_type")
    return value


def ticket_snapshot(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number, "type": ticket.type, "priority": ticket.priority, "status": ticket.status,
        "team_id": ticket.team_id, "handler_id": ticket.handler_id, "crew_id": ticket.crew_id,
        "customer_id": ticket.customer_id, "service_type": ticket.service_type,
    }


def ticket_webhook_data(ticket: Ticket) -> TicketWebhookData:
    """``data`` of the ticket webhooks (declared in ``gasdesk/event_types.py``)."""
    return {  # the ticket_snapshot fields, spelled out: a TypedDict is built from its declared keys
        "number": ticket.number, "type": ticket.type, "priority": ticket.priority, "status": ticket.status,
        "team_id": ticket.team_id, "handler_id": ticket.handler_id, "crew_id": ticket.crew_id,
        "customer_id": ticket.customer_id, "service_type": ticket.service_type, "id": ticket.id, "title": ticket.title,
        "district": ticket.district, "channel": ticket.channel, "sla_state": ticket.sla_state,
        "respond_by": ticket.respond_by.isoformat() if ticket.respond_by else None,
        "resolve_by": ticket.resolve_by.isoformat() if ticket.resolve_by else None,
        "created_at": ticket.created_at.isoformat() if ticket.created_at else None,
    }


async def _publish(session: AsyncSession, event: type[TicketCreated | TicketUpdated], ticket: Ticket) -> None:
    """Announce the ticket after commit and queue its webhook deliveries in this transaction."""
    payload = event(ticket_id=ticket.id, status=ticket.status, crew_id=ticket.crew_id, handler_id=ticket.handler_id)
    emit(session, payload)
    await publish(session, payload.TYPE, ticket_webhook_data(ticket))


async def load_history(session: AsyncSession, ticket: Ticket) -> None:
    """Make sure ``ticket.events`` is loaded before appending to it (async sessions cannot lazy-load)."""
    if "events" in sa_inspect(ticket).unloaded:
        await session.refresh(ticket, ["events"])


def _event(ticket: Ticket, actor: Actor, action: str, from_status: str | None, note: str | None = None,
           data: dict[str, Any] | None = None) -> TicketEvent:
    event = TicketEvent(at=utcnow(), actor_id=actor.user_id, actor_name=actor.name, action=action,
                        from_status=from_status, to_status=ticket.status, note=note or None, data=data)
    ticket.events.append(event)
    return event


async def access_ticket(session: AsyncSession, user: User, ticket_id: int) -> Ticket:
    """Field crews see only tickets given to them; other staff see all."""
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("工单不存在", code="ticket_not_found")
    if Role(user.role) is Role.field_crew and ticket.crew_id != user.id:
        raise PermissionDenied("该工单未派给您", code="ticket_not_yours")
    await session.refresh(ticket, ["events"])
    return ticket


@dataclass(frozen=True)
class _Where:
    customer: Customer | None
    account: Account | None
    address: Address | None


async def _resolve_links(session: AsyncSession, data: TicketCreate) -> _Where:
    customer = await session.get(Customer, data.customer_id) if data.customer_id else None
    if data.customer_id and customer is None:
        raise InvalidInput("客户不存在", code="customer_not_found")
    account = await session.get(Account, data.account_id) if data.account_id else None
    if data.account_id and (account is None or (customer and account.customer_id != customer.id)):
        raise InvalidInput("户号不存在或不属于该客户", code="account_mismatch")
    if account is not None and customer is None:
        customer = await session.get(Customer, account.customer_id)
    if account is None and customer is not None and not data.address_id:
        # The customer's only (or first) account is the one the request is about unless told otherwise.
        account = await session.scalar(select(Account).where(Account.customer_id == customer.id)
                                       .order_by(Account.id).limit(1))
    address = await session.get(Address, data.address_id) if data.address_id else None
    if data.address_id and (address is None or (customer and address.customer_id != customer.id)):
        raise InvalidInput("地址不存在或不属于该客户", code="address_mismatch")
    if address is None and account is not None and account.address_id:
        address = await session.get(Address, account.address_id)
    return _Where(customer, account, address)


async def do_create_ticket(session: AsyncSession, actor: Actor, data: TicketCreate) -> Ticket:
    """Validate, route, set SLA deadlines and store a new ticket."""
    ticket_type = check_ticket_type(data.type)
    where = await _resolve_links(session, data)
    phone = check_phone(data.contact_phone) if data.contact_phone else None
    if phone is None and where.customer is not None:
        await session.refresh(where.customer, ["phones"])
        phone = where.customer.phones[0].phone if where.customer.phones else None
    district = data.district or (where.address.district if where.address else None)
    address_text = data.address_text or (address_parts(where.address).display() if where.address else None)
    description = (data.description or "").strip()
    if data.preferred_time:
        description = (description + f"\n期望上门时间：{data.preferred_time}").strip()
    tags = list(where.customer.tags or []) if where.customer else []
    parent = await _parent_ticket(session, data)
    decision = await route_ticket(session, ticket_type=ticket_type.value, district=district,
                                  text=(data.title or "") + description, customer_tags=tags)
    priority = check_priority(data.priority) if data.priority else (
        Priority(decision.priority) if decision.priority else DEFAULT_PRIORITY.get(ticket_type, Priority.normal))
    now = utcnow()
    respond_by, resolve_by, _ = await sla.deadlines(session, ticket_type.value, priority.value, now)
    service_type = check_service_type(data.service_type)
    label = TYPE_LABELS[ticket_type]
    title = (data.title or "").strip() or f"{label}{'·' + service_type if service_type and service_type != label else ''}" \
        + (f" - {district}" if district else "")
    ticket = Ticket(
        number="pending", type=ticket_type.value, priority=priority.value, status=TicketStatus.new.value,
        title=title[:120], description=description or None, service_type=service_type,
        customer_id=where.customer.id if where.customer else None,
        account_id=where.account.id if where.account else None,
        address_id=where.address.id if where.address else None, district=district, address_text=address_text,
        contact_name=(data.contact_name or (where.customer.name if where.customer else None)),
        contact_phone=phone, channel=data.channel, conversation_id=data.conversation_id,
        left_message_id=data.left_message_id, parent_ticket_id=parent.id if parent else None,
        team_id=decision.team_id, handler_id=decision.handler_id,
        routing_rule=decision.rule.name if decision.rule else None, respond_by=respond_by, resolve_by=resolve_by,
        sla_state="ok", escalation_level=0, reopen_count=0, created_by_id=actor.user_id, created_at=now,
        updated_at=now, events=[],
    )
    session.add(ticket)
    await session.flush()
    # Human-friendly, unique and sortable: GD + local date + id.
    ticket.number = f"GD{to_local(now).strftime('%Y%m%d')}{ticket.id:05d}"
    _event(ticket, actor, "create", None, note=f"来源：{channel_label(data.channel) or '人工创建'}"
           + (f"；关联工单 {parent.number}" if parent else ""),
           data={"routing_rule": ticket.routing_rule, "team_id": ticket.team_id,
                 **({"parent_ticket_id": parent.id} if parent else {})})
    await session.flush()
    record_audit(session, actor, "ticket.create", "ticket", ticket.id, after=ticket_snapshot(ticket))
    if ticket.handler_id:
        do_notify(session, ticket.handler_id, "ticket.new", f"新工单 {ticket.number}", ticket.title,
                  link=f"/tickets/{ticket.id}")
    for created_hook in ON_CREATED:
        await created_hook(session, ticket)
    await _publish(session, TicketCreated, ticket)
    return ticket


def check_may_act(user: User, ticket: Ticket, action: str) -> None:
    """Role rules on top of the state machine: crews start/resolve their own; agents close/reopen/cancel."""
    role = Role(user.role)
    if role is Role.field_crew and action not in ("start", "resolve"):
        raise PermissionDenied("外勤人员只能开始处理或办结派给自己的工单", code="forbidden_action")
    if role is Role.field_crew and ticket.crew_id != user.id:
        raise PermissionDenied("该工单未派给您", code="ticket_not_yours")
    if role is Role.agent and action not in ("close", "reopen", "cancel"):
        raise PermissionDenied("坐席不能派单或办结工单，请联系调度", code="forbidden_action")


async def do_ticket_action(session: AsyncSession, actor: Actor, ticket: Ticket, action: str, *, note: str = "",
                           crew_id: int | None = None, handler_id: int | None = None,
                           user: User | None = None) -> Ticket:
    """Apply one state-machine action (history, audit, events, webhook). ``user`` (when a person acts, not a
    job) is checked against the role rules."""
    if user is not None:
        check_may_act(user, ticket, action)
    await load_history(session, ticket)
    before = ticket_snapshot(ticket)
    previous = ticket.status
    target = next_status(ticket.status, action)
    now = utcnow()
    data: dict[str, Any] = {}
    if action == "assign":
        if crew_id is None and handler_id is None:
            raise InvalidInput("派单需要指定外勤人员或处理人", code="assignee_required")
        for uid, roles in ((crew_id, {Role.field_crew}),
                           (handler_id, {Role.dispatcher, Role.agent, Role.supervisor, Role.admin})):
            if uid is None:
                continue
            person = await session.get(User, uid)
            if person is None or not person.is_active or Role(person.role) not in roles:
                raise InvalidInput("指定的人员不存在、已停用或角色不符", code="invalid_assignee")
        if crew_id is not None:
            ticket.crew_id = crew_id
            data["crew_id"] = crew_id
        if handler_id is not None:
            ticket.handler_id = handler_id
            data["handler_id"] = handler_id
    if action in ("cancel", "reopen") and not note.strip():
        raise InvalidInput("取消或重新打开工单需要填写原因", code="note_required")
    ticket.status = target.value
    if action in ("assign", "start", "resolve") and ticket.responded_at is None:
        ticket.responded_at = now
        # The respond deadline is settled: clear its flag; the next SLA scan judges the resolve deadline
        # on its own (and flags it afresh if it is at risk).
        ticket.sla_state = "ok"
    if action == "resolve":
        ticket.resolved_at = now
    if action == "close":
        ticket.closed_at = now
    if action == "reopen":
        ticket.reopen_count += 1
        ticket.resolved_at = None
        ticket.closed_at = None
        ticket.sla_state = "ok"
        _, ticket.resolve_by, _ = await sla.deadlines(session, ticket.type, ticket.priority, now)
    ticket.updated_at = now
    _event(ticket, actor, action, previous, note=note.strip() or None, data=data or None)
    record_audit(session, actor, f"ticket.{action}", "ticket", ticket.id, before=before, after=ticket_snapshot(ticket))
    if action == "assign" and crew_id is not None:
        do_notify(session, crew_id, "ticket.assigned", f"新派工单 {ticket.number}", ticket.title,
                  link=f"/crew/tickets/{ticket.id}")
    if action == "resolve":
        for hook in ON_RESOLVED:
            await hook(session, ticket)
    for transition_hook in ON_TRANSITION:
        await transition_hook(session, ticket, action, previous)
    await _publish(session, TicketUpdated, ticket)
    return ticket


async def do_crew_writeback(session: AsyncSession, crew: User, ticket: Ticket, body: CrewWriteback) -> Ticket:
    """A field crew records arrival, result, materials, photos and the resident's signature name."""
    await load_history(session, ticket)
    if ticket.crew_id != crew.id and Role(crew.role) is not Role.admin:
        raise PermissionDenied("该工单未派给您", code="ticket_not_yours")
    if ticket.status not in (TicketStatus.assigned.value, TicketStatus.in_progress.value):
        raise InvalidInput(f"工单当前为“{STATUS_LABELS[TicketStatus(ticket.status)]}”，不能回写结果",
                           code="invalid_transition")
    photos = []
    if body.photo_tokens:
        for token in body.photo_tokens:
            photo = await session.scalar(select(Attachment).where(Attachment.token == token))
            if photo is None or photo.ticket_id != ticket.id:
                raise InvalidInput("照片不存在或不属于该工单", code="invalid_photo")
            photos.append(photo.to_payload())
    result = {
        "arrived_at": (body.arrived_at or utcnow()).isoformat(), "result": body.result.strip(),
        "materials": [m.model_dump() for m in body.materials], "photos": photos, "signature_name": (body.signature_name or "").strip() or None,
        "by": crew.display_name, "recorded_at": utcnow().isoformat(),
    }
    ticket.result = result
    actor = Actor.of(crew, "crew")
    if ticket.status == TicketStatus.assigned.value:
        await do_ticket_action(session, actor, ticket, "start", note="到达现场", user=crew)
    _event(ticket, actor, "writeback", ticket.status, note=body.result.strip(), data=result)
    # The result itself is on the ticket and in its history; the audit row says that it was recorded.
    record_audit(session, actor, "ticket.writeback", "ticket", ticket.id,
                 after={"number": ticket.number, "photos": len(photos), "materials": len(body.materials),
                        "resolved": bool(body.resolved)})
    if body.resolved:
        await do_ticket_action(session, actor, ticket, "resolve", note="现场处理完成", user=crew)
    else:
        await _publish(session, TicketUpdated, ticket)
    return ticket


LABELS = {"type": TYPE_LABELS, "status": STATUS_LABELS, "priority": PRIORITY_LABELS}


# ---------------------------------------------------------------- where a ticket comes from


async def link_ticket_sources(session: AsyncSession, user: User, body: TicketCreate) -> Any:
    """Fill a new ticket from its source: the conversation (channel, customer) the user may read, or
    a left message (contact, content). Returns the LeftMessage to mark once the ticket exists."""
    if body.conversation_id is not None:
        conversation = await access_conversation_for_user(session, user, body.conversation_id)
        body.channel = body.channel or conversation.channel
        body.customer_id = body.customer_id or conversation.customer_id
    if body.left_message_id is None:
        return None
    left = await session.get(LeftMessage, body.left_message_id)
    if left is None:
        raise NotFound("留言不存在", code="left_message_not_found")
    if left.status == "ticketed":
        raise Conflict(f"该留言已生成工单 #{left.ticket_id}", code="already_ticketed")
    body.contact_phone = body.contact_phone or left.phone
    body.contact_name = body.contact_name or left.name
    body.description = body.description or left.content
    body.conversation_id = body.conversation_id or left.conversation_id
    return left


def _mark_left_message_ticketed(session: AsyncSession, actor: Actor, left: Any, ticket: Ticket) -> None:
    before = left.status
    left.status, left.ticket_id, left.handled_at = "ticketed", ticket.id, utcnow()
    record_audit(session, actor, "left_message.ticketed", "left_message", left.id,
                 before={"status": before}, after={"status": left.status, "ticket_id": ticket.id})


async def do_create_desk_ticket(session: AsyncSession, user: User, actor: Actor, body: TicketCreate, *,
                                create: Callable[[TicketCreate], Awaitable[Ticket]] | None = None) -> Ticket:
    """A ticket staff file (REST and the create form): filled from its source, the conversation the user may
    read or a left message (``link_ticket_sources``), then made by ``create`` (a booking:
    ``appointments.service.do_book_desk_ticket``) or as a plain ticket. A left message it came from is marked
    ticketed (audited)."""
    left = await link_ticket_sources(session, user, body)
    ticket = await create(body) if create is not None else await do_create_ticket(session, actor, body)
    if left is not None:
        _mark_left_message_ticketed(session, actor, left, ticket)
    return ticket


# ---------------------------------------------------------------- one ticket per report

# A new report of the key type is covered by an open ticket of any of these types: the crew sent to a leak
# also finds out why there is no gas.
COVERED_BY: dict[str, tuple[str, ...]] = {TicketType.no_gas.value: (TicketType.no_gas.value, TicketType.gas_leak.value)}
# Reports about one home: an open one of the same customer covers a new one from another conversation too.
HOME_REPORTS = (TicketType.no_gas.value, TicketType.gas_leak.value)
# Types that name the problem itself; a broad one (repair, consultation…) is the same report only with the
# same subject.
SPECIFIC_REPORTS = (TicketType.no_gas.value, TicketType.gas_leak.value, TicketType.complaint.value,
                    TicketType.praise.value)
_OPEN = [s.value for s in OPEN_STATUSES]


async def open_conversation_tickets(session: AsyncSession, conversation_id: int) -> list[Ticket]:
    """Open tickets made from this conversation, newest first."""
    return list(await session.scalars(select(Ticket).where(Ticket.conversation_id == conversation_id,
                                                           Ticket.status.in_(_OPEN)).order_by(Ticket.id.desc())))


def _subject(title: str | None) -> str:
    """"暖气不热 - 朝阳区" → "暖气不热": what a ticket is about, without the place."""
    return (title or "").split(" - ")[0].strip()


async def open_report(session: AsyncSession, *, ticket_type: str, conversation_id: int | None,
                      customer_id: int | None, title: str | None = None) -> Ticket | None:
    """The open ticket that already covers a new report of ``ticket_type``, if any: one from the same
    conversation, or (for reports about a home) of the same customer. For the broad types (维修, 咨询…) the
    ticket must also be about the same thing (``title`` without the place), so a stove repair does not cover
    a heating report."""
    types = COVERED_BY.get(ticket_type, (ticket_type,))
    where = []
    if conversation_id is not None:
        where.append(Ticket.conversation_id == conversation_id)
    if customer_id is not None and ticket_type in HOME_REPORTS:
        where.append(Ticket.customer_id == customer_id)
    if not where:
        return None
    found = await session.scalars(select(Ticket).where(or_(*where), Ticket.type.in_(types), Ticket.status.in_(_OPEN))
                                  .order_by(Ticket.id.desc()).limit(20))
    for ticket in found:
        if ticket_type in SPECIFIC_REPORTS or (title is not None and _subject(ticket.title) == _subject(title)):
            return ticket
    return None


async def _parent_ticket(session: AsyncSession, data: TicketCreate) -> Ticket | None:
    """The ticket a new one is linked to: the one asked for, else the newest open ticket of its conversation,
    so that two tickets from one conversation are never unrelated."""
    if data.parent_ticket_id is not None:
        parent = await session.get(Ticket, data.parent_ticket_id)
        if parent is None:
            raise InvalidInput("关联的工单不存在", code="parent_ticket_not_found")
        return parent
    if data.conversation_id is None:
        return None
    found = await open_conversation_tickets(session, data.conversation_id)
    return found[0] if found else None


def check_ticket_note(note: str) -> str:
    """A note as it is stored: stripped, at most 1000 characters, and with phones, ID numbers, 户号 and bank
    cards redacted (notes quote residents; the ticket's contact fields carry whom to call)."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput("请填写要补充的内容", code="note_required")
    if len(note) > 1000:
        raise InvalidInput("补充内容不能超过 1000 字", code="note_too_long")
    return redact_pii(note)


async def do_add_ticket_note(session: AsyncSession, actor: Actor, ticket: Ticket, note: str) -> Ticket:
    """Add later information to a ticket (history, audit row, webhook) without changing its state. The note
    is stored redacted (``check_ticket_note``)."""
    note = check_ticket_note(note)
    await load_history(session, ticket)
    ticket.updated_at = utcnow()
    _event(ticket, actor, "note", ticket.status, note=note)
    record_audit(session, actor, "ticket.note", "ticket", ticket.id, after={"number": ticket.number,
                                                                           "note_chars": len(note)})
    await _publish(session, TicketUpdated, ticket)
    return ticket


async def do_update_ticket_contact(session: AsyncSession, actor: Actor, ticket: Ticket, *,
                                   address_text: str | None = None, district: str | None = None,
                                   contact_phone: str | None = None) -> Ticket:
    """Where to go and whom to call, given after the ticket was made (e.g. a leak reported before the
    resident said where): history, audit row, webhook. The fields hold the values (encrypted); the history
    line says what changed, with identifiers redacted or masked like any stored free text."""
    await load_history(session, ticket)
    before = {"district": ticket.district, "address_text": bool(ticket.address_text),
              "contact_phone": bool(ticket.contact_phone)}
    changed = []
    if address_text and address_text.strip():
        ticket.address_text = address_text.strip()[:200]
        changed.append(redact_pii(f"地址：{ticket.address_text}"))
        if district:
            ticket.district = district[:40]
    if contact_phone:
        ticket.contact_phone = check_phone(contact_phone)
        changed.append(f"联系电话：{mask_phone(ticket.contact_phone)}")
    if not changed:
        return ticket
    ticket.updated_at = utcnow()
    _event(ticket, actor, "contact", ticket.status, note="；".join(changed))
    record_audit(session, actor, "ticket.contact", "ticket", ticket.id, before=before,
                 after={"district": ticket.district, "address_text": bool(ticket.address_text),
                        "contact_phone": bool(ticket.contact_phone)})
    await _publish(session, TicketUpdated, ticket)
    return ticket


@dataclass(frozen=True)
class FiledReport:
    ticket: Ticket
    created: bool  # False: an open ticket already covered the report and the report became a note on it


async def do_file_report(session: AsyncSession, actor: Actor, data: TicketCreate, *,
                         note_prefix: str = "居民补充：") -> FiledReport:
    """One ticket per report: a new ticket, unless an open one already covers the report (same conversation,
    or the same home), which then gets the report as a note."""
    existing = await open_report(session, ticket_type=data.type, conversation_id=data.conversation_id,
                                 customer_id=data.customer_id, title=data.title)
    if existing is None:
        return FiledReport(await do_create_ticket(session, actor, data), True)
    said = (data.description or data.title or "").strip()[:900] or "再次反映同一问题"
    await do_add_ticket_note(session, actor, existing, note_prefix + said)
    return FiledReport(existing, False)


# ---------------------------------------------------------------- list pages: filtered search, saved views, photos


@dataclass
class TicketFilters:
    """The list filters shared by the REST list and the ticket pages."""

    status: list[str] | None = None
    type: list[str] | None = None
    priority: str | None = None
    district: str | None = None
    team_id: int | None = None
    crew_id: int | None = None
    sla_state: str | None = None
    customer_id: int | None = None
    mine: bool = False
    q: str | None = None


async def search_tickets(session: AsyncSession, user: User, filters: TicketFilters, *, limit: int = 50,
                         offset: int = 0) -> tuple[int, list[Ticket]]:
    """(total, page) newest first; field crews only ever see their own tickets."""
    query = select(Ticket)
    if Role(user.role) is Role.field_crew:
        query = query.where(Ticket.crew_id == user.id)
    elif filters.mine:
        query = query.where(or_(Ticket.crew_id == user.id, Ticket.handler_id == user.id))
    for values, column in ((filters.status, Ticket.status), (filters.type, Ticket.type)):
        if values:
            query = query.where(column.in_(values))
    for value, equal_column in ((filters.priority, Ticket.priority), (filters.district, Ticket.district),
                                (filters.team_id, Ticket.team_id), (filters.crew_id, Ticket.crew_id),
                                (filters.sla_state, Ticket.sla_state), (filters.customer_id, Ticket.customer_id)):
        if value is not None and value != "":
            query = query.where(equal_column == value)
    if filters.q:
        # Titles are encrypted (free text about residents), so the quick search matches ticket numbers.
        query = query.where(Ticket.number.contains(filters.q.strip().upper()))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(Ticket.id.desc()).limit(limit).offset(offset))
    return int(total or 0), list(rows)


def check_view_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 40:
        raise InvalidInput("视图名称须为 1–40 个字", code="invalid_view_name")
    return name


async def saved_views(session: AsyncSession, user: User, page: str) -> list[Any]:
    return list(await session.scalars(select(SavedView).where(SavedView.user_id == user.id, SavedView.page == page)
                                      .order_by(SavedView.name)))


async def do_save_view(session: AsyncSession, user: User, page: str, name: str, query_string: str) -> Any:
    """Save (or overwrite by name) the user's filter set for a list page."""
    name = check_view_name(name)
    if len(query_string) > 1000:
        raise InvalidInput("筛选条件过长，无法保存", code="view_too_long")
    view = await session.scalar(select(SavedView).where(SavedView.user_id == user.id, SavedView.page == page,
                                                        SavedView.name == name))
    before = None
    if view is None:
        view = SavedView(user_id=user.id, page=page, name=name, query_string=query_string, created_at=utcnow())
        session.add(view)
    else:
        before = {"name": view.name, "query": view.query_string}
        view.query_string = query_string
    await session.flush()
    record_audit(session, Actor.of(user), "view.save", "saved_view", view.id, before=before,
                 after={"name": view.name, "query": view.query_string})
    return view


async def do_delete_view(session: AsyncSession, user: User, view_id: int) -> None:
    view = await session.get(SavedView, view_id)
    if view is None or view.user_id != user.id:
        raise NotFound("视图不存在", code="view_not_found")
    record_audit(session, Actor.of(user), "view.delete", "saved_view", view.id,
                 before={"name": view.name, "query": view.query_string})
    await session.delete(view)
    await session.flush()


async def do_store_ticket_photo(session: AsyncSession, user: User, ticket: Ticket, filename: str,
                                data: bytes) -> Any:
    """Store an uploaded photo for a ticket (jpg/png/webp, checked) and return its Attachment.
    The photo is encrypted on disk and removed again if the transaction rolls back."""
    kind = check_upload(filename or "", data)
    if kind.kind != "image":
        raise InvalidInput("工单照片只支持图片", code="file_type")
    token = secrets.token_urlsafe(18)
    now = utcnow()
    photo = Attachment(token=token, ticket_id=ticket.id, owner_user_id=user.id, name=Path(filename or "").name[:120],
                       mime=kind.mime, kind="image", size=len(data),
                       path=str(sealed_path(f"tickets/{now.strftime('%Y/%m')}", token)), created_at=now)
    await store_sealed_file(session, photo, data)
    record_audit(session, Actor.of(user), "ticket.photo", "ticket", ticket.id,
                 after={"number": ticket.number, "photo_id": photo.id, "size": len(data)})
    return photo


SLA_ACTOR = Actor.system("SLA", "job")


async def do_flag_sla(session: AsyncSession, ticket: Ticket, state: str, deadline: str | None, *,
                      now: datetime | None = None) -> None:
    """Record the SLA scan's judgement on an open ticket: "at_risk" or "breached" (which raises the
    escalation level and the priority one step). Like every ticket change: history, audit row, the owner and
    their supervisor notified, ``ticket.updated`` event and webhook after commit."""
    now = now or utcnow()
    await load_history(session, ticket)
    before = {**ticket_snapshot(ticket), "sla_state": ticket.sla_state, "escalation_level": ticket.escalation_level}
    previous = ticket.sla_state
    ticket.sla_state = state
    label = "响应" if deadline == "respond" else "办结"
    title = f"工单 {ticket.number} {'即将超时' if state == 'at_risk' else '已超时'}（{label}时限）"
    data: dict[str, Any] = {"deadline": deadline, "from": previous}
    if state == "breached":
        ticket.escalation_level += 1
        raised = sla.ESCALATE.get(Priority(ticket.priority))
        if raised is not None:
            data["priority"] = [ticket.priority, raised.value]
            ticket.priority = raised.value
    ticket.updated_at = now
    _event(ticket, SLA_ACTOR, f"sla_{state}", ticket.status, note=title, data=data)
    after = {**ticket_snapshot(ticket), "sla_state": state, "escalation_level": ticket.escalation_level}
    if state == "breached":
        record_audit(session, SLA_ACTOR, "ticket.sla_breached", "ticket", ticket.id, before=before, after=after)
    else:
        record_audit(session, SLA_ACTOR, "ticket.sla_at_risk", "ticket", ticket.id, before=before, after=after)
    for user_id in await sla.people_to_tell(session, ticket):
        do_notify(session, user_id, f"sla.{state}", title, ticket.title, link=f"/tickets/{ticket.id}")
    emit(session, TicketSla(ticket_id=ticket.id, sla_state=state, deadline=deadline))
    await _publish(session, TicketUpdated, ticket)
