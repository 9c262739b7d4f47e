"""The wall screen's snapshot, its thresholds, and the agent's own dashboard.

The snapshot is what the centre looks like now: the live queue and agents from current state (small indexed
queries: queued conversations, agent profiles, open tickets by SLA state), today's counters from the analytics
roll-ups (``analytics.service.figures``: the ``totals`` that tells "no base" apart) and the trend from today's
contact facts. It is built once per change for every wall of a process (``wall/live.py``), never per
socket, and never reads messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.models import AnalyticsFact
from gasdesk.analytics.service import figures
from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.clock import as_utc, local_zone, utcnow
from gasdesk.conversations.models import Channel, Conversation, channel_label
from gasdesk.conversations.models import ConversationState as S
from gasdesk.errors import InvalidInput
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.routing.models import PRESENCE_LABELS, AgentProfile, Presence, SkillGroup
from gasdesk.tickets.models import OPEN_STATUSES, Ticket, TicketType
from gasdesk.wall.models import WallThreshold

Level = Literal["ok", "amber", "red"]

# The trend line's step: contacts per quarter hour since local midnight.
TREND_MINUTES = 15
# The fact a contact leaves in analytics (``analytics/facts.py``): the trend line counts these.
CONTACT_FACT = "contact.started"
# Threshold values an admin may set (counts and seconds).
THRESHOLD_MAX = 100_000


@dataclass(frozen=True)
class Threshold:
    """Amber above ``amber``, red above ``red``; None never fires."""

    amber: int | None
    red: int | None

    def level(self, value: float | None) -> Level:
        """The tile colour for ``value`` (no value: ok)."""
        if value is None:
            return "ok"
        if self.red is not None and value > self.red:
            return "red"
        if self.amber is not None and value > self.amber:
            return "amber"
        return "ok"

    def as_dict(self) -> dict[str, int | None]:
        return {"amber": self.amber, "red": self.red}


# metric → (label, unit, default). "waiting" applies to the total and to each skill group's tile.
THRESHOLD_METRICS: dict[str, tuple[str, str, Threshold]] = {
    "waiting": ("排队人数", "人", Threshold(10, 20)),
    "longest_wait_s": ("最长等待", "秒", Threshold(60, 180)),
    "sla_breached": ("工单已超时", "单", Threshold(None, 0)),
    "sla_at_risk": ("工单即将超时", "单", Threshold(0, 10)),
    "emergencies": ("未结紧急工单", "单", Threshold(None, 0)),
}
DEFAULT_THRESHOLDS = {metric: spec[2] for metric, spec in THRESHOLD_METRICS.items()}


# ------------------------------------------------------------------ thresholds


async def thresholds(session: AsyncSession) -> dict[str, Threshold]:
    """Every metric's thresholds: the admins' values over the defaults."""
    found = dict(DEFAULT_THRESHOLDS)
    for row in await session.scalars(select(WallThreshold)):
        if row.metric in found:
            found[row.metric] = Threshold(row.amber, row.red)
    return found


def check_thresholds(values: dict[str, dict[str, Any]]) -> dict[str, Threshold]:
    """Validate thresholds sent by an admin: known metrics only, whole numbers 0–100000 or empty, amber below
    red when both are set. ``InvalidInput`` (in Chinese) otherwise."""
    checked: dict[str, Threshold] = {}
    for metric, value in values.items():
        spec = THRESHOLD_METRICS.get(metric)
        if spec is None:
            raise InvalidInput(f"未知的大屏指标: {metric}", code="invalid_threshold")
        label = spec[0]
        if not isinstance(value, dict) or set(value) - {"amber", "red"}:
            raise InvalidInput(f"{label}：阈值格式不正确", code="invalid_threshold")
        parts: dict[str, int | None] = {}
        for key, name in (("amber", "黄色"), ("red", "红色")):
            raw = value.get(key)
            if raw is None or raw == "":
                parts[key] = None
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise InvalidInput(f"{label}：{name}阈值须为整数", code="invalid_threshold")
            try:
                number = int(str(raw).strip())
            except ValueError:
                raise InvalidInput(f"{label}：{name}阈值须为整数", code="invalid_threshold") from None
            if not 0 <= number <= THRESHOLD_MAX:
                raise InvalidInput(f"{label}：{name}阈值须在 0–{THRESHOLD_MAX} 之间", code="invalid_threshold")
            parts[key] = number
        amber, red = parts["amber"], parts["red"]
        if amber is not None and red is not None and amber >= red:
            raise InvalidInput(f"{label}：黄色阈值须小于红色阈值", code="invalid_threshold")
        checked[metric] = Threshold(amber, red)
    return checked


async def do_set_thresholds(session: AsyncSession, actor: Actor,
                            values: dict[str, dict[str, Any]]) -> dict[str, Threshold]:
    """An admin sets some metrics' thresholds (checked; audited as ``config.wall_threshold``, one row per
    changed metric, with the values before and after). Returns every metric's thresholds. Walls pick them up
    with their next snapshot."""
    changed = check_thresholds(values)
    before = await thresholds(session)
    rows = {row.metric: row for row in await session.scalars(
        select(WallThreshold).where(WallThreshold.metric.in_(list(changed))))}
    for metric, threshold in changed.items():
        row = rows.get(metric)
        if row is None:
            session.add(WallThreshold(metric=metric, amber=threshold.amber, red=threshold.red))
        else:
            row.amber, row.red = threshold.amber, threshold.red
    await session.flush()
    for metric, threshold in changed.items():
        if threshold != before[metric]:
            record_audit(session, actor, "config.wall_threshold", "config", f"wall_threshold:{metric}",
                         before=before[metric].as_dict(), after=threshold.as_dict())
    return {**before, **changed}


# ------------------------------------------------------------------ the snapshot


def local_day_start(moment: datetime) -> datetime:
    """Local midnight of ``moment``'s day, in UTC (the wall's "today")."""
    local = as_utc(moment).astimezone(local_zone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(as_utc(moment).tzinfo)


async def _queue(session: AsyncSession, now: datetime, limits: dict[str, Threshold]) -> dict[str, Any]:
    # One grouped query over the queue index (state, skill_group_id, …): what is waiting now, per group and channel.
    rows = (await session.execute(
        select(Conversation.skill_group_id, Conversation.channel, func.count(), func.min(Conversation.queued_at))
        .where(Conversation.state == S.queued.value)
        .group_by(Conversation.skill_group_id, Conversation.channel))).all()
    groups = list(await session.scalars(select(SkillGroup).order_by(SkillGroup.id)))
    by_group: dict[int | None, list[Any]] = {}
    by_channel: dict[str, int] = {c.value: 0 for c in Channel}
    oldest: datetime | None = None
    for group_id, channel, count, first in rows:
        entry = by_group.setdefault(group_id, [0, None])
        entry[0] += int(count)
        if first is not None:
            first = as_utc(first)
            entry[1] = first if entry[1] is None else min(entry[1], first)
            oldest = first if oldest is None else min(oldest, first)
        by_channel[channel] = by_channel.get(channel, 0) + int(count)

    def wait_s(since: datetime | None) -> int:
        return max(0, int((now - since).total_seconds())) if since is not None else 0

    group_tiles = []
    for group in groups:
        count, first = by_group.get(group.id, [0, None])
        group_tiles.append({"id": group.id, "name": group.name, "waiting": count, "longest_wait_s": wait_s(first),
                            "level": limits["waiting"].level(count)})
    total = sum(entry[0] for entry in by_group.values())
    longest = wait_s(oldest)
    return {
        "total": total,
        "level": limits["waiting"].level(total),
        "longest_wait_s": longest,
        "longest_wait_level": limits["longest_wait_s"].level(longest) if total else "ok",
        "oldest_queued_at": oldest.isoformat() if oldest is not None else None,
        "by_group": group_tiles,
        "by_channel": [{"channel": c, "label": channel_label(c), "waiting": n} for c, n in by_channel.items()],
    }


async def _agents(session: AsyncSession) -> dict[str, Any]:
    # People who take conversations: every active agent (no profile yet: offline), and anyone else with a
    # presence (supervisors who take chats).
    rows = (await session.execute(
        select(AgentProfile.presence, func.count())
        .select_from(User).outerjoin(AgentProfile, AgentProfile.user_id == User.id)
        .where(User.is_active.is_(True), or_(User.role == Role.agent.value, AgentProfile.user_id.is_not(None)))
        .group_by(AgentProfile.presence))).all()
    counts = {p.value: 0 for p in Presence}
    for presence, count in rows:
        key = presence or Presence.offline.value
        counts[key] = counts.get(key, 0) + int(count)
    # The agents whose voice slot is taken (routing.service.on_call, counted for everyone at once).
    on_call = await session.scalar(
        select(func.count(func.distinct(Conversation.agent_id)))
        .where(Conversation.state == S.assigned.value, Conversation.channel == Channel.voice.value,
               Conversation.agent_id.is_not(None)))
    return {"by_presence": [{"presence": p.value, "label": PRESENCE_LABELS[p], "count": counts[p.value]}
                            for p in Presence],
            "on_call": int(on_call or 0), "total": sum(counts.values())}


async def _tickets(session: AsyncSession, limits: dict[str, Threshold]) -> dict[str, Any]:
    open_statuses = [s.value for s in OPEN_STATUSES]
    rows = (await session.execute(
        select(Ticket.sla_state, func.count()).where(Ticket.status.in_(open_statuses),
                                                     Ticket.sla_state.in_(["at_risk", "breached"]))
        .group_by(Ticket.sla_state))).all()
    sla = {state: int(count) for state, count in rows}
    emergencies = int(await session.scalar(
        select(func.count()).select_from(Ticket)
        .where(Ticket.type == TicketType.gas_leak.value, Ticket.status.in_(open_statuses))) or 0)
    at_risk, breached = sla.get("at_risk", 0), sla.get("breached", 0)
    return {"emergencies": emergencies, "emergencies_level": limits["emergencies"].level(emergencies),
            "sla_at_risk": at_risk, "sla_at_risk_level": limits["sla_at_risk"].level(at_risk),
            "sla_breached": breached, "sla_breached_level": limits["sla_breached"].level(breached)}


# Today's rates and satisfaction come from the analytics roll-ups (hourly buckets, refreshed by
# ``analytics.rollup`` every minute): never a scan of conversations or messages.
TODAY_METRICS = ["ai_rate", "transfer_rate", "csat", "ratings", "followup_score", "followups"]


def _round(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


async def _today(session: AsyncSession, since: datetime, now: datetime) -> dict[str, Any]:
    found = await figures(session, TODAY_METRICS, since, now)
    ratings, surveys = int(found["ratings"] or 0), int(found["followups"] or 0)
    # Satisfaction: the mean score (of 5) over today's chat ratings and 回访 answers together.
    weighted = (found["csat"] or 0.0) * ratings + (found["followup_score"] or 0.0) * surveys
    csat = weighted / (ratings + surveys) if ratings + surveys else None
    # The trend's quarter hours are finer than the buckets: they count today's contact facts, one indexed range
    # (kind, occurred_at) over today only, so they are fresh at once.
    steps = max(1, int((now - since).total_seconds() // (TREND_MINUTES * 60)) + 1)
    trend = [0] * steps
    for (occurred,) in await session.execute(
            select(AnalyticsFact.occurred_at).where(AnalyticsFact.kind == CONTACT_FACT,
                                                   AnalyticsFact.occurred_at >= since,
                                                   AnalyticsFact.occurred_at <= now)):
        index = int((as_utc(occurred) - since).total_seconds() // (TREND_MINUTES * 60))
        if 0 <= index < steps:
            trend[index] += 1
    zone = local_zone()
    return {
        # contacts from the same facts as the trend (fresh, and the tile agrees with the line); the rates from
        # the roll-ups
        "contacts": sum(trend),
        "ai_rate": _round(found["ai_rate"]),
        "transfer_rate": _round(found["transfer_rate"]),
        "csat": _round(csat, 2),
        "csat_count": ratings + surveys,
        "trend_minutes": TREND_MINUTES,
        "trend": [{"at": (since + timedelta(minutes=TREND_MINUTES * i)).astimezone(zone).strftime("%H:%M"),
                   "count": n} for i, n in enumerate(trend)],
    }


async def wall_snapshot(session: AsyncSession, now: datetime | None = None) -> dict[str, Any]:
    """Everything the wall shows, with each tile's level under the current thresholds (``WallSnapshot``)."""
    now = as_utc(now or utcnow())
    limits = await thresholds(session)
    return {
        "at": now.isoformat(),
        "queue": await _queue(session, now, limits),
        "agents": await _agents(session),
        "tickets": await _tickets(session, limits),
        "today": await _today(session, local_day_start(now), now),
        "thresholds": {metric: limits[metric].as_dict() for metric in THRESHOLD_METRICS},
    }


# ------------------------------------------------------------------ the agent's own dashboard


async def agent_dashboard(session: AsyncSession, user: User, now: datetime | None = None) -> dict[str, Any]:
    """One agent's day: contacts they closed today and their average handle time (accepted → closed), the
    ratings and 回访 scores of their conversations and tickets (last 30 days), and their QA results (none
    yet: quality inspection is not built, the page says 暂无质检结果)."""
    now = as_utc(now or utcnow())
    since = local_day_start(now)
    handled = (await session.execute(
        select(Conversation.accepted_at, Conversation.closed_at)
        .where(Conversation.agent_id == user.id, Conversation.closed_at >= since,
               Conversation.state == S.closed.value))).all()
    durations = [(as_utc(closed) - as_utc(accepted)).total_seconds() for accepted, closed in handled
                 if accepted is not None and closed is not None and closed >= accepted]
    month = now - timedelta(days=30)
    ratings = list(await session.scalars(
        select(Conversation.rating).where(Conversation.agent_id == user.id, Conversation.rated_at >= month,
                                          Conversation.rating.is_not(None))))
    surveys = (await session.execute(
        select(FollowUpSurvey.score, FollowUpSurvey.solved, FollowUpSurvey.answered_at, Ticket.number)
        .join(Ticket, Ticket.id == FollowUpSurvey.ticket_id)
        .outerjoin(Conversation, Conversation.id == Ticket.conversation_id)
        .where(FollowUpSurvey.answered_at >= month, FollowUpSurvey.score.is_not(None),
               or_(Ticket.handler_id == user.id, Ticket.created_by_id == user.id, Conversation.agent_id == user.id))
        .order_by(FollowUpSurvey.answered_at.desc()))).all()
    scores = [int(r) for r in ratings if r is not None]
    followup_scores = [int(s.score) for s in surveys]
    return {
        "handled_today": len(handled),
        "average_handle_s": round(sum(durations) / len(durations)) if durations else None,
        "rating_count": len(scores),
        "rating_average": round(sum(scores) / len(scores), 2) if scores else None,
        "followup_count": len(followup_scores),
        "followup_average": round(sum(followup_scores) / len(followup_scores), 2) if followup_scores else None,
        "followups": [{"ticket_number": number, "score": int(score or 0), "solved": solved,
                       "answered_at": as_utc(answered).isoformat() if answered else ""}
                      for score, solved, answered, number in surveys[:10]],  # the query wants both set
        "qa": None,
    }
