"""The ticket state machine: every (status × action) pair, role rules, notes, assignees, and the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.auth.models import User
from gasdesk.db import commit, rollback
from gasdesk.errors import InvalidInput, PermissionDenied
from gasdesk.notifications.models import Notification
from gasdesk.tickets.lifecycle import ACTION_LABELS, TRANSITIONS, InvalidTicketTransition, allowed_actions
from gasdesk.tickets.models import STATUS_LABELS, Ticket, TicketStatus
from gasdesk.tickets.service import check_may_act, do_ticket_action
from tests.factories import (
    staff_user,
    wo_actor,
    wo_audit_rows,
    wo_headers,
    wo_reload,
    wo_ticket,
    wo_ticket_events,
)

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
STATUSES = [s.value for s in TicketStatus]
ACTIONS = list(TRANSITIONS)
MATRIX = [(s, a) for s in STATUSES for a in ACTIONS]
ALLOWED = [(s, a) for s, a in MATRIX if TicketStatus(s) in TRANSITIONS[a]]
FORBIDDEN = [(s, a) for s, a in MATRIX if TicketStatus(s) not in TRANSITIONS[a]]


def test_the_matrix_is_the_documented_one() -> None:
    expected = {
        ("new", "assign"), ("assigned", "assign"), ("in_progress", "assign"), ("reopened", "assign"),
        ("assigned", "start"), ("assigned", "resolve"), ("in_progress", "resolve"), ("resolved", "close"),
        ("resolved", "reopen"), ("closed", "reopen"),
        ("new", "cancel"), ("assigned", "cancel"), ("in_progress", "cancel"), ("reopened", "cancel"),
    }
    assert set(ALLOWED) == expected
    assert len(MATRIX) == 42 and len(FORBIDDEN) == 28
    assert allowed_actions("cancelled") == [] and allowed_actions("closed") == ["reopen"]


@pytest.fixture
async def crew(session) -> User:
    return await staff_user(session, "field_crew", display_name="维修一班李师傅")


@pytest.fixture
async def dispatcher(session) -> User:
    return await staff_user(session, "dispatcher")


@pytest.mark.parametrize(("status", "action"), ALLOWED, ids=[f"{s}-{a}" for s, a in ALLOWED])
async def test_allowed_transition(session, events, crew, dispatcher, status: str, action: str) -> None:
    ticket = await wo_ticket(session, "repair", status=status, crew_id=crew.id)
    events.clear()
    before_events = len(await wo_ticket_events(ticket.id))
    clock.set_now(T0 + timedelta(hours=1))
    note = "居民要求" if action in ("cancel", "reopen") else ("请尽快处理" if action == "assign" else "")
    actor = wo_actor(dispatcher, "api")
    await do_ticket_action(session, actor, ticket, action, note=note,
                           crew_id=crew.id if action == "assign" else None)
    await commit(session)

    target = TRANSITIONS[action][TicketStatus(status)].value
    stored = await wo_reload(Ticket, ticket.id)
    assert stored.status == target
    history = await wo_ticket_events(ticket.id)
    assert len(history) == before_events + 1
    last = history[-1]
    assert (last.action, last.from_status, last.to_status) == (action, status, target)
    assert last.actor_id == dispatcher.id and last.actor_name == dispatcher.username
    assert last.at == T0 + timedelta(hours=1)
    assert last.note == (note or None)
    audit = await wo_audit_rows(session, "ticket", ticket.id, f"ticket.{action}")
    assert audit and audit[-1].actor_id == dispatcher.id and audit[-1].source == "api"
    if status != target:
        assert audit[-1].changes["before"]["status"] == status
        assert audit[-1].changes["after"]["status"] == target
    updated = [e for e in events if e.type == "ticket.updated"]
    assert [e.payload["ticket_id"] for e in updated] == [ticket.id]
    assert updated[0].payload["status"] == target
    if action == "resolve":
        assert stored.resolved_at == T0 + timedelta(hours=1)
    if action == "close":
        assert stored.closed_at == T0 + timedelta(hours=1)
    if action == "reopen":
        assert stored.reopen_count == 1 and stored.resolved_at is None and stored.closed_at is None
    if action == "assign":
        assert stored.crew_id == crew.id
        note_rows = list(await session.scalars(select(Notification).where(Notification.user_id == crew.id,
                                                                           Notification.kind == "ticket.assigned")))
        assert note_rows


@pytest.mark.parametrize(("status", "action"), FORBIDDEN, ids=[f"{s}-{a}" for s, a in FORBIDDEN])
async def test_forbidden_transition(session, events, crew, status: str, action: str) -> None:
    ticket = await wo_ticket(session, "repair", status=status, crew_id=crew.id)
    tid = ticket.id
    events.clear()
    before = await wo_reload(Ticket, tid)
    history = await wo_ticket_events(ticket.id)
    audits = await wo_audit_rows(session, "ticket", ticket.id)
    with pytest.raises(InvalidTicketTransition) as err:
        await do_ticket_action(session, wo_actor(), ticket, action, note="原因",
                               crew_id=crew.id if action == "assign" else None)
    await rollback(session)
    message = err.value.message
    assert STATUS_LABELS[TicketStatus(status)] in message and ACTION_LABELS[action] in message
    assert err.value.code == "invalid_transition" and err.value.status_code == 409
    after = await wo_reload(Ticket, tid)
    assert (after.status, after.crew_id, after.updated_at) == (before.status, before.crew_id, before.updated_at)
    assert len(await wo_ticket_events(tid)) == len(history)
    assert len(await wo_audit_rows(session, "ticket", tid)) == len(audits)
    assert events == []


def test_unknown_action_is_refused_in_chinese() -> None:
    from gasdesk.tickets.lifecycle import next_status

    with pytest.raises(InvalidTicketTransition, match="未知的工单操作"):
        next_status("new", "teleport")


# ---------------------------------------------------------------- role rules


def _user(role: str, uid: int) -> User:
    return User(id=uid, username=f"u{uid}", role=role, display_name="x", is_active=True)


ROLE_CASES = [
    ("field_crew", True, {"start", "resolve"}),
    ("field_crew", False, set()),
    ("agent", True, {"close", "reopen", "cancel"}),
    ("dispatcher", False, set(ACTIONS)),
    ("supervisor", False, set(ACTIONS)),
    ("admin", False, set(ACTIONS)),
]


@pytest.mark.parametrize(("role", "own", "may"), ROLE_CASES)
def test_check_may_act(role: str, own: bool, may: set[str]) -> None:
    user = _user(role, 7)
    ticket = Ticket(crew_id=7 if own else 8, status="assigned")
    for action in ACTIONS:
        if action in may:
            check_may_act(user, ticket, action)
        else:
            with pytest.raises(PermissionDenied):
                check_may_act(user, ticket, action)


async def test_crew_starts_and_resolves_own_ticket_but_not_anothers(session, crew) -> None:
    other = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, status="assigned", crew_id=crew.id)
    with pytest.raises(PermissionDenied) as err:
        await do_ticket_action(session, wo_actor(other), ticket, "start", user=other)
    assert err.value.code == "ticket_not_yours"
    await do_ticket_action(session, wo_actor(crew), ticket, "start", user=crew)
    await do_ticket_action(session, wo_actor(crew), ticket, "resolve", user=crew)
    await commit(session)
    assert (await wo_reload(Ticket, ticket.id)).status == "resolved"
    with pytest.raises(PermissionDenied) as err:
        await do_ticket_action(session, wo_actor(crew), ticket, "close", user=crew)
    assert err.value.code == "forbidden_action"


@pytest.mark.parametrize("action", ["cancel", "reopen"])
@pytest.mark.parametrize("note", ["", "   "])
async def test_cancel_and_reopen_need_a_note(session, events, crew, action: str, note: str) -> None:
    ticket = await wo_ticket(session, status="resolved" if action == "reopen" else "assigned", crew_id=crew.id)
    status, tid = ticket.status, ticket.id
    events.clear()
    with pytest.raises(InvalidInput) as err:
        await do_ticket_action(session, wo_actor(), ticket, action, note=note)
    assert err.value.code == "note_required" and "原因" in err.value.message
    await rollback(session)
    assert (await wo_reload(Ticket, tid)).status == status
    assert events == []


async def test_assign_needs_an_assignee_of_the_right_role(session, crew) -> None:
    agent = await staff_user(session, "agent")
    inactive = await staff_user(session, "field_crew")
    inactive.is_active = False
    await commit(session)
    ticket = await wo_ticket(session)
    tid, agent_id = ticket.id, agent.id
    cases = [({}, "assignee_required"), ({"crew_id": agent.id}, "invalid_assignee"),
             ({"handler_id": crew.id}, "invalid_assignee"), ({"crew_id": inactive.id}, "invalid_assignee"),
             ({"crew_id": 999999}, "invalid_assignee")]
    for kwargs, code in cases:
        with pytest.raises(InvalidInput) as err:
            await do_ticket_action(session, wo_actor(), ticket, "assign", **kwargs)
        assert err.value.code == code, kwargs
        await rollback(session)
        stored = await wo_reload(Ticket, tid)
        assert (stored.status, stored.crew_id) == ("new", None)
    ticket = await session.get(Ticket, tid, populate_existing=True)
    await session.refresh(ticket, ["events"])
    await do_ticket_action(session, wo_actor(), ticket, "assign", handler_id=agent_id)
    await commit(session)
    stored = await wo_reload(Ticket, tid)
    assert (stored.status, stored.handler_id) == ("assigned", agent_id)


# ---------------------------------------------------------------- REST API


async def test_api_actions_walk_and_errors(client, factory, session, events, crew, dispatcher) -> None:
    agent = await staff_user(session, "agent")
    other_crew = await staff_user(session, "field_crew")
    h_disp, h_agent = await wo_headers(factory, dispatcher), await wo_headers(factory, agent)
    h_crew, h_other = await wo_headers(factory, crew), await wo_headers(factory, other_crew)
    ticket = await wo_ticket(session)
    url = f"/api/v1/tickets/{ticket.id}/actions"

    r = await client.post(url, json={"action": "assign", "crew_id": crew.id}, headers=h_agent)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_action"
    r = await client.post(url, json={"action": "close"}, headers=h_disp)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
    assert "新建" in r.json()["error"]["message"]
    r = await client.post(url, json={"crew_id": crew.id}, headers=h_disp)
    assert r.status_code == 422
    r = await client.post(url, json={"action": "assign", "crew_id": agent.id}, headers=h_disp)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_assignee"
    r = await client.post(url, json={"action": "assign", "crew_id": crew.id, "note": "派给李师傅"}, headers=h_disp)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "assigned" and body["crew_id"] == crew.id and body["crew"] == "维修一班李师傅"
    assert body["events"][-1]["action"] == "assign" and body["events"][-1]["actor"] == dispatcher.username
    assert set(body["actions"]) == {"assign", "start", "resolve", "cancel"}

    r = await client.post(url, json={"action": "start"}, headers=h_other)
    assert r.status_code == 403 and r.json()["error"]["code"] == "ticket_not_yours"
    r = await client.post(url, json={"action": "start"}, headers=h_crew)
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    r = await client.post(url, json={"action": "resolve"}, headers=h_crew)
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    r = await client.post(url, json={"action": "reopen"}, headers=h_agent)
    assert r.status_code == 422 and r.json()["error"]["code"] == "note_required"
    r = await client.post(url, json={"action": "reopen", "note": "居民说还是有异味"}, headers=h_agent)
    assert r.status_code == 200 and r.json()["status"] == "reopened" and r.json()["reopen_count"] == 1
    r = await client.post(url, json={"action": "cancel", "note": "重复工单"}, headers=h_agent)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await client.post(url, json={"action": "reopen", "note": "x"}, headers=h_agent)
    assert r.status_code == 409

    stored = await wo_reload(Ticket, ticket.id)
    assert stored.status == "cancelled"
    history = [(e.action, e.from_status, e.to_status) for e in await wo_ticket_events(ticket.id)]
    assert history == [("create", None, "new"), ("assign", "new", "assigned"), ("start", "assigned", "in_progress"),
                       ("resolve", "in_progress", "resolved"), ("reopen", "resolved", "reopened"),
                       ("cancel", "reopened", "cancelled")]
    assert [e.payload["status"] for e in events if e.type == "ticket.updated"] == [
        "assigned", "in_progress", "resolved", "reopened", "cancelled"]
    r = await client.post("/api/v1/tickets/999999/actions", json={"action": "start"}, headers=h_disp)
    assert r.status_code == 404
    r = await client.post(url, json={"action": "start"})
    assert r.status_code == 401


async def test_api_unknown_action_is_422(client, factory, session, dispatcher) -> None:
    ticket = await wo_ticket(session)
    r = await client.post(f"/api/v1/tickets/{ticket.id}/actions", json={"action": "teleport"},
                          headers=await wo_headers(factory, dispatcher))
    assert r.status_code == 422
