"""What the follow-up (回访) API accepts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gasdesk.schemas import IsoDatetime, Out


class FollowUpPolicyIn(BaseModel):
    enabled: bool = True
    delay_minutes: int = Field(ge=0, le=60 * 24 * 30)
    max_attempts: int = Field(ge=1, le=10)
    retry_minutes: int = Field(ge=5, le=60 * 24 * 14)
    on_dissatisfied: Literal["reopen", "complaint", "none"] = "reopen"
    dissatisfied_max_score: int = Field(default=2, ge=1, le=4)


# ---------------------------------------------------------------- responses


class FollowUpOut(Out):
    id: int
    ticket_id: int
    channel: str
    status: str
    attempts: int
    due_at: IsoDatetime
    score: int | None
    solved: bool | None
    comment: str | None
    outcome: str | None
    category: str | None
    answered_at: IsoDatetime | None


class DayTrend(Out):
    day: str  # local date, YYYY-MM-DD
    answered: int
    avg_score: float


class CategoryOutcome(Out):
    category: str
    answered: int
    unsolved: int
    avg_score: float


class FollowUpOutcomes(Out):
    """Satisfaction per local day and per problem category (``service.followup_outcomes``)."""

    trend: list[DayTrend]
    categories: list[CategoryOutcome]
    answered: int
    unreachable: int


class FollowUpPolicyOut(Out):
    ticket_type: str
    enabled: bool
    delay_minutes: int
    max_attempts: int
    retry_minutes: int
    on_dissatisfied: str
    dissatisfied_max_score: int
