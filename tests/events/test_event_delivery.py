"""For every declared event type (cf. Zulip's test_events.py): the real do_* that emits it runs, every event
it publishes matches its declared payload, and the event reaches each consumer declared for it — the hub's
sockets (the process-wide hub, with sockets whose network side records the frames), the hub's own action,
or a webhook delivery row.

Each case sets the scene, then ``world.start()``, then does the one change under test and commits.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import select
from starlette.websockets import WebSocketState

from gasdesk import clock
from gasdesk.analytics import ingest as analytics_ingest
from gasdesk.analytics.models import AnalyticsFact
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.db import transaction as db_transaction
from gasdesk.event_types import EVENT_TYPES, Consumer, wire_schema
from gasdesk.events import Event
from gasdesk.realtime.hub import Connection, Hub, get_hub
from gasdesk.webhooks.models import EVENTS, WebhookDelivery
from gasdesk.webhooks.service import do_create_endpoint
from tests.factories import (
    Factory,
    agent_with_conversation,
    bot_conversation,
    desk_agent,
    queued_conversation,
    reload_conversation,
    resident_said,
    staff_user,
    wo_actor,
    wo_ticket,
)

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
# the fact kinds each analytics-consumed event type can make (gasdesk/analytics/facts.py)
FACT_KINDS_OF = {
    "conversation.started": {"contact.started"},
    "conversation.state": {"conversation.queued", "conversation.handoff", "conversation.accepted",
                           "conversation.closed", "conversation.handled", "conversation.bot_only",
                           "conversation.abandoned"},
    "conversation.rated": {"conversation.rated"},
    "bot.turn": {"bot.turn", "bot.answered", "kb.hit", "kb.miss"},
    "kb.feedback": {"kb.helpful", "kb.not_helpful"},
    "ticket.created": {"ticket.created"},
    "ticket.updated": {"ticket.dispatched", "ticket.resolved", "ticket.resolved_in_sla", "ticket.closed"},
    "ticket.sla": {"sla.at_risk", "sla.breached"},
    "followup.completed": {"followup.answered", "followup.solved"},
    "call.ended": {"call.answered", "call.abandoned"},
    "quality.scored": {"qa.scored"},  # declared by gasdesk/quality (facts.py reads its payload)
}
SOCKET_AUDIENCES = (Consumer.RESIDENT, Consumer.AGENT, Consumer.STAFF, Consumer.BELL)


class RecordingSocket:
    """The network side of a WebSocket: keeps what the hub's writer sends."""

    application_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.frames.append(json.loads(text))


class World:
    def __init__(self, session: Any, factory: Factory, events: list[Event], hub: Hub,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.session, self.factory, self.events, self.hub = session, factory, events, hub
        self.monkeypatch = monkeypatch
        self.connections: list[Connection] = []
        # consumer -> (socket, the frame type it must get) or an async check of the hub's / webhook's work
        self.expect_frames: dict[Consumer, tuple[Connection, str]] = {}
        self.expect_checks: dict[Consumer, Callable[[], Awaitable[bool]]] = {}

    def _connect(self, conn: Connection) -> Connection:
        self.connections.append(conn)
        return conn

    def resident(self, conversation: Any) -> Connection:
        conn = self._connect(Connection(RecordingSocket(), kind="resident",  # type: ignore[arg-type]
                                        visitor_id=conversation.visitor_id, client_ip="127.0.0.1"))
        assert self.hub.add_resident(conn)
        self.hub.follow(conn, conversation.id)
        return conn

    def console(self, user: Any) -> Connection:
        conn = self._connect(Connection(RecordingSocket(), kind="staff", user_id=user.id,  # type: ignore[arg-type]
                                        role=user.role))
        self.hub.add_staff(conn)
        return conn

    def bell(self, user: Any) -> Connection:
        conn = self._connect(Connection(RecordingSocket(), kind="notify", user_id=user.id,  # type: ignore[arg-type]
                                        role=user.role))
        assert self.hub.add_notify(conn)
        return conn

    def expect(self, consumer: Consumer, conn: Connection, frame_type: str) -> None:
        self.expect_frames[consumer] = (conn, frame_type)

    def start(self) -> None:
        """From here on, events and frames count."""
        self.events.clear()
        for conn in self.connections:
            conn.websocket.frames.clear()  # type: ignore[attr-defined]

    def close(self) -> None:
        for conn in self.connections:
            self.hub.remove(conn)


CASES: dict[str, Callable[[World], Awaitable[None]]] = {}


def case(event_type: str) -> Callable[[Callable[[World], Awaitable[None]]], Callable[[World], Awaitable[None]]]:
    def register(fn: Callable[[World], Awaitable[None]]) -> Callable[[World], Awaitable[None]]:
        CASES[event_type] = fn
        return fn

    return register


async def _assigned(w: World) -> tuple[Any, Any]:
    """An online agent and a conversation assigned to them at once."""
    agent = await desk_agent(w.factory)
    conversation = await queued_conversation(w.session, priority=10)
    assert (await reload_conversation(conversation.id)).agent_id == agent.id
    return agent, conversation


# ------------------------------------------------------------------ conversations and chat


@case("conversation.started")
async def _started(w: World) -> None:
    from gasdesk.conversations.service import do_start_conversation

    w.start()
    await do_start_conversation(w.session, channel="webchat", visitor_id="v_ev_start")
    await commit(w.session)


@case("conversation.state")
async def _state(w: World) -> None:
    from gasdesk.conversations.service import do_close

    agent, conversation = await _assigned(w)
    w.expect(Consumer.RESIDENT, w.resident(conversation), "state")
    w.expect(Consumer.AGENT, w.console(agent), "state")
    w.expect(Consumer.STAFF, w.console(await staff_user(w.session, "supervisor")), "conversations_changed")
    w.start()
    await do_close(w.session, conversation, by="agent")
    await commit(w.session)


@case("conversation.message")
async def _message(w: World) -> None:
    from gasdesk.conversations.models import SenderType
    from gasdesk.conversations.service import do_post_message

    agent, conversation = await _assigned(w)
    w.expect(Consumer.RESIDENT, w.resident(conversation), "message")
    w.expect(Consumer.AGENT, w.console(agent), "message")
    w.start()
    await do_post_message(w.session, conversation, SenderType.agent, text="您好，请讲", user=agent)
    await commit(w.session)


@case("conversation.assigned")
async def _assigned_event(w: World) -> None:
    agent = await desk_agent(w.factory)
    w.expect(Consumer.AGENT, w.console(agent), "assigned")
    w.start()
    await queued_conversation(w.session, priority=10)


@case("conversation.typing")
async def _typing(w: World) -> None:
    from gasdesk.channels.webchat.socket import ResidentSession
    from gasdesk.conversations.agent_socket import handle_staff_frame

    agent, conversation = await _assigned(w)
    w.expect(Consumer.RESIDENT, w.resident(conversation), "typing")
    console = w.console(agent)
    w.expect(Consumer.AGENT, console, "typing")
    resident = ResidentSession(RecordingSocket(), conversation.visitor_id, "127.0.0.1")  # type: ignore[arg-type]
    resident.conversation_id = conversation.id
    w.start()
    await handle_staff_frame(console, {"type": "typing", "conversation_id": conversation.id})
    await resident.on_typing({"type": "typing"})


@case("conversation.rated")
async def _rated(w: World) -> None:
    from gasdesk.conversations.service import do_close, do_rate

    _, conversation = await _assigned(w)
    await do_close(w.session, conversation, by="resident")
    await commit(w.session)
    w.start()
    await do_rate(w.session, conversation, 5, "很好")
    await commit(w.session)


@case("conversation.resident_gone")
async def _resident_gone(w: World) -> None:
    from gasdesk.conversations.service import do_note_resident_gone

    _, conversation = await _assigned(w)
    w.resident(conversation)  # another tab (or process) still holds a socket of this resident

    async def marked_back() -> bool:
        return (await reload_conversation(conversation.id)).resident_gone_at is None

    w.expect_checks[Consumer.HUB] = marked_back
    w.start()
    do_note_resident_gone(w.session, conversation)
    await commit(w.session)


@case("left_message.created")
async def _left_message(w: World) -> None:
    from gasdesk.conversations.service import do_leave_message

    conversation = await bot_conversation(w.session)
    w.expect(Consumer.STAFF, w.console(await staff_user(w.session)), "left_message")
    w.start()
    await do_leave_message(w.session, conversation, phone="13912345678", content="家里暖气不热", reason="after_hours")
    await commit(w.session)


@case("queue.changed")
async def _queue_changed(w: World) -> None:
    from gasdesk.conversations.service import do_handoff
    from gasdesk.routing.models import SkillGroup

    # nobody is online: emergencies wait in group 1's queue (others would be turned away)
    waiting = await queued_conversation(w.session, priority=10)
    w.expect(Consumer.RESIDENT, w.resident(waiting), "queue")
    w.expect(Consumer.STAFF, w.console(await staff_user(w.session)), "queue_changed")
    newcomer = await bot_conversation(w.session)
    w.start()
    await do_handoff(w.session, newcomer, group=await w.session.get(SkillGroup, 1), reason="request", priority=10)
    await commit(w.session)


@case("agent.presence")
async def _presence(w: World) -> None:
    from gasdesk.routing.service import do_set_presence

    agent = await desk_agent(w.factory)
    w.expect(Consumer.STAFF, w.console(await staff_user(w.session, "supervisor")), "presence")
    w.start()
    await do_set_presence(w.session, agent, "busy")
    await commit(w.session)


@case("emergency.alert")
async def _emergency(w: World) -> None:
    from gasdesk.conversations.pipeline import receive_resident_message

    w.monkeypatch.setenv("GASDESK_BOT_ENGINE", "nlu")
    reset_settings_cache()
    conversation = await bot_conversation(w.session)
    w.start()
    await receive_resident_message(w.session, conversation, text="厨房里煤气味很大，好像漏气了", client_msg_id="leak-1")
    await commit(w.session)


@case("emergency.updated")
async def _emergency_updated(w: World) -> None:
    from gasdesk.emergency.service import do_open_emergency

    supervisor = await staff_user(w.session, "supervisor")
    w.expect(Consumer.BELL, w.bell(supervisor), "emergency")
    w.start()
    await do_open_emergency(w.session, wo_actor(), source="manual", level=2, title="调压站泄漏")
    await commit(w.session)


@case("bot.turn")
async def _bot_turn(w: World) -> None:
    from gasdesk.conversations.pipeline import receive_resident_message

    conversation = await bot_conversation(w.session)
    w.start()
    await receive_resident_message(w.session, conversation, text="燃气费怎么交", client_msg_id="turn-1")
    await commit(w.session)


@case("kb.feedback")
async def _kb_feedback(w: World) -> None:
    from gasdesk.kb.service import ArticleInput, do_create_article, do_feedback

    article = await do_create_article(w.session, wo_actor(), ArticleInput(
        title="如何缴纳燃气费", questions=["燃气费怎么交"], answer="可在营业厅或微信缴费。", category="缴费"),
        status="published")
    await commit(w.session)
    w.start()
    await do_feedback(w.session, article.id, helpful=False)
    await commit(w.session)


@case("kb.suggestion_resolved")
async def _kb_suggestion_resolved(w: World) -> None:
    from gasdesk.kb.service import record_miss
    from gasdesk.kb.suggestions import do_dismiss_suggestion, list_suggestions

    for question in ("发票抬头能改成公司吗", "发票抬头可以改成公司吗"):
        await record_miss(w.session, question, channel="webchat", intent=None, best_article_id=None, best_score=0.0)
    await commit(w.session)
    (suggestion,) = await list_suggestions(w.session)
    w.start()
    await do_dismiss_suggestion(w.session, wo_actor(), suggestion.key)
    await commit(w.session)


# ------------------------------------------------------------------ notifications


@case("notification.created")
async def _notification_created(w: World) -> None:
    from gasdesk.notifications.service import do_notify

    user = await staff_user(w.session, "dispatcher")
    w.expect(Consumer.BELL, w.bell(user), "notification")
    w.start()
    do_notify(w.session, user.id, "ticket.assigned", "新派工单 GD1", "请尽快处理")
    await commit(w.session)


@case("notification.read")
async def _notification_read(w: World) -> None:
    from gasdesk.notifications.service import do_mark_read, do_notify

    user = await staff_user(w.session, "dispatcher")
    note = do_notify(w.session, user.id, "ticket.assigned", "新派工单 GD2")
    await commit(w.session)
    w.expect(Consumer.BELL, w.bell(user), "notification_read")
    w.start()
    await do_mark_read(w.session, user, note)
    await commit(w.session)


# ------------------------------------------------------------------ internal chat


async def _staff_group(w: World) -> tuple[Any, Any, Any]:
    from gasdesk.internal_chat.service import do_create_group

    owner = await staff_user(w.session, "dispatcher")
    crew = await staff_user(w.session, "field_crew")
    chat = await do_create_group(w.session, owner, "巡线组", [crew.id])
    await commit(w.session)
    return owner, crew, chat


@case("internal_chat.message")
async def _ichat_message(w: World) -> None:
    from gasdesk.internal_chat.service import do_post_message

    owner, crew, chat = await _staff_group(w)
    w.expect(Consumer.BELL, w.bell(crew), "ichat_message")
    w.start()
    await do_post_message(w.session, owner, chat, "@外勤 明早巡线")
    await commit(w.session)


@case("internal_chat.read")
async def _ichat_read(w: World) -> None:
    from gasdesk.internal_chat.service import do_mark_read

    _, crew, chat = await _staff_group(w)
    w.expect(Consumer.BELL, w.bell(crew), "ichat_read")
    w.start()
    await do_mark_read(w.session, crew, chat)
    await commit(w.session)


@case("internal_chat.members")
async def _ichat_members(w: World) -> None:
    from gasdesk.internal_chat.service import do_add_member

    owner, _, chat = await _staff_group(w)
    newcomer = await staff_user(w.session, "agent")
    w.expect(Consumer.BELL, w.bell(newcomer), "ichat_chats")
    w.start()
    await do_add_member(w.session, owner, chat, newcomer.id)
    await commit(w.session)


# ------------------------------------------------------------------ tickets, appointments, 回访


@case("ticket.created")
async def _ticket_created(w: World) -> None:
    w.start()
    await wo_ticket(w.session, "repair", description="燃气表不走字")


@case("ticket.updated")
async def _ticket_updated(w: World) -> None:
    from gasdesk.tickets.service import do_ticket_action

    crew = await staff_user(w.session, "field_crew")
    ticket = await wo_ticket(w.session, "repair")
    w.start()
    await do_ticket_action(w.session, wo_actor(), ticket, "assign", crew_id=crew.id)
    await commit(w.session)


@case("ticket.sla")
async def _ticket_sla(w: World) -> None:
    from gasdesk.tickets.service import do_flag_sla

    ticket = await wo_ticket(w.session, "gas_leak", description="单元门口煤气味")
    w.start()
    await do_flag_sla(w.session, ticket, "at_risk", "respond")
    await commit(w.session)


@case("appointment.booked")
async def _appointment_booked(w: World) -> None:
    from gasdesk.appointments.models import AppointmentSlot
    from gasdesk.appointments.service import book_appointment, do_generate_slots

    customer = await w.factory.customer()
    await do_generate_slots(w.session, district="朝阳区", first_day=date(2026, 12, 8), days=1,
                            windows=[("09:00", "12:00")], capacity=2)
    await commit(w.session)
    slot = await w.session.scalar(select(AppointmentSlot))
    w.start()
    await book_appointment(w.session, wo_actor(), customer_id=customer.id, service_code="安检", slot_id=slot.id)
    await commit(w.session)


async def _resolved_from_chat(w: World) -> Any:
    crew = await staff_user(w.session, "field_crew")
    conversation = await bot_conversation(w.session)
    return await wo_ticket(w.session, "repair", status="resolved", crew_id=crew.id, channel="webchat",
                           conversation_id=conversation.id)


async def _survey(w: World, ticket_id: int) -> Any:
    from gasdesk.followups.models import FollowUpSurvey

    w.session.expire_all()
    return await w.session.scalar(select(FollowUpSurvey).where(FollowUpSurvey.ticket_id == ticket_id))


@case("followup.completed")
async def _followup_completed(w: World) -> None:
    from gasdesk.followups.service import do_answer_followup

    ticket = await _resolved_from_chat(w)
    survey = await _survey(w, ticket.id)
    w.start()
    await do_answer_followup(w.session, survey.id, score=5, solved=True)
    await commit(w.session)


@case("followup.unreachable")
async def _followup_unreachable(w: World) -> None:
    from gasdesk.followups.service import dispatch_due

    ticket = await _resolved_from_chat(w)
    for minutes in (60, 60 + 1440, 60 + 2 * 1440):  # three attempts, unanswered
        clock.set_now(T0 + timedelta(minutes=minutes))
        assert (await dispatch_due(w.session))["sent"] == 1
        await commit(w.session)
    assert (await _survey(w, ticket.id)).attempts == 3
    clock.set_now(T0 + timedelta(minutes=60 + 3 * 1440))
    w.start()
    assert (await dispatch_due(w.session))["unreachable"] == 1
    await commit(w.session)


# ------------------------------------------------------------------ directory and configuration


@case("user.created")
async def _user_created(w: World) -> None:
    from gasdesk.auth.service import do_create_user

    w.start()
    await do_create_user(w.session, wo_actor(), username="ev.user", password="long-enough-pw", role="dispatcher",
                         display_name="李雷")
    await commit(w.session)


@case("user.updated")
async def _user_updated(w: World) -> None:
    from gasdesk.auth.service import do_update_user

    user = await staff_user(w.session, "dispatcher")
    w.start()
    await do_update_user(w.session, wo_actor(), user, role="supervisor")
    await commit(w.session)


@case("customer.created")
async def _customer_created(w: World) -> None:
    w.start()
    await w.factory.customer()


@case("customer.updated")
async def _customer_updated(w: World) -> None:
    from gasdesk.customers.schemas import CustomerPatch
    from gasdesk.customers.service import do_update_customer

    customer = await w.factory.customer()
    w.start()
    await do_update_customer(w.session, wo_actor(), customer, CustomerPatch(name="王芳"))
    await commit(w.session)


@case("account.created")
async def _account_created(w: World) -> None:
    from gasdesk.customers.schemas import AccountIn
    from gasdesk.customers.service import do_open_account

    customer = await w.factory.customer()
    w.start()
    await do_open_account(w.session, wo_actor(), customer,
                          AccountIn(account_no="2199990001", address_id=customer.addresses[0].id))
    await commit(w.session)


@case("branch.saved")
async def _branch_saved(w: World) -> None:
    from gasdesk.branches.service import do_save_branch

    w.start()
    await do_save_branch(w.session, wo_actor(), branch=None, name="和平区营业厅", district="和平区",
                         address="南京南街 1 号", phone="024-1", weekly_hours={str(d): "08:30-17:00" for d in range(1, 8)},
                         services=["缴费"])
    await commit(w.session)


@case("outage.announced")
async def _outage(w: World) -> None:
    from gasdesk.outages.service import do_announce_outage

    w.start()
    await do_announce_outage(w.session, wo_actor(), kind="gas", district="和平区", communities=[],
                             starts_at=T0 + timedelta(hours=2), ends_at=T0 + timedelta(hours=6), reason="管线改造")
    await commit(w.session)


async def _published_outage(w: World):
    from gasdesk.outages.service import AreaSpec, check_outage, do_create_outage, do_publish_outage

    notice = await do_create_outage(w.session, wo_actor(), check_outage(
        kind="heating", areas=[AreaSpec(district="和平区")], starts_at=T0 + timedelta(hours=2),
        ends_at=T0 + timedelta(hours=6), reason="换热站检修"))
    await do_publish_outage(w.session, wo_actor(), notice)
    await commit(w.session)
    return notice


@case("outage.updated")
async def _outage_updated(w: World) -> None:
    from gasdesk.outages.service import AreaSpec, check_outage, do_update_outage

    notice = await _published_outage(w)
    w.start()
    await do_update_outage(w.session, wo_actor(), notice, check_outage(
        kind="heating", areas=[AreaSpec(district="和平区")], starts_at=T0 + timedelta(hours=2),
        ends_at=T0 + timedelta(hours=8), reason="换热站检修"))
    await commit(w.session)


@case("outage.closed")
async def _outage_closed(w: World) -> None:
    from gasdesk.outages.service import do_close_outage

    notice = await _published_outage(w)
    w.start()
    await do_close_outage(w.session, wo_actor(), notice, note="已恢复")
    await commit(w.session)


async def _resident_turn(w: World):
    agent, conversation = await agent_with_conversation(w.factory)
    return agent, conversation, await resident_said(w.session, conversation, "燃气费怎么交", bot_intent="balance_query")


@case("bot.intent_corrected")
async def _intent_corrected(w: World) -> None:
    from gasdesk.intent_corrections.service import do_correct_intent

    agent, conversation, message = await _resident_turn(w)
    w.start()
    await do_correct_intent(w.session, agent, message, conversation, "payment_howto")
    await commit(w.session)


@case("bot.correction_reviewed")
async def _correction_reviewed(w: World) -> None:
    from gasdesk.intent_corrections.service import do_correct_intent, do_review_correction

    agent, conversation, message = await _resident_turn(w)
    row = await do_correct_intent(w.session, agent, message, conversation, "payment_howto")
    await commit(w.session)
    supervisor = await staff_user(w.session, "supervisor")
    w.start()
    await do_review_correction(w.session, supervisor, row, "approve")
    await commit(w.session)


async def _roster_draft(w: World):
    from gasdesk.rostering.service import build_problem, do_store_roster, shift_templates
    from gasdesk.rostering.solver import Solution

    agent = await staff_user(w.session, "agent")
    early = next(s for s in await shift_templates(w.session) if s.code == "early")
    problem = await build_problem(w.session, date(2027, 2, 1))
    return agent, early, await do_store_roster(w.session, wo_actor(), problem, Solution(
        status="FEASIBLE", objective=0.0, seconds=0.0, assignments={(agent.id, date(2027, 2, 2)): early.id},
        unmet=[], staff_short=[]))


@case("roster.updated")
async def _roster_updated(w: World) -> None:
    from gasdesk.rostering.service import do_edit_cell

    agent, early, roster = await _roster_draft(w)
    await commit(w.session)
    w.start()
    await do_edit_cell(w.session, wo_actor(), roster, agent.id, date(2027, 2, 3), early.id)
    await commit(w.session)


@case("roster.published")
async def _roster_published(w: World) -> None:
    from gasdesk.rostering.service import do_publish_roster

    _, _, roster = await _roster_draft(w)
    await commit(w.session)
    w.start()
    await do_publish_roster(w.session, wo_actor(), roster)
    await commit(w.session)


@case("training.completed")
async def _training_completed(w: World) -> None:
    from gasdesk.training.schemas import BankIn, ExamIn, QuestionIn
    from gasdesk.training.service import (
        do_add_question,
        do_create_bank,
        do_create_exam,
        do_start_attempt,
        do_submit_attempt,
    )

    bank = await do_create_bank(w.session, wo_actor(), BankIn(name="事件题库"))
    await do_add_question(w.session, wo_actor(), bank, QuestionIn(kind="true_false", prompt="对吗", value=True))
    exam = await do_create_exam(w.session, wo_actor(), ExamIn(bank_id=bank.id, title="事件考试", question_count=1,
                                                              time_limit_min=5, pass_mark=60))
    trainee = await staff_user(w.session, "agent")
    attempt = await do_start_attempt(w.session, trainee, exam)
    await commit(w.session)
    w.start()
    await do_submit_attempt(w.session, trainee, attempt, {str(attempt.question_ids[0]): True})
    await commit(w.session)


@case("call.ringing")
async def _call_ringing(w: World) -> None:
    from gasdesk.telephony.media import CallInfo
    from gasdesk.telephony.service import do_start_call

    await w.factory.customer(phones=["13900000071"])
    w.expect(Consumer.STAFF, w.console(await staff_user(w.session)), "call_ringing")
    w.start()
    await do_start_call(w.session, CallInfo(call_ref="ev-ring", caller="13900000071", callee="96777", backend="sip"),
                        script_version=None)
    await commit(w.session)


@case("call.ended")
async def _call_ended(w: World) -> None:
    from gasdesk.telephony.media import CallInfo
    from gasdesk.telephony.service import do_end_call, do_start_call

    call = await do_start_call(w.session, CallInfo(call_ref="ev-end", caller="", callee="96777", backend="sip"),
                               script_version=None)
    await commit(w.session)
    w.expect(Consumer.STAFF, w.console(await staff_user(w.session)), "call_ended")
    w.start()
    await do_end_call(w.session, call, by="caller", cause="NORMAL_CLEARING")
    await commit(w.session)


@case("call.offered")
async def _call_offered(w: World) -> None:
    from gasdesk.telephony.media import CallInfo
    from gasdesk.telephony.service import do_offer_call, do_start_call

    agent = await desk_agent(w.factory)
    call = await do_start_call(w.session, CallInfo(call_ref="ev-offer", caller="13900000072", callee="96777",
                                                   backend="sip"), script_version=None)
    await commit(w.session)
    w.expect(Consumer.AGENT, w.console(agent), "call_offered")
    w.start()
    await do_offer_call(w.session, call, agent.id)
    await commit(w.session)


@case("video.signal")
async def _video_signal(w: World) -> None:
    from gasdesk.video.service import access_conversation_to_invite, do_answer_invite, do_invite

    agent, conversation = await _assigned(w)
    w.expect(Consumer.RESIDENT, w.resident(conversation), "video")  # the invitation
    w.expect(Consumer.AGENT, w.console(agent), "video")  # the resident's answer
    w.start()
    conversation = await access_conversation_to_invite(w.session, agent, conversation.id)
    video = await do_invite(w.session, agent, conversation)
    await commit(w.session)
    await do_answer_invite(w.session, video, accept=True)
    await commit(w.session)


@case("call.offer_withdrawn")
async def _call_offer_withdrawn(w: World) -> None:
    from gasdesk.telephony.media import CallInfo
    from gasdesk.telephony.service import do_start_call, do_withdraw_offer

    agent = await desk_agent(w.factory)
    call = await do_start_call(w.session, CallInfo(call_ref="ev-withdraw", caller="", callee="96777", backend="sip"),
                               script_version=None)
    await commit(w.session)
    w.expect(Consumer.AGENT, w.console(agent), "call_offer_withdrawn")
    w.start()
    do_withdraw_offer(w.session, call.id, agent.id, "rang_out")
    await commit(w.session)


# ------------------------------------------------------------------ quality inspection


@case("quality.scored")
async def _quality_scored(w: World) -> None:
    from gasdesk.conversations.service import do_close
    from gasdesk.quality.service import do_score_conversation

    agent, conversation = await _assigned(w)
    await do_close(w.session, conversation, by="agent", user=agent)
    await commit(w.session)
    w.start()
    assert await do_score_conversation(w.session, conversation) is not None
    await commit(w.session)


# ------------------------------------------------------------------ smart tags (gasdesk/tags)


@case("tags.changed")
async def _tags_changed(w: World) -> None:
    from gasdesk.tags.service import do_add_tag

    customer = await w.factory.customer()
    agent = await staff_user(w.session)
    w.start()
    await do_add_tag(w.session, agent, "重点关注", customer=customer)
    await commit(w.session)


@case("tags.address_link")
async def _tags_address_link(w: World) -> None:
    from gasdesk.conversations.models import Conversation
    from gasdesk.conversations.service import do_link_customer
    from gasdesk.tags.service import do_confirm_link
    from gasdesk.telephony.media import CallInfo
    from gasdesk.telephony.service import do_start_call

    customer = await w.factory.customer()
    call = await do_start_call(w.session, CallInfo(call_ref="ev-tags", caller="01065550001", callee="96777",
                                                   backend="sip"), script_version=None)
    conversation = await w.session.get(Conversation, call.conversation_id)
    await do_link_customer(w.session, wo_actor(), conversation, customer, how="agent")
    await commit(w.session)
    agent = await staff_user(w.session)
    w.start()
    await do_confirm_link(w.session, agent, customer.addresses[0], f"conv:{conversation.id}")
    await commit(w.session)


# ------------------------------------------------------------------ the test


def test_every_declared_event_type_has_a_case() -> None:
    assert set(CASES) == set(EVENT_TYPES)


async def _eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.01)


async def _fact_kinds_from(event_type: str) -> set[str]:
    """The kinds of the facts stored that this event type makes (facts.py's builder for it)."""
    async with db_transaction() as s:
        stored = set(await s.scalars(select(AnalyticsFact.kind)))
    return stored & FACT_KINDS_OF[event_type]


def _got(frames: list[dict[str, Any]], frame_type: str) -> bool:
    return any(f["type"] == frame_type for f in frames)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
async def test_event_reaches_its_consumers(event_type, session, factory, events, monkeypatch) -> None:
    spec = EVENT_TYPES[event_type]
    clock.set_now(T0)
    monkeypatch.setenv("GASDESK_WEBHOOK_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    reset_settings_cache()
    # an endpoint for every webhook event: deliveries are queued in the change's own transaction
    await do_create_endpoint(session, wo_actor(), name="营收系统", url="http://127.0.0.1:9/hook", events=list(EVENTS))
    await commit(session)
    world = World(session, factory, events, get_hub(), monkeypatch)
    try:
        await CASES[event_type](world)

        # every event the change published matches its declaration (not only the one under test)
        for event in events:
            declared = EVENT_TYPES[event.type].payload
            assert declared is not None, event.type
            wire_schema(declared).model_validate(event.payload)
        if spec.payload is not None:
            assert [e for e in events if e.type == event_type], f"{event_type} was not published"

        for consumer in spec.consumers:
            if consumer in SOCKET_AUDIENCES:
                conn, frame_type = world.expect_frames[consumer]
                frames: list[dict[str, Any]] = conn.websocket.frames  # type: ignore[attr-defined]
                assert await _eventually(functools.partial(_got, frames, frame_type)), (consumer, frames)
            elif consumer is Consumer.HUB:
                assert await _eventually(world.expect_checks[consumer]), consumer
            elif consumer is Consumer.ANALYTICS:
                # the event's facts are written off the request path, in a transaction of their own
                await analytics_ingest.drain()
                kinds = await _fact_kinds_from(event_type)
                assert kinds, f"no analytics fact written for {event_type}"
            else:
                assert consumer is Consumer.WEBHOOK
                session.expire_all()
                deliveries = list(await session.scalars(select(WebhookDelivery).where(
                    WebhookDelivery.event == event_type)))
                assert deliveries, f"no webhook delivery queued for {event_type}"
                for delivery in deliveries:
                    assert delivery.payload["event"] == event_type
                    TypeAdapter(spec.webhook).validate_python(delivery.payload["data"], strict=True)
        # and the case set up a listener for every declared consumer (none is left unchecked)
        assert set(world.expect_frames) | set(world.expect_checks) == spec.consumers - {
            Consumer.WEBHOOK, Consumer.ANALYTICS}
    finally:
        world.close()
