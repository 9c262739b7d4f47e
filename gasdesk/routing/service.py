"""ACD: who is available, where a conversation queues, and which agent gets it.

Assignment is a conditional UPDATE (``… WHERE state='queued'``) plus a row lock on the agent's
profile, so two app processes can never hand the same conversation out twice or push an agent past
their capacity.

Capacity has two kinds of slot. Chats (web chat, WeChat, SMS) count against ``max_concurrent``; a call (a
``voice`` conversation) takes the agent's one voice slot and no chat slot: an agent on a call keeps
getting chats up to ``max_concurrent``, and is offered a call only while they have none (whatever their
chat load). Queues are served in one order for both kinds (emergencies first, then the longest waiting);
a conversation whose kind of slot is full everywhere waits without holding back the other kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.clock import utcnow
from gasdesk.conversations.announce import announce_assignment
from gasdesk.conversations.models import Channel, Conversation, ConversationState
from gasdesk.db import execute_counted, table_of
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.event_types import AgentPresence, QueueChanged
from gasdesk.events import emit
from gasdesk.hours.service import opening_state
from gasdesk.opening_hours import check_weekly_hours
from gasdesk.routing.models import (
    AgentProfile,
    AgentSkill,
    HandoffKind,
    HandoffRule,
    Presence,
    RoutingMode,
    SkillGroup,
)

S = ConversationState
OPEN_STATES = (S.assigned.value,)
VOICE = Channel.voice.value


def is_call(channel: str | None) -> bool:
    """Whether a conversation of this channel takes the voice slot (a call) rather than a chat slot."""
    return channel == VOICE


@dataclass(frozen=True)
class QueueSpot:
    position: int  # 1 = next
    waiting: int
    estimated_wait_s: int


async def get_group(session: AsyncSession, code_or_id: str | int) -> SkillGroup:
    if isinstance(code_or_id, int):
        group = await session.get(SkillGroup, code_or_id)
    else:
        group = await session.scalar(select(SkillGroup).where(SkillGroup.code == code_or_id))
    if group is None:
        raise NotFound(f"技能组 {code_or_id} 不存在", code="skill_group_not_found")
    return group


async def default_group(session: AsyncSession) -> SkillGroup:
    group = await session.scalar(select(SkillGroup).order_by(SkillGroup.id).limit(1))
    if group is None:
        raise NotFound("尚未配置任何技能组", code="skill_group_not_found")
    return group


async def agent_profile(session: AsyncSession, user_id: int, *, lock: bool = False) -> AgentProfile:
    """The agent's ACD row. ``lock=True`` serialises capacity checks for this agent until commit:
    FOR UPDATE on PostgreSQL; on SQLite a no-op UPDATE takes the database write lock first (its
    SELECTs run outside the transaction, so the count that follows sees every committed assignment)."""
    query = select(AgentProfile).where(AgentProfile.user_id == user_id)
    if lock:
        if session.get_bind().dialect.name == "sqlite":
            await session.execute(update(AgentProfile).where(AgentProfile.user_id == user_id)
                                  .values(max_concurrent=AgentProfile.max_concurrent)
                                  .execution_options(synchronize_session=False))
        query = query.with_for_update()
    profile = await session.scalar(query)
    if profile is None:
        profile = AgentProfile(user_id=user_id, presence=Presence.offline.value, max_concurrent=5)
        session.add(profile)
        await session.flush()
    return profile


async def active_count(session: AsyncSession, user_id: int) -> int:
    """The chats the agent is serving: what ``max_concurrent`` bounds (a call is not counted: it takes the
    voice slot, see :func:`on_call`)."""
    return int(await session.scalar(
        select(func.count()).select_from(Conversation).where(
            Conversation.agent_id == user_id, Conversation.state == S.assigned.value, Conversation.channel != VOICE)
    ) or 0)


async def on_call(session: AsyncSession, user_id: int) -> bool:
    """Whether the agent's voice slot is taken: a call assigned to them (ringing on their softphone or talking)."""
    found = await session.scalar(
        select(Conversation.id).where(Conversation.agent_id == user_id, Conversation.state == S.assigned.value,
                                      Conversation.channel == VOICE).limit(1))
    return found is not None


async def has_room(session: AsyncSession, profile: AgentProfile, channel: str | None) -> bool:
    """Whether the agent can take one more conversation of ``channel`` now: a call needs the voice slot free;
    a chat needs fewer than ``max_concurrent`` chats. Presence is the caller's concern."""
    if is_call(channel):
        return not await on_call(session, profile.user_id)
    return await active_count(session, profile.user_id) < profile.max_concurrent


async def do_set_presence(session: AsyncSession, user: User, presence: str) -> AgentProfile:
    """An agent changes their own presence (audited: it decides who is offered conversations); going online
    pulls waiting conversations."""
    try:
        value = Presence(presence)
    except ValueError:
        raise InvalidInput(f"未知的在线状态: {presence}", code="invalid_presence") from None
    profile = await agent_profile(session, user.id)
    if profile.presence != value.value:
        record_audit(session, Actor.of(user), "agent.presence", "user", user.id,
                     before={"presence": profile.presence}, after={"presence": value.value})
        profile.presence = value.value
        profile.presence_changed_at = utcnow()
        if value is Presence.online and profile.last_released_at is None:
            profile.last_released_at = utcnow()
        emit(session, AgentPresence(user_id=user.id, presence=value.value))
    if value is Presence.online:
        await try_assign_across(session, await agent_group_ids(session, user.id))
    return profile


async def agent_group_ids(session: AsyncSession, user_id: int) -> list[int]:
    return list(await session.scalars(select(AgentSkill.skill_group_id).where(AgentSkill.user_id == user_id)))


async def do_set_skills(session: AsyncSession, user: User, group_ids: list[int], max_concurrent: int | None = None) -> None:
    await session.execute(table_of(AgentSkill).delete().where(AgentSkill.user_id == user.id))
    for gid in dict.fromkeys(group_ids):
        session.add(AgentSkill(user_id=user.id, skill_group_id=gid))
    if max_concurrent is not None:
        if not 1 <= max_concurrent <= 50:
            raise InvalidInput("最大并发会话数应在 1–50 之间", code="invalid_max_concurrent")
        (await agent_profile(session, user.id)).max_concurrent = max_concurrent
    await session.flush()


async def available_agents(session: AsyncSession, group_id: int,
                           channel: str | None = None) -> list[tuple[AgentProfile, int]]:
    """Online agents with the skill and room for a conversation of ``channel`` (a chat when None), with their
    current chat load: for a chat, fewer chats than ``max_concurrent``; for a call, no call."""
    chats = func.sum(case((Conversation.channel == VOICE, 0), else_=1))
    calls = func.sum(case((Conversation.channel == VOICE, 1), else_=0))
    load = (
        select(Conversation.agent_id, chats.label("chats"), calls.label("calls"))
        .where(Conversation.state == S.assigned.value, Conversation.agent_id.is_not(None))
        .group_by(Conversation.agent_id).subquery()
    )
    rows = await session.execute(
        select(AgentProfile, func.coalesce(load.c.chats, 0), func.coalesce(load.c.calls, 0))
        .join(AgentSkill, AgentSkill.user_id == AgentProfile.user_id)
        .join(User, User.id == AgentProfile.user_id)
        .outerjoin(load, load.c.agent_id == AgentProfile.user_id)
        .where(AgentSkill.skill_group_id == group_id, AgentProfile.presence == Presence.online.value,
               User.is_active.is_(True), User.role.in_([Role.agent.value, Role.supervisor.value]))
    )
    if is_call(channel):
        return [(profile, int(n)) for profile, n, c in rows if int(c) == 0]
    return [(profile, int(n)) for profile, n, _ in rows if int(n) < profile.max_concurrent]


async def staffed(session: AsyncSession, group_id: int) -> bool:
    """Is anyone online or busy in this group (so a queued resident will eventually be served)?"""
    count = await session.scalar(
        select(func.count()).select_from(AgentProfile)
        .join(AgentSkill, AgentSkill.user_id == AgentProfile.user_id)
        .where(AgentSkill.skill_group_id == group_id,
               AgentProfile.presence.in_([Presence.online.value, Presence.busy.value]))
    )
    return bool(count)


def _order_candidates(group: SkillGroup, candidates: list[tuple[AgentProfile, int]]) -> list[AgentProfile]:
    epoch = datetime.min.replace(tzinfo=utcnow().tzinfo)
    mode = RoutingMode(group.routing_mode)
    key: Callable[[tuple[AgentProfile, int]], tuple[Any, ...]]
    if mode is RoutingMode.least_active:
        key = lambda c: (c[1], c[0].last_assigned_at or epoch)  # noqa: E731
    elif mode is RoutingMode.round_robin:
        key = lambda c: (c[0].last_assigned_at or epoch, c[0].user_id)  # noqa: E731
    else:  # longest idle: idle since they last finished (or came online), then since last assignment
        key = lambda c: (c[1] > 0, c[0].last_released_at or epoch, c[0].last_assigned_at or epoch)  # noqa: E731
    return [profile for profile, _ in sorted(candidates, key=key)]


async def _last_agent_for(session: AsyncSession, conversation: Conversation) -> int | None:
    """The agent who last served this resident (same visitor or same customer)."""
    who = (Conversation.customer_id == conversation.customer_id) if conversation.customer_id else (
        Conversation.visitor_id == conversation.visitor_id)
    return await session.scalar(
        select(Conversation.agent_id).where(who, Conversation.id != conversation.id,
                                            Conversation.agent_id.is_not(None))
        .order_by(Conversation.id.desc()).limit(1)
    )


async def queued_in_order(session: AsyncSession, group_id: int) -> list[Conversation]:
    return list(await session.scalars(
        select(Conversation).where(Conversation.state == S.queued.value, Conversation.skill_group_id == group_id)
        .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
    ))


async def assign_to(session: AsyncSession, conversation: Conversation, agent_id: int) -> bool:
    """Atomically give a queued conversation to an agent; False if someone else got it first."""
    now = utcnow()
    matched = await execute_counted(
        session,
        update(Conversation)
        .where(Conversation.id == conversation.id, Conversation.state == S.queued.value)
        .values(state=S.assigned.value, agent_id=agent_id, assigned_at=now, accepted_at=None)
        .execution_options(synchronize_session=False)
    )
    if matched != 1:
        return False
    await session.refresh(conversation)
    profile = await agent_profile(session, agent_id)
    profile.last_assigned_at = now
    return True


async def _assign_one(session: AsyncSession, group: SkillGroup, conversation: Conversation,
                      candidates: list[tuple[AgentProfile, int]], exclude: tuple[int, int] | None) -> int | None:
    """Give one queued conversation to the best of the group's free agents; the agent's id, or None."""
    ordered = _order_candidates(group, candidates)
    if exclude is not None and exclude[0] == conversation.id:
        ordered = [p for p in ordered if p.user_id != exclude[1]]
    if group.sticky_returning:
        last = await _last_agent_for(session, conversation)
        if last is not None and any(p.user_id == last for p in ordered):
            ordered = [p for p in ordered if p.user_id == last] + [p for p in ordered if p.user_id != last]
    for profile in ordered:
        locked = await agent_profile(session, profile.user_id, lock=True)
        if locked.presence != Presence.online.value or not await has_room(session, locked, conversation.channel):
            continue
        if await assign_to(session, conversation, locked.user_id):
            await announce_assignment(session, conversation, previous_agent_id=None)
            return locked.user_id
        break
    return None


ASSIGN_LOCK_NAMESPACE = 4201  # the first key of PostgreSQL's two-key advisory locks, for "serving a group's queue"


async def _serve_queue_alone(session: AsyncSession, group_id: int) -> None:
    """Wait until no other transaction is serving this group's queue (PostgreSQL; held until commit). Two
    servings at once lock agents and conversations in different orders — one locks agent A and conversation 1,
    the other agent B and then waits for conversation 1 while the first waits for B — and PostgreSQL cancels one
    as a deadlock. SQLite runs one writer at a time already."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(ASSIGN_LOCK_NAMESPACE, group_id)))


async def try_assign(session: AsyncSession, group_id: int, *,
                     exclude: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """Hand waiting conversations of a group to free agents, in queue order. Returns (conversation, agent) pairs.

    ``exclude=(conversation_id, agent_id)`` keeps a conversation away from one agent (the one who just
    transferred it out)."""
    group = await session.get(SkillGroup, group_id)
    if group is None:
        return []
    await _serve_queue_alone(session, group_id)
    made: list[tuple[int, int]] = []
    full: set[bool] = set()  # the kinds of slot (call: True, chat: False) nobody in the group has free
    for conversation in await queued_in_order(session, group_id):
        kind = is_call(conversation.channel)
        if kind in full:
            continue
        candidates = await available_agents(session, group_id, conversation.channel)
        if not candidates:
            full.add(kind)
            if len(full) == 2:
                break
            continue
        agent_id = await _assign_one(session, group, conversation, candidates, exclude)
        if agent_id is not None:
            made.append((conversation.id, agent_id))
    if made:
        emit(session, QueueChanged(skill_group_id=group_id))
    return made


async def try_assign_across(session: AsyncSession, group_ids: list[int]) -> list[tuple[int, int]]:
    """Serve the queues of several groups (an agent who became free serves all of theirs) in one order:
    emergencies first whichever group they wait in, then the longest waiting. Serving the groups one
    after another would let an ordinary conversation of the first group take the place an emergency
    waiting in the second one needs."""
    if not group_ids:
        return []
    queued = list(await session.scalars(
        select(Conversation).where(Conversation.state == S.queued.value, Conversation.skill_group_id.in_(group_ids))
        .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)))
    made: list[tuple[int, int]] = []
    changed: set[int] = set()
    for conversation in queued:
        group = await session.get(SkillGroup, conversation.skill_group_id)
        if group is None:
            continue
        candidates = await available_agents(session, group.id, conversation.channel)
        if not candidates:
            continue
        agent_id = await _assign_one(session, group, conversation, candidates, None)
        if agent_id is not None:
            made.append((conversation.id, agent_id))
            changed.add(group.id)
    for group_id in sorted(changed):
        emit(session, QueueChanged(skill_group_id=group_id))
    return made


async def average_handle_s(session: AsyncSession, group: SkillGroup) -> int:
    """Mean handling time of the group's last 50 closed conversations (or the configured default)."""
    rows = list(await session.execute(
        select(Conversation.assigned_at, Conversation.closed_at)
        .where(Conversation.skill_group_id == group.id, Conversation.state == S.closed.value,
               Conversation.assigned_at.is_not(None))
        .order_by(Conversation.id.desc()).limit(50)
    ))
    spans = [(c - a).total_seconds() for a, c in rows if a and c and c > a]
    return int(sum(spans) / len(spans)) if len(spans) >= 5 else group.default_handle_s


async def _slots(session: AsyncSession, group_id: int) -> tuple[int, int]:
    """(chat slots, voice slots) of the group's online or busy agents: the sum of their ``max_concurrent``,
    and one per agent (each has one voice slot); at least 1 each, so an estimate never divides by zero."""
    agents = list(await session.execute(
        select(AgentProfile.max_concurrent)
        .join(AgentSkill, AgentSkill.user_id == AgentProfile.user_id)
        .where(AgentSkill.skill_group_id == group_id,
               AgentProfile.presence.in_([Presence.online.value, Presence.busy.value]))
    ))
    return max(1, sum(n for (n,) in agents)), max(1, len(agents))


async def queue_spots(session: AsyncSession, group_id: int,
                      queued: list[Conversation] | None = None) -> dict[int, QueueSpot]:
    """Position and estimated wait of every queued conversation of a group (``queued``: the queue in
    service order, when the caller already has it). Calls and chats wait for different slots, so each is
    placed among its own kind: a call's position counts the calls ahead, served one per agent; a chat's
    counts the chats ahead, served by the agents' chat slots."""
    group = await session.get(SkillGroup, group_id)
    if group is None:
        return {}
    if queued is None:
        queued = await queued_in_order(session, group_id)
    if not queued:
        return {}
    handle = await average_handle_s(session, group)
    chat_slots, voice_slots = await _slots(session, group_id)
    spots: dict[int, QueueSpot] = {}
    for kind, slots in ((True, voice_slots), (False, chat_slots)):
        line = [c for c in queued if is_call(c.channel) == kind]
        for i, c in enumerate(line):
            spots[c.id] = QueueSpot(position=i + 1, waiting=len(line), estimated_wait_s=int(handle * (i + 1) / slots))
    return spots


async def expected_wait(session: AsyncSession, group_id: int, channel: str | None) -> QueueSpot:
    """Where a conversation of ``channel`` joining the group's queue now would stand (normal priority):
    ``waiting`` = those of its kind already queued; the estimate as :func:`queue_spots` makes it."""
    group = await session.get(SkillGroup, group_id)
    if group is None:
        return QueueSpot(position=1, waiting=0, estimated_wait_s=0)
    waiting = int(await session.scalar(
        select(func.count()).select_from(Conversation).where(
            Conversation.state == S.queued.value, Conversation.skill_group_id == group_id,
            (Conversation.channel == VOICE) if is_call(channel) else (Conversation.channel != VOICE))) or 0)
    if waiting == 0:
        return QueueSpot(position=1, waiting=0, estimated_wait_s=0)
    chat_slots, voice_slots = await _slots(session, group_id)
    slots = voice_slots if is_call(channel) else chat_slots
    handle = await average_handle_s(session, group)
    return QueueSpot(position=waiting + 1, waiting=waiting, estimated_wait_s=int(handle * (waiting + 1) / slots))


# ----------------------------------------------------------------- configuration (admin write path)

SKILL_GROUP_FIELDS = ("name", "routing_mode", "sticky_returning", "queue_capacity", "working_hours", "default_handle_s")
HANDOFF_RULE_FIELDS = ("position", "name", "kind", "params", "skill_group_id", "priority", "enabled")


async def skill_group_out(session: AsyncSession, group: SkillGroup) -> dict[str, Any]:
    return {"id": group.id, "code": group.code, **{key: getattr(group, key) for key in SKILL_GROUP_FIELDS},
            "open_now": (await opening_state(session, group)).is_open}


async def do_update_skill_group(session: AsyncSession, actor: Actor, group_id: int,
                                values: dict[str, Any]) -> SkillGroup:
    """Change a skill group's name, routing mode, queue and hours (audited with before and after)."""
    group = await get_group(session, group_id)
    try:
        RoutingMode(values["routing_mode"])
    except ValueError:
        raise InvalidInput(f"未知分配方式 {values['routing_mode']}", code="invalid_routing_mode") from None
    hours = check_weekly_hours(values["working_hours"])
    before = await skill_group_out(session, group)
    for key in SKILL_GROUP_FIELDS:
        setattr(group, key, hours if key == "working_hours" else values[key])
    record_audit(session, actor, "config.skill_group", "config", f"skill_group:{group.id}", before=before,
                 after=await skill_group_out(session, group))
    return group


async def do_create_handoff_rule(session: AsyncSession, actor: Actor, values: dict[str, Any]) -> HandoffRule:
    """Add a bot → human hand-off rule (audited)."""
    try:
        HandoffKind(values["kind"])
    except ValueError:
        raise InvalidInput(f"未知规则类型 {values['kind']}", code="invalid_rule_kind") from None
    await get_group(session, values["skill_group_id"])
    rule = HandoffRule(**{key: values[key] for key in HANDOFF_RULE_FIELDS})
    session.add(rule)
    await session.flush()
    record_audit(session, actor, "config.handoff_rule", "config", f"handoff_rule:{rule.id}",
                 after={key: getattr(rule, key) for key in HANDOFF_RULE_FIELDS})
    return rule


async def do_assign_agent_skills(session: AsyncSession, actor: Actor, user: User, group_ids: list[int],
                                 max_concurrent: int | None) -> None:
    """Set which skill groups an agent serves and how many conversations at once (audited)."""
    for group_id in group_ids:
        await get_group(session, group_id)
    before = {"skill_group_ids": await agent_group_ids(session, user.id)}
    await do_set_skills(session, user, group_ids, max_concurrent)
    record_audit(session, actor, "config.agent_skills", "user", user.id, before=before,
                 after={"skill_group_ids": list(dict.fromkeys(group_ids)), "max_concurrent": max_concurrent})
