"""What the webhook API accepts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.webhooks.models import EVENTS


class EndpointIn(BaseModel):
    name: str = Field(default="", max_length=60)
    url: str = Field(min_length=8, max_length=500)
    events: list[str] = Field(default_factory=lambda: list(EVENTS))
