"""Quality inspection: scoring sheets (versioned per team), automatic scoring of closed contacts, sampling
for review, supervisors' adjustments, agents' appeals, and weekly trends.

Scoring is a periodic scan (``score_closed_contacts``) over closed conversations with people involved — a
call's ``voice`` conversation closes when the call ends, so calls are scored the same way. It is idempotent:
one score per conversation (a unique key), so a rerun or a second worker scores nothing twice.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.clock import as_utc, to_local, utcnow
from gasdesk.conversations.models import Channel, Conversation, ConversationState, Message, SenderType
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.event_types import QualityScored
from gasdesk.events import emit
from gasdesk.quality.models import (
    AppealStatus,
    QualityScore,
    QualitySheet,
    ReviewStatus,
    SheetStatus,
)
from gasdesk.quality.rules import (
    DEFAULT_SHEET,
    Facts,
    SheetBody,
    Turn,
    check_sheet,
    sample_reason,
    score_contact,
)
from gasdesk.telephony.models import Call, CallEvent, CallEventKind
from gasdesk.tickets.models import Team, TeamMember, Ticket, TicketStatus

QUALITY_ACTOR = Actor.system("质检", "job")
SCAN_EVERY_S = 60
# Contacts closed longer ago than this are not picked up by the scan (a new install does not score years).
SCAN_LOOKBACK = timedelta(days=7)
SCAN_BATCH = 200
# Wall time one scan run may spend scoring; the rest waits for the next run. Each score is committed on its
# own, so chat gets the database connection (SQLite has one) between them; a backlog (a week of contacts after
# an import or a long stop) once held it for seconds per run, and chat stalled meanwhile.
SCAN_BUDGET_S = 2.0
MAX_REASON = 500
TREND_WEEKS = 8


# ---------------------------------------------------------------- sheets


async def default_sheet(session: AsyncSession) -> QualitySheet:
    """The active sheet of agents in no team; on first use the built-in default becomes a version (audited).
    Two processes racing here both end with one stored row (unique version)."""
    row = await session.scalar(select(QualitySheet).where(QualitySheet.team_id.is_(None),
                                                          QualitySheet.status == SheetStatus.active.value)
                               .order_by(QualitySheet.version.desc()).limit(1))
    if row is not None:
        return row
    check_sheet(DEFAULT_SHEET)
    # Read the next version before the savepoint: on SQLite a SELECT inside it would open a read transaction
    # that then has to upgrade to a write, which fails at once ("database is locked") when another connection
    # wrote meanwhile, instead of waiting on the busy timeout like a transaction whose first statement writes.
    version = await _next_version(session)
    try:
        async with session.begin_nested():
            row = QualitySheet(version=version, team_id=None, status=SheetStatus.active.value,
                               body=DEFAULT_SHEET, note="内置默认评分表", created_at=utcnow())
            session.add(row)
            await session.flush()
    except IntegrityError:
        row = await session.scalar(select(QualitySheet).where(QualitySheet.team_id.is_(None),
                                                              QualitySheet.status == SheetStatus.active.value))
        if row is None:
            raise
        return row
    record_audit(session, QUALITY_ACTOR, "quality_sheet.activate", "quality_sheet", row.id,
                 after={"version": row.version, "team_id": None, "note": row.note})
    return row


async def active_sheet(session: AsyncSession, team_id: int | None) -> QualitySheet:
    """The sheet a team's contacts are scored with: the team's active version, else the default sheet."""
    if team_id is not None:
        row = await session.scalar(select(QualitySheet).where(QualitySheet.team_id == team_id,
                                                              QualitySheet.status == SheetStatus.active.value)
                                   .order_by(QualitySheet.version.desc()).limit(1))
        if row is not None:
            return row
    return await default_sheet(session)


async def _next_version(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(QualitySheet.version), 0))) or 0) + 1


async def list_sheets(session: AsyncSession) -> list[QualitySheet]:
    """Every version, newest first (the default sheet is made on first use)."""
    await default_sheet(session)
    return list(await session.scalars(select(QualitySheet).order_by(QualitySheet.version.desc())))


async def get_sheet(session: AsyncSession, sheet_id: int) -> QualitySheet:
    row = await session.get(QualitySheet, sheet_id)
    if row is None:
        raise NotFound("评分表不存在", code="quality_sheet_not_found")
    return row


async def check_team(session: AsyncSession, team_id: int | None) -> int | None:
    """``team_id`` if it names a team (None: the default sheet)."""
    if team_id is not None and await session.get(Team, team_id) is None:
        raise InvalidInput("班组不存在", code="invalid_team")
    return team_id


async def do_save_sheet(session: AsyncSession, actor: Actor, *, team_id: int | None, body: Any, note: str = "",
                        activate: bool = False) -> QualitySheet:
    """Store a validated sheet as a new version for ``team_id`` (a draft, or active at once); audited."""
    sheet = check_sheet(body)
    await check_team(session, team_id)
    row = QualitySheet(version=await _next_version(session), team_id=team_id, status=SheetStatus.draft.value,
                       body=sheet.model_dump(), note=note[:200], created_by=actor.user_id, created_at=utcnow())
    session.add(row)
    await session.flush()
    record_audit(session, actor, "quality_sheet.save", "quality_sheet", row.id,
                 after={"version": row.version, "team_id": team_id, "note": row.note, "rules": len(sheet.rules)})
    if activate:
        await do_activate_sheet(session, actor, row.id)
    return row


async def do_activate_sheet(session: AsyncSession, actor: Actor, sheet_id: int) -> QualitySheet:
    """Make a version the one its team's contacts are scored with (the team's other versions retire)."""
    row = await get_sheet(session, sheet_id)
    if row.status == SheetStatus.active.value:
        return row
    team_clause = QualitySheet.team_id.is_(None) if row.team_id is None else QualitySheet.team_id == row.team_id
    previous = list(await session.scalars(select(QualitySheet).where(
        team_clause, QualitySheet.status == SheetStatus.active.value)))
    for other in previous:
        other.status = SheetStatus.retired.value
    row.status = SheetStatus.active.value
    record_audit(session, actor, "quality_sheet.activate", "quality_sheet", row.id,
                 before={"active_version": previous[0].version if previous else None},
                 after={"version": row.version, "team_id": row.team_id})
    return row


def sheet_body(row: QualitySheet) -> SheetBody:
    return SheetBody.model_validate(row.body)


# ---------------------------------------------------------------- the facts of a contact


async def team_of(session: AsyncSession, user_id: int | None) -> int | None:
    """The agent's team (their first membership), or None."""
    if user_id is None:
        return None
    return await session.scalar(select(TeamMember.team_id).where(TeamMember.user_id == user_id)
                                .order_by(TeamMember.team_id).limit(1))


def _open_at(ticket: Ticket, moment: datetime) -> bool:
    """Whether ``ticket`` was open at ``moment`` (made before, not yet resolved, closed or cancelled)."""
    if as_utc(ticket.created_at) > moment:
        return False
    if ticket.status == TicketStatus.cancelled.value:
        return as_utc(ticket.updated_at) > moment
    ended = [as_utc(t) for t in (ticket.resolved_at, ticket.closed_at) if t is not None]
    return not ended or min(ended) > moment


def _holds(events: list[tuple[str, datetime]], until: datetime) -> list[int]:
    """Each hold's seconds from held/unheld events (an unfinished one lasts until ``until``)."""
    holds, since = [], None
    for kind, at in events:
        if kind == CallEventKind.held.value and since is None:
            since = as_utc(at)
        elif kind == CallEventKind.unheld.value and since is not None:
            holds.append(int(round((as_utc(at) - since).total_seconds())))
            since = None
    if since is not None:
        holds.append(int(round((until - since).total_seconds())))
    return holds


@dataclass
class Contact:
    """A closed conversation ready to score: its facts and who it is scored against."""

    conversation: Conversation
    facts: Facts
    agent_id: int | None
    call: Call | None


async def gather_facts(session: AsyncSession, conversation: Conversation) -> Contact:
    """What the rules judge, read from the conversation, its messages, tickets and call."""
    messages = list(await session.scalars(select(Message).where(Message.conversation_id == conversation.id)
                                          .order_by(Message.seq)))
    turns = [Turn(seq=m.seq, sender=m.sender_type, text=m.text or "", at=as_utc(m.created_at),
                  event=(m.payload or {}).get("event") if m.sender_type == SenderType.system.value else None)
             for m in messages]
    closed_at = as_utc(conversation.closed_at or utcnow())
    tickets = list(await session.scalars(select(Ticket).where(Ticket.conversation_id == conversation.id)))
    intents = {t.type for t in tickets}
    if conversation.handoff_summary and conversation.handoff_summary.get("intent"):
        intents.add(str(conversation.handoff_summary["intent"]))
    call = await session.scalar(select(Call).where(Call.conversation_id == conversation.id)
                                .order_by(Call.id.desc()).limit(1))
    holds = None
    if call is not None:
        events = (await session.execute(select(CallEvent.kind, CallEvent.at).where(
            CallEvent.call_id == call.id,
            CallEvent.kind.in_([CallEventKind.held.value, CallEventKind.unheld.value])).order_by(CallEvent.id))).all()
        holds = _holds([(k, a) for k, a in events], as_utc(call.ended_at or closed_at))
    agent_id = conversation.agent_id or (call.agent_id if call else None) or next(
        (m.sender_user_id for m in reversed(messages) if m.sender_type == SenderType.agent.value), None)
    facts = Facts(channel=conversation.channel, turns=turns,
                  accepted_at=as_utc(conversation.accepted_at) if conversation.accepted_at else None,
                  closed_at=closed_at, intents=intents,
                  open_tickets=[(t.id, t.type) for t in tickets if _open_at(t, closed_at)], holds_s=holds)
    return Contact(conversation, facts, agent_id, call)


# ---------------------------------------------------------------- scoring


def _scored_event(row: QualityScore) -> QualityScored:
    return QualityScored(score_id=row.id, conversation_id=row.conversation_id, call_id=row.call_id,
                         agent_id=row.agent_id, team_id=row.team_id, sheet_id=row.sheet_id, score=float(row.score),
                         adjusted=row.adjusted)


async def do_score_conversation(session: AsyncSession, conversation: Conversation) -> QualityScore | None:
    """Score one closed conversation with people involved against its agent's team sheet, decide whether it
    is sampled for review, audit it and emit ``quality.scored``. None when it is not closed, had no agent, or
    is already scored (idempotent)."""
    if conversation.state != ConversationState.closed.value:
        return None
    existing = await session.scalar(select(QualityScore).where(QualityScore.conversation_id == conversation.id))
    if existing is not None:
        return None
    contact = await gather_facts(session, conversation)
    if contact.agent_id is None:
        return None
    team_id = await team_of(session, contact.agent_id)
    sheet_row = await active_sheet(session, team_id)
    sheet = sheet_body(sheet_row)
    scored = score_contact(sheet, contact.facts)
    reason = sample_reason(sheet.sampling, conversation.id, scored.score, contact.facts.intents)
    now = utcnow()
    try:
        async with session.begin_nested():
            row = QualityScore(
                conversation_id=conversation.id, call_id=contact.call.id if contact.call else None,
                channel=conversation.channel, agent_id=contact.agent_id, team_id=team_id, sheet_id=sheet_row.id,
                closed_at=contact.facts.closed_at, scored_at=now, auto_score=scored.score, score=scored.score,
                results=[r.as_dict() for r in scored.results], sample_reason=reason,
                review_status=(ReviewStatus.pending if reason else ReviewStatus.none).value,
                appeal_status=AppealStatus.none.value, adjusted=False)
            session.add(row)
            await session.flush()
    except IntegrityError:
        return None  # another worker scored it first
    record_audit(session, QUALITY_ACTOR, "quality.score", "quality_score", row.id,
                 after={"conversation_id": conversation.id, "agent_id": row.agent_id, "score": row.score,
                        "sheet_version": sheet_row.version, "sample_reason": reason})
    emit(session, _scored_event(row))
    return row


def _needs_score() -> Any:
    has_agent_message = exists().where(Message.conversation_id == Conversation.id,
                                       Message.sender_type == SenderType.agent.value)
    has_agent_call = exists().where(Call.conversation_id == Conversation.id, Call.agent_id.is_not(None))
    scored = exists().where(QualityScore.conversation_id == Conversation.id)
    return (Conversation.state == ConversationState.closed.value) & ~scored & or_(
        Conversation.agent_id.is_not(None), has_agent_message, has_agent_call)


async def score_closed_contacts(session: AsyncSession) -> int:
    """The periodic scan: score every conversation closed in the last week with people involved that has no
    score yet (at most ``SCAN_BATCH`` per run and ``SCAN_BUDGET_S`` of wall time, oldest first), committing
    each score. Returns how many were scored."""
    since = utcnow() - SCAN_LOOKBACK
    rows = list(await session.scalars(select(Conversation).where(_needs_score(), Conversation.closed_at >= since)
                                      .order_by(Conversation.closed_at, Conversation.id).limit(SCAN_BATCH)))
    await commit(session)  # the scan's read ends here: the connection is free before the first score
    done = 0
    started = time.monotonic()
    for conversation in rows:
        if await do_score_conversation(session, conversation) is not None:
            done += 1
        await commit(session)
        if time.monotonic() - started > SCAN_BUDGET_S:
            break
    return done


# ---------------------------------------------------------------- access


async def access_score(session: AsyncSession, user: User, score_id: int) -> QualityScore:
    """A score the user may read: supervisors and admins all, an agent only their own."""
    row = await session.get(QualityScore, score_id)
    if row is None:
        raise NotFound("质检记录不存在", code="quality_score_not_found")
    if Role(user.role) not in MANAGERS and row.agent_id != user.id:
        raise PermissionDenied("只能查看自己的质检结果", code="quality_score_not_yours")
    return row


def check_reason(text: str, what: str = "原因") -> str:
    """A mandatory free-text reason: trimmed, 2–500 characters."""
    text = (text or "").strip()
    if len(text) < 2:
        raise InvalidInput(f"请填写{what}", code="reason_required")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"{what}不能超过 {MAX_REASON} 字", code="reason_too_long")
    return text


def check_score_value(value: float) -> float:
    if not 0 <= value <= 100:
        raise InvalidInput("分数应在 0–100 之间", code="invalid_score")
    return round(float(value), 1)


# ---------------------------------------------------------------- review, adjustment, appeal


async def do_adjust_score(session: AsyncSession, user: User, row: QualityScore, *, score: float,
                          reason: str) -> QualityScore:
    """A supervisor sets the score with a mandatory reason (the review is done); audited, ``quality.scored``
    with ``adjusted`` after commit. Nobody adjusts their own score."""
    reason, score = check_reason(reason), check_score_value(score)
    if row.agent_id == user.id:
        raise PermissionDenied("不能调整自己的质检分数", code="own_quality_score")
    before = {"score": row.score, "review_status": row.review_status}
    row.score, row.adjusted, row.adjust_reason = score, True, reason
    row.review_status, row.reviewed_by, row.reviewed_at = ReviewStatus.reviewed.value, user.id, utcnow()
    record_audit(session, Actor.of(user), "quality.adjust", "quality_score", row.id, before=before,
                 after={"score": row.score, "review_status": row.review_status, "reason": reason})
    emit(session, _scored_event(row))
    return row


async def do_confirm_review(session: AsyncSession, user: User, row: QualityScore) -> QualityScore:
    """A supervisor reviewed a sampled contact and keeps its score; audited."""
    if row.review_status == ReviewStatus.reviewed.value:
        raise Conflict("该记录已复核", code="already_reviewed")
    before = {"review_status": row.review_status}
    row.review_status, row.reviewed_by, row.reviewed_at = ReviewStatus.reviewed.value, user.id, utcnow()
    record_audit(session, Actor.of(user), "quality.review", "quality_score", row.id, before=before,
                 after={"review_status": row.review_status, "score": row.score})
    return row


async def do_appeal(session: AsyncSession, user: User, row: QualityScore, *, reason: str) -> QualityScore:
    """The scored agent appeals, once, with a reason; audited."""
    reason = check_reason(reason, "申诉理由")
    if row.agent_id != user.id:
        raise PermissionDenied("只能对自己的质检结果申诉", code="quality_score_not_yours")
    if row.appeal_status != AppealStatus.none.value:
        raise Conflict("每条质检结果只能申诉一次", code="already_appealed")
    row.appeal_status, row.appeal_reason, row.appealed_at = AppealStatus.open.value, reason, utcnow()
    record_audit(session, Actor.of(user), "quality.appeal", "quality_score", row.id,
                 before={"appeal_status": AppealStatus.none.value},
                 after={"appeal_status": row.appeal_status, "reason": reason})
    return row


async def do_resolve_appeal(session: AsyncSession, user: User, row: QualityScore, *, outcome: str, note: str,
                            score: float | None = None) -> QualityScore:
    """A supervisor upholds an open appeal (with the new score) or rejects it, with a note; audited. An upheld
    appeal changes the score and emits ``quality.scored``."""
    note = check_reason(note, "处理意见")
    if row.appeal_status != AppealStatus.open.value:
        raise Conflict("没有待处理的申诉", code="no_open_appeal")
    if row.agent_id == user.id:
        raise PermissionDenied("不能处理自己的申诉", code="own_quality_score")
    if outcome not in (AppealStatus.upheld.value, AppealStatus.rejected.value):
        raise InvalidInput("处理结果应为申诉成立或驳回", code="invalid_outcome")
    before = {"appeal_status": row.appeal_status, "score": row.score}
    if outcome == AppealStatus.upheld.value:
        if score is None:
            raise InvalidInput("申诉成立时请填写新的分数", code="score_required")
        row.score, row.adjusted = check_score_value(score), True
    row.appeal_status, row.appeal_note = outcome, note
    row.appeal_resolved_by, row.appeal_resolved_at = user.id, utcnow()
    record_audit(session, Actor.of(user), "quality.appeal_resolve", "quality_score", row.id, before=before,
                 after={"appeal_status": outcome, "score": row.score, "note": note})
    if outcome == AppealStatus.upheld.value:
        emit(session, _scored_event(row))
    return row


# ---------------------------------------------------------------- lists and trends


async def review_queue(session: AsyncSession, limit: int = 100) -> list[QualityScore]:
    """Sampled contacts awaiting review and open appeals, oldest first."""
    return list(await session.scalars(select(QualityScore).where(or_(
        QualityScore.review_status == ReviewStatus.pending.value,
        QualityScore.appeal_status == AppealStatus.open.value)).order_by(QualityScore.closed_at).limit(limit)))


async def scores_of_agent(session: AsyncSession, agent_id: int, limit: int = 100) -> list[QualityScore]:
    """An agent's scores, newest first."""
    return list(await session.scalars(select(QualityScore).where(QualityScore.agent_id == agent_id)
                                      .order_by(QualityScore.closed_at.desc(), QualityScore.id.desc()).limit(limit)))


async def recent_scores(session: AsyncSession, limit: int = 100) -> list[QualityScore]:
    return list(await session.scalars(select(QualityScore)
                                      .order_by(QualityScore.closed_at.desc(), QualityScore.id.desc()).limit(limit)))


def week_start(moment: datetime) -> str:
    """The local Monday of ``moment``'s week (YYYY-MM-DD)."""
    local = to_local(moment)
    return (local.date() - timedelta(days=local.weekday())).isoformat()


@dataclass
class Trend:
    key: int | None
    name: str
    weeks: dict[str, tuple[float, int]]  # week start → (average score, contacts)


async def weekly_trends(session: AsyncSession, by: str, *, weeks: int = TREND_WEEKS,
                        agent_id: int | None = None) -> tuple[list[str], list[Trend]]:
    """Weekly average scores per agent (``by="agent"``) or team (``by="team"``) over the last ``weeks`` weeks:
    the week starts (oldest first) and one trend per agent or team."""
    now = utcnow()
    starts = sorted({week_start(now - timedelta(weeks=i)) for i in range(weeks)})
    column = QualityScore.agent_id if by == "agent" else QualityScore.team_id
    query = select(column, QualityScore.closed_at, QualityScore.score).where(
        QualityScore.closed_at >= now - timedelta(weeks=weeks, days=1))
    if agent_id is not None:
        query = query.where(QualityScore.agent_id == agent_id)
    sums: dict[int | None, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for key, closed_at, score in await session.execute(query):
        week = week_start(as_utc(closed_at))
        if week in starts:
            sums[key][week].append(score)
    ids = [k for k in sums if k is not None]
    if by == "agent":
        names = dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))).all()) \
            if ids else {}
    else:
        names = dict((await session.execute(select(Team.id, Team.name).where(Team.id.in_(ids)))).all()) \
            if ids else {}
    trends = [Trend(key, names.get(key, "未分组") if key is not None else "未分组",
                    {w: (round(sum(v) / len(v), 1), len(v)) for w, v in per_week.items()})
              for key, per_week in sums.items()]
    return starts, sorted(trends, key=lambda t: t.name)


async def names_of(session: AsyncSession, user_ids: set[int | None]) -> dict[int, str]:
    ids = [i for i in user_ids if i is not None]
    if not ids:
        return {}
    return dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))).all())


def is_chat(channel: str) -> bool:
    return channel != Channel.voice.value
