"""What the outage API accepts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.fields import AwareDatetime
from gasdesk.schemas import IsoDatetime, Out


class OutageIn(BaseModel):
    kind: str
    district: str = Field(min_length=1, max_length=40)
    communities: list[str] = Field(default_factory=list, max_length=100)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=200)


# ---------------------------------------------------------------- responses


class OutageOut(Out):
    id: int
    kind: str
    district: str
    communities: list[str]
    starts_at: IsoDatetime
    ends_at: IsoDatetime
    reason: str
    text: str  # the notice as residents read it


class OutageAnnounced(Out):
    id: int
    text: str
