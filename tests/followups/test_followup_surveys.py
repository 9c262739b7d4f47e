"""Follow-ups (回访): scheduling on resolve, sending into the resident's web chat, retries, answers,
what dissatisfaction triggers, and the outcomes report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gasdesk import clock, db
from gasdesk.conversations.models import Message
from gasdesk.conversations.pipeline import start_conversation
from gasdesk.db import commit
from gasdesk.errors import Conflict, GasdeskError
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.followups.service import dispatch_due, do_answer_followup
from gasdesk.tickets.models import Ticket
from tests.factories import staff_user, wo_headers, wo_reload, wo_ticket, wo_ticket_events

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def _resolved_from_chat(session, ticket_type: str = "repair", visitor_id: str = "v_followup1", **fields):
    """A ticket opened from a web chat, walked to resolved at T0."""
    crew = await staff_user(session, "field_crew")
    conversation = await start_conversation(session, channel="webchat", visitor_id=visitor_id)
    await commit(session)
    ticket = await wo_ticket(session, ticket_type, status="resolved", crew_id=crew.id, channel="webchat",
                             conversation_id=conversation.id, **fields)
    return ticket, conversation


async def _survey(session, ticket_id: int) -> FollowUpSurvey:
    async with db.sessionmaker()() as s:
        return await s.scalar(select(FollowUpSurvey).where(FollowUpSurvey.ticket_id == ticket_id)
                              .order_by(FollowUpSurvey.id.desc()))


async def _dispatch(session, minutes: float) -> dict[str, int]:
    clock.set_now(at(minutes))
    counts = await dispatch_due(session)
    await commit(session)
    return counts


async def _cards(conversation_id: int) -> list[Message]:
    async with db.sessionmaker()() as s:
        rows = await s.scalars(select(Message).where(Message.conversation_id == conversation_id,
                                                     Message.content_type == "card").order_by(Message.seq))
        return [m for m in rows if (m.payload or {}).get("card", {}).get("kind") == "followup"]


@pytest.mark.parametrize(("ticket_type", "delay"), [("repair", 60), ("no_gas", 30), ("complaint", 1440)])
async def test_resolve_schedules_a_survey_after_the_delay(session, ticket_type, delay) -> None:
    clock.set_now(T0)
    ticket, _ = await _resolved_from_chat(session, ticket_type)
    survey = await _survey(session, ticket.id)
    assert (survey.status, survey.due_at, survey.attempts, survey.channel) == ("scheduled", at(delay), 0, "webchat")
    assert survey.category == ticket_type


async def test_no_survey_for_disabled_policy(session) -> None:
    clock.set_now(T0)
    ticket, _ = await _resolved_from_chat(session, "consultation")
    assert await _survey(session, ticket.id) is None


async def test_dispatch_posts_a_card_then_retries_then_gives_up(session, events) -> None:
    clock.set_now(T0)
    ticket, conversation = await _resolved_from_chat(session, "repair")
    survey_id = (await _survey(session, ticket.id)).id
    assert await _dispatch(session, 59) == {"sent": 0, "unreachable": 0}
    assert await _dispatch(session, 60) == {"sent": 1, "unreachable": 0}
    survey = await _survey(session, ticket.id)
    assert (survey.status, survey.attempts, survey.last_sent_at) == ("sent", 1, at(60))
    assert survey.due_at == at(60 + 1440) and survey.conversation_id == conversation.id
    [card] = await _cards(conversation.id)
    assert card.sender_type == "bot" and ticket.number in card.text
    payload = card.payload["card"]
    assert payload["followup_id"] == survey_id and payload["ticket_number"] == ticket.number
    assert set(payload["questions"]) == {"score", "solved"}

    assert await _dispatch(session, 60 + 1439) == {"sent": 0, "unreachable": 0}
    assert await _dispatch(session, 60 + 1440) == {"sent": 1, "unreachable": 0}
    assert await _dispatch(session, 60 + 2 * 1440) == {"sent": 1, "unreachable": 0}
    survey = await _survey(session, ticket.id)
    assert survey.attempts == 3 and survey.status == "sent"
    cards = await _cards(conversation.id)
    assert len(cards) == 3 and all("提醒" in c.text for c in cards[1:])
    events.clear()
    assert await _dispatch(session, 60 + 3 * 1440) == {"sent": 0, "unreachable": 1}
    survey = await _survey(session, ticket.id)
    assert (survey.status, survey.outcome, survey.attempts) == ("unreachable", "unreachable", 3)
    assert [e.payload for e in events if e.type == "followup.unreachable"] == [
        {"followup_id": survey_id, "ticket_id": ticket.id}]
    assert await _dispatch(session, 60 + 10 * 1440) == {"sent": 0, "unreachable": 0}
    assert len(await _cards(conversation.id)) == 3


async def test_survey_is_cancelled_when_the_ticket_reopens_first(session) -> None:
    from gasdesk.tickets.service import do_ticket_action
    from tests.factories import wo_actor

    clock.set_now(T0)
    ticket, conversation = await _resolved_from_chat(session, "repair")
    await do_ticket_action(session, wo_actor(), ticket, "reopen", note="居民来电说仍有异味")
    await commit(session)
    assert await _dispatch(session, 60) == {"sent": 0, "unreachable": 0}
    assert (await _survey(session, ticket.id)).status == "cancelled"
    assert await _cards(conversation.id) == []


async def test_satisfied_answer_is_stored(session, events) -> None:
    clock.set_now(T0)
    ticket, _ = await _resolved_from_chat(session, "repair")
    await _dispatch(session, 60)
    survey = await _survey(session, ticket.id)
    events.clear()
    await do_answer_followup(session, survey.id, score=5, solved=True, comment="  师傅很专业  ")
    await commit(session)
    stored = await _survey(session, ticket.id)
    assert (stored.status, stored.score, stored.solved, stored.comment, stored.outcome) == (
        "answered", 5, True, "师傅很专业", "ok")
    assert stored.answered_at == at(60)
    assert (await wo_reload(Ticket, ticket.id)).status == "resolved"
    [done] = [e for e in events if e.type == "followup.completed"]
    assert done.payload == {"followup_id": survey.id, "ticket_id": ticket.id, "ticket_number": ticket.number,
                            "score": 5, "solved": True, "outcome": "ok"}
    with pytest.raises(Conflict) as err:
        await do_answer_followup(session, survey.id, score=4, solved=True)
    assert err.value.code == "already_answered"


@pytest.mark.parametrize(("score", "solved"), [(2, True), (1, False), (5, False)])
async def test_dissatisfied_answer_reopens_a_repair(session, score, solved) -> None:
    clock.set_now(T0)
    ticket, _ = await _resolved_from_chat(session, "repair")
    await _dispatch(session, 60)
    survey = await _survey(session, ticket.id)
    await do_answer_followup(session, survey.id, score=score, solved=solved, comment="还是打不着火")
    await commit(session)
    assert (await _survey(session, ticket.id)).outcome == "reopened"
    stored = await wo_reload(Ticket, ticket.id)
    assert stored.status == "reopened" and stored.reopen_count == 1
    last = (await wo_ticket_events(ticket.id))[-1]
    assert last.action == "reopen" and last.actor_name == "回访" and f"{score} 分" in last.note
    assert "还是打不着火" in last.note


async def test_score_three_and_solved_is_fine(session) -> None:
    clock.set_now(T0)
    ticket, _ = await _resolved_from_chat(session, "repair")
    await _dispatch(session, 60)
    await do_answer_followup(session, (await _survey(session, ticket.id)).id, score=3, solved=True)
    await commit(session)
    assert (await wo_reload(Ticket, ticket.id)).status == "resolved"


async def test_dissatisfied_complaint_opens_a_linked_complaint(session) -> None:
    clock.set_now(T0)
    customer_ticket, conversation = await _resolved_from_chat(session, "complaint", description="热线一直占线")
    await _dispatch(session, 1440)
    survey = await _survey(session, customer_ticket.id)
    await do_answer_followup(session, survey.id, score=1, solved=False, comment="根本没人管")
    await commit(session)
    assert (await _survey(session, customer_ticket.id)).outcome == "complaint_created"
    async with db.sessionmaker()() as s:
        child = await s.scalar(select(Ticket).where(Ticket.parent_ticket_id == customer_ticket.id))
    assert child is not None and child.type == "complaint" and child.team_id == 2
    assert customer_ticket.number in child.title and "根本没人管" in child.description
    assert child.conversation_id == conversation.id
    assert (await wo_reload(Ticket, customer_ticket.id)).status == "resolved"


async def test_answer_validation(session) -> None:
    clock.set_now(T0)
    ticket, _ = await _resolved_from_chat(session, "repair")
    await _dispatch(session, 60)
    survey = await _survey(session, ticket.id)
    for kwargs, code in [({"score": 0}, "invalid_score"), ({"score": 6}, "invalid_score"),
                         ({"score": 4, "visitor_id": "v_someone_else"}, "followup_not_found")]:
        with pytest.raises(GasdeskError) as err:
            async with db.transaction() as s:
                await do_answer_followup(s, survey.id, solved=True, **kwargs)
        assert err.value.code == code
    with pytest.raises(GasdeskError) as err:
        await do_answer_followup(session, 999999, score=4, solved=True)
    assert err.value.code == "followup_not_found"


async def test_outcomes_report(client, factory, session) -> None:
    clock.set_now(T0)
    answers = [("repair", 5, True, "v_r1"), ("repair", 2, False, "v_r2"), ("no_gas", 4, True, "v_n1")]
    for ticket_type, score, solved, visitor in answers:
        ticket, _ = await _resolved_from_chat(session, ticket_type, visitor_id=visitor)
        await _dispatch(session, 60)
        await do_answer_followup(session, (await _survey(session, ticket.id)).id, score=score, solved=solved)
        await commit(session)
        clock.set_now(T0)
    clock.set_now(at(120))
    headers = await wo_headers(factory, await staff_user(session, "supervisor"))
    r = await client.get("/api/v1/reports/followups", params={"days": 7}, headers=headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["answered"] == 3 and report["unreachable"] == 0
    assert report["trend"] == [{"day": "2026-12-07", "answered": 3, "avg_score": 3.67}]
    categories = {c["category"]: c for c in report["categories"]}
    keys = ("answered", "unsolved", "avg_score")
    assert {k: categories["repair"][k] for k in keys} == {"answered": 2, "unsolved": 1, "avg_score": 3.5}
    assert {k: categories["no_gas"][k] for k in keys} == {"answered": 1, "unsolved": 0, "avg_score": 4.0}
    r = await client.get("/api/v1/followups", params={"status": "answered"}, headers=headers)
    assert r.status_code == 200 and len(r.json()) == 3
    r = await client.get("/api/v1/reports/followups", headers=await wo_headers(
        factory, await staff_user(session, "agent")))
    assert r.status_code == 403


async def test_answer_over_the_webchat_socket(app, session) -> None:
    from tests.factories import ChatSocket, new_visitor, served

    async with served(app) as host:
        visitor = await new_visitor(host)
        ticket, conversation = await _resolved_from_chat(session, "repair", visitor_id=visitor["visitor_id"])
        counts = await dispatch_due(session, now=clock.utcnow() + timedelta(hours=2))
        await commit(session)
        assert counts["sent"] == 1
        survey = await _survey(session, ticket.id)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"], conversation_id=conversation.id)
            await ws.until("welcome")
            await ws.send(type="followup_answer", followup_id=survey.id, score=4, solved=True, comment="挺好")
            await ws.until(lambda f: f.get("type") == "message"
                           and (f["message"].get("payload") or {}).get("event") == "followup_answered")
            await ws.send(type="followup_answer", followup_id=survey.id, score=5, solved=True)
            error = await ws.until("error")
            assert error["code"] == "already_answered"
    stored = await _survey(session, ticket.id)
    assert (stored.score, stored.solved, stored.comment, stored.outcome) == (4, True, "挺好", "ok")


async def test_dissatisfied_answer_in_its_own_transaction(session) -> None:
    clock.set_now(T0)
    ticket, _ = await _resolved_from_chat(session, "repair")
    await _dispatch(session, 60)
    survey_id = (await _survey(session, ticket.id)).id
    async with db.transaction() as s:  # as the webchat socket does: nothing preloaded
        await do_answer_followup(s, survey_id, score=1, solved=False, comment="没修好")
    assert (await wo_reload(Ticket, ticket.id)).status == "reopened"


async def test_outcome_categories_have_only_documented_keys(session) -> None:
    from gasdesk.followups.service import followup_outcomes

    clock.set_now(T0)
    ticket, _ = await _resolved_from_chat(session, "repair")
    await _dispatch(session, 60)
    await do_answer_followup(session, (await _survey(session, ticket.id)).id, score=4, solved=True)
    await commit(session)
    report = await followup_outcomes(session, T0, at(600))
    assert set(report["categories"][0]) == {"category", "answered", "unsolved", "avg_score"}
