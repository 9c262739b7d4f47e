"""Ticket REST API: create (also from a conversation draft or a left message), list with filters,
detail with history, state actions, crew write-back, photos, SLA compliance; and the admin configuration
of the work-order loop (routing rules, SLA policies; audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, OFFICE, Role
from gasdesk.clock import utcnow
from gasdesk.conversations.schemas import AttachmentOut
from gasdesk.conversations.service import access_conversation_for_user
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Count, Id
from gasdesk.tickets import service, sla
from gasdesk.tickets.draft import draft_from_conversation
from gasdesk.tickets.lifecycle import allowed_actions
from gasdesk.tickets.models import (
    PRIORITY_LABELS,
    STATUS_LABELS,
    TYPE_LABELS,
    Priority,
    RoutingRule,
    SlaPolicy,
    Team,
    Ticket,
    TicketStatus,
    TicketType,
)
from gasdesk.tickets.routing import do_create_routing_rule, do_update_routing_rule, routing_rule_out
from gasdesk.tickets.schemas import (
    CrewUserOut,
    CrewWriteback,
    RoutingRuleIn,
    RoutingRuleOut,
    SlaPolicyIn,
    SlaPolicyOut,
    TeamCompliance,
    TeamOut,
    TicketAction,
    TicketCreate,
    TicketDetail,
    TicketDraftOut,
    TicketNote,
    TicketPage,
)
from gasdesk.web.uploads import read_upload_form

router = APIRouter(prefix="/api/v1", tags=["tickets"])


async def ticket_out(session: Any, ticket: Ticket, *, with_events: bool = False) -> dict[str, Any]:
    team = await session.get(Team, ticket.team_id) if ticket.team_id else None
    crew = await session.get(User, ticket.crew_id) if ticket.crew_id else None
    handler = await session.get(User, ticket.handler_id) if ticket.handler_id else None
    out = {
        "id": ticket.id, "number": ticket.number, "type": ticket.type, "type_label": TYPE_LABELS[TicketType(ticket.type)],
        "priority": ticket.priority, "priority_label": PRIORITY_LABELS[Priority(ticket.priority)],
        "status": ticket.status, "status_label": STATUS_LABELS[TicketStatus(ticket.status)],
        "title": ticket.title, "description": ticket.description, "service_type": ticket.service_type,
        "customer_id": ticket.customer_id, "account_id": ticket.account_id, "district": ticket.district,
        "address": ticket.address_text, "contact_name": ticket.contact_name, "contact_phone": ticket.contact_phone,
        "channel": ticket.channel, "conversation_id": ticket.conversation_id, "team": team.name if team else None,
        "team_id": ticket.team_id, "crew_id": ticket.crew_id, "crew": crew.display_name if crew else None,
        "handler_id": ticket.handler_id, "handler": handler.display_name if handler else None,
        "routing_rule": ticket.routing_rule, "sla_state": ticket.sla_state, "escalation_level": ticket.escalation_level,
        "respond_by": ticket.respond_by, "resolve_by": ticket.resolve_by, "responded_at": ticket.responded_at,
        "resolved_at": ticket.resolved_at, "closed_at": ticket.closed_at, "created_at": ticket.created_at,
        "reopen_count": ticket.reopen_count, "result": ticket.result, "parent_ticket_id": ticket.parent_ticket_id,
        "actions": allowed_actions(ticket.status),
    }
    if with_events:
        out["events"] = [{"at": e.at, "actor": e.actor_name, "action": e.action, "from": e.from_status,
                          "to": e.to_status, "note": e.note, "data": e.data} for e in ticket.events]
    return out


@router.post("/tickets", status_code=201, response_model=TicketDetail)
async def create_ticket(body: TicketCreate, session: DbSession, user: User = allow(*OFFICE)) -> dict[str, Any]:
    """Create a ticket (from the console, a conversation draft, or a left message). A ticket from a
    conversation that already has an open one is linked to it (``parent_ticket_id``); to add to that ticket
    instead, post a note to it."""
    ticket = await service.do_create_desk_ticket(session, user, Actor.of(user, "api"), body)
    return await ticket_out(session, ticket, with_events=True)


@router.get("/conversations/{conversation_id}/ticket-draft", response_model=TicketDraftOut)
async def ticket_draft(conversation_id: Id, session: DbSession,
                       user: User = allow(Role.agent, Role.supervisor, Role.admin)) -> dict[str, Any]:
    """A ticket draft extracted offline from the transcript (type, address, phone, 户号, service, time), and the
    conversation's open tickets (``open_tickets``), which the agent should update rather than duplicate."""
    conversation = await access_conversation_for_user(session, user, conversation_id)
    return (await draft_from_conversation(session, conversation)).to_dict()


@router.get("/tickets", response_model=TicketPage)
async def list_tickets(
    session: DbSession,
    status: Annotated[list[str] | None, Query()] = None,
    type: Annotated[list[str] | None, Query()] = None,
    priority: str | None = None,
    district: str | None = None,
    team_id: Id | None = None,
    crew_id: Id | None = None,
    sla_state: str | None = None,
    customer_id: Id | None = None,
    mine: bool = False,
    q: str | None = Query(None, max_length=40),
    limit: int = Query(50, ge=1, le=200),
    offset: Annotated[Count, Query()] = 0,
    user: User = allow(*ALL_ROLES),
) -> dict[str, Any]:
    """Filtered list (newest first). Field crews only ever see their own tickets."""
    total, rows = await service.search_tickets(session, user, service.TicketFilters(
        status=status, type=type, priority=priority, district=district, team_id=team_id, crew_id=crew_id,
        sla_state=sla_state, customer_id=customer_id, mine=mine, q=q), limit=limit, offset=offset)
    return {"total": int(total or 0), "items": [await ticket_out(session, t) for t in rows]}


@router.get("/tickets/{ticket_id}", response_model=TicketDetail)
async def get_ticket(ticket_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> dict[str, Any]:
    ticket = await service.access_ticket(session, user, ticket_id)
    return await ticket_out(session, ticket, with_events=True)


@router.post("/tickets/{ticket_id}/actions", response_model=TicketDetail)
async def ticket_action(ticket_id: Id, body: TicketAction, session: DbSession,
                        user: User = allow(*ALL_ROLES)) -> dict[str, Any]:
    """assign (crew_id / handler_id) · start · resolve · close · reopen (note) · cancel (note)."""
    ticket = await service.access_ticket(session, user, ticket_id)
    await service.do_ticket_action(session, Actor.of(user, "api"), ticket, body.action, note=body.note,
                                   crew_id=body.crew_id, handler_id=body.handler_id, user=user)
    return await ticket_out(session, ticket, with_events=True)


@router.post("/tickets/{ticket_id}/notes", response_model=TicketDetail)
async def add_ticket_note(ticket_id: Id, body: TicketNote, session: DbSession,
                          user: User = allow(*OFFICE)) -> dict[str, Any]:
    """Add later information to a ticket (e.g. from a conversation that already has this ticket) instead of
    filing a second one; the state does not change."""
    ticket = await service.access_ticket(session, user, ticket_id)
    await service.do_add_ticket_note(session, Actor.of(user, "api"), ticket, body.note)
    return await ticket_out(session, ticket, with_events=True)


@router.post("/tickets/{ticket_id}/writeback", response_model=TicketDetail)
async def crew_writeback(ticket_id: Id, body: CrewWriteback, session: DbSession,
                         user: User = allow(Role.field_crew, Role.admin)) -> dict[str, Any]:
    """The crew's result: arrival, result, materials, photos (upload first), resident signature name."""
    ticket = await service.access_ticket(session, user, ticket_id)
    await service.do_crew_writeback(session, user, ticket, body)
    return await ticket_out(session, ticket, with_events=True)


@router.post("/tickets/{ticket_id}/photos", status_code=201, response_model=AttachmentOut)
async def upload_photo(ticket_id: Id, request: Request, session: DbSession,
                       user: User = allow(*ALL_ROLES)) -> dict[str, Any]:
    """Attach a photo (multipart field ``file``: jpg/png/webp ≤ 5 MB) to a ticket. The caller and the
    ticket are checked before the body is read."""
    ticket = await service.access_ticket(session, user, ticket_id)
    form = await read_upload_form(request, session=session)
    file = form.file("file")
    if file is None:
        raise InvalidInput("请选择要上传的照片", code="file_missing")
    photo = await service.do_store_ticket_photo(session, user, ticket, file.filename, file.data)
    return photo.to_payload()


@router.get("/reports/sla-compliance", response_model=list[TeamCompliance])
async def sla_compliance(session: DbSession, days: int = Query(30, ge=1, le=366),
                         _: User = allow(Role.admin, Role.supervisor, Role.dispatcher)) -> list[dict[str, Any]]:
    """SLA compliance per team over the last ``days`` days."""
    until = utcnow()
    return await sla.sla_compliance(session, until - timedelta(days=days), until)


@router.get("/teams", response_model=list[TeamOut | CrewUserOut])
async def teams(session: DbSession, _: User = allow(*OFFICE)) -> list[dict[str, Any]]:
    crews = await session.scalars(select(User).where(User.role == Role.field_crew.value, User.is_active.is_(True))
                                  .order_by(User.display_name))
    rows = await session.scalars(select(Team).order_by(Team.id))
    return [{"id": t.id, "code": t.code, "name": t.name, "kind": t.kind} for t in rows] + \
        [{"id": None, "crew_user_id": c.id, "name": c.display_name, "kind": "crew_user"} for c in crews]


# ---------------------------------------------------------------- configuration (admins; audited)


@router.get("/config/ticket-routing-rules", tags=["configuration"], response_model=list[RoutingRuleOut])
async def list_rules(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
    return [routing_rule_out(r) for r in rows]


@router.post("/config/ticket-routing-rules", status_code=201, tags=["configuration"], response_model=RoutingRuleOut)
async def create_rule(body: RoutingRuleIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    rule = await do_create_routing_rule(session, Actor.of(admin, "api"), body.model_dump())
    return routing_rule_out(rule)


@router.put("/config/ticket-routing-rules/{rule_id}", tags=["configuration"], response_model=RoutingRuleOut)
async def update_rule(rule_id: Id, body: RoutingRuleIn, session: DbSession,
                      admin: User = allow(Role.admin)) -> dict[str, Any]:
    rule = await do_update_routing_rule(session, Actor.of(admin, "api"), rule_id, body.model_dump())
    return routing_rule_out(rule)


@router.get("/config/sla-policies", tags=["configuration"], response_model=list[SlaPolicyOut])
async def list_sla(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(SlaPolicy).order_by(SlaPolicy.ticket_type, SlaPolicy.priority))
    return [{"ticket_type": p.ticket_type, "priority": p.priority, "respond_minutes": p.respond_minutes,
             "resolve_minutes": p.resolve_minutes, "at_risk_ratio_pct": p.at_risk_ratio_pct} for p in rows]


@router.put("/config/sla-policies", tags=["configuration"], response_model=SlaPolicyOut)
async def put_sla(body: SlaPolicyIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Create or replace the deadlines for one (ticket type, priority); applies to tickets created from now on."""
    await sla.do_set_sla_policy(session, Actor.of(admin, "api"), **body.model_dump())
    return body.model_dump()
