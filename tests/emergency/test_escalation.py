"""Escalation with a fake clock: level by level, stops at an acknowledgement, survives a restart mid-way
(nothing re-sent, nothing skipped), two runners advancing the same step (one wins)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from gasdesk import clock, db
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.channels.sms.templates import DEFAULT_TEMPLATES, check_template_params
from gasdesk.db import commit, transaction
from gasdesk.emergency.models import EmergencyEvent, EmergencyNotification
from gasdesk.emergency.service import (
    advance_due,
    advance_event,
    do_acknowledge,
    do_add_duty,
    do_open_emergency,
    do_save_policy,
    do_save_staff_contact,
    event_views,
    register_phone_alerter,
)
from gasdesk.errors import Conflict, PermissionDenied
from gasdesk.jobs.queue import PERIODIC, run_due_jobs, run_periodic_once
from gasdesk.notifications.models import Notification
from gasdesk.outbound.models import OutboundMessage
from gasdesk.worker import register_handlers
from tests.factories import staff_user

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
ADMIN = Actor.system("test-admin", "test")


async def _world(session: Any) -> dict[str, Any]:
    """Three people: A on duty as 抢修调度 (with a mobile), B as 值班长, C named in step 3. A level-Ⅱ path:
    1 → 抢修调度 by app and SMS (5 min), 2 → 值班长 by app (5 min), 3 → C by app (10 min), then stop."""
    clock.set_now(T0)
    a = await staff_user(session, "agent")
    b = await staff_user(session, "agent")
    c = await staff_user(session, "supervisor")
    for user, role in ((a, "repair_dispatch"), (b, "shift_lead")):
        await do_add_duty(session, ADMIN, user_id=user.id, duty_role=role, starts_at=T0 - timedelta(hours=1),
                          ends_at=T0 + timedelta(hours=12))
    await do_save_staff_contact(session, ADMIN, user_id=a.id, mobile="13800138001", wechat_openid="")
    await do_save_policy(session, ADMIN, 2, [
        {"duty_roles": ["repair_dispatch"], "channels": ["in_app", "sms"], "timeout_min": 5},
        {"duty_roles": ["shift_lead"], "channels": ["in_app"], "timeout_min": 5},
        {"users": [c.id], "channels": ["in_app", "phone"], "timeout_min": 10, "next_step": None},
    ])
    await commit(session)
    return {"a": a, "b": b, "c": c}


async def _open(session: Any) -> EmergencyEvent:
    event = await do_open_emergency(session, ADMIN, source="manual", level=2, title="和平路调压站泄漏",
                                    description="调压站附近闻到燃气味")
    await commit(session)
    return event


async def _rows(event_id: int) -> list[EmergencyNotification]:
    async with transaction() as s:
        return list(await s.scalars(select(EmergencyNotification).where(EmergencyNotification.event_id == event_id)
                                    .order_by(EmergencyNotification.id)))


async def _sent(event_id: int) -> list[tuple[int, int | None, str, str]]:
    """(seq, user, channel, status) of every notification of the event."""
    return [(r.seq, r.user_id, r.channel, r.status) for r in await _rows(event_id)]


async def _event(event_id: int) -> EmergencyEvent:
    async with transaction() as s:
        event = await s.get(EmergencyEvent, event_id)
        assert event is not None
        return event


async def _scan_at(moment: datetime) -> int:
    clock.set_now(moment)
    async with transaction() as s:
        return await advance_due(s)


async def _count(model: Any, *where: Any) -> int:
    async with transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_opening_notifies_step_one_at_once(session, events) -> None:
    people = await _world(session)
    a = people["a"]
    events.clear()
    event = await _open(session)

    stored = await _event(event.id)
    assert (stored.status, stored.seq, stored.current_step) == ("escalating", 1, 0)
    assert stored.next_due_at == T0 + timedelta(minutes=5)
    assert stored.policy_version == 1 and len(stored.steps) == 3
    assert await _sent(event.id) == [(1, a.id, "in_app", "sent"), (1, a.id, "sms", "queued")]
    rows = await _rows(event.id)
    assert all(r.sent_at == T0 for r in rows) and rows[0].duty_role == "repair_dispatch"
    # the bell notification and the SMS in the outbox (emergency: no quiet hours, no opt-out)
    assert await _count(Notification, Notification.user_id == a.id, Notification.kind == "emergency.escalation") == 1
    async with transaction() as s:
        sms = await s.get(OutboundMessage, rows[1].outbound_id)
        assert sms is not None and sms.emergency and sms.channel == "sms" and sms.recipient == "13800138001"
        assert sms.template_key == "emergency_alert" and sms.params["event"] == f"EM{event.id:05d}"
        actions = list(await s.scalars(select(AuditEntry.action).where(
            AuditEntry.entity_type == "emergency", AuditEntry.entity_id == str(event.id)).order_by(AuditEntry.id)))
    assert actions == ["emergency.open", "emergency.escalate"]
    check_template_params(DEFAULT_TEMPLATES["emergency_alert"], dict(sms.params))
    # the outbox sends it (the log provider here) and the board reads its delivery status
    await run_due_jobs()
    async with transaction() as s:
        sent_sms = await s.get(OutboundMessage, rows[1].outbound_id)
        assert sent_sms is not None and sent_sms.status == "sent"
        view = (await event_views(s, [await s.get(EmergencyEvent, event.id)]))[0]
    assert [(n["channel"], n["status"], n["delivery"]) for n in view["notifications"]] == [
        ("in_app", "sent", None), ("sms", "queued", "sent")]
    updated = [e.payload for e in events if e.type == "emergency.updated"]
    assert updated == [{"event_id": event.id, "level": 2, "status": "escalating", "seq": 1}]
    assert any(e.type == "notification.created" and e.payload["user_id"] == a.id for e in events)


async def test_escalation_runs_level_by_level_then_stops(session, events) -> None:
    people = await _world(session)
    a, b, c = people["a"], people["b"], people["c"]
    event = await _open(session)

    assert await _scan_at(T0 + timedelta(minutes=4, seconds=59)) == 0  # not yet
    assert len(await _rows(event.id)) == 2
    events.clear()
    assert await _scan_at(T0 + timedelta(minutes=5)) == 1
    assert await _sent(event.id) == [(1, a.id, "in_app", "sent"), (1, a.id, "sms", "queued"),
                                     (2, b.id, "in_app", "sent")]
    assert [e.payload["seq"] for e in events if e.type == "emergency.updated"] == [2]
    assert (await _event(event.id)).next_due_at == T0 + timedelta(minutes=10)
    assert await _scan_at(T0 + timedelta(minutes=9)) == 0
    assert await _scan_at(T0 + timedelta(minutes=10)) == 1
    # step 3: C by app; the phone is recorded as unavailable (the hotline cannot originate calls yet)
    assert (await _sent(event.id))[3:] == [(3, c.id, "in_app", "sent"), (3, c.id, "phone", "unavailable")]
    assert (await _event(event.id)).next_due_at == T0 + timedelta(minutes=20)
    # the path ends: marked exhausted once, nothing more is sent, later scans leave it alone
    assert await _scan_at(T0 + timedelta(minutes=20)) == 1
    stored = await _event(event.id)
    assert stored.exhausted_at == T0 + timedelta(minutes=20) and stored.next_due_at is None
    assert stored.status == "escalating" and stored.seq == 3
    assert await _scan_at(T0 + timedelta(hours=3)) == 0
    assert len(await _rows(event.id)) == 5
    async with transaction() as s:
        escalations = list(await s.scalars(select(AuditEntry.changes).where(
            AuditEntry.action == "emergency.escalate", AuditEntry.entity_id == str(event.id)).order_by(AuditEntry.id)))
    assert [row["after"]["seq"] for row in escalations] == [1, 2, 3]


async def test_acknowledgement_stops_escalation(session, events) -> None:
    people = await _world(session)
    a, b = people["a"], people["b"]
    event_id = (await _open(session)).id
    clock.set_now(T0 + timedelta(minutes=2))

    # B was not told (yet) and is an agent: may not acknowledge; A was told and may
    with pytest.raises(PermissionDenied):
        await do_acknowledge(session, b, await session.get(EmergencyEvent, event_id), via="board")
    await db.rollback(session, a, b)
    events.clear()
    stored = await session.get(EmergencyEvent, event_id)
    await do_acknowledge(session, a, stored, via="notification")
    await commit(session)

    stored = await _event(event_id)
    assert stored.status == "acknowledged" and stored.acknowledged_by_id == a.id
    assert stored.acknowledged_at == T0 + timedelta(minutes=2) and stored.acknowledged_via == "notification"
    assert stored.next_due_at is None
    assert [r.acknowledged_at for r in await _rows(event_id)] == [T0 + timedelta(minutes=2)] * 2
    assert [e.payload["status"] for e in events if e.type == "emergency.updated"] == ["acknowledged"]
    async with transaction() as s:
        audit = await s.scalar(select(AuditEntry).where(AuditEntry.action == "emergency.acknowledge"))
    assert audit is not None and audit.actor_id == a.id and audit.changes["after"]["via"] == "notification"

    # nothing more goes out, however long we wait; a second acknowledgement is refused
    assert await _scan_at(T0 + timedelta(hours=2)) == 0
    assert len(await _rows(event_id)) == 2
    with pytest.raises(Conflict):
        await do_acknowledge(session, a, await session.get(EmergencyEvent, event_id, populate_existing=True))


async def test_restart_mid_escalation_resends_and_skips_nothing(session) -> None:
    people = await _world(session)
    b, c = people["b"], people["c"]
    event = await _open(session)

    # A worker dies during step 2: it won the compare-and-set and wrote the step, but never committed.
    clock.set_now(T0 + timedelta(minutes=6))
    async with db.sessionmaker()() as dying:
        assert await advance_event(dying, event.id, 1)
        await dying.rollback()  # the process is gone: nothing of the step stays, nothing was sent
    assert len(await _rows(event.id)) == 2 and (await _event(event.id)).seq == 1

    # A fresh process: new engine, handlers registered anew, the periodic task run by the worker's own loop.
    await db.dispose_engine()
    PERIODIC.clear()
    register_handlers()
    assert "emergency.escalate" in PERIODIC
    assert "emergency.escalate" in await run_periodic_once(force=True)
    assert (await _sent(event.id))[2:] == [(2, b.id, "in_app", "sent")]  # step 2, once: not skipped
    # restarted again right after: the same due step is not sent twice
    await db.dispose_engine()
    PERIODIC.clear()
    register_handlers()
    await run_periodic_once(force=True)
    assert len(await _rows(event.id)) == 3
    # and the path carries on from where the database says it is
    clock.set_now(T0 + timedelta(minutes=11))
    await run_periodic_once(force=True)
    assert [(seq, user) for seq, user, _, _ in await _sent(event.id)] == [
        (1, people["a"].id), (1, people["a"].id), (2, b.id), (3, c.id), (3, c.id)]
    assert await _count(Notification, Notification.kind == "emergency.escalation") == 3


async def test_two_runners_advancing_the_same_step_one_wins(session) -> None:
    await _world(session)
    event = await _open(session)
    clock.set_now(T0 + timedelta(minutes=5))

    async def runner() -> int:
        async with transaction() as s:
            return await advance_due(s)

    results = await asyncio.gather(runner(), runner())
    assert sorted(results) == [0, 1]
    assert [seq for seq, *_ in await _sent(event.id)] == [1, 1, 2]
    assert (await _event(event.id)).seq == 2

    # a runner acting on what it read before the other committed loses the compare-and-set
    clock.set_now(T0 + timedelta(minutes=10))
    async with transaction() as s:
        assert await advance_event(s, event.id, 2)
    async with transaction() as s:
        assert not await advance_event(s, event.id, 2)  # stale seq: nothing happens
    assert [seq for seq, *_ in await _sent(event.id)] == [1, 1, 2, 3, 3]


async def test_a_step_with_nobody_on_duty_moves_on_at_the_next_scan(session) -> None:
    people = await _world(session)
    await do_save_policy(session, ADMIN, 3, [
        {"duty_roles": ["safety_lead"], "channels": ["in_app"], "timeout_min": 30},  # nobody holds it
        {"users": [people["c"].id], "channels": ["in_app"], "timeout_min": 30},
    ])
    await commit(session)
    event = await do_open_emergency(session, ADMIN, source="manual", level=3, title="测试", description="")
    await commit(session)
    assert await _sent(event.id) == [(1, None, "none", "no_one_on_duty")]
    assert (await _event(event.id)).next_due_at == T0  # no 30-minute wait for nobody
    assert await _scan_at(T0 + timedelta(seconds=30)) == 1
    assert (await _sent(event.id))[1:] == [(2, people["c"].id, "in_app", "sent")]


async def test_a_failing_step_is_retried_and_never_holds_back_other_events(session) -> None:
    people = await _world(session)
    first = (await _open(session)).id
    second = (await _open(session)).id
    failing = {first}

    async def phone(s: Any, event: EmergencyEvent, user_id: int, seq: int) -> tuple[str, str | None]:
        # the hotline's outbound alert (a hook): broken for one event, working for the other
        if event.id in failing:
            raise RuntimeError("trunk down")
        return "queued", None

    register_phone_alerter(phone)
    try:
        assert await _scan_at(T0 + timedelta(minutes=5)) == 2  # step 2 (app only) for both
        assert await _scan_at(T0 + timedelta(minutes=10)) == 1  # step 3 has the phone: the first fails
        assert (await _event(first)).seq == 2 and len(await _rows(first)) == 3  # rolled back whole
        assert (await _sent(second))[3:] == [(3, people["c"].id, "in_app", "sent"), (3, people["c"].id, "phone",
                                                                                      "queued")]
        failing.clear()
        assert await _scan_at(T0 + timedelta(minutes=10, seconds=30)) == 1  # retried, once
        assert (await _sent(first))[3:] == [(3, people["c"].id, "in_app", "sent"), (3, people["c"].id, "phone",
                                                                                     "queued")]
    finally:
        register_phone_alerter(None)
