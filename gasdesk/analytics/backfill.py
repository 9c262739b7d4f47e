"""Facts for history that happened before analytics existed (or while its consumer was down): each stored
conversation, ticket, 回访 answer and call is replayed through the same builders as the live events, so the
dedupe keys agree and a backfill over a period already counted adds nothing. Bot turns and knowledge-base
feedback are not replayed (they live in encrypted message metadata and feedback rows; live events only).

``gasdesk analytics backfill --days N`` runs it, then the roll-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.facts import FactIn, dispatched, facts_of, write_facts
from gasdesk.clock import as_utc
from gasdesk.conversations.models import Conversation
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.telephony.models import Call
from gasdesk.tickets.models import Ticket, TicketEvent

BATCH = 500


def _at(moment: datetime) -> str:
    return as_utc(moment).isoformat()


async def _conversation_facts(session: AsyncSession, c: Conversation) -> list[FactIn]:
    facts = await facts_of(session, "conversation.started", {"conversation_id": c.id}, _at(c.created_at))
    if c.queued_at is not None:
        facts += await facts_of(session, "conversation.state", {"conversation_id": c.id, "state": "queued"},
                                _at(c.queued_at))
    if c.accepted_at is not None:
        facts += await facts_of(session, "conversation.state", {"conversation_id": c.id, "state": "assigned",
                                                                "accepted": True}, _at(c.accepted_at))
    if c.closed_at is not None:
        facts += await facts_of(session, "conversation.state", {"conversation_id": c.id, "state": "closed"},
                                _at(c.closed_at))
    if c.rating is not None:
        facts += await facts_of(session, "conversation.rated", {"conversation_id": c.id, "rating": c.rating},
                                _at(c.rated_at or c.closed_at or c.created_at))
    return facts


async def _ticket_facts(session: AsyncSession, t: Ticket) -> list[FactIn]:
    facts = await facts_of(session, "ticket.created", {"ticket_id": t.id}, _at(t.created_at))
    for entry in await session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id,
                                                                 TicketEvent.to_status == "assigned")):
        facts.append(dispatched(t, entry))
    if t.resolved_at is not None:
        facts += await facts_of(session, "ticket.updated", {"ticket_id": t.id, "status": "resolved"},
                                _at(t.resolved_at))
    if t.closed_at is not None:
        facts += await facts_of(session, "ticket.updated", {"ticket_id": t.id, "status": "closed"}, _at(t.closed_at))
    return facts


async def _rows(session: AsyncSession, model: Any, column: Any, since: datetime | None) -> AsyncIterator[Any]:
    last = 0
    while True:
        query = select(model).where(model.id > last).order_by(model.id).limit(BATCH)
        if since is not None:
            query = query.where(column >= since)
        rows = list(await session.scalars(query))
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].id


async def backfill(session: AsyncSession, since: datetime | None = None) -> int:
    """Write the facts of every conversation, ticket, answered 回访 and ended call since ``since`` (all when
    None); returns how many facts were new. Idempotent."""
    new = 0
    pending: list[FactIn] = []

    async def flush() -> None:
        nonlocal new
        new += await write_facts(session, pending)
        pending.clear()

    async for conversation in _rows(session, Conversation, Conversation.created_at, since):
        pending.extend(await _conversation_facts(session, conversation))
        if len(pending) >= BATCH:
            await flush()
    async for ticket in _rows(session, Ticket, Ticket.created_at, since):
        pending.extend(await _ticket_facts(session, ticket))
        if len(pending) >= BATCH:
            await flush()
    async for survey in _rows(session, FollowUpSurvey, FollowUpSurvey.answered_at, since):
        if survey.score is None or survey.answered_at is None:
            continue
        pending.extend(await facts_of(session, "followup.completed", {
            "followup_id": survey.id, "ticket_id": survey.ticket_id, "score": survey.score,
            "solved": bool(survey.solved)}, _at(survey.answered_at)))
    async for call in _rows(session, Call, Call.started_at, since):
        if call.ended_at is not None:
            pending.extend(await facts_of(session, "call.ended", {"call_id": call.id}, _at(call.ended_at)))
    await flush()
    return new
