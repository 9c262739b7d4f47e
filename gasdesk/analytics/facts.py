"""From a committed domain event to the analytics facts it stands for.

Events are thin (ids and a state), so each builder reads the row the event names for its times and
dimensions. The facts are keyed (``dedupe_key``) by what happened, not by the delivery: the same event
delivered twice (Redis echoes it to every process, a retry) writes nothing the second time, and each fact is
placed at the time it happened (``occurred_at``), so a late one lands in its own hour.

Fact kinds (``KINDS``) are the metrics the roll-up counts; ``catalogue.py`` names the figures built on them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.models import AnalyticsFact
from gasdesk.clock import as_utc, utcnow
from gasdesk.conversations.models import Conversation
from gasdesk.customers.models import Address
from gasdesk.db import table_of
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.telephony.models import Call
from gasdesk.tickets.models import TeamMember, Ticket, TicketEvent

KINDS: dict[str, str] = {
    "contact.started": "a conversation opened, on any channel (voice: a call reached the hotline)",
    "bot.turn": "the bot answered one message (detail: the turn's outcome)",
    "bot.answered": "a bot turn that answered (understood, not handed off)",
    "kb.hit": "the bot answered from the knowledge base",
    "kb.miss": "the bot looked in the knowledge base and found nothing good enough",
    "kb.helpful": "a knowledge answer marked helpful",
    "kb.not_helpful": "a knowledge answer marked not helpful",
    "conversation.handoff": "a conversation the bot had went to people (once per conversation)",
    "conversation.queued": "a conversation entered a queue (detail: the hand-off reason); value 1",
    "conversation.accepted": "an agent accepted a conversation; value: seconds it waited in the queue",
    "conversation.closed": "a conversation ended (detail: bot | agent | abandoned)",
    "conversation.bot_only": "a conversation ended without people (the bot handled it)",
    "conversation.handled": "a conversation an agent handled ended; value: handle seconds (accept to close)",
    "conversation.abandoned": "a conversation ended while waiting in the queue",
    "conversation.rated": "a resident rated the service; value: the rating 1–5",
    "ticket.created": "a ticket was opened",
    "ticket.dispatched": "a ticket was assigned to a crew or handler (派单)",
    "ticket.resolved": "a ticket was resolved; value: seconds from creation",
    "ticket.resolved_in_sla": "a ticket resolved by its resolve-by time (or without one)",
    "ticket.closed": "a ticket was closed",
    "sla.at_risk": "a ticket became at risk of missing its SLA (detail: respond | resolve)",
    "sla.breached": "a ticket missed its SLA (detail: respond | resolve)",
    "followup.answered": "a 回访 survey was answered; value: the score 1–5 (detail: problem category)",
    "followup.solved": "a 回访 answer said the problem was solved",
    "call.answered": "a hotline call was talked through with an agent; value: talk seconds",
    "call.abandoned": "a hotline call ended without reaching an agent; value: seconds it waited in the queue",
    "qa.scored": "a conversation or call was quality-scored (质检); value: the score 0–100",
}


@dataclass
class FactIn:
    """A fact about to be written (the row's columns)."""

    kind: str
    occurred_at: datetime
    dedupe_key: str
    value: float = 1.0
    conversation_id: int | None = None
    ticket_id: int | None = None
    call_id: int | None = None
    channel: str | None = None
    skill_group_id: int | None = None
    team_id: int | None = None
    agent_id: int | None = None
    district: str | None = None
    intent: str | None = None
    ticket_type: str | None = None
    detail: str | None = None
    data: dict[str, Any] | None = field(default=None)

    def row(self) -> dict[str, Any]:
        """The insert's values."""
        return {**self.__dict__, "occurred_at": as_utc(self.occurred_at), "inserted_at": utcnow()}


async def write_facts(session: AsyncSession, facts: list[FactIn]) -> int:
    """Insert ``facts``, skipping any whose dedupe key is already stored; returns how many were new."""
    if not facts:
        return 0
    rows = list({fact.dedupe_key: fact.row() for fact in facts}.values())  # one batch may repeat a key too
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = make(table_of(AnalyticsFact)).values(rows).on_conflict_do_nothing(index_elements=["dedupe_key"])
    result = await session.execute(statement)
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


# ------------------------------------------------------------------ dimensions read from the rows


async def _team_of(session: AsyncSession, agent_id: int | None) -> int | None:
    if agent_id is None:
        return None
    team_id = await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == agent_id)
                                   .order_by(TeamMember.team_id).limit(1))
    return int(team_id) if team_id is not None else None


async def _district_of(session: AsyncSession, customer_id: int | None) -> str | None:
    if customer_id is None:
        return None
    return await session.scalar(select(Address.district).where(Address.customer_id == customer_id)
                                .order_by(Address.id).limit(1))


async def _conversation_facts_base(session: AsyncSession, conversation: Conversation) -> dict[str, Any]:
    return {"conversation_id": conversation.id, "channel": conversation.channel,
            "skill_group_id": conversation.skill_group_id, "agent_id": conversation.agent_id,
            "team_id": await _team_of(session, conversation.agent_id),
            "district": await _district_of(session, conversation.customer_id),
            "intent": (conversation.handoff_summary or {}).get("intent")}


def _seconds(later: datetime | None, earlier: datetime | None) -> float:
    if later is None or earlier is None:
        return 0.0
    return max((as_utc(later) - as_utc(earlier)).total_seconds(), 0.0)


def _stamp(at: datetime | None) -> str:
    return as_utc(at).strftime("%Y%m%dT%H%M%S.%f") if at is not None else "-"


# ------------------------------------------------------------------ one builder per event type

Builder = Callable[[AsyncSession, dict[str, Any], str], Awaitable[list[FactIn]]]
BUILDERS: dict[str, Builder] = {}


def builds(event_type: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        BUILDERS[event_type] = fn
        return fn

    return register


@builds("conversation.started")
async def _started(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    conversation = await session.get(Conversation, payload["conversation_id"])
    if conversation is None:
        return []
    base = await _conversation_facts_base(session, conversation)
    return [FactIn("contact.started", conversation.created_at, f"contact:{conversation.id}", **base)]


@builds("conversation.state")
async def _state(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    conversation = await session.get(Conversation, payload["conversation_id"])
    if conversation is None:
        return []
    base = await _conversation_facts_base(session, conversation)
    c, state = conversation, payload["state"]
    # The row may have moved on since the event (a transfer resets the accept): who and which group come
    # from the event itself; times from the row while it still tells this event's story.
    if "agent_id" in payload:
        base.update(agent_id=payload["agent_id"], team_id=await _team_of(session, payload["agent_id"]))
    if payload.get("skill_group_id") is not None:
        base["skill_group_id"] = payload["skill_group_id"]
    facts: list[FactIn] = []
    if state == "queued" and c.queued_at is not None:
        facts.append(FactIn("conversation.handoff", c.queued_at, f"handoff:{c.id}", detail=c.handoff_reason, **base))
        facts.append(FactIn("conversation.queued", c.queued_at, f"queued:{c.id}:{_stamp(c.queued_at)}",
                            detail=c.handoff_reason, **base))
    elif state == "assigned" and payload.get("accepted"):
        same = c.accepted_at is not None and c.agent_id == payload.get("agent_id")
        accepted_at = c.accepted_at if same and c.accepted_at is not None else datetime.fromisoformat(at)
        waited_from = c.queued_at
        if c.queued_at is not None and c.assigned_at is not None and await session.scalar(
                select(AnalyticsFact.id).where(AnalyticsFact.kind == "conversation.accepted",
                                               AnalyticsFact.conversation_id == c.id,
                                               AnalyticsFact.occurred_at >= c.queued_at,
                                               AnalyticsFact.occurred_at < accepted_at).limit(1)):
            waited_from = c.assigned_at  # handed straight to a colleague after an accept: wait from the transfer
        if waited_from is not None and waited_from > accepted_at:
            waited_from = c.queued_at if c.queued_at is not None and c.queued_at <= accepted_at else None
        facts.append(FactIn("conversation.accepted", accepted_at, f"accepted:{c.id}:{_stamp(accepted_at)}",
                            value=_seconds(accepted_at, waited_from), **base))
    elif state == "closed" and c.closed_at is not None:
        served_from = c.accepted_at or (c.assigned_at if c.agent_id is not None else None)
        if served_from is not None:  # an agent had it (accepted, or assigned and closed without 接入)
            outcome, kind, value = "agent", "conversation.handled", _seconds(c.closed_at, served_from)
        elif c.queued_at is not None:
            outcome, kind, value = "abandoned", "conversation.abandoned", _seconds(c.closed_at, c.queued_at)
        else:
            outcome, kind, value = "bot", "conversation.bot_only", 1.0
        facts.append(FactIn("conversation.closed", c.closed_at, f"closed:{c.id}", detail=outcome, **base))
        facts.append(FactIn(kind, c.closed_at, f"{kind}:{c.id}", value=value, detail=c.closed_by, **base))
    return facts


@builds("conversation.rated")
async def _rated(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    conversation = await session.get(Conversation, payload["conversation_id"])
    if conversation is None:
        return []
    base = await _conversation_facts_base(session, conversation)
    return [FactIn("conversation.rated", conversation.rated_at or datetime.fromisoformat(at),
                   f"rated:{conversation.id}", value=float(payload["rating"]), **base)]


@builds("bot.turn")
async def _bot_turn(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    conversation = await session.get(Conversation, payload["conversation_id"])
    occurred = datetime.fromisoformat(at)
    base = await _conversation_facts_base(session, conversation) if conversation is not None else {
        "conversation_id": payload["conversation_id"], "channel": payload["channel"]}
    base["intent"] = payload["intent"]
    message_id, outcome = payload["message_id"], payload["outcome"]
    facts = [FactIn("bot.turn", occurred, f"bot.turn:{message_id}", detail=outcome, **base)]
    if outcome in ("answered", "flow_done"):
        facts.append(FactIn("bot.answered", occurred, f"bot.answered:{message_id}", detail=outcome, **base))
    if payload["knowledge"] in ("hit", "miss"):
        kind = f"kb.{payload['knowledge']}"
        facts.append(FactIn(kind, occurred, f"{kind}:{message_id}", **base))
    return facts


@builds("kb.feedback")
async def _kb_feedback(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    kind = "kb.helpful" if payload["helpful"] else "kb.not_helpful"
    return [FactIn(kind, datetime.fromisoformat(at), f"kb.feedback:{payload['feedback_id']}",
                   detail=f"article:{payload['article_id']}", data={"article_id": payload["article_id"]})]


def _ticket_base(ticket: Ticket) -> dict[str, Any]:
    return {"ticket_id": ticket.id, "channel": ticket.channel, "team_id": ticket.team_id,
            "agent_id": ticket.handler_id, "district": ticket.district, "ticket_type": ticket.type,
            "conversation_id": ticket.conversation_id}


@builds("ticket.created")
async def _ticket_created(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    ticket = await session.get(Ticket, payload["ticket_id"])
    if ticket is None:
        return []
    return [FactIn("ticket.created", ticket.created_at, f"ticket.created:{ticket.id}", detail=ticket.priority,
                   **_ticket_base(ticket))]


@builds("ticket.updated")
async def _ticket_updated(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    ticket = await session.get(Ticket, payload["ticket_id"])
    if ticket is None:
        return []
    base, status, occurred = _ticket_base(ticket), payload["status"], datetime.fromisoformat(at)
    facts: list[FactIn] = []
    if status == "assigned":
        # one dispatch per assignment: the history row of that assignment names it (a re-dispatch has its own)
        entry = await session.scalar(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.to_status == "assigned",
            TicketEvent.at <= occurred + timedelta(seconds=5)).order_by(TicketEvent.id.desc()).limit(1))
        if entry is not None:
            facts.append(dispatched(ticket, entry))
    elif status == "resolved" and ticket.resolved_at is not None:
        key = f"{ticket.id}:{_stamp(ticket.resolved_at)}"
        facts.append(FactIn("ticket.resolved", ticket.resolved_at, f"ticket.resolved:{key}",
                            value=_seconds(ticket.resolved_at, ticket.created_at), **base))
        if ticket.resolve_by is None or as_utc(ticket.resolved_at) <= as_utc(ticket.resolve_by):
            facts.append(FactIn("ticket.resolved_in_sla", ticket.resolved_at, f"ticket.resolved_in_sla:{key}",
                                **base))
    elif status == "closed" and ticket.closed_at is not None:
        facts.append(FactIn("ticket.closed", ticket.closed_at, f"ticket.closed:{ticket.id}:{_stamp(ticket.closed_at)}",
                            **base))
    return facts


def dispatched(ticket: Ticket, entry: TicketEvent) -> FactIn:
    """The 派单 fact of one assignment in a ticket's history."""
    return FactIn("ticket.dispatched", entry.at, f"ticket.dispatched:{entry.id}", **_ticket_base(ticket))


@builds("ticket.sla")
async def _ticket_sla(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    ticket = await session.get(Ticket, payload["ticket_id"])
    if ticket is None or payload["sla_state"] not in ("at_risk", "breached"):
        return []
    kind = f"sla.{payload['sla_state']}"
    deadline = payload.get("deadline") or "-"
    return [FactIn(kind, datetime.fromisoformat(at), f"{kind}:{ticket.id}:{deadline}", detail=deadline,
                   **_ticket_base(ticket))]


@builds("followup.completed")
async def _followup(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    survey = await session.get(FollowUpSurvey, payload["followup_id"])
    ticket = await session.get(Ticket, payload["ticket_id"])
    occurred = (survey.answered_at if survey is not None and survey.answered_at else datetime.fromisoformat(at))
    base = _ticket_base(ticket) if ticket is not None else {"ticket_id": payload["ticket_id"]}
    category = (survey.category if survey is not None else None) or base.get("ticket_type")
    facts = [FactIn("followup.answered", occurred, f"followup:{payload['followup_id']}",
                    value=float(payload["score"]), detail=category, **base)]
    if payload["solved"]:
        facts.append(FactIn("followup.solved", occurred, f"followup.solved:{payload['followup_id']}",
                            detail=category, **base))
    return facts


@builds("call.ended")
async def _call_ended(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    call = await session.get(Call, payload["call_id"])
    if call is None:
        return []
    conversation = await session.get(Conversation, call.conversation_id) if call.conversation_id else None
    base: dict[str, Any] = await _conversation_facts_base(session, conversation) if conversation is not None \
        else {"channel": "voice"}
    base.update(call_id=call.id, agent_id=call.agent_id, team_id=await _team_of(session, call.agent_id))
    ended = call.ended_at or datetime.fromisoformat(at)
    if call.connected_at is not None:
        return [FactIn("call.answered", ended, f"call:{call.id}", value=float(call.talk_s or 0),
                       detail=call.hangup_by, **base)]
    return [FactIn("call.abandoned", ended, f"call:{call.id}", value=float(call.queue_wait_s or 0),
                   detail="queue" if call.queued_at else "ivr", **base)]


@builds("quality.scored")
async def _quality_scored(session: AsyncSession, payload: dict[str, Any], at: str) -> list[FactIn]:
    """A quality score (gasdesk/quality, ``QualityScored``) becomes a ``qa.scored`` fact valued at the score
    (0–100). Keyed by ``score_id``: a later adjustment of the same score (``adjusted``) writes nothing new, so
    the reports count each scored contact once at its first score."""
    conversation_id = payload.get("conversation_id")
    conversation = await session.get(Conversation, conversation_id) if conversation_id else None
    base = await _conversation_facts_base(session, conversation) if conversation is not None else {}
    agent_id = payload.get("agent_id") or base.get("agent_id")
    base.update(call_id=payload.get("call_id"), agent_id=agent_id, team_id=await _team_of(session, agent_id))
    return [FactIn("qa.scored", datetime.fromisoformat(at), f"qa:{payload['score_id']}",
                   value=float(payload["score"]), **base)]


async def facts_of(session: AsyncSession, event_type: str, payload: dict[str, Any], at: str) -> list[FactIn]:
    """The facts an event stands for (none for an event analytics does not count)."""
    builder = BUILDERS.get(event_type)
    if builder is None:
        return []
    return await builder(session, payload, at)
