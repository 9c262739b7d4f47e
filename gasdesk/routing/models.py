from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.db import Base, TimestampMixin, UTCDateTime


class RoutingMode(StrEnum):
    longest_idle = "longest_idle"  # the agent who has waited longest since their last assignment
    round_robin = "round_robin"  # agents in turn, by the time they were last offered a conversation
    least_active = "least_active"  # the agent with the fewest open conversations


class Presence(StrEnum):
    online = "online"  # takes new conversations
    busy = "busy"  # keeps current conversations, takes no new ones automatically
    away = "away"
    offline = "offline"


PRESENCE_LABELS = {Presence.online: "在线", Presence.busy: "忙碌", Presence.away: "离开", Presence.offline: "离线"}


class SkillGroup(TimestampMixin, Base):
    """A queue of conversations served by agents with that skill (燃气业务, 热力业务, 缴费账单, 投诉…)."""

    __tablename__ = "skill_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    routing_mode: Mapped[str] = mapped_column(String(20), default=RoutingMode.longest_idle.value)
    sticky_returning: Mapped[bool] = mapped_column(Boolean, default=True)
    queue_capacity: Mapped[int] = mapped_column(Integer, default=50)
    # ISO weekday "1".."7" -> "08:00-20:00"; "" closed; "00:00-24:00" around the clock.
    working_hours: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    default_handle_s: Mapped[int] = mapped_column(Integer, default=240)


class AgentProfile(Base):
    """Per-agent ACD state: presence, capacity, and when they last got work."""

    __tablename__ = "agent_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    presence: Mapped[str] = mapped_column(String(10), default=Presence.offline.value, index=True)
    max_concurrent: Mapped[int] = mapped_column(Integer, default=5)
    presence_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AgentSkill(Base):
    __tablename__ = "agent_skills"
    __table_args__ = (UniqueConstraint("user_id", "skill_group_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    skill_group_id: Mapped[int] = mapped_column(ForeignKey("skill_groups.id", ondelete="CASCADE"), index=True)


class HandoffKind(StrEnum):
    request = "request"  # the resident asks: 转人工 button or words
    bot_misses = "bot_misses"  # after N bot turns in a row that did not understand
    keyword = "keyword"  # any of the keywords appears
    emergency = "emergency"  # the bot flagged an emergency (gas leak)
    intent = "intent"  # the bot recognised one of the listed intents


class HandoffRule(TimestampMixin, Base):
    """When the bot hands a conversation to people, and to which skill group. Evaluated in ``position`` order."""

    __tablename__ = "handoff_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"keywords": [...]}, {"threshold": 2}
    skill_group_id: Mapped[int] = mapped_column(ForeignKey("skill_groups.id", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
