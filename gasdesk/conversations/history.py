"""Earlier conversations: for residents (same visitor or verified customer) and for agents in the customer 360."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.conversations.models import (
    CHANNEL_LABELS,
    STATE_LABELS,
    Channel,
    Conversation,
    ConversationState,
    Message,
)
from gasdesk.conversations.wire import MessageWire
from gasdesk.errors import NotFound
from gasdesk.security.pii import mask_pii


def _same_resident(conversation: Conversation) -> Any:
    clauses = [Conversation.visitor_id == conversation.visitor_id]
    if conversation.customer_id is not None:
        clauses.append(Conversation.customer_id == conversation.customer_id)
    return or_(*clauses)


async def _summaries(session: AsyncSession, conversations: list[Conversation]) -> list[dict[str, Any]]:
    items = []
    for c in conversations:
        first = await session.scalar(select(Message).where(Message.conversation_id == c.id,
                                                           Message.sender_type == "resident")
                                     .order_by(Message.seq).limit(1))
        items.append({
            "id": c.id, "channel": c.channel, "channel_label": CHANNEL_LABELS[Channel(c.channel)],
            "state": c.state, "state_label": STATE_LABELS[ConversationState(c.state)],
            "created_at": c.created_at.isoformat(), "closed_at": c.closed_at.isoformat() if c.closed_at else None,
            "rating": c.rating, "preview": (first.text or "")[:60] if first else "",
        })
    return items


async def resident_history(session: AsyncSession, conversation: Conversation, limit: int = 20) -> list[dict[str, Any]]:
    """Earlier conversations of this resident: same visitor, or same verified customer."""
    rows = await session.scalars(select(Conversation).where(_same_resident(conversation),
                                                            Conversation.id != conversation.id)
                                 .order_by(Conversation.id.desc()).limit(limit))
    items = await _summaries(session, list(rows))
    for item in items:
        item["preview"] = mask_pii(item["preview"])
    return items


async def resident_transcript(session: AsyncSession, conversation: Conversation,
                              other_id: int) -> list[MessageWire]:
    """An earlier conversation's messages (wire form) for the resident, with phone, ID and account numbers
    masked: whoever holds the widget now may not be whoever typed them then."""
    other = await session.scalar(select(Conversation).where(Conversation.id == other_id, _same_resident(conversation)))
    if other is None:
        raise NotFound("会话不存在", code="conversation_not_found")
    messages = await session.scalars(select(Message).where(Message.conversation_id == other.id).order_by(Message.seq))
    wires = []
    for message in messages:
        wire = message.to_wire()
        if text := wire["text"]:
            wire["text"] = mask_pii(text)
        wires.append(wire)
    return wires


async def customer_conversations(session: AsyncSession, customer_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """A customer's conversations, newest first (agents' customer 360)."""
    rows = await session.scalars(select(Conversation).where(Conversation.customer_id == customer_id)
                                 .order_by(Conversation.id.desc()).limit(limit))
    return await _summaries(session, list(rows))
