"""Conversation changes. Every channel (webchat socket, WeChat, SMS, voice), the agent console,
the CLI and jobs call these ``do_*`` functions; they persist, then publish after commit."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.callbacks.models import CallbackRequest, CallbackStatus
from gasdesk.clock import utcnow
from gasdesk.conversations.announce import announce_assignment, publish_state
from gasdesk.conversations.lifecycle import transition
from gasdesk.conversations.models import (
    Channel,
    ContentType,
    Conversation,
    ConversationState,
    LeftMessage,
    Message,
    SenderType,
)
from gasdesk.customers.contacts import channel_note, contact_of_visitor, do_bind_contact
from gasdesk.customers.identity import IdentityCheckFailed, verify_account_holder
from gasdesk.customers.models import Customer
from gasdesk.customers.validation import check_phone, mask_phone
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.event_types import (
    ConversationMessage,
    ConversationRated,
    ConversationStarted,
    LeftMessageCreated,
    QueueChanged,
    ResidentGone,
)
from gasdesk.events import emit
from gasdesk.hours.service import opening_state
from gasdesk.routing import service as acd
from gasdesk.routing.models import SkillGroup

S = ConversationState
MAX_TEXT = 2000
# States in which a resident waits for, or talks to, people: idle residents matter only here.
WITH_PEOPLE = (S.queued.value, S.assigned.value)
IDLE_SCAN = Actor.system("idle-scan", "job")
# The resident of a web chat, in audit rows of what they do themselves (close, pass the identity check, return).
RESIDENT = Actor.system("resident", "webchat")
# Queue priority of emergencies (the seeded gas-leak hand-off rule uses it): they queue even when the queue is
# full or the group closed, and come first in every queue and list.
EMERGENCY_PRIORITY = 10
CLIENT_MSG_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

# Residents on WeChat or SMS get the bot's and agents' messages through the outbound queue: the channel
# layer registers the hook (gasdesk/worker.py), called for each such message in its own transaction.
ReplyHook = Callable[[AsyncSession, Conversation, Message], Awaitable[Any]]
ON_REMOTE_REPLY: list[ReplyHook] = []


def on_reply_to_remote_resident(hook: ReplyHook) -> None:
    if hook not in ON_REMOTE_REPLY:
        ON_REMOTE_REPLY.append(hook)


# Higher domains act on a conversation's start and close in the same transaction (smart tags: strangers' numbers
# are marked when they first write or call; rules are queued when it closes). Registered by gasdesk/worker.py.
ConversationHook = Callable[[AsyncSession, Conversation], Awaitable[Any]]
ON_STARTED: list[ConversationHook] = []
ON_CLOSED: list[ConversationHook] = []


def on_conversation_started(hook: ConversationHook) -> None:
    if hook not in ON_STARTED:
        ON_STARTED.append(hook)


def on_conversation_closed(hook: ConversationHook) -> None:
    if hook not in ON_CLOSED:
        ON_CLOSED.append(hook)


# ---------------------------------------------------------------- reading and access


async def access_conversation_for_user(session: AsyncSession, user: User, conversation_id: int) -> Conversation:
    """An agent reads only conversations assigned to them; supervisors and admins read all."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("会话不存在", code="conversation_not_found")
    if Role(user.role) in MANAGERS:
        return conversation
    if conversation.agent_id != user.id:
        raise PermissionDenied("该会话未分配给您", code="conversation_not_yours")
    return conversation


async def access_conversation_to_accept(session: AsyncSession, user: User, conversation_id: int) -> Conversation:
    """A conversation the user may try to take: any waiting or bot one (``do_accept`` checks the skill group
    and capacity), one already theirs, or, for supervisors and admins, any. Another agent's is refused."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("会话不存在", code="conversation_not_found")
    if (conversation.state == S.assigned.value and conversation.agent_id != user.id
            and Role(user.role) not in MANAGERS):
        raise PermissionDenied("该会话未分配给您", code="conversation_not_yours")
    return conversation


async def access_conversation_for_visitor(session: AsyncSession, visitor_id: str, conversation_id: int) -> Conversation:
    """A resident reads only conversations of their own visitor identity."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or conversation.visitor_id != visitor_id:
        raise NotFound("会话不存在", code="conversation_not_found")
    return conversation


async def messages_after(session: AsyncSession, conversation_id: int, after_seq: int = 0,
                         limit: int = 500) -> list[Message]:
    return list(await session.scalars(
        select(Message).where(Message.conversation_id == conversation_id, Message.seq > after_seq)
        .order_by(Message.seq).limit(limit)
    ))


async def open_conversation_of(session: AsyncSession, visitor_id: str, channel: str) -> Conversation | None:
    return await session.scalar(
        select(Conversation).where(Conversation.visitor_id == visitor_id, Conversation.channel == channel,
                                   Conversation.state != S.closed.value)
        .order_by(Conversation.id.desc()).limit(1)
    )


async def callback_of(session: AsyncSession, conversation_id: int) -> dict[str, Any] | None:
    """The conversation's open callback request (gasdesk/callbacks), the number masked, for consoles."""
    row = await session.scalar(select(CallbackRequest).where(
        CallbackRequest.conversation_id == conversation_id, CallbackRequest.status == CallbackStatus.waiting.value)
        .order_by(CallbackRequest.id.desc()).limit(1))
    if row is None:
        return None
    return {"id": row.id, "phone": mask_phone(row.phone), "status": row.status, "attempts": row.attempts,
            "outcome": row.outcome, "channel": row.channel}


async def agent_name(session: AsyncSession, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = await session.get(User, user_id)
    return user.display_name if user else None


async def conversation_wire(session: AsyncSession, conversation: Conversation) -> dict[str, Any]:
    """Conversation header as sent to widgets and consoles."""
    group = await session.get(SkillGroup, conversation.skill_group_id) if conversation.skill_group_id else None
    return {
        "id": conversation.id, "channel": conversation.channel, "state": conversation.state,
        "agent_id": conversation.agent_id, "agent_name": await agent_name(session, conversation.agent_id),
        "accepted": conversation.accepted_at is not None,
        "skill_group": group.name if group else None, "skill_group_id": conversation.skill_group_id,
        "priority": conversation.priority, "customer_id": conversation.customer_id,
        "last_seq": conversation.last_seq, "rating": conversation.rating,
        "handoff_reason": conversation.handoff_reason, "handoff_summary": conversation.handoff_summary,
        "created_at": conversation.created_at.isoformat(),
        "assigned_at": conversation.assigned_at.isoformat() if conversation.assigned_at else None,
        "accepted_at": conversation.accepted_at.isoformat() if conversation.accepted_at else None,
        "queued_at": conversation.queued_at.isoformat() if conversation.queued_at else None,
        "resident_left": conversation.resident_left_at is not None,
        "resident_left_at": conversation.resident_left_at.isoformat() if conversation.resident_left_at else None,
        "callback": await callback_of(session, conversation.id),
        "channel_note": None if conversation.channel in (Channel.webchat.value, Channel.voice.value) else await channel_note(
            session, conversation.visitor_id or "", conversation.customer_id),
    }


# ---------------------------------------------------------------- messages


def check_client_msg_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not CLIENT_MSG_ID_RE.match(value):
        raise InvalidInput("client_msg_id 只能包含字母、数字和 _.:-（最多 64 位）", code="invalid_client_msg_id")
    return value


def check_text(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("消息内容不能为空", code="empty_message")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"消息过长（最多 {MAX_TEXT} 字）", code="message_too_long")
    return text


async def _next_seq(session: AsyncSession, conversation: Conversation) -> int:
    # One atomic UPDATE … RETURNING: concurrent writers (resident and agent, several processes) never share a seq.
    seq = (await session.execute(
        update(Conversation).where(Conversation.id == conversation.id)
        .values(last_seq=Conversation.last_seq + 1).returning(Conversation.last_seq)
        .execution_options(synchronize_session=False)
    )).scalar_one()
    conversation.last_seq = int(seq)
    set_committed_value(conversation, "last_seq", int(seq))
    return int(seq)


async def message_by_client_id(session: AsyncSession, conversation_id: int, client_msg_id: str | None) -> Message | None:
    if not client_msg_id:
        return None
    return await session.scalar(select(Message).where(Message.conversation_id == conversation_id,
                                                      Message.client_msg_id == client_msg_id))


async def _give_back_seq(session: AsyncSession, conversation: Conversation) -> None:
    """Undo ``_next_seq`` while we still hold the lock, keeping seqs gap-free."""
    seq = (await session.execute(
        update(Conversation).where(Conversation.id == conversation.id)
        .values(last_seq=Conversation.last_seq - 1).returning(Conversation.last_seq)
        .execution_options(synchronize_session=False)
    )).scalar_one()
    set_committed_value(conversation, "last_seq", int(seq))


@dataclass(frozen=True)
class Posted:
    message: Message
    created: bool  # False when the client_msg_id had been seen: the stored message is returned instead


async def do_post_message(
    session: AsyncSession,
    conversation: Conversation,
    sender: SenderType,
    *,
    text: str | None = None,
    content_type: ContentType = ContentType.text,
    payload: dict[str, Any] | None = None,
    client_msg_id: str | None = None,
    user: User | None = None,
    sender_name: str | None = None,
    channel_meta: dict[str, Any] | None = None,
) -> Posted:
    """Persist one message (idempotent by ``client_msg_id``) and publish it after commit."""
    client_msg_id = check_client_msg_id(client_msg_id)
    if conversation.state == S.closed.value and sender in (SenderType.resident, SenderType.agent):
        existing = await message_by_client_id(session, conversation.id, client_msg_id)
        if existing is not None:
            return Posted(existing, False)
        raise Conflict("会话已结束，不能再发送消息", code="conversation_closed")
    if content_type in (ContentType.text,) and sender in (SenderType.resident, SenderType.agent):
        text = check_text(text)
    # Take the next seq first: the UPDATE locks the conversation (row lock on PostgreSQL, the write lock on
    # SQLite), so a resend racing its original waits here and then sees the committed original below.
    seq = await _next_seq(session, conversation)
    existing = await message_by_client_id(session, conversation.id, client_msg_id)
    if existing is not None:
        await _give_back_seq(session, conversation)
        return Posted(existing, False)
    message = Message(
        conversation_id=conversation.id, seq=seq, sender_type=sender.value,
        sender_user_id=user.id if user else None,
        sender_name=sender_name or (user.display_name if user else None),
        content_type=content_type.value, text=text, payload=payload, client_msg_id=client_msg_id,
        channel_meta=channel_meta, created_at=utcnow(),
    )
    session.add(message)
    await session.flush()
    if sender is SenderType.agent:
        if conversation.first_response_at is None:
            conversation.first_response_at = message.created_at
        conversation.agent_read_seq = seq
    emit(session, ConversationMessage(conversation_id=conversation.id, agent_id=conversation.agent_id,
                                     message=message.to_wire()))
    if conversation.channel != Channel.webchat.value and sender is not SenderType.resident:
        for hook in ON_REMOTE_REPLY:
            await hook(session, conversation, message)
    return Posted(message, True)


async def post_system(session: AsyncSession, conversation: Conversation, text: str,
                      payload: dict[str, Any] | None = None, content_type: ContentType = ContentType.event) -> Message:
    posted = await do_post_message(session, conversation, SenderType.system, text=text, payload=payload,
                                   content_type=content_type)
    return posted.message


# ---------------------------------------------------------------- lifecycle


async def do_start_conversation(session: AsyncSession, *, channel: str, visitor_id: str,
                                customer_id: int | None = None) -> Conversation:
    """Open a conversation in the bot state."""
    try:
        channel_value = Channel(channel)
    except ValueError:
        raise InvalidInput(f"未知渠道: {channel}", code="invalid_channel") from None
    conversation = Conversation(channel=channel_value.value, state=S.bot.value, visitor_id=visitor_id,
                                customer_id=customer_id, last_seq=0, agent_read_seq=0, bot_misses=0,
                                priority=0, created_at=utcnow())
    session.add(conversation)
    await session.flush()
    publish_state(session, conversation, event=ConversationStarted)
    for hook in ON_STARTED:
        await hook(session, conversation)
    return conversation


@dataclass(frozen=True)
class HandoffOutcome:
    queued: bool
    reason: str | None = None  # when not queued: after_hours | no_agent | queue_full
    spot: acd.QueueSpot | None = None
    group: SkillGroup | None = None


async def do_handoff(
    session: AsyncSession,
    conversation: Conversation,
    *,
    group: SkillGroup,
    reason: str,
    priority: int = 0,
    summary: dict[str, Any] | None = None,
) -> HandoffOutcome:
    """Move a bot conversation into a skill group's queue, or explain why it cannot (overflow).

    Emergencies queue even when the queue is full or the group is outside hours: someone must see them.
    """
    if conversation.state == S.queued.value or conversation.state == S.assigned.value:
        return HandoffOutcome(True, spot=await queue_spot(session, conversation), group=group)
    emergency = priority >= EMERGENCY_PRIORITY
    if not emergency:
        if not (await opening_state(session, group)).is_open:
            return HandoffOutcome(False, "after_hours", group=group)
        if not await acd.staffed(session, group.id):
            return HandoffOutcome(False, "no_agent", group=group)
        waiting = await session.scalar(select(func.count()).select_from(Conversation).where(
            Conversation.state == S.queued.value, Conversation.skill_group_id == group.id))
        if int(waiting or 0) >= group.queue_capacity:
            return HandoffOutcome(False, "queue_full", group=group)
    transition(conversation, "handoff", S.queued)
    conversation.skill_group_id = group.id
    conversation.priority = priority
    conversation.queued_at = utcnow()
    conversation.handoff_reason = reason
    conversation.handoff_summary = summary
    await session.flush()
    publish_state(session, conversation)
    emit(session, QueueChanged(skill_group_id=group.id))
    await acd.try_assign(session, group.id)
    return HandoffOutcome(conversation.state == S.queued.value or conversation.state == S.assigned.value,
                          spot=await queue_spot(session, conversation), group=group)


async def do_raise_to_emergency(session: AsyncSession, conversation: Conversation, *,
                                actor: Actor = Actor.system("leak-detector", "webchat")) -> bool:
    """A resident already waiting for, or talking to, people reports a gas leak: the conversation becomes an
    emergency (first in the queue and in the agent's list; a queued one may be assigned at once)."""
    if conversation.state not in WITH_PEOPLE or conversation.priority >= EMERGENCY_PRIORITY:
        return False
    before = conversation.priority
    conversation.priority = EMERGENCY_PRIORITY
    await session.flush()
    record_audit(session, actor, "conversation.emergency", "conversation", conversation.id,
                 before={"priority": before}, after={"priority": EMERGENCY_PRIORITY})
    publish_state(session, conversation)
    if conversation.state == S.queued.value and conversation.skill_group_id is not None:
        emit(session, QueueChanged(skill_group_id=conversation.skill_group_id))
        await acd.try_assign(session, conversation.skill_group_id)
    return True


async def queue_spot(session: AsyncSession, conversation: Conversation) -> acd.QueueSpot | None:
    if conversation.state != S.queued.value or conversation.skill_group_id is None:
        return None
    return (await acd.queue_spots(session, conversation.skill_group_id)).get(conversation.id)


async def do_accept(session: AsyncSession, agent: User, conversation: Conversation) -> Conversation:
    """An agent takes a conversation: one offered to them, or one waiting in a queue they serve."""
    before_state, before_agent = conversation.state, conversation.agent_id
    if conversation.state == S.queued.value:
        if Role(agent.role) not in MANAGERS and conversation.skill_group_id not in await acd.agent_group_ids(
                session, agent.id):
            raise PermissionDenied("您不在该会话所属的技能组", code="not_in_skill_group")
        profile = await acd.agent_profile(session, agent.id, lock=True)
        if not await acd.has_room(session, profile, conversation.channel):
            if acd.is_call(conversation.channel):
                raise Conflict("您正在通话中，请结束当前通话后再接听", code="agent_on_call")
            raise Conflict(f"您已达到最大并发会话数（{profile.max_concurrent}）", code="agent_at_capacity")
        if not await acd.assign_to(session, conversation, agent.id):
            raise Conflict("该会话已被其他坐席接入", code="already_assigned")
        await announce_assignment(session, conversation, previous_agent_id=None)
        if conversation.skill_group_id is not None:  # the event names a group (its group may have been removed)
            emit(session, QueueChanged(skill_group_id=conversation.skill_group_id))
    elif conversation.state == S.assigned.value:
        if conversation.agent_id != agent.id:
            raise Conflict("该会话已由其他坐席服务", code="already_assigned")
    else:
        transition(conversation, "assign", S.assigned)  # raises the right message for bot/closed
    if conversation.accepted_at is None:
        record_audit(session, Actor.of(agent), "conversation.accept", "conversation", conversation.id,
                     before={"state": before_state, "agent_id": before_agent},
                     after={"state": conversation.state, "agent_id": conversation.agent_id})
        conversation.accepted_at = utcnow()
        await post_system(session, conversation, f"客服 {agent.display_name} 为您服务，请问有什么可以帮您？",
                          payload={"event": "agent_joined", "agent_name": agent.display_name})
        publish_state(session, conversation)
    return conversation


async def do_transfer(
    session: AsyncSession, actor: User, conversation: Conversation, *, to_agent_id: int | None = None,
    to_group_id: int | None = None, note: str = "",
) -> Conversation:
    """Transfer to another agent (directly) or another skill group (back into its queue)."""
    if (to_agent_id is None) == (to_group_id is None):
        raise InvalidInput("请选择转接的坐席或技能组（二选一）", code="invalid_transfer")
    previous = conversation.agent_id
    if to_agent_id is not None:
        target = await session.get(User, to_agent_id)
        if target is None or not target.is_active or Role(target.role) not in (Role.agent, Role.supervisor):
            raise InvalidInput("目标坐席不存在或不可用", code="invalid_transfer")
        if target.id == conversation.agent_id:
            raise InvalidInput("会话已在该坐席名下", code="invalid_transfer")
        profile = await acd.agent_profile(session, target.id, lock=True)
        if not await acd.has_room(session, profile, conversation.channel):
            if acd.is_call(conversation.channel):
                raise Conflict(f"{target.display_name} 正在通话中，请稍后或转技能组", code="agent_on_call")
            raise Conflict(f"{target.display_name} 已满负荷，请稍后或转技能组", code="agent_at_capacity")
        transition(conversation, "transfer_agent", S.assigned)
        conversation.agent_id = target.id
        conversation.assigned_at = utcnow()
        conversation.accepted_at = None
        profile.last_assigned_at = utcnow()
        await post_system(session, conversation, "正在为您转接其他客服，请稍候",
                          payload={"event": "transfer", "to_agent": target.display_name, "note": note})
        await announce_assignment(session, conversation, previous_agent_id=previous)
    else:
        group = await acd.get_group(session, to_group_id)  # type: ignore[arg-type]
        transition(conversation, "requeue", S.queued)
        conversation.agent_id = None
        conversation.accepted_at = None
        conversation.skill_group_id = group.id
        conversation.queued_at = utcnow()
        await post_system(session, conversation, f"正在为您转接到{group.name}，请稍候",
                          payload={"event": "transfer", "to_group": group.name, "note": note})
        publish_state(session, conversation, previous_agent_id=previous)
        emit(session, QueueChanged(skill_group_id=group.id))
        await acd.try_assign(session, group.id, exclude=(conversation.id, previous) if previous else None)
    if previous is not None:
        await _release_agent(session, previous)
    record_audit(session, Actor.of(actor), "conversation.transfer", "conversation", conversation.id,
                 before={"agent_id": previous}, after={"agent_id": conversation.agent_id,
                                                      "skill_group_id": conversation.skill_group_id})
    return conversation


async def _release_agent(session: AsyncSession, agent_id: int) -> None:
    """An agent has capacity again: note it and pull the next waiting conversations."""
    profile = await acd.agent_profile(session, agent_id)
    profile.last_released_at = utcnow()
    await acd.try_assign_across(session, await acd.agent_group_ids(session, agent_id))


SATISFACTION_TITLE = "请为本次服务评价"
SATISFACTION_CARD = {
    "kind": "rating", "title": SATISFACTION_TITLE, "scale": [1, 2, 3, 4, 5],
    "labels": {"1": "非常不满意", "2": "不满意", "3": "一般", "4": "满意", "5": "非常满意"},
}


def _closer(by: str, user: User | None) -> Actor:
    if user is not None:
        return Actor.of(user)
    return RESIDENT if by == "resident" else Actor.system(by, "job")


async def do_close(session: AsyncSession, conversation: Conversation, *, by: str,
                   user: User | None = None) -> Conversation:
    """End a conversation (by agent, resident, bot or system) and ask the resident for a rating; audited."""
    before = {"state": conversation.state, "agent_id": conversation.agent_id}
    await _close(session, conversation, by=by)
    record_audit(session, _closer(by, user), "conversation.close", "conversation", conversation.id, before=before,
                 after={"state": conversation.state, "closed_by": by})
    return conversation


async def _close(session: AsyncSession, conversation: Conversation, *, by: str) -> Conversation:
    previous_state = conversation.state
    transition(conversation, "close", S.closed)
    conversation.closed_at = utcnow()
    conversation.closed_by = by
    await post_system(session, conversation, "本次会话已结束，感谢您的咨询。", payload={"event": "closed", "by": by})
    if previous_state == S.assigned.value:
        await post_system(session, conversation, SATISFACTION_TITLE, payload=SATISFACTION_CARD,
                          content_type=ContentType.card)
    publish_state(session, conversation)
    if previous_state == S.queued.value and conversation.skill_group_id:
        emit(session, QueueChanged(skill_group_id=conversation.skill_group_id))
    if previous_state == S.assigned.value and conversation.agent_id:
        await _release_agent(session, conversation.agent_id)
    for hook in ON_CLOSED:
        await hook(session, conversation)
    return conversation


async def do_rate(session: AsyncSession, conversation: Conversation, score: int, comment: str = "") -> Conversation:
    """Store the resident's 1–5 satisfaction rating (once, after close)."""
    if conversation.state != S.closed.value:
        raise Conflict("会话结束后才能评价", code="not_closed")
    if conversation.rating is not None:
        raise Conflict("您已评价过本次服务", code="already_rated")
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidInput("评分应为 1–5 分", code="invalid_rating")
    comment = (comment or "").strip()
    if len(comment) > 500:
        raise InvalidInput("评价内容最多 500 字", code="invalid_rating")
    conversation.rating = score
    conversation.rating_comment = comment or None
    conversation.rated_at = utcnow()
    await post_system(session, conversation, "感谢您的评价！", payload={"event": "rated", "score": score})
    emit(session, ConversationRated(conversation_id=conversation.id, rating=score,
                                   agent_id=conversation.agent_id))
    return conversation


LEFT_MESSAGE_REASONS = ("after_hours", "no_agent", "queue_full")


async def do_leave_message(session: AsyncSession, conversation: Conversation | None, *, phone: str, content: str,
                           reason: str, name: str | None = None, group: SkillGroup | None = None) -> LeftMessage:
    """Overflow: store the resident's message for the next shift (it can become a ticket)."""
    phone = check_phone(phone)
    content = check_text(content)
    # The widget sends a code; the column is plain, so anything else (free text, a phone) is not stored.
    reason = reason if reason in LEFT_MESSAGE_REASONS else "no_agent"
    left = LeftMessage(
        conversation_id=conversation.id if conversation else None, skill_group_id=group.id if group else None,
        customer_id=conversation.customer_id if conversation else None, name=(name or "").strip()[:30] or None,
        phone=phone, content=content, reason=reason, status="open", created_at=utcnow(),
    )
    session.add(left)
    await session.flush()
    if conversation is not None:
        await post_system(session, conversation, "您的留言已收到，我们会在工作时间尽快与您联系。",
                          payload={"event": "message_left", "left_message_id": left.id})
    emit(session, LeftMessageCreated(left_message_id=left.id, skill_group_id=left.skill_group_id))
    return left


LINK_HOW = ("agent", "resident_identity", "bot_identity", "contact")


async def do_link_customer(session: AsyncSession, actor: Actor, conversation: Conversation, customer: Customer, *,
                           how: str) -> bool:
    """The one way a conversation gets its customer: an agent picks one (``how="agent"``), the resident
    passes the identity check in the widget (``"resident_identity"``) or in the bot's flow
    (``"bot_identity"``). Audited with ids only; the consoles hear of it after commit. Returns False when
    the conversation already had this customer (nothing changes, nothing is recorded)."""
    if how not in LINK_HOW:
        raise ValueError(f"unknown link path {how!r}")
    before = conversation.customer_id
    if before == customer.id:
        return False
    conversation.customer_id = customer.id
    record_audit(session, actor, "conversation.link_customer", "conversation", conversation.id,
                 before={"customer_id": before}, after={"customer_id": customer.id, "how": how})
    contact = await contact_of_visitor(session, conversation.visitor_id or "")
    if contact is not None and how != "contact":
        # A WeChat user or phone identified in the chat is bound: their next conversation starts known.
        await do_bind_contact(session, actor, contact, customer,
                              how="agent" if how == "agent" else "resident_identity")
    publish_state(session, conversation)
    return True


async def do_identify_resident(session: AsyncSession, conversation: Conversation, account_no: str,
                               phone_last4: str) -> str:
    """The widget's identity check: link the conversation to the customer whose 户号 and the last 4 digits of
    a registered phone match (``do_link_customer``, ``how="resident_identity"``).

    Returns the customer's name masked for display (王**). The same vague error for every failure, so the
    check cannot be used to probe which 户号 exist; attempts are limited (``customers.identity``).
    """
    try:
        customer = await verify_account_holder(session, account_no, phone_last4,
                                               visitor_id=conversation.visitor_id or "")
    except IdentityCheckFailed:
        await commit(session)  # keep the lock-out alert although the frame fails
        raise
    await do_link_customer(session, RESIDENT, conversation, customer, how="resident_identity")
    return customer.name[0] + "*" * (len(customer.name) - 1)


async def do_handle_left_message(session: AsyncSession, user: User, left_id: int) -> LeftMessage:
    """Mark a resident's left message as dealt with (called back, answered elsewhere); audited."""
    left = await session.get(LeftMessage, left_id)
    if left is None:
        raise NotFound("留言不存在", code="left_message_not_found")
    before = left.status
    left.status = "handled"
    left.handled_at = utcnow()
    record_audit(session, Actor.of(user), "left_message.handled", "left_message", left.id,
                 before={"status": before}, after={"status": left.status})
    return left


async def do_mark_read(session: AsyncSession, conversation: Conversation, seq: int) -> None:
    if seq > conversation.agent_read_seq:
        conversation.agent_read_seq = min(seq, conversation.last_seq)


# ---------------------------------------------------------------- idle residents


def do_note_resident_gone(session: AsyncSession, conversation: Conversation) -> None:
    """No socket of the resident follows the conversation any more (they closed the tab): start the idle
    clock. Presence bookkeeping, not a change anyone made: no audit row. Other processes that still hold a
    socket of this resident answer the event with ``do_note_resident_back``."""
    if conversation.state not in WITH_PEOPLE or conversation.resident_gone_at is not None:
        return
    conversation.resident_gone_at = utcnow()
    emit(session, ResidentGone(conversation_id=conversation.id))


def do_note_resident_back(session: AsyncSession, conversation: Conversation) -> None:
    """The resident is connected again: stop the idle clock, and lift a 居民已离开 mark (audited)."""
    if conversation.resident_gone_at is None and conversation.resident_left_at is None:
        return
    was_marked = conversation.resident_left_at is not None
    conversation.resident_gone_at = None
    conversation.resident_left_at = None
    if was_marked:
        record_audit(session, RESIDENT, "conversation.resident_back", "conversation",
                     conversation.id, before={"resident_left": True}, after={"resident_left": False})
        publish_state(session, conversation)
        _queue_may_show_it(session, conversation)


def do_mark_resident_left(session: AsyncSession, conversation: Conversation, *, at: datetime | None = None,
                          actor: Actor = IDLE_SCAN) -> None:
    """Show 居民已离开 in the consoles: the resident has been gone ``resident_left_after_s``."""
    if conversation.state not in WITH_PEOPLE or conversation.resident_left_at is not None:
        return
    conversation.resident_left_at = at or utcnow()
    record_audit(session, actor, "conversation.resident_left", "conversation", conversation.id,
                 before={"resident_left": False},
                 after={"resident_left": True, "gone_since": conversation.resident_gone_at.isoformat()
                        if conversation.resident_gone_at else None})
    publish_state(session, conversation)
    _queue_may_show_it(session, conversation)


async def do_release_idle(session: AsyncSession, conversation: Conversation, *, actor: Actor = IDLE_SCAN) -> None:
    """End a conversation whose resident left long ago: it stops counting against the agent's capacity
    (and the next waiting resident is assigned) or stops waiting in the queue."""
    if conversation.state not in WITH_PEOPLE:
        return
    before = {"state": conversation.state, "agent_id": conversation.agent_id}
    await post_system(session, conversation, "居民长时间未返回，会话已自动结束。如需帮助，请重新发起咨询。",
                      payload={"event": "idle_released"})
    await _close(session, conversation, by="idle")  # the idle_release row below is this close's audit row
    record_audit(session, actor, "conversation.idle_release", "conversation", conversation.id, before=before,
                 after={"state": conversation.state, "agent_id": conversation.agent_id})


def _queue_may_show_it(session: AsyncSession, conversation: Conversation) -> None:
    if conversation.state == S.queued.value and conversation.skill_group_id is not None:
        emit(session, QueueChanged(skill_group_id=conversation.skill_group_id))
