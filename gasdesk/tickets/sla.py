"""SLA: deadlines per type and priority, the at-risk/breached judgement, and the policies admins set. The
periodic scan that acts on the judgement is ``tickets/sla_scan.py``; the change itself is ``do_flag_sla``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.clock import utcnow
from gasdesk.errors import InvalidInput
from gasdesk.tickets.models import Priority, SlaPolicy, Team, Ticket, TicketStatus
from gasdesk.tickets.routing import check_ticket_type

# Fallback when no policy row matches: minutes to respond, minutes to resolve.
DEFAULT_MINUTES = {Priority.urgent: (15, 240), Priority.high: (60, 24 * 60), Priority.normal: (240, 72 * 60),
                   Priority.low: (24 * 60, 7 * 24 * 60)}
ESCALATE = {Priority.low: Priority.normal, Priority.normal: Priority.high, Priority.high: Priority.urgent}


async def deadlines(session: AsyncSession, ticket_type: str, priority: str,
                    start: datetime) -> tuple[datetime, datetime, int]:
    """(respond_by, resolve_by, at-risk percentage) for a new ticket."""
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.ticket_type == ticket_type,
                                                          SlaPolicy.priority == priority))
    if policy is not None:
        return (start + timedelta(minutes=policy.respond_minutes),
                start + timedelta(minutes=policy.resolve_minutes), policy.at_risk_ratio_pct)
    respond, resolve = DEFAULT_MINUTES[Priority(priority)]
    return start + timedelta(minutes=respond), start + timedelta(minutes=resolve), 80


class SlaTimes(Protocol):
    """What the judgement reads of a ticket (a ``Ticket``, or a row of just these columns)."""

    @property
    def created_at(self) -> datetime: ...
    @property
    def respond_by(self) -> datetime | None: ...
    @property
    def resolve_by(self) -> datetime | None: ...
    @property
    def responded_at(self) -> datetime | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...


def state_of(ticket: SlaTimes, now: datetime, at_risk_pct: int) -> tuple[str, str | None]:
    """("ok" | "at_risk" | "breached", which deadline)."""
    worst, which = "ok", None
    checks = []
    if ticket.responded_at is None and ticket.respond_by is not None:
        checks.append(("respond", ticket.created_at, ticket.respond_by))
    if ticket.resolved_at is None and ticket.resolve_by is not None:
        checks.append(("resolve", ticket.created_at, ticket.resolve_by))
    for name, start, due in checks:
        if now >= due:
            return "breached", name
        span = (due - start).total_seconds()
        if span > 0 and (now - start).total_seconds() >= span * at_risk_pct / 100 and worst == "ok":
            worst, which = "at_risk", name
    return worst, which


async def people_to_tell(session: AsyncSession, ticket: Ticket) -> list[int]:
    """The owner (handler or crew) and their supervisor (team lead, else every supervisor)."""
    people = [uid for uid in (ticket.handler_id, ticket.crew_id) if uid]
    team = await session.get(Team, ticket.team_id) if ticket.team_id else None
    if team is not None and team.lead_user_id:
        people.append(team.lead_user_id)
    else:
        people.extend(await session.scalars(select(User.id).where(User.role == Role.supervisor.value,
                                                                  User.is_active.is_(True))))
    return list(dict.fromkeys(people))


async def sla_compliance(session: AsyncSession, since: datetime, until: datetime) -> list[dict[str, object]]:
    """Per team: tickets created in [since, until), how many met the respond and resolve deadlines."""
    rows = await session.execute(
        select(Ticket.team_id, Team.name, Ticket.respond_by, Ticket.responded_at, Ticket.resolve_by,
               Ticket.resolved_at, Ticket.status)
        .outerjoin(Team, Team.id == Ticket.team_id)
        .where(Ticket.created_at >= since, Ticket.created_at < until)
    )
    now = utcnow()
    per_team: dict[object, dict[str, object]] = {}
    for team_id, name, respond_by, responded_at, resolve_by, resolved_at, status in rows:
        entry = per_team.setdefault(team_id, {"team_id": team_id, "team": name or "未分配", "total": 0,
                                              "responded_in_time": 0, "resolved_in_time": 0, "open_breached": 0})
        entry["total"] += 1  # type: ignore[operator]
        if respond_by and responded_at and responded_at <= respond_by:
            entry["responded_in_time"] += 1  # type: ignore[operator]
        if resolve_by and resolved_at and resolved_at <= resolve_by:
            entry["resolved_in_time"] += 1  # type: ignore[operator]
        if status != TicketStatus.cancelled.value and resolved_at is None and resolve_by and now > resolve_by:
            entry["open_breached"] += 1  # type: ignore[operator]
    for entry in per_team.values():
        total = entry["total"] or 1
        entry["respond_rate"] = round(entry["responded_in_time"] / total, 3)  # type: ignore[operator]
        entry["resolve_rate"] = round(entry["resolved_in_time"] / total, 3)  # type: ignore[operator]
    return sorted(per_team.values(), key=lambda e: str(e["team"]))


SLA_FIELDS = ("respond_minutes", "resolve_minutes", "at_risk_ratio_pct")


async def do_set_sla_policy(session: AsyncSession, actor: Actor, *, ticket_type: str, priority: str,
                            respond_minutes: int, resolve_minutes: int, at_risk_ratio_pct: int) -> SlaPolicy:
    """Create or replace the deadlines for one (ticket type, priority); they apply to tickets created from
    now on (audited with before and after)."""
    check_ticket_type(ticket_type)
    Priority(priority)
    if resolve_minutes < respond_minutes:
        raise InvalidInput("办结时限不能短于响应时限", code="invalid_sla")
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.ticket_type == ticket_type,
                                                          SlaPolicy.priority == priority))
    before = None
    if policy is None:
        policy = SlaPolicy(ticket_type=ticket_type, priority=priority)
        session.add(policy)
    else:
        before = {key: getattr(policy, key) for key in SLA_FIELDS}
    policy.respond_minutes, policy.resolve_minutes = respond_minutes, resolve_minutes
    policy.at_risk_ratio_pct = at_risk_ratio_pct
    await session.flush()
    record_audit(session, actor, "config.sla_policy", "config", f"sla:{ticket_type}:{priority}", before=before,
                 after={"ticket_type": ticket_type, "priority": priority,
                        **{key: getattr(policy, key) for key in SLA_FIELDS}})
    return policy
