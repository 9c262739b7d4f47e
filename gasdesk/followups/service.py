"""Scheduling, sending and answering follow-up surveys (回访).

A resolved ticket gets a survey due after its type's delay. The survey goes out on the channel the
resident came from (web chat here; WeChat, SMS and hotline tickets through ``followups/remote.py``, registered
behind ``SurveyChannel`` by ``gasdesk/worker.py``). Unanswered surveys
are re-sent every ``retry_minutes`` up to ``max_attempts``, then marked unreachable. A low score or
"not solved" reopens the ticket or opens a complaint, per the policy.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.clock import to_local, utcnow
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import ContentType, Conversation, SenderType
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.event_types import FollowupCompleted, FollowupUnreachable
from gasdesk.events import emit
from gasdesk.followups.models import FollowUpPolicy, FollowUpSurvey
from gasdesk.tickets.models import Ticket, TicketStatus
from gasdesk.tickets.routing import check_ticket_type
from gasdesk.tickets.schemas import TicketCreate
from gasdesk.tickets.service import do_create_ticket, do_ticket_action
from gasdesk.webhooks.service import publish

SYSTEM = Actor.system("回访", "job")
DEFAULT_POLICY = FollowUpPolicy(enabled=True, delay_minutes=60, max_attempts=3, retry_minutes=24 * 60,
                                on_dissatisfied="reopen", dissatisfied_max_score=2)


class SurveyChannel(Protocol):
    async def send(self, session: AsyncSession, survey: FollowUpSurvey, ticket: Ticket) -> bool:
        """Deliver the survey (or a reminder); False when this resident cannot be reached on it."""
        ...


def survey_card(survey: FollowUpSurvey, ticket: Ticket) -> dict[str, Any]:
    return {
        "kind": "followup", "followup_id": survey.id, "ticket_number": ticket.number,
        "title": f"回访：您的工单 {ticket.number}（{ticket.title}）已处理完成",
        "questions": {"score": "请为本次服务打分（1–5 分）", "solved": "问题是否已解决？"},
        "labels": {"1": "非常不满意", "2": "不满意", "3": "一般", "4": "满意", "5": "非常满意"},
    }


class WebchatSurvey:
    """Posts the survey card into the resident's web chat (a new conversation if the old one ended)."""

    async def send(self, session: AsyncSession, survey: FollowUpSurvey, ticket: Ticket) -> bool:
        origin = await session.get(Conversation, ticket.conversation_id) if ticket.conversation_id else None
        if origin is None:
            return False
        conversation = await conversations.open_conversation_of(session, origin.visitor_id, "webchat")
        if conversation is None:
            conversation = await conversations.do_start_conversation(
                session, channel="webchat", visitor_id=origin.visitor_id, customer_id=origin.customer_id)
        survey.conversation_id = conversation.id
        text = survey_card(survey, ticket)["title"] + ("（提醒）" if survey.attempts > 1 else "")
        await conversations.do_post_message(session, conversation, SenderType.bot, text=text,
                                            content_type=ContentType.card, sender_name="回访",
                                            payload={"card": survey_card(survey, ticket)})
        return True


CHANNELS: dict[str, SurveyChannel] = {"webchat": WebchatSurvey()}


async def policy_for(session: AsyncSession, ticket_type: str) -> FollowUpPolicy:
    return await session.get(FollowUpPolicy, ticket_type) or DEFAULT_POLICY


async def schedule_followup(session: AsyncSession, ticket: Ticket) -> FollowUpSurvey | None:
    """Called when a ticket is resolved: one pending survey per ticket (a re-resolve replaces it)."""
    policy = await policy_for(session, ticket.type)
    if not policy.enabled:
        return None
    pending = await session.scalar(select(FollowUpSurvey).where(
        FollowUpSurvey.ticket_id == ticket.id, FollowUpSurvey.status.in_(["scheduled", "sent"])))
    if pending is not None:
        pending.status = "cancelled"
    survey = FollowUpSurvey(ticket_id=ticket.id, channel=ticket.channel or "webchat", status="scheduled",
                            due_at=utcnow() + timedelta(minutes=policy.delay_minutes), attempts=0,
                            category=ticket.service_type or ticket.type, created_at=utcnow())
    session.add(survey)
    await session.flush()
    return survey


async def dispatch_due(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Send due surveys and reminders; give up after max attempts (unreachable)."""
    now = now or utcnow()
    counts = {"sent": 0, "unreachable": 0}
    surveys = await session.scalars(select(FollowUpSurvey).where(
        FollowUpSurvey.status.in_(["scheduled", "sent"]), FollowUpSurvey.due_at <= now))
    for survey in surveys:
        ticket = await session.get(Ticket, survey.ticket_id)
        policy = await policy_for(session, ticket.type if ticket else "")
        before = _state(survey)
        if ticket is None or ticket.status not in (TicketStatus.resolved.value, TicketStatus.closed.value):
            survey.status = "cancelled"
            record_audit(session, SYSTEM, "followup.cancel", "followup", survey.id, before=before, after=_state(survey))
            continue
        if survey.attempts >= policy.max_attempts:
            survey.status, survey.outcome = "unreachable", "unreachable"
            counts["unreachable"] += 1
            record_audit(session, SYSTEM, "followup.unreachable", "followup", survey.id, before=before,
                         after=_state(survey))
            emit(session, FollowupUnreachable(followup_id=survey.id, ticket_id=ticket.id))
            continue
        survey.attempts += 1
        channel = CHANNELS.get(survey.channel)
        delivered = channel is not None and await channel.send(session, survey, ticket)
        survey.last_sent_at = now
        survey.due_at = now + timedelta(minutes=policy.retry_minutes)
        if delivered:
            survey.status = "sent"
            counts["sent"] += 1
        record_audit(session, SYSTEM, "followup.send", "followup", survey.id, before=before, after=_state(survey))
    return counts


def _state(survey: FollowUpSurvey) -> dict[str, Any]:
    return {"status": survey.status, "attempts": survey.attempts, "ticket_id": survey.ticket_id}


async def do_answer_followup(session: AsyncSession, survey_id: int, *, score: int, solved: bool,
                             comment: str = "", visitor_id: str | None = None) -> FollowUpSurvey:
    """Store the resident's answer; dissatisfied or unsolved → reopen or complaint per policy. Answered in the
    chat (``visitor_id`` given: only that resident may answer), the chat thanks them."""
    survey = await session.get(FollowUpSurvey, survey_id)
    if survey is None:
        raise NotFound("回访不存在", code="followup_not_found")
    conversation = None
    if visitor_id is not None:
        conversation = await session.get(Conversation, survey.conversation_id) if survey.conversation_id else None
        if conversation is None or conversation.visitor_id != visitor_id:
            raise NotFound("回访不存在", code="followup_not_found")
    if survey.status == "answered":
        raise Conflict("您已完成本次回访，谢谢！", code="already_answered")
    if survey.status not in ("sent", "scheduled", "unreachable"):
        raise Conflict("本次回访已失效", code="followup_closed")
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidInput("评分应为 1–5 分", code="invalid_score")
    ticket = await session.get(Ticket, survey.ticket_id)
    assert ticket is not None
    policy = await policy_for(session, ticket.type)
    survey.score, survey.solved = score, bool(solved)
    survey.comment = (comment or "").strip()[:500] or None
    survey.status, survey.answered_at = "answered", utcnow()
    survey.outcome = "ok"
    if (score <= policy.dissatisfied_max_score or not solved) and policy.on_dissatisfied != "none":
        survey.outcome = await _act_on_dissatisfaction(session, ticket, survey, policy.on_dissatisfied)
    completed = FollowupCompleted(followup_id=survey.id, ticket_id=ticket.id, ticket_number=ticket.number,
                                  score=score, solved=bool(solved), outcome=survey.outcome)
    emit(session, completed)
    await publish(session, completed.TYPE, completed.as_dict())
    if conversation is not None:
        await conversations.post_system(session, conversation, "感谢您参与回访，您的意见我们已记录。",
                                        payload={"event": "followup_answered"})
    return survey


async def _act_on_dissatisfaction(session: AsyncSession, ticket: Ticket, survey: FollowUpSurvey, mode: str) -> str:
    reason = f"回访不满意：{survey.score} 分，{'已解决' if survey.solved else '未解决'}" + (
        f"，意见：{survey.comment}" if survey.comment else "")
    if mode == "reopen" and ticket.status in (TicketStatus.resolved.value, TicketStatus.closed.value):
        await do_ticket_action(session, SYSTEM, ticket, "reopen", note=reason)
        return "reopened"
    complaint = await do_create_ticket(session, SYSTEM, TicketCreate(
        type="complaint", title=f"回访不满意：{ticket.number}", description=reason, customer_id=ticket.customer_id,
        account_id=ticket.account_id, channel=ticket.channel, conversation_id=ticket.conversation_id))
    complaint.parent_ticket_id = ticket.id
    return "complaint_created"


async def followup_outcomes(session: AsyncSession, since: datetime, until: datetime) -> dict[str, Any]:
    """For reports: satisfaction trend per local day and answers per problem category."""
    rows = list(await session.execute(select(FollowUpSurvey.answered_at, FollowUpSurvey.score,
                                             FollowUpSurvey.solved, FollowUpSurvey.category)
                                      .where(FollowUpSurvey.status == "answered",
                                             FollowUpSurvey.answered_at >= since, FollowUpSurvey.answered_at < until)))
    by_day: dict[str, list[int]] = {}
    by_category: dict[str, dict[str, Any]] = {}
    for answered_at, score, solved, category in rows:
        if answered_at is None or score is None:  # do_answer_followup sets both with the status; the columns allow NULL
            continue
        day = to_local(answered_at).strftime("%Y-%m-%d")
        by_day.setdefault(day, []).append(score)
        entry = by_category.setdefault(category or "其他", {"category": category or "其他", "answered": 0,
                                                          "score_sum": 0, "unsolved": 0})
        entry["answered"] += 1
        entry["score_sum"] += score
        entry["unsolved"] += 0 if solved else 1
    unreachable = await session.scalar(select(func.count()).select_from(FollowUpSurvey).where(
        FollowUpSurvey.status == "unreachable", FollowUpSurvey.created_at >= since,
        FollowUpSurvey.created_at < until))
    return {
        "trend": [{"day": d, "answered": len(s), "avg_score": round(sum(s) / len(s), 2)} for d, s in sorted(by_day.items())],
        "categories": [{"category": e["category"], "answered": e["answered"], "unsolved": e["unsolved"],
                        "avg_score": round(e["score_sum"] / e["answered"], 2)} for e in by_category.values()],
        "answered": len(rows), "unreachable": int(unreachable or 0),
    }


POLICY_FIELDS = ("enabled", "delay_minutes", "max_attempts", "retry_minutes", "on_dissatisfied",
                 "dissatisfied_max_score")


async def do_set_followup_policy(session: AsyncSession, actor: Actor, ticket_type: str,
                                 values: dict[str, Any]) -> FollowUpPolicy:
    """When to survey a resolved ticket of this type, how often to retry, and what a bad answer does
    (audited with before and after)."""
    check_ticket_type(ticket_type)
    policy = await session.get(FollowUpPolicy, ticket_type)
    before = None
    if policy is None:
        policy = FollowUpPolicy(ticket_type=ticket_type)
        session.add(policy)
    else:
        before = {key: getattr(policy, key) for key in POLICY_FIELDS}
    for key in POLICY_FIELDS:
        if key in values:
            setattr(policy, key, values[key])
    await session.flush()
    record_audit(session, actor, "config.followup_policy", "config", f"followup:{ticket_type}", before=before,
                 after={key: getattr(policy, key) for key in POLICY_FIELDS})
    return policy
