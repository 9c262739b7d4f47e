"""The rest of emergency.service: policies (validated, versioned, audited), the duty list, staff contacts,
closing and cancelling, the gas-leak trigger and its level, and who gets the board's live frame."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from starlette.websockets import WebSocketState

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.db import commit, rollback, transaction
from gasdesk.emergency.models import EmergencyEvent, EmergencyNotification, StaffContact
from gasdesk.emergency.service import (
    DEFAULT_STEPS,
    do_acknowledge,
    do_add_duty,
    do_cancel_emergency,
    do_close_emergency,
    do_open_emergency,
    do_remove_duty,
    do_save_policy,
    do_save_staff_contact,
    leak_level,
    on_duty,
    policy_for,
)
from gasdesk.errors import Conflict, InvalidInput
from gasdesk.realtime.hub import Connection, get_hub
from gasdesk.tickets.emergency import do_report_gas_leak
from tests.factories import bot_conversation, staff_user

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
ADMIN = Actor.system("test-admin", "test")


async def _audit(action: str) -> list[AuditEntry]:
    async with transaction() as s:
        return list(await s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


async def test_policy_is_checked_versioned_and_audited(session) -> None:
    user = await staff_user(session, "dispatcher")
    assert (await policy_for(session, 1)).version == 0  # the built-in default until saved
    assert (await policy_for(session, 1)).steps == DEFAULT_STEPS[1]
    bad: list[tuple[Any, str]] = [
        ([], "至少需要一个"),
        ([{"channels": ["in_app"], "timeout_min": 5}], "至少选择一名人员"),
        ([{"users": [999999], "channels": ["in_app"], "timeout_min": 5}], "人员不存在"),
        ([{"duty_roles": ["chef"], "channels": ["in_app"], "timeout_min": 5}], "未知的值班岗位"),
        ([{"duty_roles": ["shift_lead"], "channels": ["fax"], "timeout_min": 5}], "通知渠道"),
        ([{"duty_roles": ["shift_lead"], "channels": ["sms"], "timeout_min": 0}], "确认时限"),
        ([{"duty_roles": ["shift_lead"], "channels": ["sms"], "timeout_min": 5, "next_step": 1}], "下一步"),
        ([{"duty_roles": ["shift_lead"], "channels": ["sms"], "timeout_min": 5}] * 7, "最多"),
    ]
    for steps, message in bad:
        with pytest.raises(InvalidInput) as caught:
            await do_save_policy(session, ADMIN, 1, steps)
        assert message in caught.value.message
    with pytest.raises(InvalidInput):
        await do_save_policy(session, ADMIN, 5, [{"duty_roles": ["shift_lead"], "channels": ["sms"], "timeout_min": 5}])

    await do_save_policy(session, ADMIN, 1, [
        {"users": [user.id], "channels": ["sms", "in_app", "sms"], "timeout_min": 3},
        {"duty_roles": ["safety_lead", "shift_lead"], "channels": ["in_app"], "timeout_min": 5, "next_step": 1},
    ])
    await commit(session)
    second = await do_save_policy(session, ADMIN, 1, [{"duty_roles": ["shift_lead"], "channels": ["in_app"],
                                                       "timeout_min": 7}])
    await commit(session)
    view = await policy_for(session, 1)
    assert view.version == second.version == 2
    assert view.steps == [{"users": [], "duty_roles": ["shift_lead"], "channels": ["in_app"], "timeout_min": 7,
                           "next_step": None}]
    rows = await _audit("config.emergency_policy")
    assert [r.entity_id for r in rows] == ["emergency_policy:1", "emergency_policy:1"]
    first = rows[0].changes["after"]
    assert first["version"] == 1 and first["steps"][0] == {
        "users": [user.id], "duty_roles": [], "channels": ["in_app", "sms"], "timeout_min": 3, "next_step": 2}
    assert first["steps"][1]["duty_roles"] == ["shift_lead", "safety_lead"] and first["steps"][1]["next_step"] == 1
    assert rows[1].changes["before"]["version"] == 1


async def test_duty_list_decides_who_is_on_duty(session) -> None:
    a = await staff_user(session, "dispatcher")
    b = await staff_user(session, "dispatcher")
    gone = await staff_user(session, "dispatcher")
    first_id = (await do_add_duty(session, ADMIN, user_id=a.id, duty_role="repair_dispatch", starts_at=T0,
                                  ends_at=T0 + timedelta(hours=8))).id
    await do_add_duty(session, ADMIN, user_id=b.id, duty_role="repair_dispatch", starts_at=T0 + timedelta(hours=8),
                      ends_at=T0 + timedelta(hours=16))
    await do_add_duty(session, ADMIN, user_id=gone.id, duty_role="repair_dispatch", starts_at=T0,
                      ends_at=T0 + timedelta(hours=16))
    await commit(session)
    gone.is_active = False
    await commit(session)
    assert await on_duty(session, "repair_dispatch", T0 + timedelta(hours=1)) == [a.id]
    assert await on_duty(session, "repair_dispatch", T0 + timedelta(hours=8)) == [b.id]  # the end is exclusive
    assert await on_duty(session, "repair_dispatch", T0 - timedelta(seconds=1)) == []
    assert await on_duty(session, "shift_lead", T0 + timedelta(hours=1)) == []
    for kwargs, code in (({"duty_role": "chef"}, "invalid_duty_role"),
                         ({"ends_at": T0}, "invalid_duty_time"),
                         ({"ends_at": T0 + timedelta(days=40)}, "invalid_duty_time"),
                         ({"starts_at": datetime(2026, 12, 7, 8, 0)}, "invalid_duty_time"),
                         ({"user_id": gone.id}, "invalid_duty_user")):
        args: dict[str, Any] = {"user_id": a.id, "duty_role": "shift_lead", "starts_at": T0,
                                "ends_at": T0 + timedelta(hours=1)} | kwargs
        with pytest.raises(InvalidInput) as caught:
            await do_add_duty(session, ADMIN, **args)
        assert caught.value.code == code
    await rollback(session, a)
    await do_remove_duty(session, ADMIN, first_id)
    await commit(session)
    assert await on_duty(session, "repair_dispatch", T0 + timedelta(hours=1)) == []
    added, removed = await _audit("config.duty_add"), await _audit("config.duty_remove")
    assert len(added) == 3 and added[0].changes["after"]["duty_role"] == "repair_dispatch"
    assert removed[0].entity_id == f"duty:{first_id}" and removed[0].changes["before"]["user_id"] == a.id


async def test_staff_contact_is_encrypted_and_audited_masked(session) -> None:
    user = await staff_user(session, "dispatcher")
    with pytest.raises(InvalidInput):
        await do_save_staff_contact(session, ADMIN, user_id=user.id, mobile="12345", wechat_openid="")
    with pytest.raises(InvalidInput):
        await do_save_staff_contact(session, ADMIN, user_id=user.id, mobile="", wechat_openid="bad id!")
    await do_save_staff_contact(session, ADMIN, user_id=user.id, mobile="+86 138-0013-8000", wechat_openid="oAbC123456")
    await commit(session)
    row = await session.get(StaffContact, user.id)
    assert row is not None and row.mobile == "13800138000" and row.wechat_openid == "oAbC123456"
    raw = (await session.execute(text("SELECT mobile, wechat_openid FROM staff_contacts"))).one()
    assert "13800138000" not in raw[0] and "oAbC123456" not in raw[1]
    audit = (await _audit("config.staff_contact"))[-1]
    assert audit.changes["after"] == {"mobile": "138****8000", "wechat": True}
    assert "13800138000" not in json.dumps(audit.changes)


async def test_close_needs_acknowledgement_and_a_summary_cancel_needs_a_reason(session, events) -> None:
    clock.set_now(T0)
    supervisor = await staff_user(session, "supervisor")
    event = await do_open_emergency(session, ADMIN, source="manual", level=3, title="阀门井冒气")
    await commit(session)
    with pytest.raises(Conflict):  # not acknowledged yet
        await do_close_emergency(session, supervisor, event, "已处理完毕")
    await rollback(session, supervisor, event)
    await do_acknowledge(session, supervisor, event, via="board")
    await commit(session)
    with pytest.raises(InvalidInput) as caught:
        await do_close_emergency(session, supervisor, event, "好")
    assert caught.value.code == "emergency_summary_required"
    await rollback(session, supervisor, event)
    clock.set_now(T0 + timedelta(minutes=40))
    events.clear()
    await do_close_emergency(session, supervisor, event, "关闭阀门，更换密封圈，复测无泄漏")
    await commit(session)
    stored = await session.get(EmergencyEvent, event.id, populate_existing=True)
    assert stored is not None and stored.status == "closed" and stored.closed_by_id == supervisor.id
    assert stored.closed_at == T0 + timedelta(minutes=40) and stored.summary == "关闭阀门，更换密封圈，复测无泄漏"
    assert (await _audit("emergency.close"))[0].changes["after"]["summary"].startswith("关闭阀门")
    assert [e.payload["status"] for e in events if e.type == "emergency.updated"] == ["closed"]
    with pytest.raises(Conflict):
        await do_cancel_emergency(session, supervisor, stored, "误报")
    await rollback(session, supervisor)

    other = await do_open_emergency(session, ADMIN, source="manual", level=4, title="演练")
    await commit(session)
    with pytest.raises(InvalidInput):
        await do_cancel_emergency(session, supervisor, other, " ")
    await rollback(session, supervisor, other)
    await do_cancel_emergency(session, supervisor, other, "消防演练，非真实事件")
    await commit(session)
    assert other.status == "cancelled" and other.next_due_at is None
    assert (await _audit("emergency.cancel"))[0].changes["after"]["reason"] == "消防演练，非真实事件"


@pytest.mark.parametrize(("said", "level"), [
    ("厨房里煤气味很大", 1), ("家里闻到燃气味", 1), ("楼道有股煤气味", 1), ("小区门口管道着火了", 1),
    ("老人闻了之后头晕", 1), ("路边燃气管道好像漏气", 2), ("燃气泄漏", 2), ("", 2)])
def test_leak_level_from_the_report(said: str, level: int) -> None:
    assert leak_level(said) == level


async def test_gas_leak_report_opens_an_emergency_and_keeps_the_desk_alert(session) -> None:
    clock.set_now(T0)
    lead = await staff_user(session, "dispatcher")
    agent = await staff_user(session, "agent")
    await do_add_duty(session, ADMIN, user_id=lead.id, duty_role="shift_lead", starts_at=T0 - timedelta(hours=1),
                      ends_at=T0 + timedelta(hours=1))
    await commit(session)
    conversation = await bot_conversation(session)
    ticket = await do_report_gas_leak(session, ADMIN, conversation_id=conversation.id, channel="webchat",
                                      customer_id=None, title="燃气泄漏", description="厨房里煤气味很大，电话13800138000",
                                      district="和平区")
    await commit(session)
    event = await session.scalar(select(EmergencyEvent).where(EmergencyEvent.ticket_id == ticket.id))
    assert event is not None and event.level == 1 and event.source == "gas_leak"
    assert event.title == f"燃气泄漏 {ticket.number} · 和平区"
    assert "13800138000" not in event.description  # redacted: the ticket holds the contact
    # Ⅰ级 built-in path: 值班长 and 抢修调度 at once (the lead is 值班长), by app and SMS; phone unavailable
    rows = list(await session.scalars(select(EmergencyNotification).where(EmergencyNotification.event_id == event.id)))
    assert {(r.user_id, r.channel, r.status) for r in rows} == {
        (lead.id, "in_app", "sent"), (lead.id, "sms", "no_contact"), (lead.id, "phone", "unavailable")}
    # the desk-wide leak alert is unchanged (agents see it too)
    kinds = {(r[0], r[1]) for r in (await session.execute(text("SELECT user_id, kind FROM notifications"))).all()}
    assert (agent.id, "emergency.gas_leak") in kinds and (lead.id, "emergency.escalation") in kinds


class _Socket:
    application_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def send_text(self, data: str) -> None:
        self.frames.append(json.loads(data))


async def test_board_frames_reach_the_people_who_run_emergencies_only(session) -> None:
    hub = get_hub()
    conns = {}
    for role in ("supervisor", "dispatcher", "admin", "agent", "field_crew"):
        user = await staff_user(session, role)
        conns[role] = Connection(_Socket(), kind="notify", user_id=user.id, role=role)  # type: ignore[arg-type]
        assert hub.add_notify(conns[role])
    try:
        event = await do_open_emergency(session, ADMIN, source="outage", level=2, title="东区主管网停气")
        await commit(session)
        for _ in range(50):
            if all(c.websocket.frames for r, c in conns.items() if r in ("supervisor", "dispatcher", "admin")):  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        for role, conn in conns.items():
            frames = [f for f in conn.websocket.frames if f["type"] == "emergency"]  # type: ignore[attr-defined]
            if role in ("supervisor", "dispatcher", "admin"):
                assert frames == [{"type": "emergency", "event_id": event.id, "level": 2, "status": "escalating",
                                   "seq": 1}]
            else:
                assert frames == []
    finally:
        for conn in conns.values():
            hub.remove(conn)
