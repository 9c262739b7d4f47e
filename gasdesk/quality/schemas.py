"""What the quality-inspection API accepts and returns."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from gasdesk.quality.models import QualityScore
from gasdesk.schemas import IsoDatetime, Out

Reason = Annotated[str, Field(min_length=2, max_length=500)]


class AdjustIn(BaseModel):
    score: float = Field(ge=0, le=100)
    reason: Reason


class AppealIn(BaseModel):
    reason: Reason


class ResolveAppealIn(BaseModel):
    outcome: Literal["upheld", "rejected"]
    note: Reason
    score: float | None = Field(default=None, ge=0, le=100)  # required when upheld


# ---------------------------------------------------------------- responses


class RuleResultOut(Out):
    rule_id: str
    kind: str
    label: str
    weight: int
    earned: float
    status: str  # pass | fail | na
    evidence: list[dict[str, Any]]  # seq numbers, seconds, ticket ids, the agent's matched phrase


class ScoreOut(Out):
    id: int
    conversation_id: int
    call_id: int | None
    channel: str
    agent_id: int | None
    team_id: int | None
    sheet_id: int
    closed_at: IsoDatetime
    auto_score: float
    score: float
    adjusted: bool
    sample_reason: str | None
    review_status: str
    appeal_status: str
    results: list[RuleResultOut]


def score_out(row: QualityScore) -> dict[str, Any]:
    """A score as the API sends it (reasons and notes stay on the pages: they may quote residents)."""
    return {"id": row.id, "conversation_id": row.conversation_id, "call_id": row.call_id, "channel": row.channel,
            "agent_id": row.agent_id, "team_id": row.team_id, "sheet_id": row.sheet_id, "closed_at": row.closed_at,
            "auto_score": row.auto_score, "score": row.score, "adjusted": row.adjusted,
            "sample_reason": row.sample_reason, "review_status": row.review_status,
            "appeal_status": row.appeal_status, "results": row.results}
