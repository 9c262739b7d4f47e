"""What the wall API sends and accepts (the snapshot is also the ``snapshot`` frame on ``/ws/wall``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gasdesk.schemas import Out

Level = Literal["ok", "amber", "red"]


class GroupTile(Out):
    id: int
    name: str
    waiting: int
    longest_wait_s: int
    level: Level


class ChannelTile(Out):
    channel: str
    label: str
    waiting: int


class QueueNow(Out):
    total: int
    level: Level
    longest_wait_s: int
    longest_wait_level: Level
    oldest_queued_at: str | None
    by_group: list[GroupTile]
    by_channel: list[ChannelTile]


class PresenceCount(Out):
    presence: str
    label: str
    count: int


class AgentsNow(Out):
    by_presence: list[PresenceCount]
    on_call: int
    total: int


class TicketsNow(Out):
    emergencies: int
    emergencies_level: Level
    sla_at_risk: int
    sla_at_risk_level: Level
    sla_breached: int
    sla_breached_level: Level


class TrendPoint(Out):
    at: str  # local HH:MM, the start of the step
    count: int


class Today(Out):
    contacts: int
    ai_rate: float | None  # % of today's closed conversations the bot handled alone
    transfer_rate: float | None  # % of today's contacts handed to people
    csat: float | None  # the mean score (of 5) of today's chat ratings and 回访 answers
    csat_count: int
    trend_minutes: int
    trend: list[TrendPoint]


class ThresholdIn(BaseModel):
    amber: int | None = Field(default=None, ge=0, le=100_000)
    red: int | None = Field(default=None, ge=0, le=100_000)


class ThresholdOut(Out):
    amber: int | None
    red: int | None


class WallThresholdsIn(BaseModel):
    """The metrics to change (``service.THRESHOLD_METRICS``); those left out keep their thresholds."""

    model_config = ConfigDict(extra="forbid")

    waiting: ThresholdIn | None = None  # residents waiting (the total and each skill group)
    longest_wait_s: ThresholdIn | None = None
    sla_breached: ThresholdIn | None = None
    sla_at_risk: ThresholdIn | None = None
    emergencies: ThresholdIn | None = None


class WallThresholds(Out):
    waiting: ThresholdOut
    longest_wait_s: ThresholdOut
    sla_breached: ThresholdOut
    sla_at_risk: ThresholdOut
    emergencies: ThresholdOut


class WallSnapshot(Out):
    at: str
    queue: QueueNow
    agents: AgentsNow
    tickets: TicketsNow
    today: Today
    thresholds: WallThresholds


class FollowupScore(Out):
    ticket_number: str
    score: int
    solved: bool | None
    answered_at: str


class AgentDashboard(Out):
    handled_today: int
    average_handle_s: int | None
    rating_count: int
    rating_average: float | None
    followup_count: int
    followup_average: float | None
    followups: list[FollowupScore]
    qa: None  # quality inspection is not built yet (the page says 暂无质检结果)
