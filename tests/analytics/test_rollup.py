"""Facts from real changes (the do_* functions), rolled up, against counts taken straight from the domain
tables — including a duplicate event, a late event and a failed write retried by the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from gasdesk import clock
from gasdesk.analytics import ingest
from gasdesk.analytics.facts import BUILDERS
from gasdesk.analytics.models import AnalyticsBucket, AnalyticsFact
from gasdesk.analytics.rollup import rollup
from gasdesk.analytics.service import breakdown, figures, series, totals
from gasdesk.conversations.models import Conversation
from gasdesk.conversations.service import do_accept, do_close, do_rate
from gasdesk.db import commit, transaction
from gasdesk.events import Event, bus
from gasdesk.jobs.models import Job
from gasdesk.jobs.queue import run_due_jobs
from gasdesk.tickets.models import Ticket
from tests.factories import bot_conversation, desk_agent, queued_conversation, staff_user, wo_ticket

T0 = datetime(2026, 12, 7, 2, 5, tzinfo=UTC)  # 10:05 in Shanghai, a Monday
DAY = (datetime(2026, 12, 6, 16, 0, tzinfo=UTC), datetime(2026, 12, 7, 16, 0, tzinfo=UTC))  # 2026-12-07 local


async def _roll() -> dict[str, int]:
    await ingest.drain()
    async with transaction() as s:
        return await rollup(s)


async def _day_of_work(session: Any, factory: Any) -> dict[str, Any]:
    """Three web chats the bot ends, one WeChat chat an agent takes after 2 minutes and handles for 8, a
    repair ticket resolved; the clock moves as it goes."""
    clock.set_now(T0)
    for _ in range(3):
        conversation = await bot_conversation(session)
        await do_close(session, conversation, by="bot")
        await commit(session)
    agent = await desk_agent(factory)
    chat = await queued_conversation(session, channel="wechat")
    clock.set_now(T0 + timedelta(minutes=2))
    await do_accept(session, agent, chat)
    await commit(session)
    clock.set_now(T0 + timedelta(minutes=10))
    await do_close(session, chat, by="agent", user=agent)
    await commit(session)
    await do_rate(session, chat, 4)
    await commit(session)
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="resolved", crew_id=crew.id, district="和平区")
    return {"agent": agent, "chat": chat, "ticket": ticket}


async def test_report_figures_match_the_domain_tables(session, factory) -> None:
    world = await _day_of_work(session, factory)
    await _roll()
    found = await totals(session, ["contacts", "ai_handled", "handoffs", "accepted", "avg_wait_s", "handled",
                                   "avg_handle_s", "csat", "tickets_created", "tickets_resolved", "ai_rate"],
                         *DAY)
    # the same figures counted straight from the conversations and tickets
    conversations = list(await session.scalars(select(Conversation)))
    assert found["contacts"] == len(conversations) == 4
    assert found["ai_handled"] == sum(1 for c in conversations if c.queued_at is None and c.closed_at) == 3
    assert found["handoffs"] == sum(1 for c in conversations if c.queued_at is not None) == 1
    chat = await session.get(Conversation, world["chat"].id)
    assert found["accepted"] == 1
    assert found["avg_wait_s"] == (chat.accepted_at - chat.queued_at).total_seconds() == 120
    assert found["handled"] == 1
    assert found["avg_handle_s"] == (chat.closed_at - chat.accepted_at).total_seconds() == 480
    assert found["csat"] == chat.rating == 4
    assert found["tickets_created"] == await session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert found["tickets_resolved"] == 1
    assert found["ai_rate"] == pytest.approx(75.0)
    # filters and breakdowns read the same buckets
    assert (await totals(session, ["contacts"], *DAY, where={"channel": "wechat"}))["contacts"] == 1
    assert await breakdown(session, "contacts", *DAY, by="channel") == {"webchat": 3.0, "wechat": 1.0}
    assert await breakdown(session, "tickets_created", *DAY, by="district") == {"和平区": 1.0}
    by_agent = await breakdown(session, "handled", *DAY, by="agent_id")
    assert by_agent == {str(world["agent"].id): 1.0}
    hours = await series(session, "contacts", *DAY, grain="hour")
    assert len(hours) == 24 and sum(v for _, v in hours) == 4
    assert dict(hours)[datetime(2026, 12, 7, 2, 0, tzinfo=UTC)] == 4
    assert await series(session, "contacts", *DAY, grain="day") == [(DAY[0], 4.0)]
    # nothing to divide by: totals says 0.0, figures says None
    assert (await figures(session, ["csat"], DAY[1], DAY[1] + timedelta(days=1)))["csat"] is None
    assert (await totals(session, ["csat"], DAY[1], DAY[1] + timedelta(days=1)))["csat"] == 0.0


async def test_a_duplicate_event_changes_nothing(session, factory, events) -> None:
    await _day_of_work(session, factory)
    await _roll()
    facts = await session.scalar(select(func.count()).select_from(AnalyticsFact))
    before = {(b.metric, b.hour, b.channel, b.count, b.total) for b in await session.scalars(select(AnalyticsBucket))}
    for event in list(events):  # every event delivered a second time (a retry, Redis's copy to each process)
        await bus.deliver_local(Event(event.type, event.payload, event.at))
    await _roll()
    session.expire_all()
    assert await session.scalar(select(func.count()).select_from(AnalyticsFact)) == facts
    after = {(b.metric, b.hour, b.channel, b.count, b.total) for b in await session.scalars(select(AnalyticsBucket))}
    assert after == before
    assert (await totals(session, ["contacts"], *DAY))["contacts"] == 4


async def test_a_late_event_lands_in_its_own_hour(session, factory, events) -> None:
    # The analytics consumer misses a contact at 10:05 (its process died before writing): the roll-up of
    # that hour runs without it; when the event arrives three hours later it corrects the 10:00 bucket.
    clock.set_now(T0)
    await bot_conversation(session)
    ingest_off = bus._subscribers.index(ingest.on_event)
    bus._subscribers.pop(ingest_off)
    try:
        late = await bot_conversation(session)
    finally:
        bus._subscribers.insert(ingest_off, ingest.on_event)
    held = [e for e in events if e.type == "conversation.started" and e.payload["conversation_id"] == late.id]
    await _roll()
    ten = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    assert dict(await series(session, "contacts", *DAY, grain="hour"))[ten] == 1
    clock.set_now(T0 + timedelta(hours=3))
    await bot_conversation(session)  # something in the current hour as well
    for event in held:
        await bus.deliver_local(event)
    await _roll()
    hours = dict(await series(session, "contacts", *DAY, grain="hour"))
    assert hours[ten] == 2 and hours[ten + timedelta(hours=3)] == 1
    await _roll()  # running it again changes nothing
    assert dict(await series(session, "contacts", *DAY, grain="hour")) == hours


async def test_a_failed_write_is_retried_by_the_job(session, factory, monkeypatch) -> None:
    clock.set_now(T0)
    real = BUILDERS["conversation.started"]

    async def database_trouble(*args: Any) -> list:
        raise ConnectionError("database went away")

    monkeypatch.setitem(BUILDERS, "conversation.started", database_trouble)
    conversation_id = (await bot_conversation(session)).id  # the change itself commits and returns normally
    await ingest.drain()
    session.expire_all()
    job = await session.scalar(select(Job).where(Job.name == ingest.JOB))
    assert job is not None and job.payload["events"][0]["payload"]["conversation_id"] == conversation_id
    assert await session.scalar(select(func.count()).select_from(AnalyticsFact)) == 0
    monkeypatch.setitem(BUILDERS, "conversation.started", real)
    assert await run_due_jobs() == 1
    await _roll()
    assert (await totals(session, ["contacts"], *DAY))["contacts"] == 1


async def test_unknown_dimension_is_refused(session) -> None:
    from gasdesk.errors import InvalidInput

    with pytest.raises(InvalidInput):
        await totals(session, ["contacts"], *DAY, where={"phone": "13800000000"})
    with pytest.raises(InvalidInput):
        await breakdown(session, "contacts", *DAY, by="visitor_id")
