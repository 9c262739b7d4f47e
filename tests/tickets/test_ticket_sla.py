"""SLA deadlines from the policies, the scan with a frozen clock, notifications, escalation, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.db import commit
from gasdesk.jobs.queue import run_periodic_once
from gasdesk.notifications.models import Notification
from gasdesk.tickets.models import RoutingRule, Team, Ticket, TicketEvent
from gasdesk.tickets.service import do_ticket_action
from gasdesk.tickets.sla_scan import scan_sla
from gasdesk.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import staff_user, wo_actor, wo_headers, wo_reload, wo_ticket

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def _scan(session, minutes: float) -> dict[str, int]:
    clock.set_now(at(minutes))
    counts = await scan_sla(session)
    await commit(session)
    return counts


async def _notes(session, user_id: int) -> list[tuple[str, str]]:
    rows = await session.scalars(select(Notification).where(Notification.user_id == user_id).order_by(Notification.id))
    return [(n.kind, n.title) for n in rows]


async def _sla_events(ticket_id: int) -> list[TicketEvent]:
    from tests.factories import wo_ticket_events

    return [e for e in await wo_ticket_events(ticket_id) if e.action.startswith("sla_")]


@pytest.fixture
async def owners(session):
    """The gas-leak rule names a handler; the dispatch team has a lead; another supervisor stays uninvolved."""
    handler = await staff_user(session, "dispatcher")
    lead = await staff_user(session, "supervisor")
    bystander = await staff_user(session, "supervisor")
    rule = await session.scalar(select(RoutingRule).where(RoutingRule.name.startswith("燃气泄漏")))
    rule.handler_id = handler.id
    (await session.get(Team, 1)).lead_user_id = lead.id
    await commit(session)
    return handler, lead, bystander


@pytest.mark.parametrize(("ticket_type", "priority", "respond", "resolve"), [
    ("gas_leak", "urgent", 15, 240), ("no_gas", "high", 30, 480), ("repair", "normal", 240, 4320),
    ("complaint", "high", 120, 2880), ("service_appointment", "normal", 240, 10080),
    ("repair", "low", 24 * 60, 7 * 24 * 60),  # no policy row: the built-in fallback
])
async def test_deadlines_come_from_the_policies(session, ticket_type, priority, respond, resolve) -> None:
    clock.set_now(T0)
    ticket = await wo_ticket(session, ticket_type, priority=priority)
    assert ticket.created_at == T0
    assert ticket.respond_by == at(respond) and ticket.resolve_by == at(resolve)


async def test_gas_leak_at_risk_then_breached(session, events, owners) -> None:
    handler, lead, bystander = owners
    clock.set_now(T0)
    ticket = await wo_ticket(session, "gas_leak", description="单元门口煤气味很重")
    assert ticket.handler_id == handler.id and ticket.priority == "urgent"
    events.clear()

    assert await _scan(session, 11.9) == {"at_risk": 0, "breached": 0, "escalated": 0}
    assert (await wo_reload(Ticket, ticket.id)).sla_state == "ok"

    assert await _scan(session, 12) == {"at_risk": 1, "breached": 0, "escalated": 0}  # 80 % of 15 min
    stored = await wo_reload(Ticket, ticket.id)
    assert (stored.sla_state, stored.escalation_level, stored.priority) == ("at_risk", 0, "urgent")
    for uid in (handler.id, lead.id):
        notes = await _notes(session, uid)
        assert [k for k, _ in notes if k.startswith("sla.")] == ["sla.at_risk"]
        assert "即将超时" in notes[-1][1] and "响应" in notes[-1][1] and ticket.number in notes[-1][1]
    assert await _notes(session, bystander.id) == []
    [risk] = await _sla_events(ticket.id)
    assert (risk.action, risk.actor_name, risk.at, risk.data["deadline"]) == ("sla_at_risk", "SLA", at(12), "respond")
    assert [e.payload for e in events if e.type == "ticket.sla"] == [
        {"ticket_id": ticket.id, "sla_state": "at_risk", "deadline": "respond"}]

    assert await _scan(session, 13) == {"at_risk": 0, "breached": 0, "escalated": 0}  # idempotent
    assert await _scan(session, 15) == {"at_risk": 0, "breached": 1, "escalated": 1}
    stored = await wo_reload(Ticket, ticket.id)
    assert (stored.sla_state, stored.escalation_level, stored.priority) == ("breached", 1, "urgent")
    assert [k for k, _ in await _notes(session, lead.id) if k.startswith("sla.")] == ["sla.at_risk", "sla.breached"]
    assert "已超时" in (await _notes(session, handler.id))[-1][1]
    assert [e.action for e in await _sla_events(ticket.id)] == ["sla_at_risk", "sla_breached"]

    for minutes in (16, 120, 300):  # re-scans (even past the resolve deadline) add nothing
        assert await _scan(session, minutes) == {"at_risk": 0, "breached": 0, "escalated": 0}
    stored = await wo_reload(Ticket, ticket.id)
    assert stored.escalation_level == 1
    assert len(await _sla_events(ticket.id)) == 2
    assert len([n for n in await _notes(session, lead.id) if n[0].startswith("sla.")]) == 2


async def test_breach_escalates_priority_once(session) -> None:
    supervisor = await staff_user(session, "supervisor")
    clock.set_now(T0)
    ticket = await wo_ticket(session, "repair", description="燃气灶打不着火")
    assert (ticket.priority, ticket.respond_by) == ("normal", at(240))
    assert (await _scan(session, 240))["escalated"] == 1
    stored = await wo_reload(Ticket, ticket.id)
    assert (stored.priority, stored.escalation_level, stored.sla_state) == ("high", 1, "breached")
    [event] = [e for e in await _sla_events(ticket.id) if e.action == "sla_breached"]
    assert event.data["priority"] == ["normal", "high"] and event.data["from"] == "ok"
    assert (await _scan(session, 241))["escalated"] == 0
    assert (await wo_reload(Ticket, ticket.id)).priority == "high"
    # no team lead on team 1: every active supervisor hears about it
    assert [k for k, _ in await _notes(session, supervisor.id)] == ["sla.breached"]


async def test_responding_in_time_prevents_a_respond_breach(session, owners) -> None:
    handler, lead, _ = owners
    crew = await staff_user(session, "field_crew")
    clock.set_now(T0)
    ticket = await wo_ticket(session, "gas_leak")
    clock.set_now(at(10))
    await do_ticket_action(session, wo_actor(handler), ticket, "assign", crew_id=crew.id)
    await commit(session)
    assert (await wo_reload(Ticket, ticket.id)).responded_at == at(10)
    assert await _scan(session, 16) == {"at_risk": 0, "breached": 0, "escalated": 0}
    assert (await wo_reload(Ticket, ticket.id)).sla_state == "ok"
    assert await _notes(session, lead.id) == []
    # the resolve deadline still counts: 80 % of 240 min
    assert (await _scan(session, 192))["at_risk"] == 1
    assert (await _notes(session, crew.id))[-1][0] == "sla.at_risk"
    assert "办结" in (await _notes(session, crew.id))[-1][1]


async def test_closed_and_cancelled_tickets_are_not_scanned(session) -> None:
    clock.set_now(T0)
    ticket = await wo_ticket(session, "gas_leak", status="cancelled")
    assert await _scan(session, 500) == {"at_risk": 0, "breached": 0, "escalated": 0}
    assert (await wo_reload(Ticket, ticket.id)).sla_state == "ok"


async def test_scan_runs_as_a_periodic_job(session) -> None:
    clock.set_now(T0)
    ticket = await wo_ticket(session, "gas_leak")
    clock.set_now(at(20))
    assert "tickets.sla_scan" in await run_periodic_once(force=True)
    assert (await wo_reload(Ticket, ticket.id)).sla_state == "breached"


async def test_resolve_risk_is_flagged_after_a_respond_risk(session) -> None:
    crew = await staff_user(session, "field_crew")
    clock.set_now(T0)
    ticket = await wo_ticket(session, "repair")
    assert (await _scan(session, 192))["at_risk"] == 1  # respond at risk (80 % of 240 min)
    clock.set_now(at(200))
    await do_ticket_action(session, wo_actor(), ticket, "assign", crew_id=crew.id)
    await commit(session)
    counts = await _scan(session, 3456)  # 80 % of the 4320-minute resolve deadline
    assert counts["at_risk"] == 1
    assert [k for k, t in await _notes(session, crew.id) if k == "sla.at_risk" and "办结" in t]


async def test_sla_compliance_report(client, factory, session) -> None:
    dispatcher = await staff_user(session, "dispatcher")
    crew = await staff_user(session, "field_crew")
    clock.set_now(T0)
    fast = await wo_ticket(session, "gas_leak")
    slow = await wo_ticket(session, "gas_leak")
    complaint = await wo_ticket(session, "complaint")
    clock.set_now(at(5))
    await do_ticket_action(session, wo_actor(), fast, "assign", crew_id=crew.id)
    await do_ticket_action(session, wo_actor(), complaint, "assign", handler_id=dispatcher.id)
    clock.set_now(at(60))
    await do_ticket_action(session, wo_actor(), fast, "resolve")
    await do_ticket_action(session, wo_actor(), slow, "assign", crew_id=crew.id)  # 45 minutes late
    await do_ticket_action(session, wo_actor(), complaint, "resolve")
    await commit(session)
    clock.set_now(at(300))  # past the 240-minute resolve deadline of the slow gas leak
    r = await client.get("/api/v1/reports/sla-compliance?days=7", headers=await wo_headers(factory, dispatcher))
    assert r.status_code == 200, r.text
    rows = {row["team"]: row for row in r.json()}
    assert rows["燃气抢修调度中心"] | {} == {
        **rows["燃气抢修调度中心"], "total": 2, "responded_in_time": 1, "resolved_in_time": 1, "open_breached": 1,
        "respond_rate": 0.5, "resolve_rate": 0.5}
    assert {k: rows["客服投诉处理组"][k] for k in ("total", "responded_in_time", "resolved_in_time", "open_breached")} \
        == {"total": 1, "responded_in_time": 1, "resolved_in_time": 1, "open_breached": 0}
    r = await client.get("/api/v1/reports/sla-compliance", headers=await wo_headers(
        factory, await staff_user(session, "agent")))
    assert r.status_code == 403


async def test_an_escalation_is_audited_announced_and_sent_to_webhooks(session, events) -> None:
    # The SLA scan changes priority like any other change: through do_flag_sla, with an audit row, the
    # ticket.updated event and a webhook delivery (it used to change the priority silently).
    session.add(WebhookEndpoint(name="调度系统", url="https://dispatch.example.com/hook", secret="s3cret",
                                events=["ticket.updated"], active=True))
    await commit(session)
    clock.set_now(T0)
    ticket = await wo_ticket(session, "repair", description="燃气灶打不着火")
    ticket_id = ticket.id
    events.clear()
    await _scan(session, 240)
    session.expire_all()
    audits = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.sla_breached",
                                                                  AuditEntry.entity_id == str(ticket_id))))
    assert len(audits) == 1 and audits[0].actor_name == "SLA"
    assert audits[0].changes["before"]["priority"] == "normal" and audits[0].changes["after"]["priority"] == "high"
    assert audits[0].changes["after"]["escalation_level"] == 1
    assert [e.payload["ticket_id"] for e in events if e.type == "ticket.updated"] == [ticket_id]
    deliveries = list(await session.scalars(select(WebhookDelivery).where(WebhookDelivery.event == "ticket.updated")))
    assert [d.payload["data"]["priority"] for d in deliveries] == ["high"]
