"""What the webhook API accepts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.schemas import IsoDatetime, Out
from gasdesk.webhooks.models import EVENTS


class EndpointIn(BaseModel):
    name: str = Field(default="", max_length=60)
    url: str = Field(min_length=8, max_length=500)
    events: list[str] = Field(default_factory=lambda: list(EVENTS))


# ---------------------------------------------------------------- responses


class EndpointOut(Out):
    id: int
    name: str
    url: str
    events: list[str]
    active: bool


class EndpointCreated(Out):
    id: int
    name: str
    url: str
    events: list[str]
    secret: str  # shown this once


class DeliveryOut(Out):
    id: int
    endpoint_id: int
    event: str
    event_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: IsoDatetime
    delivered_at: IsoDatetime | None
    next_attempt_at: IsoDatetime | None
