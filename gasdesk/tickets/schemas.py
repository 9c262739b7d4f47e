from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from gasdesk.fields import AwareDatetime, Id


class TicketCreate(BaseModel):
    type: str
    priority: str | None = None
    title: str | None = Field(default=None, max_length=120)
    description: str = Field(default="", max_length=4000)
    customer_id: Id | None = None
    account_id: Id | None = None
    address_id: Id | None = None
    address_text: str | None = Field(default=None, max_length=200)
    district: str | None = Field(default=None, max_length=40)
    contact_name: str | None = Field(default=None, max_length=30)
    contact_phone: str | None = Field(default=None, max_length=20)
    service_type: str | None = None
    channel: str | None = None
    conversation_id: Id | None = None
    left_message_id: Id | None = None
    # A related earlier ticket; a ticket from a conversation that already has an open one is linked to it.
    parent_ticket_id: Id | None = None
    preferred_time: str | None = Field(default=None, max_length=60)


class TicketNote(BaseModel):
    note: str = Field(min_length=1, max_length=1000)


class TicketAction(BaseModel):
    action: Literal["assign", "start", "resolve", "close", "reopen", "cancel"]
    note: str = Field(default="", max_length=1000)
    crew_id: Id | None = None
    handler_id: Id | None = None


MAX_MATERIAL_QTY = 10_000


class MaterialIn(BaseModel):
    """One material used on site. The quantity is finite and positive: NaN or Infinity would be stored into
    the ticket's JSON result, which PostgreSQL refuses."""

    name: str = Field(min_length=1, max_length=40)
    qty: float = Field(default=1, gt=0, le=MAX_MATERIAL_QTY, allow_inf_nan=False)

    @field_validator("qty")
    @classmethod
    def _whole_numbers_stay_integers(cls, value: float) -> int | float:
        return int(value) if value.is_integer() else value


class CrewWriteback(BaseModel):
    arrived_at: AwareDatetime | None = None
    result: str = Field(min_length=1, max_length=2000)
    resolved: bool = True
    materials: list[MaterialIn] = Field(default_factory=list, max_length=50)
    photo_tokens: list[str] = Field(default_factory=list, max_length=20)
    signature_name: str | None = Field(default=None, max_length=30)


class RoutingRuleIn(BaseModel):
    position: int = Field(ge=0, le=10000)
    name: str = Field(min_length=1, max_length=60)
    ticket_types: list[str] = []
    districts: list[str] = []
    keywords: list[str] = []
    customer_tags: list[str] = []
    team_id: Id | None = None
    handler_id: Id | None = None
    complaint_mode: Literal["live_agent", "ticket"] | None = None
    priority: Literal["urgent", "high", "normal", "low"] | None = None
    enabled: bool = True


class SlaPolicyIn(BaseModel):
    ticket_type: str
    priority: Literal["urgent", "high", "normal", "low"]
    respond_minutes: int = Field(ge=1, le=60 * 24 * 30)
    resolve_minutes: int = Field(ge=1, le=60 * 24 * 90)
    at_risk_ratio_pct: int = Field(default=80, ge=10, le=99)
