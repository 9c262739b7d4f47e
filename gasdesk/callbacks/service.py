"""Peak-hour guidance and callback requests.

When the expected wait of a queue passes ``peak_wait_threshold_s``, every channel tells the resident the wait and
offers self-service or a callback (web chat: the ``queue`` frame's ``peak`` and a button; WeChat/SMS: the queue
message says 回复“回拨”; the IVR: a digit on the queue node). A callback keeps the resident's conversation queued:
its place is the conversation's place, in the same order and offered to agents like any conversation. The agent
who gets it sees the masked number, presses 回拨 (audited): gasdesk calls the resident and bridges them to the
agent when the hotline runs here with an outbound route (``callbacks/originate.py``), else the number is
revealed and the agent dials from their phone; then they record the outcome: reached (the
conversation ends), no answer (back in the queue, until ``callback_max_attempts``), cancelled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.callbacks.models import OUTCOME_LABELS, CallbackOutcome, CallbackRequest, CallbackStatus
from gasdesk.channels.inbound import Inbound
from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.conversations import service as conversations
from gasdesk.conversations.announce import publish_state
from gasdesk.conversations.lifecycle import transition
from gasdesk.conversations.models import Channel, Conversation, ConversationState
from gasdesk.customers.contacts import visitor_id_of
from gasdesk.customers.models import ContactIdentity, ContactKind, CustomerPhone
from gasdesk.customers.validation import MOBILE_RE, check_phone, mask_phone, normalize_phone
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.event_types import QueueChanged
from gasdesk.events import emit
from gasdesk.routing import service as acd

S = ConversationState
# A WeChat or SMS resident asks with 回拨 (optionally followed by the number to call).
KEYWORD_RE = re.compile(r"^\s*(?:回拨|预约回拨|回电)\s*[:：]?\s*([+\d\s-]{0,20})\s*$")


async def open_callback(session: AsyncSession, conversation_id: int) -> CallbackRequest | None:
    return await session.scalar(select(CallbackRequest).where(
        CallbackRequest.conversation_id == conversation_id, CallbackRequest.status == CallbackStatus.waiting.value)
        .order_by(CallbackRequest.id.desc()).limit(1))


@dataclass(frozen=True)
class Booked:
    callback: CallbackRequest
    spot: acd.QueueSpot | None
    created: bool


async def do_request_callback(session: AsyncSession, actor: Actor, conversation: Conversation,
                              phone: str) -> Booked:
    """Book a callback for a queued conversation: it stays in the queue (its place kept) and the resident is
    told their place. A second request updates the number. Audited (the number masked)."""
    if conversation.state != S.queued.value:
        raise Conflict("只有排队中的会话可以预约回拨", code="callback_not_queued")
    number = check_phone(phone)
    row = await open_callback(session, conversation.id)
    created = row is None
    if row is None:
        row = CallbackRequest(conversation_id=conversation.id, channel=conversation.channel, phone=number,
                              status=CallbackStatus.waiting.value, attempts=0, created_at=utcnow())
        session.add(row)
    else:
        row.phone = number
    await session.flush()
    record_audit(session, actor, "callback.request", "callback", row.id,
                 after={"conversation_id": conversation.id, "phone": mask_phone(number), "channel": row.channel})
    spot = await conversations.queue_spot(session, conversation)
    ahead = f"您前面还有 {spot.position - 1} 位，" if spot else ""
    await conversations.post_system(
        session, conversation,
        f"已为您预约回拨（{mask_phone(number)}），排队位置已为您保留，{ahead}轮到您时客服将回拨，请保持电话畅通。",
        payload={"event": "callback_requested", "callback_id": row.id, "position": spot.position if spot else None})
    publish_state(session, conversation)
    if conversation.skill_group_id is not None:
        emit(session, QueueChanged(skill_group_id=conversation.skill_group_id))
    return Booked(row, spot, created)


async def access_callback(session: AsyncSession, user: User, callback_id: int) -> tuple[CallbackRequest, Conversation]:
    """A callback whose conversation is assigned to ``user`` (supervisors and admins: any)."""
    row = await session.get(CallbackRequest, callback_id)
    conversation = await session.get(Conversation, row.conversation_id) if row else None
    if row is None or conversation is None:
        raise NotFound("回拨请求不存在", code="callback_not_found")
    if conversation.agent_id != user.id and Role(user.role) not in MANAGERS:
        raise PermissionDenied("该回拨未分配给您", code="callback_not_yours")
    return row, conversation


async def do_dial_callback(session: AsyncSession, user: User, row: CallbackRequest,
                           conversation: Conversation, *, originated: bool = False) -> str:
    """回拨 (audited): the full number, which the agent dials from their phone — or, when this process can
    place calls (``originated``), which gasdesk dials for them (``callbacks/originate.py``: the resident is
    bridged to the agent; the number stays masked in the console). The agent then records the outcome."""
    if row.status != CallbackStatus.waiting.value:
        raise Conflict("该回拨已处理", code="callback_closed")
    if conversation.state != S.assigned.value or conversation.agent_id != user.id or conversation.accepted_at is None:
        raise Conflict("请先接入该回拨", code="callback_not_accepted")
    record_audit(session, Actor.of(user), "callback.dial", "callback", row.id,
                 after={"conversation_id": conversation.id, "attempt": row.attempts + 1, "originated": originated})
    return row.phone


async def do_record_outcome(session: AsyncSession, user: User, row: CallbackRequest, conversation: Conversation,
                            outcome: str) -> CallbackRequest:
    """Record how the callback went: reached or cancelled end it (and the conversation); no answer puts the
    conversation back in the queue for a later try (away from this agent), until the last attempt."""
    try:
        value = CallbackOutcome(outcome)
    except ValueError:
        raise InvalidInput(f"未知的回拨结果 {outcome!r}", code="invalid_callback_outcome") from None
    if row.status != CallbackStatus.waiting.value:
        raise Conflict("该回拨已处理", code="callback_closed")
    if conversation.state != S.assigned.value or conversation.agent_id != user.id:
        raise Conflict("请先接入该回拨", code="callback_not_accepted")
    before = {"status": row.status, "attempts": row.attempts}
    row.attempts += 1
    row.agent_id, row.handled_at, row.outcome = user.id, utcnow(), value.value
    retry = value is CallbackOutcome.no_answer and row.attempts < get_settings().callback_max_attempts
    if not retry:
        row.status = (CallbackStatus.cancelled if value is CallbackOutcome.cancelled else CallbackStatus.done).value
    record_audit(session, Actor.of(user), "callback.outcome", "callback", row.id, before=before,
                 after={"status": row.status, "attempts": row.attempts, "outcome": value.value})
    label = OUTCOME_LABELS[value]
    if retry:
        await conversations.post_system(session, conversation, f"回拨未接通，稍后将再次为您回拨（第 {row.attempts} 次）。",
                                        payload={"event": "callback_retry", "callback_id": row.id})
        await _requeue(session, conversation, user.id)
    else:
        await conversations.post_system(session, conversation, f"回拨结果：{label}",
                                        payload={"event": "callback_done", "callback_id": row.id,
                                                 "outcome": value.value})
        await conversations.do_close(session, conversation, by="agent", user=user)
    await session.flush()
    return row


async def _requeue(session: AsyncSession, conversation: Conversation, agent_id: int) -> None:
    """Back to the end of its group's queue (a later try), offered to another agent first."""
    transition(conversation, "requeue", S.queued)
    conversation.agent_id, conversation.accepted_at, conversation.queued_at = None, None, utcnow()
    await session.flush()
    publish_state(session, conversation, previous_agent_id=agent_id)
    profile = await acd.agent_profile(session, agent_id)
    profile.last_released_at = utcnow()
    if conversation.skill_group_id is not None:
        emit(session, QueueChanged(skill_group_id=conversation.skill_group_id))
        await acd.try_assign(session, conversation.skill_group_id, exclude=(conversation.id, agent_id))


# ----------------------------------------------------------------- WeChat and SMS: the 回拨 keyword


async def _number_of(session: AsyncSession, contact: ContactIdentity, typed: str) -> str | None:
    """The number to call: the one typed after 回拨, else an SMS contact's own number, else the bound
    customer's first mobile."""
    if typed:
        return typed
    if contact.kind == ContactKind.sms.value:
        return contact.value
    if contact.customer_id is not None:
        for phone in await session.scalars(select(CustomerPhone.phone).where(
                CustomerPhone.customer_id == contact.customer_id).order_by(CustomerPhone.id)):
            if MOBILE_RE.match(phone):
                return phone
    return None


async def answer_callback_keyword(session: AsyncSession, contact: ContactIdentity, channel: str,
                                  message: Inbound) -> bool:
    """Inbound interceptor: 回拨 from a WeChat or SMS resident waiting in the queue books a callback."""
    match = KEYWORD_RE.match(message.text or "")
    if match is None or channel not in (Channel.wechat.value, Channel.sms.value):
        return False
    conversation = await conversations.open_conversation_of(session, visitor_id_of(contact), channel)
    if conversation is None or conversation.state != S.queued.value:
        return False
    typed = normalize_phone(match.group(1)) if match.group(1).strip() else ""
    number = await _number_of(session, contact, typed)
    if not number:
        await conversations.post_system(session, conversation, "请回复“回拨+手机号”，例如“回拨 13800001111”，我们将保留您的排队位置并回电。",
                                        payload={"event": "callback_number_needed"})
        return True
    try:
        await do_request_callback(session, Actor.system("resident", channel), conversation, number)
    except InvalidInput:
        await conversations.post_system(session, conversation, "手机号格式不正确，请回复“回拨+11位手机号”。",
                                        payload={"event": "callback_number_needed"})
    return True
