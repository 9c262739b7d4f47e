"""What the follow-up (回访) API accepts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class FollowUpPolicyIn(BaseModel):
    enabled: bool = True
    delay_minutes: int = Field(ge=0, le=60 * 24 * 30)
    max_attempts: int = Field(ge=1, le=10)
    retry_minutes: int = Field(ge=5, le=60 * 24 * 14)
    on_dissatisfied: Literal["reopen", "complaint", "none"] = "reopen"
    dissatisfied_max_score: int = Field(default=2, ge=1, le=4)
