"""The periodic SLA scan: judges every open ticket against its deadlines and records each new judgement
through ``do_flag_sla`` (the one write path for SLA flags and escalations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import utcnow
from gasdesk.tickets.models import OPEN_STATUSES, SlaPolicy, Ticket
from gasdesk.tickets.service import do_flag_sla
from gasdesk.tickets.sla import state_of


async def scan_sla(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Flag open tickets at risk or breached; notify owner and supervisor; escalate breaches once per level."""
    now = now or utcnow()
    counts = {"at_risk": 0, "breached": 0, "escalated": 0}
    tickets = list(await session.scalars(select(Ticket).where(Ticket.status.in_([s.value for s in OPEN_STATUSES]))))
    for ticket in tickets:
        policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.ticket_type == ticket.type,
                                                              SlaPolicy.priority == ticket.priority))
        state, which = state_of(ticket, now, policy.at_risk_ratio_pct if policy else 80)
        if state == "ok":
            # The deadline that caused the flag was met (e.g. responded in time): clear it quietly, so a
            # later problem with the other deadline is flagged again.
            ticket.sla_state = "ok"
            continue
        if state == ticket.sla_state:
            continue
        await do_flag_sla(session, ticket, state, which, now=now)
        counts[state] += 1
        if state == "breached":
            counts["escalated"] += 1
    return counts

