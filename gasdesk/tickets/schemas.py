from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class TicketCreate(BaseModel):
    type: str
    priority: str | None = None
    title: str | None = Field(default=None, max_length=120)
    description: str = Field(default="", max_length=4000)
    customer_id: int | None = None
    account_id: int | None = None
    address_id: int | None = None
    address_text: str | None = Field(default=None, max_length=200)
    district: str | None = Field(default=None, max_length=40)
    contact_name: str | None = Field(default=None, max_length=30)
    contact_phone: str | None = Field(default=None, max_length=20)
    service_type: str | None = None
    channel: str | None = None
    conversation_id: int | None = None
    left_message_id: int | None = None
    # A related earlier ticket; a ticket from a conversation that already has an open one is linked to it.
    parent_ticket_id: int | None = None
    preferred_time: str | None = Field(default=None, max_length=60)


class TicketNote(BaseModel):
    note: str = Field(min_length=1, max_length=1000)


class TicketAction(BaseModel):
    action: Literal["assign", "start", "resolve", "close", "reopen", "cancel"]
    note: str = Field(default="", max_length=1000)
    crew_id: int | None = None
    handler_id: int | None = None


class CrewWriteback(BaseModel):
    arrived_at: datetime | None = None
    result: str = Field(min_length=1, max_length=2000)
    resolved: bool = True
    materials: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    photo_tokens: list[str] = Field(default_factory=list, max_length=20)
    signature_name: str | None = Field(default=None, max_length=30)
