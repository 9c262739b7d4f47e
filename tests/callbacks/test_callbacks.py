"""Peak-hour guidance and callback requests: the offer appears only above the threshold, a callback keeps the
resident's place in the queue, is offered to an agent like any conversation, and its outcome is recorded."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text

from gasdesk import db
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.callbacks import service as callbacks
from gasdesk.callbacks.models import CallbackRequest
from gasdesk.channels.inbound import Inbound, receive_from_contact
from gasdesk.config import reset_settings_cache
from gasdesk.conversations import service
from gasdesk.conversations.idle import scan_idle_residents
from gasdesk.customers.contacts import do_find_or_create_contact
from gasdesk.customers.models import ContactKind
from gasdesk.db import commit
from gasdesk.routing import service as acd
from tests.factories import (
    ChatSocket,
    desk_agent,
    new_visitor,
    queued_conversation,
    reload_conversation,
    served,
)

RESIDENT = Actor.system("resident", "webchat")


def _threshold(monkeypatch, seconds: int) -> None:
    monkeypatch.setenv("GASDESK_PEAK_WAIT_THRESHOLD_S", str(seconds))
    reset_settings_cache()


async def test_the_widget_offers_a_callback_only_above_the_threshold(app, session, factory, monkeypatch) -> None:
    agent = await desk_agent(factory, max_concurrent=1)
    busy = await queued_conversation(session)  # takes the agent's only chat slot
    assert (await reload_conversation(busy.id)).agent_id == agent.id
    async with served(app) as host:
        _threshold(monkeypatch, 300)  # nobody ahead: 240 s expected, below the threshold
        calm = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=calm["token"])
            await ws.until("welcome")
            await ws.send(type="handoff")
            frame = await ws.until("queue")
            assert frame["estimated_wait_s"] == 240 and frame["peak"] is False
        _threshold(monkeypatch, 200)
        rushed = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=rushed["token"])
            welcome = await ws.until("welcome")
            await ws.send(type="handoff")
            frame = await ws.until(lambda f: f["type"] == "queue" and f["conversation_id"]
                                   == welcome["conversation"]["id"])
            assert frame["peak"] is True and frame["position"] == 2
            await ws.send(type="callback_request", phone="13800001111")
            booked = await ws.until("callback_booked")
            assert booked["position"] == 2, "the callback keeps the resident's place"
            texts = [f["message"]["text"] or "" for f in ws.frames if f["type"] == "message"]
            if not any("已为您预约回拨" in t for t in texts):
                texts.append((await ws.until(lambda f: f["type"] == "message"))["message"]["text"] or "")
            confirmation = next(t for t in texts if "已为您预约回拨" in t)
            assert "138****1111" in confirmation
    row = await session.scalar(select(CallbackRequest))
    assert row is not None and row.phone == "13800001111" and row.channel == "webchat"
    raw = (await session.execute(text("SELECT phone FROM callback_requests"))).scalar_one()
    assert "13800001111" not in raw, "the number is encrypted at rest"


async def test_a_callback_keeps_its_place_is_offered_to_an_agent_and_records_outcomes(session, factory) -> None:
    agent = await desk_agent(factory, max_concurrent=1)
    busy = await queued_conversation(session)
    first = await queued_conversation(session)
    second = await queued_conversation(session)
    booked = await callbacks.do_request_callback(session, RESIDENT, first, "13900002222")
    await commit(session)
    assert booked.spot is not None and booked.spot.position == 1
    # the resident closes the page: the idle scan releases neither the place nor the callback
    service.do_note_resident_gone(session, first)
    await commit(session)
    later = first.queued_at
    assert later is not None
    await scan_idle_residents(session, now=later + timedelta(hours=2))
    await commit(session)
    assert (await reload_conversation(first.id)).state == "queued"
    spots = await acd.queue_spots(session, 1)
    assert (spots[first.id].position, spots[second.id].position) == (1, 2)

    # the agent frees up: the callback comes first, like the conversation it is
    await service.do_close(session, busy, by="agent", user=agent)
    await commit(session)
    await session.refresh(first)
    assert (first.state, first.agent_id) == ("assigned", agent.id)
    wire = await service.conversation_wire(session, first)
    assert wire["callback"]["phone"] == "139****2222"
    await service.do_accept(session, agent, first)
    await commit(session)
    row, conv = await callbacks.access_callback(session, agent, booked.callback.id)
    assert await callbacks.do_dial_callback(session, agent, row, conv) == "13900002222"
    await callbacks.do_record_outcome(session, agent, row, conv, "no_answer")
    await commit(session)
    again = await reload_conversation(first.id)
    assert again.state in ("queued", "assigned") and again.agent_id != agent.id
    assert row.attempts == 1 and row.status == "waiting"
    async with db.sessionmaker()() as s:
        actions = list(await s.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "callback")
                                       .order_by(AuditEntry.id)))
    assert actions == ["callback.request", "callback.dial", "callback.outcome"]


async def test_callback_keyword_from_an_sms_resident_in_the_queue(session, factory) -> None:
    await desk_agent(factory, max_concurrent=1)
    await queued_conversation(session)
    contact = await do_find_or_create_contact(session, ContactKind.sms, "13700003333")
    conversation = await receive_from_contact(session, contact, "sms", Inbound(text="转人工"))
    await commit(session)
    assert conversation is not None and (await reload_conversation(conversation.id)).state == "queued"
    assert await receive_from_contact(session, contact, "sms", Inbound(text="回拨")) is None
    await commit(session)
    row = await session.scalar(select(CallbackRequest).where(CallbackRequest.conversation_id == conversation.id))
    assert row is not None and row.phone == "13700003333" and row.channel == "sms"
