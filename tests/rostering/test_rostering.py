"""Rostering: the forecast from the analytics roll-ups, a generated month checked by an independent checker,
manual edits warned in Chinese (and saved), publishing (notifications, event, audit) and the emergency duty
lookup reading the published roster, and who may do what."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from gasdesk import clock
from gasdesk.analytics.facts import FactIn, write_facts
from gasdesk.analytics.rollup import rollup
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.db import commit, transaction
from gasdesk.emergency.models import EmergencyNotification
from gasdesk.emergency.service import do_add_duty, do_open_emergency, on_duty
from gasdesk.notifications.models import Notification
from gasdesk.rostering import service
from gasdesk.rostering.models import RosterAssignment, RosterStatus, ShiftTemplate
from gasdesk.rostering.schemas import LeaveIn, PreferenceIn, RulesIn, ShiftIn
from gasdesk.rostering.solver import Solution
from gasdesk.routing.models import AgentSkill
from tests.factories import staff_user
from tests.rostering.checker import hard_violations

ACTOR = Actor.system("roster-test", "test")
SHANGHAI = timedelta(hours=8)
FEB = date(2027, 2, 1)  # 28 days, starting on a Monday
NOW = datetime(2027, 1, 20, 2, 0, tzinfo=UTC)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - SHANGHAI


async def _contacts(per_monday_9am: list[int], *, until: date) -> None:
    """Contacts on the Mondays 09:00–10:00 (local) of the whole weeks before ``until``, most recent last."""
    facts = []
    weeks = len(per_monday_9am)
    for i, n in enumerate(per_monday_9am):
        monday = until - timedelta(days=7 * (weeks - i))
        monday += timedelta(days=(7 - monday.weekday()) % 7)
        facts += [FactIn("contact.started", local(monday, 9, 1 + k), f"c:{monday}:{k}") for k in range(n)]
    async with transaction() as s:
        await write_facts(s, facts)
    async with transaction() as s:
        await rollup(s)


async def _shifts(session) -> dict[str, ShiftTemplate]:
    return {s.code: s for s in await service.shift_templates(session)}


async def test_forecast_is_the_weekday_half_hour_mean_scaled_by_the_ratio(session) -> None:
    clock.set_now(NOW)
    await _contacts([8, 4], until=NOW.date())
    await service.do_save_rules(session, ACTOR, RulesIn(history_weeks=2, agents_per_contact=0.5))
    await commit(session)
    rules = await service.current_rules(session)
    contacts, agents = await service.forecast_for(session, rules, FEB)
    # (8 + 4) / 2 weeks = 6 an hour → 3 per half hour → ⌈3 × 0.5⌉ = 2 agents
    assert contacts[0][18] == contacts[0][19] == 3.0 and agents[0][18] == agents[0][19] == 2
    assert sum(map(sum, contacts)) == 6.0 and agents[1] == [0] * 48
    problem = await service.build_problem(session, FEB)
    assert problem.demand[date(2027, 2, 8)][18] == 2 and problem.demand[date(2027, 2, 9)][18] == 0


async def _team(session) -> dict[str, object]:
    """Six agents (two with the 投诉 skill the night shift needs here, one on leave a week), two supervisors for
    值班, a wish, and rules tight enough to matter."""
    shifts = await _shifts(session)
    night = shifts["night"]
    await service.do_save_shift(
        session,
        ACTOR,
        ShiftIn(
            code="night",
            name="夜班",
            start="22:00",
            hours=10,
            night=True,
            skill_ids=[1],
            roles=["agent", "supervisor"],
        ),
        night.id,
    )
    agents = [await staff_user(session, "agent", display_name=f"排班坐席{i}") for i in range(6)]
    bosses = [await staff_user(session, "supervisor", display_name=f"排班班长{i}") for i in range(2)]
    for user in agents[:3]:
        session.add(AgentSkill(user_id=user.id, skill_group_id=1))
    await service.do_add_leave(
        session, ACTOR, LeaveIn(user_id=agents[0].id, start_day=date(2027, 2, 8), end_day=date(2027, 2, 14))
    )
    await service.do_add_preference(
        session, ACTOR, PreferenceIn(user_id=agents[1].id, kind="avoid", weekday=6)
    )
    await service.do_save_rules(
        session,
        ACTOR,
        RulesIn(
            agents_per_contact=0.5,
            min_rest_hours=12,
            max_consecutive_days=5,
            max_shifts_per_week=5,
            max_shifts_per_month=20,
            history_weeks=1,
        ),
    )
    await commit(session)
    return {"agents": agents, "bosses": bosses, "shifts": shifts}


async def test_a_generated_month_breaks_no_hard_rule(session) -> None:
    clock.set_now(NOW)
    await _contacts([12], until=NOW.date())
    team = await _team(session)
    roster = await service.generate_roster(session, ACTOR, FEB, time_limit_s=3)
    await commit(session)
    assert roster.status == RosterStatus.draft.value and roster.solve_status in ("OPTIMAL", "FEASIBLE")
    assert await hard_violations(session, roster.id) == []
    rows = await service.roster_assignments(session, roster)
    by_code = {s.id: s.code for s in team["shifts"].values()}
    # 值班 every day, by a supervisor; the Monday-morning demand met; nobody idle at 09:00 for nothing
    duty_days = {r.day for r in rows if by_code[r.shift_id] == "duty"}
    assert duty_days == set(service.month_days(FEB))
    assert {r.user_id for r in rows if by_code[r.shift_id] == "duty"} <= {u.id for u in team["bosses"]}
    assert roster.unmet_total == 0 and roster.objective is not None
    night_people = {r.user_id for r in rows if by_code[r.shift_id] == "night"}
    assert night_people <= {u.id for u in team["agents"][:3]} | {u.id for u in team["bosses"]}
    audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "roster.generate"))
    assert audit is not None and audit.entity_id == str(roster.id)


async def _draft(session, assignments: dict[tuple[int, date], int]) -> object:
    """A draft stored from hand-made assignments (no solver): the edits' tests need a known grid."""
    problem = await service.build_problem(session, FEB)
    solution = Solution(
        status="FEASIBLE", objective=0.0, seconds=0.0, assignments=assignments, unmet=[], staff_short=[]
    )
    roster = await service.do_store_roster(session, ACTOR, problem, solution)
    await commit(session)
    return roster


async def test_a_manual_edit_is_saved_with_its_violations_in_chinese(session) -> None:
    clock.set_now(NOW)
    team = await _team(session)
    shifts, a0, a3 = team["shifts"], team["agents"][0], team["agents"][3]
    roster = await _draft(session, {(a3.id, date(2027, 2, 1)): shifts["night"].id})
    # a3 has no 投诉 skill for the night shift here; then an early shift the morning after a night
    result = await service.do_edit_cell(session, ACTOR, roster, a3.id, date(2027, 2, 2), shifts["early"].id)
    await commit(session)
    messages = [v.message for v in result.violations]
    assert any("休息" in m and "少于 12 小时" in m for m in messages), messages
    assert any("不具备夜班所需的技能" in m for m in messages), messages
    assert result.assignment is not None and result.assignment.shift_id == shifts["early"].id
    # leave is warned, and the grid keeps the edit
    result = await service.do_edit_cell(session, ACTOR, roster, a0.id, date(2027, 2, 9), shifts["middle"].id)
    await commit(session)
    assert any(v.code == "leave" and "请假" in v.message for v in result.violations)
    stored = await session.scalar(select(RosterAssignment).where(RosterAssignment.user_id == a0.id))
    assert stored.day == date(2027, 2, 9)
    # six days in a row for a max of five
    for d in range(9, 15):
        result = await service.do_edit_cell(
            session, ACTOR, roster, a3.id, date(2027, 2, d), shifts["early"].id
        )
    assert any(v.code == "consecutive" for v in result.violations)
    assert any(v.code == "week" for v in result.violations)
    # back to a day off clears it
    result = await service.do_edit_cell(session, ACTOR, roster, a3.id, date(2027, 2, 14), None)
    assert not any(v.code == "consecutive" for v in result.violations)
    await commit(session)
    edits = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "roster.edit")))
    assert len(edits) == 9


async def test_publishing_notifies_and_the_emergency_reads_the_duty_shift(session, events) -> None:
    clock.set_now(NOW)
    team = await _team(session)
    shifts, (boss, other) = team["shifts"], team["bosses"]
    listed = await staff_user(session, "dispatcher", display_name="值班表上的人")
    await do_add_duty(
        session,
        ACTOR,
        user_id=listed.id,
        duty_role="shift_lead",
        starts_at=local(date(2027, 2, 3), 0),
        ends_at=local(date(2027, 2, 4), 0),
    )
    await commit(session)
    at = local(date(2027, 2, 3), 12)
    assert await on_duty(session, "shift_lead", at) == [listed.id]  # no roster: today's behaviour
    roster = await _draft(
        session,
        {
            (boss.id, date(2027, 2, 3)): shifts["duty"].id,
            (other.id, date(2027, 2, 4)): shifts["duty"].id,
            (team["agents"][1].id, date(2027, 2, 3)): shifts["early"].id,
        },
    )
    assert await on_duty(session, "shift_lead", at) == [listed.id]  # a draft changes nothing
    events.clear()
    await service.do_publish_roster(session, ACTOR, roster)
    await commit(session)
    assert [e.payload for e in events if e.type == "roster.published"] == [
        {"roster_id": roster.id, "month": "2027-02", "people": 3}
    ]
    notes = list(await session.scalars(select(Notification).where(Notification.kind == "roster.published")))
    assert sorted(n.user_id for n in notes) == sorted([boss.id, other.id, team["agents"][1].id])
    assert all("/roster/mine?month=2027-02" == n.link for n in notes)
    # the duty shift runs 08:00 to 08:00 the next day: the roster's person first, the duty list's after
    assert await on_duty(session, "shift_lead", at) == [boss.id, listed.id]
    assert await on_duty(session, "shift_lead", local(date(2027, 2, 4), 7, 30)) == [boss.id]
    assert await on_duty(session, "shift_lead", local(date(2027, 2, 4), 8, 30)) == [other.id]
    assert await on_duty(session, "repair_dispatch", at) == []  # a role the roster does not schedule
    clock.set_now(at)
    event = await do_open_emergency(session, ACTOR, source="manual", level=1, title="测试：某小区燃气泄漏")
    await commit(session)
    notified = list(
        await session.scalars(
            select(EmergencyNotification).where(
                EmergencyNotification.event_id == event.id, EmergencyNotification.duty_role == "shift_lead"
            )
        )
    )
    assert {n.user_id for n in notified} == {boss.id, listed.id}
    audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "roster.publish"))
    assert audit is not None and audit.changes["after"]["people"] == 3


async def test_a_second_publication_supersedes_the_first(session) -> None:
    clock.set_now(NOW)
    team = await _team(session)
    boss, other = team["bosses"]
    duty = team["shifts"]["duty"].id
    first = await _draft(session, {(boss.id, date(2027, 2, 3)): duty})
    await service.do_publish_roster(session, ACTOR, first)
    await commit(session)
    second = await _draft(session, {(other.id, date(2027, 2, 3)): duty})
    await service.do_publish_roster(session, ACTOR, second)
    await commit(session)
    assert first.status == RosterStatus.superseded.value
    assert await on_duty(session, "shift_lead", local(date(2027, 2, 3), 12)) == [other.id]


async def test_who_may_generate_publish_and_see_a_schedule(client, session, factory) -> None:
    clock.set_now(NOW)
    team = await _team(session)
    agent = team["agents"][1]
    roster = await _draft(
        session,
        {
            (agent.id, date(2027, 2, 2)): team["shifts"]["early"].id,
            (team["agents"][2].id, date(2027, 2, 2)): team["shifts"]["middle"].id,
        },
    )
    agent_headers = {"Authorization": f"Bearer {await factory.token(agent)}"}
    for method, url, body in [
        ("POST", "/api/v1/roster/generate", {"month": "2027-02", "time_limit_s": 1}),
        ("POST", f"/api/v1/roster/{roster.id}/publish", None),
        ("PUT", f"/api/v1/roster/{roster.id}/cells", {"user_id": agent.id, "day": "2027-02-03"}),
        ("GET", "/api/v1/roster/months/2027-02", None),
    ]:
        response = await client.request(method, url, json=body, headers=agent_headers)
        assert response.status_code == 403, (url, response.status_code)
    supervisor = {"Authorization": f"Bearer {await factory.token(team['bosses'][0])}"}
    response = await client.put(
        f"/api/v1/roster/{roster.id}/cells",
        headers=supervisor,
        json={"user_id": agent.id, "day": "2027-02-03", "shift_id": team["shifts"]["early"].id},
    )
    assert response.status_code == 200 and response.json()["violations"] == []
    response = await client.post(f"/api/v1/roster/{roster.id}/publish", headers=supervisor)
    assert response.status_code == 200 and response.json()["status"] == "published"
    # an agent sees their own shifts only
    mine = (await client.get("/api/v1/roster/mine?month=2027-02", headers=agent_headers)).json()
    assert [(s["day"], s["shift_code"]) for s in mine] == [("2027-02-02", "early"), ("2027-02-03", "early")]
    field = {"Authorization": f"Bearer {await factory.token(await factory.user('field_crew'))}"}
    assert (await client.get("/api/v1/roster/mine?month=2027-02", headers=field)).status_code == 403
