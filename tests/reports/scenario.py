"""A small two days of work, made through the real do_* functions and rolled up: the report tests' data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from gasdesk import clock
from gasdesk.analytics import ingest
from gasdesk.analytics.rollup import rollup
from gasdesk.conversations.service import do_accept, do_close
from gasdesk.db import commit, transaction
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.followups.service import do_answer_followup
from tests.factories import bot_conversation, desk_agent, queued_conversation, staff_user, wo_ticket

MONDAY = datetime(2026, 12, 7, 2, 5, tzinfo=UTC)  # 10:05 Shanghai


async def two_days(session: Any, factory: Any) -> dict[str, Any]:
    """Sunday: one web chat the bot ends. Monday: two web chats (one closed by the bot) and a WeChat chat an
    agent handles, a ticket resolved and its 回访 answered with 4."""
    clock.set_now(MONDAY - timedelta(days=1))
    sunday = await bot_conversation(session)
    await do_close(session, sunday, by="bot")
    await commit(session)
    clock.set_now(MONDAY)
    for n in range(2):
        chat = await bot_conversation(session)
        if n == 0:
            await do_close(session, chat, by="bot")
            await commit(session)
    agent = await desk_agent(factory)
    chat = await queued_conversation(session, channel="wechat")
    clock.set_now(MONDAY + timedelta(minutes=1))
    await do_accept(session, agent, chat)
    await commit(session)
    clock.set_now(MONDAY + timedelta(minutes=6))
    await do_close(session, chat, by="agent", user=agent)
    await commit(session)
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="resolved", crew_id=crew.id, district="和平区",
                             channel="webchat", conversation_id=chat.id)
    survey = await session.scalar(select(FollowUpSurvey).where(FollowUpSurvey.ticket_id == ticket.id))
    await do_answer_followup(session, survey.id, score=4, solved=True)
    await commit(session)
    await ingest.drain()
    async with transaction() as s:
        await rollup(s)
    return {"agent": agent}
