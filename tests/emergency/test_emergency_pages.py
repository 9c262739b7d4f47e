"""The emergency board, an event's page (the bell's link), the admin pages and the REST API, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.db import commit, transaction
from gasdesk.emergency.models import DutyAssignment, EmergencyEvent, EmergencyPolicy
from gasdesk.emergency.service import do_add_duty, do_open_emergency, do_save_policy, do_save_staff_contact
from tests.factories import login, staff_user, wo_headers

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
ADMIN = Actor.system("test-admin", "test")
HTML = {"Accept": "text/html"}


async def _event_for(session, user) -> int:
    """A level-Ⅲ event whose first step (抢修调度 on duty: ``user``) notified ``user`` by app and SMS."""
    clock.set_now(T0)
    await do_save_policy(session, ADMIN, 3, [{"duty_roles": ["repair_dispatch"], "channels": ["in_app", "sms"],
                                              "timeout_min": 15}])
    await do_add_duty(session, ADMIN, user_id=user.id, duty_role="repair_dispatch", starts_at=T0 - timedelta(hours=1),
                      ends_at=T0 + timedelta(hours=1))
    await do_save_staff_contact(session, ADMIN, user_id=user.id, mobile="13800138077", wechat_openid="")
    event = await do_open_emergency(session, ADMIN, source="manual", level=3, title="阀门井冒气",
                                    description="东区阀门井冒气")
    await commit(session)
    return event.id


async def test_board_shows_who_was_notified_and_a_notified_agent_acknowledges(client, session) -> None:
    agent = await staff_user(session, "agent", display_name="王抢修")
    bystander = await staff_user(session, "agent")
    supervisor = await staff_user(session, "supervisor")
    event_id = await _event_for(session, agent)

    await login(client, supervisor.username)
    board = await client.get("/emergency", headers=HTML)
    assert board.status_code == 200
    assert "阀门井冒气" in board.text and "王抢修" in board.text and "抢修调度" in board.text
    assert "站内通知" in board.text and "短信" in board.text and "13800138077" not in board.text
    # every form on the board (its cards come from an imported macro) carries the session's CSRF token
    assert 'name="csrf_token" value=""' not in board.text
    assert board.text.count('name="csrf_token"') >= 3
    fragment = await client.get("/emergency/board", headers=HTML)
    assert 'name="csrf_token" value=""' not in fragment.text and "阀门井冒气" in fragment.text
    api = (await client.get("/api/v1/emergency/events")).json()
    assert [e["id"] for e in api] == [event_id]
    assert [(n["channel"], n["status"], n["delivery"]) for n in api[0]["notifications"]] == [
        ("in_app", "sent", None), ("sms", "queued", "queued")]

    # the agent on duty opens the bell's link and acknowledges; someone never told may not even look
    await client.post("/logout")
    await login(client, bystander.username)
    assert (await client.get(f"/emergency/{event_id}", headers=HTML)).status_code == 403
    assert (await client.get("/emergency", headers=HTML)).status_code == 403
    await client.post("/logout")
    await login(client, agent.username)
    page = await client.get(f"/emergency/{event_id}", headers=HTML)
    assert page.status_code == 200 and "确认接手" in page.text and "关闭事件" not in page.text
    clock.set_now(T0 + timedelta(minutes=3))
    done = await client.post(f"/emergency/{event_id}/acknowledge", data={"back": "detail"}, headers=HTML)
    assert done.status_code == 303 and done.headers["location"] == f"/emergency/{event_id}"
    async with transaction() as s:
        event = await s.get(EmergencyEvent, event_id)
        assert event is not None and event.status == "acknowledged" and event.acknowledged_by_id == agent.id
        assert event.acknowledged_via == "notification"
    page = await client.get(f"/emergency/{event_id}", headers=HTML)
    assert "已确认" in page.text and "确认接手" not in page.text and "开启后 3 分 0 秒" in page.text
    again = await client.post(f"/emergency/{event_id}/acknowledge", data={}, headers=HTML)
    assert again.status_code == 409 and "当前为“已确认”，不能确认" in again.text


async def test_declare_close_and_cancel_from_the_board(client, session) -> None:
    clock.set_now(T0)
    dispatcher = await staff_user(session, "dispatcher")
    await login(client, dispatcher.username)
    missing = await client.post("/emergency", data={"level": "2", "title": " ", "description": ""}, headers=HTML)
    assert missing.status_code == 422 and "请填写事件标题" in missing.text
    declared = await client.post("/emergency", data={"level": "1", "title": "高压管线泄漏", "description": "现场封锁"},
                                 headers=HTML)
    assert declared.status_code == 303
    event_id = int(declared.headers["location"].rsplit("/", 1)[1])
    async with transaction() as s:
        event = await s.get(EmergencyEvent, event_id)
        assert event is not None and event.level == 1 and event.source == "manual"
        assert event.opened_by_id == dispatcher.id and event.status == "escalating"

    early = await client.post(f"/emergency/{event_id}/close", data={"summary": "关阀抢修完毕"}, headers=HTML)
    assert early.status_code == 409 and "不能关闭" in early.text  # not acknowledged yet
    await client.post(f"/emergency/{event_id}/acknowledge", data={"back": "board"}, headers=HTML)
    short = await client.post(f"/emergency/{event_id}/close", data={"summary": "好"}, headers=HTML)
    assert short.status_code == 422 and "处置总结" in short.text
    closed = await client.post(f"/emergency/{event_id}/close", data={"summary": "关阀抢修完毕", "back": "board"},
                               headers=HTML)
    assert closed.status_code == 303 and closed.headers["location"] == "/emergency"
    board = await client.get("/emergency", headers=HTML)
    assert "已关闭" in board.text and "关阀抢修完毕" in board.text

    # the REST API: declare, then cancel as a false alarm
    created = await client.post("/api/v1/emergency/events", json={"level": 4, "title": "用户误报"})
    assert created.status_code == 201 and created.json()["status"] == "escalating"
    cancelled = await client.post(f"/api/v1/emergency/events/{created.json()['id']}/cancel", json={"reason": "误报"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "误报"
    bad = await client.post("/api/v1/emergency/events", json={"level": 9, "title": "x"})
    assert bad.status_code == 422 and "level" in bad.text


async def test_admin_edits_paths_and_the_duty_list(client, session) -> None:
    clock.set_now(datetime(2026, 12, 7, 1, 0, tzinfo=UTC))
    admin = await staff_user(session, "admin")
    crew = await staff_user(session, "dispatcher", display_name="李调度")
    await login(client, admin.username)
    page = await client.get("/admin/emergency", headers=HTML)
    assert page.status_code == 200 and "Ⅰ级（特别重大）" in page.text and "内置默认" in page.text
    saved = await client.post("/admin/emergency", headers=HTML, data={
        "level": "2", "s1_users": str(crew.id), "s1_channels": ["in_app", "sms"], "s1_timeout": "4",
        "s2_duty": ["shift_lead", "safety_lead"], "s2_channels": "in_app", "s2_timeout": "6", "s2_next": "1"})
    assert saved.status_code == 303
    async with transaction() as s:
        row = await s.scalar(select(EmergencyPolicy).where(EmergencyPolicy.level == 2))
    assert row is not None and row.version == 1 and row.steps == [
        {"users": [crew.id], "duty_roles": [], "channels": ["in_app", "sms"], "timeout_min": 4, "next_step": 2},
        {"users": [], "duty_roles": ["shift_lead", "safety_lead"], "channels": ["in_app"], "timeout_min": 6,
         "next_step": 1}]
    wrong = await client.post("/admin/emergency", headers=HTML, data={"level": "2", "s1_duty": "shift_lead",
                                                                      "s1_timeout": "5"})
    assert wrong.status_code == 422 and "通知渠道" in wrong.text
    api = (await client.get("/api/v1/emergency/policies")).json()
    assert [p["version"] for p in api] == [0, 1, 0, 0]
    put = await client.put("/api/v1/emergency/policies/4", json={"steps": [
        {"duty_roles": ["shift_lead"], "channels": ["wechat"], "timeout_min": 9}]})
    assert put.status_code == 200 and put.json()["version"] == 1 and put.json()["steps"][0]["next_step"] is None

    # the duty list: local (Asia/Shanghai) wall times from the form, stored in UTC
    added = await client.post("/admin/duty", headers=HTML, data={
        "user_id": str(crew.id), "duty_role": "shift_lead", "starts_at": "2026-12-07T08:00",
        "ends_at": "2026-12-07T20:00"})
    assert added.status_code == 303
    async with transaction() as s:
        duty = await s.scalar(select(DutyAssignment))
    assert duty is not None and duty.starts_at == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    assert duty.ends_at == datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    listed = await client.get("/admin/duty", headers=HTML)
    assert "李调度" in listed.text and "在班" in listed.text
    backwards = await client.post("/admin/duty", headers=HTML, data={
        "user_id": str(crew.id), "duty_role": "shift_lead", "starts_at": "2026-12-07T20:00",
        "ends_at": "2026-12-07T08:00"})
    assert backwards.status_code == 422 and "结束时间必须晚于开始时间" in backwards.text
    contact = await client.post(f"/admin/duty/contacts/{crew.id}", headers=HTML,
                                data={"mobile": "13900139000", "wechat_openid": ""})
    assert contact.status_code == 303
    listed = await client.get("/admin/duty", headers=HTML)
    assert "139****9000" in listed.text and "13900139000" not in listed.text
    duty_api = (await client.get("/api/v1/emergency/duty")).json()
    assert [(d["user_name"], d["duty_role_label"], d["on_duty_now"]) for d in duty_api] == [("李调度", "值班长", True)]
    removed = await client.post(f"/admin/duty/{duty.id}/delete", headers=HTML)
    assert removed.status_code == 303
    assert (await client.get("/api/v1/emergency/duty")).json() == []


async def test_api_roles(client, factory, session) -> None:
    agent = await staff_user(session, "agent")
    event_id = await _event_for(session, await staff_user(session, "dispatcher"))
    headers = await wo_headers(factory, agent)
    assert (await client.get("/api/v1/emergency/events", headers=headers)).status_code == 403
    assert (await client.get(f"/api/v1/emergency/events/{event_id}", headers=headers)).status_code == 403
    refused = await client.post(f"/api/v1/emergency/events/{event_id}/acknowledge", headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "emergency_not_notified"
    dispatcher_headers = await factory.headers("dispatcher")
    assert (await client.put("/api/v1/emergency/policies/1", headers=dispatcher_headers,
                             json={"steps": []})).status_code == 403
