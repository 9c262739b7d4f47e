"""Idle residents: the periodic scan that marks 居民已离开 and later releases the conversation.

A resident's socket closing starts the clock (``service.do_note_resident_gone``, from the webchat socket);
reconnecting stops it. After ``resident_left_after_s`` the consoles show 居民已离开; after a further
``resident_release_after_s`` the conversation ends, so it no longer takes a place in the agent's capacity
and the next waiting resident can be assigned. Each step is a ``do_*`` with an audit row and events.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.callbacks.models import CallbackRequest, CallbackStatus
from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.conversations import service
from gasdesk.conversations.models import Conversation


def scan_every_s() -> int:
    """How often the worker runs the scan (gasdesk/worker.py): every 15 s, or often enough for a short
    ``resident_left_after_s`` to be honoured within a quarter of it."""
    return max(1, min(15, get_settings().resident_left_after_s // 4))


async def scan_idle_residents(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Mark residents gone for ``resident_left_after_s``; release those marked ``resident_release_after_s`` ago."""
    settings = get_settings()
    now = now or utcnow()
    counts = {"marked": 0, "released": 0}
    # A booked callback keeps its place whether or not the resident's page stays open (gasdesk/callbacks).
    no_callback = ~exists().where(CallbackRequest.conversation_id == Conversation.id,
                                  CallbackRequest.status == CallbackStatus.waiting.value)
    to_mark = await session.scalars(
        select(Conversation).where(Conversation.state.in_(service.WITH_PEOPLE), no_callback,
                                   Conversation.resident_left_at.is_(None),
                                   Conversation.resident_gone_at <= now - timedelta(seconds=settings.resident_left_after_s))
        .order_by(Conversation.id))
    for conversation in list(to_mark):
        service.do_mark_resident_left(session, conversation, at=now)
        counts["marked"] += 1
    await session.flush()
    to_release = await session.scalars(
        select(Conversation).where(
            Conversation.state.in_(service.WITH_PEOPLE), no_callback,
            Conversation.resident_left_at <= now - timedelta(seconds=settings.resident_release_after_s))
        .order_by(Conversation.id))
    for conversation in list(to_release):
        await service.do_release_idle(session, conversation)
        counts["released"] += 1
    return counts

