"""REST for the agent console: my conversations, the queue, accept/transfer/close, canned replies."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, STAFF_DESK, Role
from gasdesk.clock import to_local, utcnow
from gasdesk.conversations import history, service
from gasdesk.conversations.models import (
    CannedReply,
    Conversation,
    ConversationState,
    LeftMessage,
    Message,
    SenderType,
)
from gasdesk.conversations.schemas import (
    AgentMessageIn,
    CannedReplyOut,
    Colleagues,
    ConversationDetail,
    ConversationRow,
    ConversationSummary,
    ConversationWire,
    LeftMessageOut,
    LeftMessageStatus,
    LinkCustomerIn,
    PostedMessage,
    PresenceIn,
    PresenceOut,
    PresenceSet,
    QueueItem,
    TransferIn,
)
from gasdesk.customers.models import Customer
from gasdesk.customers.service import access_customer
from gasdesk.db import DbSession
from gasdesk.fields import Count, Id
from gasdesk.routing import service as acd
from gasdesk.routing.models import PRESENCE_LABELS, AgentProfile, Presence, SkillGroup

router = APIRouter(prefix="/api/v1", tags=["conversations"])
S = ConversationState


async def _row(session: Any, c: Conversation) -> dict[str, Any]:
    wire = await service.conversation_wire(session, c)
    last = await session.scalar(select(Message).where(Message.conversation_id == c.id)
                                .order_by(Message.seq.desc()).limit(1))
    unread = await session.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == c.id, Message.seq > c.agent_read_seq,
        Message.sender_type == SenderType.resident.value))
    customer = await session.get(Customer, c.customer_id) if c.customer_id else None
    return {**wire, "unread": int(unread or 0), "customer_name": customer.name if customer else None,
            "last_message": {"text": (last.text or "")[:80], "sender": last.sender_type,
                             "at": last.created_at.isoformat()} if last else None}


@router.get("/agent/conversations", response_model=list[ConversationRow])
async def my_conversations(session: DbSession, user: User = allow(*STAFF_DESK)) -> list[dict[str, Any]]:
    """Conversations assigned to me (open): emergencies first, then in the order they came to me."""
    rows = await session.scalars(select(Conversation).where(Conversation.agent_id == user.id,
                                                            Conversation.state == S.assigned.value)
                                 .order_by(Conversation.priority.desc(), Conversation.assigned_at, Conversation.id))
    return [await _row(session, c) for c in rows]


@router.get("/agent/queue", response_model=list[QueueItem])
async def waiting_queue(session: DbSession, user: User = allow(*STAFF_DESK)) -> list[dict[str, Any]]:
    """Waiting conversations in my skill groups (all groups for supervisors), in service order."""
    if Role(user.role) in MANAGERS:
        group_ids = list(await session.scalars(select(SkillGroup.id)))
    else:
        group_ids = await acd.agent_group_ids(session, user.id)
    now = utcnow()
    items = []
    for gid in group_ids:
        group = await session.get(SkillGroup, gid)
        queued = await acd.queued_in_order(session, gid)
        spots = await acd.queue_spots(session, gid, queued=queued)
        for c in queued:
            spot = spots.get(c.id)
            items.append({
                "id": c.id, "skill_group": group.name if group else None, "skill_group_id": gid,
                "priority": c.priority, "channel": c.channel, "handoff_reason": c.handoff_reason,
                "handoff_summary": c.handoff_summary, "position": spot.position if spot else None,
                "waited_s": int((now - c.queued_at).total_seconds()) if c.queued_at else 0,
                "resident_left": c.resident_left_at is not None,
                "callback": await service.callback_of(session, c.id),
            })
    # Across skill groups too: emergencies first, then whoever has waited longest.
    return sorted(items, key=lambda i: (-i["priority"], -i["waited_s"], i["id"]))


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(conversation_id: Id, session: DbSession, after_seq: Annotated[Count, Query()] = 0,
                           user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """Header and transcript (the whole bot part included) of a conversation I may read."""
    c = await service.access_conversation_for_user(session, user, conversation_id)
    messages = await service.messages_after(session, c.id, after_seq, limit=2000)
    return {"conversation": await _row(session, c), "messages": [m.to_wire() for m in messages]}


@router.post("/conversations/{conversation_id}/messages", status_code=201, response_model=PostedMessage)
async def post_agent_message(conversation_id: Id, body: AgentMessageIn, session: DbSession,
                             user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    c = await service.access_conversation_for_user(session, user, conversation_id)
    posted = await service.do_post_message(session, c, SenderType.agent, text=body.text,
                                           client_msg_id=body.client_msg_id, user=user)
    return {"message": posted.message.to_wire(), "duplicate": not posted.created}


@router.post("/conversations/{conversation_id}/accept", response_model=ConversationRow)
async def accept(conversation_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """Take a conversation offered to me or waiting in one of my queues."""
    c = await service.access_conversation_to_accept(session, user, conversation_id)
    await service.do_accept(session, user, c)
    return await _row(session, c)


@router.post("/conversations/{conversation_id}/transfer", response_model=ConversationWire)
async def transfer(conversation_id: Id, body: TransferIn, session: DbSession,
                   user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    c = await service.access_conversation_for_user(session, user, conversation_id)
    await service.do_transfer(session, user, c, to_agent_id=body.to_agent_id, to_group_id=body.to_group_id,
                              note=body.note)
    return await service.conversation_wire(session, c)


@router.post("/conversations/{conversation_id}/close", response_model=ConversationWire)
async def close(conversation_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    c = await service.access_conversation_for_user(session, user, conversation_id)
    await service.do_close(session, c, by="agent", user=user)
    return await service.conversation_wire(session, c)


@router.put("/conversations/{conversation_id}/customer", response_model=ConversationWire)
async def link_customer(conversation_id: Id, body: LinkCustomerIn, session: DbSession,
                        user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    c = await service.access_conversation_for_user(session, user, conversation_id)
    customer = await access_customer(session, body.customer_id)
    await service.do_link_customer(session, Actor.of(user), c, customer, how="agent")
    return await service.conversation_wire(session, c)


@router.get("/customers/{customer_id}/conversations", response_model=list[ConversationSummary])
async def customer_history(customer_id: Id, session: DbSession,
                           _: User = allow(Role.agent, Role.supervisor, Role.admin, Role.dispatcher)
                           ) -> list[dict[str, Any]]:
    """A customer's earlier conversations (for the 360 panel)."""
    return await history.customer_conversations(session, customer_id)


@router.get("/agent/presence", response_model=PresenceOut)
async def get_presence(session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    profile = await acd.agent_profile(session, user.id)
    return {"presence": profile.presence, "label": PRESENCE_LABELS[Presence(profile.presence)],
            "max_concurrent": profile.max_concurrent, "active": await acd.active_count(session, user.id)}


@router.put("/agent/presence", response_model=PresenceSet)
async def set_presence(body: PresenceIn, session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    profile = await acd.do_set_presence(session, user, body.presence)
    return {"presence": profile.presence, "label": PRESENCE_LABELS[Presence(profile.presence)]}


@router.get("/agent/colleagues", response_model=Colleagues)
async def colleagues(session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """Transfer targets: agents with their presence, and skill groups."""
    rows = await session.execute(
        select(User, AgentProfile).outerjoin(AgentProfile, AgentProfile.user_id == User.id)
        .where(User.role.in_([Role.agent.value, Role.supervisor.value]), User.is_active.is_(True), User.id != user.id)
        .order_by(User.display_name))
    groups = await session.scalars(select(SkillGroup).order_by(SkillGroup.id))
    return {
        "agents": [{"id": u.id, "name": u.display_name, "presence": p.presence if p else "offline"} for u, p in rows],
        "groups": [{"id": g.id, "code": g.code, "name": g.name} for g in groups],
    }


VARIABLE_RE = re.compile(r"\{(客户称呼|坐席姓名|户号|日期)\}")


def render_canned(body: str, *, customer: Customer | None, agent: User, account_no: str | None,
                  today: datetime) -> str:
    values = {
        "客户称呼": (customer.name[0] + "先生/女士") if customer else "您",
        "坐席姓名": agent.display_name, "户号": account_no or "（户号）", "日期": today.strftime("%m月%d日"),
    }
    return VARIABLE_RE.sub(lambda m: values[m.group(1)], body)


@router.get("/canned-replies", response_model=list[CannedReplyOut])
async def canned_replies(session: DbSession, conversation_id: Id | None = None,
                         user: User = allow(*STAFF_DESK)) -> list[dict[str, Any]]:
    """Canned replies with variables filled for the given conversation."""
    customer = account_no = None
    if conversation_id:
        c = await service.access_conversation_for_user(session, user, conversation_id)
        if c.customer_id:
            customer = await session.get(Customer, c.customer_id)
            if customer is not None:  # None only if the customer was deleted meanwhile: reply without names
                await session.refresh(customer, ["accounts"])
                account_no = customer.accounts[0].account_no if customer.accounts else None
    rows = await session.scalars(select(CannedReply).order_by(CannedReply.id))
    today = to_local(utcnow())
    return [{"id": r.id, "title": r.title, "shortcut": r.shortcut, "body": r.body,
             "text": render_canned(r.body, customer=customer, agent=user, account_no=account_no, today=today)}
            for r in rows]


@router.get("/left-messages", response_model=list[LeftMessageOut])
async def left_messages(session: DbSession, status: str = "open",
                        _: User = allow(*STAFF_DESK)) -> list[dict[str, Any]]:
    """Messages residents left outside hours or with nobody online."""
    rows = await session.scalars(select(LeftMessage).where(LeftMessage.status == status)
                                 .order_by(LeftMessage.id.desc()).limit(200))
    return [{"id": m.id, "name": m.name, "phone": m.phone, "content": m.content, "reason": m.reason,
             "conversation_id": m.conversation_id, "skill_group_id": m.skill_group_id,
             "created_at": m.created_at.isoformat(), "status": m.status} for m in rows]


@router.post("/left-messages/{left_id}/handled", response_model=LeftMessageStatus)
async def handle_left_message(left_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    m = await service.do_handle_left_message(session, user, left_id)
    return {"id": m.id, "status": m.status}
