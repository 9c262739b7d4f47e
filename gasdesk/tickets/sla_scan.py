"""The periodic SLA scan: judges every open ticket against its deadlines and records each new judgement
through ``do_flag_sla`` (the one write path for SLA flags and escalations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import utcnow
from gasdesk.tickets.models import OPEN_STATUSES, SlaPolicy, Ticket
from gasdesk.tickets.service import do_flag_sla
from gasdesk.tickets.sla import state_of


async def scan_sla(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Flag open tickets at risk or breached; notify owner and supervisor; escalate breaches once per level.

    Reads only the deadline columns of the open tickets and the policies once: the scan runs every minute in
    the web process and, on SQLite, holds the one connection meanwhile (loading every open ticket whole, with
    its encrypted fields, and a policy query per ticket took ~0.7 s at a few thousand open tickets). Whole
    tickets are loaded only for the few whose judgement changes."""
    now = now or utcnow()
    counts = {"at_risk": 0, "breached": 0, "escalated": 0}
    at_risk_pct = {(p.ticket_type, p.priority): p.at_risk_ratio_pct for p in await session.scalars(select(SlaPolicy))}
    rows = (await session.execute(
        select(Ticket.id, Ticket.type, Ticket.priority, Ticket.sla_state, Ticket.created_at, Ticket.respond_by,
               Ticket.resolve_by, Ticket.responded_at, Ticket.resolved_at)
        .where(Ticket.status.in_([s.value for s in OPEN_STATUSES])))).all()
    cleared: list[int] = []
    for row in rows:
        state, which = state_of(row, now, at_risk_pct.get((row.type, row.priority), 80))
        if state == row.sla_state:
            continue
        if state == "ok":
            # The deadline that caused the flag was met (e.g. responded in time): clear it quietly, so a
            # later problem with the other deadline is flagged again.
            cleared.append(row.id)
            continue
        ticket = await session.get(Ticket, row.id)
        if ticket is None:
            continue
        await do_flag_sla(session, ticket, state, which, now=now)
        counts[state] += 1
        if state == "breached":
            counts["escalated"] += 1
    if cleared:
        await session.execute(update(Ticket).where(Ticket.id.in_(cleared)).values(sla_state="ok"))
    return counts
