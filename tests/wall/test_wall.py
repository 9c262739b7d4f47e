"""The wall's snapshot against a state built with the real do_* functions, its thresholds (levels, checks,
audit), the kiosk role that sees only the wall, and the agent's own dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.analytics.ingest import drain
from gasdesk.analytics.rollup import rollup
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.conversations import service as conversations
from gasdesk.db import commit
from gasdesk.errors import InvalidInput
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.tickets.service import do_flag_sla
from gasdesk.wall.service import (
    DEFAULT_THRESHOLDS,
    Threshold,
    agent_dashboard,
    check_thresholds,
    do_set_thresholds,
    thresholds,
    wall_snapshot,
)
from tests.factories import (
    TEST_PASSWORD,
    bot_conversation,
    desk_agent,
    extra_client,
    login,
    queued_conversation,
    wo_ticket,
)

# 10:00 in Beijing: every seeded skill group is open.
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
ADMIN = Actor.system("wall-test", "test")
HTML = {"Accept": "text/html"}


def at(seconds_before: int) -> None:
    clock.set_now(NOW - timedelta(seconds=seconds_before))


async def _centre(factory, session) -> dict[str, object]:
    """A small centre: three residents waiting (two channels in 燃气业务, one emergency in 热力业务), a call being
    talked, agents in every state, tickets in and out of their SLA, two ratings and one bot-only chat today."""
    at(3600)
    await desk_agent(factory, groups=(1, 2, 3), presence="busy")  # staffed, takes nothing: residents wait
    away = await desk_agent(factory, groups=(1,), presence="away")
    await desk_agent(factory, groups=(1,), presence="offline")
    talker = await desk_agent(factory, groups=(4,), presence="online")
    # two conversations the talker closed today, rated 5 and 2
    rated = []
    for score in (5, 2):
        at(3000)
        conversation = await queued_conversation(session, group_id=4)  # offered to the talker at once
        await conversations.do_accept(session, talker, conversation)
        await commit(session)
        at(2400)
        await conversations.do_close(session, conversation, by="agent", user=talker)
        await conversations.do_rate(session, conversation, score)
        await commit(session)
        rated.append(conversation)
    at(2000)
    alone = await bot_conversation(session)  # the bot handled it alone
    at(1900)
    await conversations.do_close(session, alone, by="resident")
    await commit(session)
    at(300)
    await queued_conversation(session, group_id=1)
    at(100)
    await queued_conversation(session, group_id=1, channel="wechat")
    at(50)
    await queued_conversation(session, group_id=2, channel="sms", priority=conversations.EMERGENCY_PRIORITY)
    at(20)
    await queued_conversation(session, group_id=4, channel="voice")  # offered to the talker: a call, no queue
    clock.set_now(NOW)
    leak = await wo_ticket(session, "gas_leak")
    late = await wo_ticket(session, "repair")
    soon = await wo_ticket(session, "repair")
    done = await wo_ticket(session, "repair", status="closed", handler_id=talker.id)
    for ticket, state in ((late, "breached"), (soon, "at_risk")):
        await do_flag_sla(session, ticket, state, "resolve")
        await commit(session)
    # today's counters come from the analytics roll-ups: the facts are written, then rolled up as the job does
    await drain()
    await rollup(session)
    await commit(session)
    return {"talker": talker, "away": away, "leak": leak, "done": done, "rated": rated}


async def test_snapshot_shows_queue_agents_tickets_and_today(factory, session) -> None:
    await _centre(factory, session)
    snapshot = await wall_snapshot(session)

    queue = snapshot["queue"]
    assert queue["total"] == 3 and queue["level"] == "ok"
    assert {g["name"]: g["waiting"] for g in queue["by_group"]} == {"燃气业务": 2, "热力业务": 1, "缴费账单": 0,
                                                                    "投诉建议": 0}
    gas = next(g for g in queue["by_group"] if g["id"] == 1)
    assert gas["longest_wait_s"] == 300
    assert {c["label"]: c["waiting"] for c in queue["by_channel"]} == {"网页聊天": 1, "微信": 1, "短信": 1, "热线": 0}
    assert queue["longest_wait_s"] == 300 and queue["longest_wait_level"] == "red"  # > 180 s
    assert queue["oldest_queued_at"] == (NOW - timedelta(seconds=300)).isoformat()

    agents = snapshot["agents"]
    assert {p["label"]: p["count"] for p in agents["by_presence"]} == {"在线": 1, "忙碌": 1, "离开": 1, "离线": 1}
    assert agents["on_call"] == 1 and agents["total"] == 4

    tickets = snapshot["tickets"]
    assert tickets["emergencies"] == 1 and tickets["emergencies_level"] == "red"
    assert tickets["sla_breached"] == 1 and tickets["sla_breached_level"] == "red"
    assert tickets["sla_at_risk"] == 1 and tickets["sla_at_risk_level"] == "amber"

    today = snapshot["today"]
    # 2 rated + 1 bot-only + 3 waiting + 1 call = 7 contacts; 6 reached people; of the 3 closed, the bot
    # handled 1 alone
    assert today["contacts"] == 7
    assert today["transfer_rate"] == pytest.approx(100 * 6 / 7, abs=0.1)
    assert today["ai_rate"] == pytest.approx(100 * 1 / 3, abs=0.1)
    assert today["csat"] == 3.5 and today["csat_count"] == 2  # a 5 and a 2
    # quarter hours since local midnight (10:00 → 41 steps); the contacts sit in their own step
    assert len(today["trend"]) == 41 and today["trend"][0]["at"] == "00:00" and today["trend"][-1]["at"] == "10:00"
    assert sum(p["count"] for p in today["trend"]) == 7
    assert {p["at"]: p["count"] for p in today["trend"] if p["count"]} == {"09:00": 2, "09:15": 1, "09:45": 4}
    assert snapshot["thresholds"]["waiting"] == {"amber": 10, "red": 20}


async def test_snapshot_of_an_empty_centre(session) -> None:
    clock.set_now(NOW)
    snapshot = await wall_snapshot(session)
    assert snapshot["queue"]["total"] == 0 and snapshot["queue"]["longest_wait_s"] == 0
    assert snapshot["queue"]["oldest_queued_at"] is None and snapshot["queue"]["longest_wait_level"] == "ok"
    assert snapshot["today"]["contacts"] == 0 and snapshot["today"]["ai_rate"] is None
    assert snapshot["today"]["csat"] is None
    assert all(v == "ok" for k, v in snapshot["tickets"].items() if k.endswith("_level"))


def test_levels() -> None:
    waiting = DEFAULT_THRESHOLDS["waiting"]
    assert [waiting.level(n) for n in (0, 10, 11, 20, 21)] == ["ok", "ok", "amber", "amber", "red"]
    breached = DEFAULT_THRESHOLDS["sla_breached"]
    assert breached.level(0) == "ok" and breached.level(1) == "red"
    assert Threshold(None, None).level(10**6) == "ok" and waiting.level(None) == "ok"


@pytest.mark.parametrize("values, message", [
    ({"nope": {"amber": 1}}, "未知的大屏指标"),
    ({"waiting": {"amber": 20, "red": 10}}, "黄色阈值须小于红色阈值"),
    ({"waiting": {"amber": 10, "red": 10}}, "黄色阈值须小于红色阈值"),
    ({"waiting": {"amber": -1}}, "之间"),
    ({"waiting": {"red": 100_001}}, "之间"),
    ({"waiting": {"amber": "多"}}, "须为整数"),
    ({"waiting": {"amber": 1.5}}, "须为整数"),
    ({"waiting": {"amber": True}}, "须为整数"),
    ({"waiting": {"blue": 1}}, "格式不正确"),
    ({"waiting": 5}, "格式不正确"),
])
def test_bad_thresholds_are_refused_in_chinese(values, message) -> None:
    with pytest.raises(InvalidInput) as info:
        check_thresholds(values)
    assert message in info.value.message and info.value.code == "invalid_threshold"


async def test_new_thresholds_change_levels_and_are_audited(factory, session) -> None:
    clock.set_now(NOW - timedelta(seconds=30))
    await desk_agent(factory, groups=(1,), presence="busy")
    for _ in range(3):
        await queued_conversation(session, group_id=1)
    clock.set_now(NOW)
    assert (await wall_snapshot(session))["queue"]["level"] == "ok"

    await do_set_thresholds(session, ADMIN, {"waiting": {"amber": 1, "red": 2}, "longest_wait_s": {"amber": "10",
                                                                                                   "red": ""}})
    await commit(session)
    snapshot = await wall_snapshot(session)
    assert snapshot["queue"]["level"] == "red"
    assert snapshot["queue"]["longest_wait_level"] == "amber"  # 30 s > 10 s; no red any more
    assert snapshot["thresholds"]["longest_wait_s"] == {"amber": 10, "red": None}
    assert (await thresholds(session))["sla_breached"] == DEFAULT_THRESHOLDS["sla_breached"]  # untouched

    rows = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "config.wall_threshold")
                                      .order_by(AuditEntry.id)))
    assert [(r.entity_type, r.entity_id, r.changes) for r in rows] == [
        ("config", "wall_threshold:waiting", {"before": {"amber": 10, "red": 20}, "after": {"amber": 1, "red": 2}}),
        ("config", "wall_threshold:longest_wait_s", {"before": {"amber": 60, "red": 180},
                                                     "after": {"amber": 10, "red": None}}),
    ]
    # saving the same values again changes nothing and writes nothing
    await do_set_thresholds(session, ADMIN, {"waiting": {"amber": 1, "red": 2}})
    await commit(session)
    assert len(list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "config.wall_threshold")))) == 2


async def test_threshold_api_and_page(app, client, factory) -> None:
    admin = await factory.headers("admin")
    supervisor = await factory.headers("supervisor")
    response = await client.put("/api/v1/wall/thresholds", headers=admin,
                                json={"waiting": {"amber": 20, "red": 5}})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_threshold"
    response = await client.put("/api/v1/wall/thresholds", headers=admin, json={"waiting": {"amber": 5, "red": 15}})
    assert response.status_code == 200 and response.json()["waiting"] == {"amber": 5, "red": 15}
    assert (await client.put("/api/v1/wall/thresholds", headers=supervisor, json={})).status_code == 403
    got = await client.get("/api/v1/wall/thresholds", headers=supervisor)
    assert got.json()["waiting"] == {"amber": 5, "red": 15} and set(got.json()) == set(DEFAULT_THRESHOLDS)
    snapshot = await client.get("/api/v1/wall/snapshot", headers=supervisor)
    assert snapshot.status_code == 200 and snapshot.json()["thresholds"]["waiting"] == {"amber": 5, "red": 15}

    user = await factory.user("admin")
    async with extra_client(app) as page:
        await login(page, user.username)
        form = await page.get("/admin/wall", headers=HTML)
        assert form.status_code == 200 and "大屏阈值" in form.text and 'name="waiting.amber" ' in form.text
        bad = await page.post("/admin/wall", data={"waiting.amber": "9", "waiting.red": "3"}, headers=HTML)
        assert bad.status_code == 422 and "黄色阈值须小于红色阈值" in bad.text
        good = await page.post("/admin/wall", data={"waiting.amber": "3", "waiting.red": "9"}, headers=HTML)
        assert good.status_code == 303 and good.headers["location"] == "/admin/wall?saved=1"
        assert "阈值已保存" in (await page.get("/admin/wall?saved=1", headers=HTML)).text
    got = await client.get("/api/v1/wall/thresholds", headers=supervisor)
    # an empty field clears that threshold: the form sends every metric
    assert got.json()["waiting"] == {"amber": 3, "red": 9} and got.json()["sla_breached"] == {"amber": None,
                                                                                              "red": None}


async def test_kiosk_login_lands_on_the_wall_and_sees_nothing_else(app, factory) -> None:
    kiosk = await factory.user("wall")
    async with extra_client(app) as page:
        response = await page.post("/login", data={"username": kiosk.username, "password": TEST_PASSWORD,
                                                   "next": "/"})
        assert response.status_code == 303 and response.headers["location"] == "/wall"
        wall = await page.get("/wall", headers=HTML)
        assert wall.status_code == 200 and "实时大屏" in wall.text and 'id="wall-initial"' in wall.text
        assert "notify-bell" not in wall.text  # no bell: its socket is not for the kiosk
        for path in ("/agent", "/agent/dashboard", "/tickets", "/customers", "/admin/wall", "/notifications",
                     "/api/v1/auth/me", "/api/v1/tickets", "/api/v1/wall/thresholds"):
            assert (await page.get(path, headers=HTML)).status_code == 403, path
        assert (await page.get("/api/v1/wall/snapshot")).status_code == 200
        landing = await page.get("/", headers=HTML)
        assert landing.status_code == 200
        nav = landing.text.split('<nav aria-label="主导航" id="main-nav">', 1)[1].split("</nav>", 1)[0]
        assert 'href="/wall"' in nav and nav.count("href=") == 1
    for role in ("admin", "supervisor"):
        user = await factory.user(role)
        async with extra_client(app) as page:
            await page.post("/login", data={"username": user.username, "password": TEST_PASSWORD})
            assert (await page.get("/wall", headers=HTML)).status_code == 200, role
    for role in ("agent", "dispatcher", "field_crew"):
        user = await factory.user(role)
        async with extra_client(app) as page:
            await page.post("/login", data={"username": user.username, "password": TEST_PASSWORD})
            assert (await page.get("/wall", headers=HTML)).status_code == 403, role


async def test_agent_dashboard(app, factory, session) -> None:
    centre = await _centre(factory, session)
    talker = centre["talker"]
    # a 回访 answer on a ticket the talker handled
    clock.set_now(NOW)
    session.add(FollowUpSurvey(ticket_id=centre["done"].id, channel="sms", status="answered", due_at=NOW,
                               score=4, solved=True, answered_at=NOW))
    await commit(session)
    mine = await agent_dashboard(session, talker)
    assert mine["handled_today"] == 2 and mine["average_handle_s"] == 600  # accepted at -3000 s, closed at -2400 s
    assert mine["rating_count"] == 2 and mine["rating_average"] == 3.5
    assert mine["followup_count"] == 1 and mine["followup_average"] == 4.0
    assert mine["followups"][0]["ticket_number"] == centre["done"].number and mine["qa"] is None
    other = await agent_dashboard(session, centre["away"])
    assert other["handled_today"] == 0 and other["average_handle_s"] is None and other["followups"] == []

    async with extra_client(app) as page:
        await page.post("/login", data={"username": talker.username, "password": TEST_PASSWORD})
        html = (await page.get("/agent/dashboard", headers=HTML)).text
        assert '<strong id="handled-today">2</strong>' in html and "10 分 0 秒" in html
        assert "暂无质检结果" in html and centre["done"].number in html
        api = await page.get("/api/v1/agent/dashboard")
        assert api.status_code == 200 and api.json()["handled_today"] == 2
