from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from gasdesk.fields import AwareDatetime, Id
from gasdesk.schemas import IsoDatetime, Out


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


# ---------------------------------------------------------------- responses


class TicketOut(Out):
    """A ticket in lists (``api.ticket_out``): fields, labels, names of team, crew and handler, next actions."""

    id: int
    number: str
    type: str
    type_label: str
    priority: str
    priority_label: str
    status: str
    status_label: str
    title: str
    description: str | None
    service_type: str | None
    customer_id: int | None
    account_id: int | None
    district: str | None
    address: str | None
    contact_name: str | None
    contact_phone: str | None
    channel: str | None
    conversation_id: int | None
    team: str | None
    team_id: int | None
    crew_id: int | None
    crew: str | None
    handler_id: int | None
    handler: str | None
    routing_rule: str | None
    sla_state: str
    escalation_level: int
    respond_by: IsoDatetime | None
    resolve_by: IsoDatetime | None
    responded_at: IsoDatetime | None
    resolved_at: IsoDatetime | None
    closed_at: IsoDatetime | None
    created_at: IsoDatetime
    reopen_count: int
    result: dict[str, Any] | None
    parent_ticket_id: int | None
    actions: list[str]  # what the state machine allows next


class TicketEventOut(Out):
    at: IsoDatetime
    actor: str
    action: str
    from_status: str | None = Field(alias="from")
    to: str | None
    note: str | None
    data: dict[str, Any] | None


class TicketDetail(TicketOut):
    """A ticket with its history."""

    events: list[TicketEventOut]


class TicketPage(Out):
    total: int
    items: list[TicketOut]


class TicketRef(Out):
    id: int
    number: str
    type: str
    type_label: str
    status_label: str
    title: str


class TicketDraftOut(Out):
    """A ticket draft extracted from a transcript (``draft.TicketDraft``) and the conversation's open tickets."""

    type: str
    type_label: str
    service_type: str | None
    description: str
    phone: str | None
    account_no: str | None
    address_text: str | None
    district: str | None
    preferred_time: str | None
    customer_id: int | None
    account_id: int | None
    address_id: int | None
    intents: list[str]
    open_tickets: list[TicketRef]


class TeamCompliance(Out):
    """SLA compliance of one team (``sla.sla_compliance``)."""

    team_id: int | None
    team: str
    total: int
    responded_in_time: int
    resolved_in_time: int
    open_breached: int
    respond_rate: float
    resolve_rate: float


class TeamOut(Out):
    id: int
    code: str
    name: str
    kind: str


class CrewUserOut(Out):
    """A field-crew user, assignable like a team."""

    id: None
    crew_user_id: int
    name: str
    kind: str  # "crew_user"


class RoutingRuleOut(Out):
    """A ticket routing rule (``routing.routing_rule_out``)."""

    id: int
    position: int
    name: str
    ticket_types: list[str]
    districts: list[str]
    keywords: list[str]
    customer_tags: list[str]
    team_id: int | None
    handler_id: int | None
    complaint_mode: str | None
    priority: str | None
    enabled: bool


class SlaPolicyOut(Out):
    ticket_type: str
    priority: str
    respond_minutes: int
    resolve_minutes: int
    at_risk_ratio_pct: int
