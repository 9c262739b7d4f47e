"""Admins configure routing rules, SLA policies and follow-up policies over the API; changes take effect
on the next ticket and are audited; bad input is refused."""

from __future__ import annotations

from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.db import commit
from gasdesk.tickets.schemas import TicketCreate
from gasdesk.tickets.service import do_create_ticket


async def test_admin_adds_a_routing_rule_that_routes_the_next_ticket(client, factory, session) -> None:
    headers = await factory.headers("admin")
    response = await client.post("/api/v1/config/ticket-routing-rules", headers=headers, json={
        "position": 5, "name": "浑南区维修 → 热力维修调度", "ticket_types": ["repair"], "districts": ["浑南区"],
        "team_id": 3, "priority": "high"})
    assert response.status_code == 201, response.text
    ticket = await do_create_ticket(session, Actor.system("t"), TicketCreate(type="repair", district="浑南区",
                                                                             description="灶台漏气声"))
    await commit(session)
    assert (ticket.team_id, ticket.priority, ticket.routing_rule) == (3, "high", "浑南区维修 → 热力维修调度")
    audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "config.ticket_routing_rule"))
    assert audit is not None and audit.changes["after"]["districts"] == ["浑南区"]


async def test_sla_policy_change_applies_to_new_tickets(client, factory, session) -> None:
    headers = await factory.headers("admin")
    response = await client.put("/api/v1/config/sla-policies", headers=headers, json={
        "ticket_type": "consultation", "priority": "normal", "respond_minutes": 30, "resolve_minutes": 120})
    assert response.status_code == 200, response.text
    ticket = await do_create_ticket(session, Actor.system("t"), TicketCreate(type="consultation", description="问价"))
    await commit(session)
    assert (ticket.respond_by - ticket.created_at).total_seconds() == 30 * 60
    assert (ticket.resolve_by - ticket.created_at).total_seconds() == 120 * 60
    bad = await client.put("/api/v1/config/sla-policies", headers=headers, json={
        "ticket_type": "consultation", "priority": "normal", "respond_minutes": 60, "resolve_minutes": 30})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_sla"
    unknown = await client.put("/api/v1/config/sla-policies", headers=headers, json={
        "ticket_type": "nonsense", "priority": "normal", "respond_minutes": 1, "resolve_minutes": 2})
    assert unknown.status_code == 422


async def test_followup_policy_is_configurable_and_supervisors_only_read(client, factory) -> None:
    admin = await factory.headers("admin")
    supervisor = await factory.headers("supervisor")
    response = await client.put("/api/v1/config/followup-policies/repair", headers=admin, json={
        "delay_minutes": 15, "max_attempts": 2, "retry_minutes": 60, "on_dissatisfied": "complaint"})
    assert response.status_code == 200
    listed = (await client.get("/api/v1/config/followup-policies", headers=supervisor)).json()
    repair = next(p for p in listed if p["ticket_type"] == "repair")
    assert (repair["delay_minutes"], repair["on_dissatisfied"]) == (15, "complaint")
    forbidden = await client.put("/api/v1/config/followup-policies/repair", headers=supervisor, json={
        "delay_minutes": 1, "max_attempts": 1, "retry_minutes": 5})
    assert forbidden.status_code == 403
