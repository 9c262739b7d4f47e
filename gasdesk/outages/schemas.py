"""What the outage API accepts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.fields import AwareDatetime


class OutageIn(BaseModel):
    kind: str
    district: str = Field(min_length=1, max_length=40)
    communities: list[str] = Field(default_factory=list, max_length=100)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=200)
