"""What the appointment API accepts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.customers.schemas import AddressIn
from gasdesk.fields import BoundedDate, Id


class BookIn(BaseModel):
    customer_id: Id
    service: str
    slot_id: Id
    address_id: Id | None = None
    new_address: AddressIn | None = None
    contact_phone: str | None = Field(default=None, max_length=20)
    note: str = Field(default="", max_length=500)
    conversation_id: Id | None = None


class RescheduleIn(BaseModel):
    slot_id: Id


class CancelIn(BaseModel):
    reason: str = Field(default="居民取消", max_length=200)


class SlotsIn(BaseModel):
    district: str = Field(min_length=1, max_length=40)
    first_day: BoundedDate
    days: int = Field(ge=1, le=120)
    windows: list[tuple[str, str]] = Field(min_length=1, max_length=6)
    capacity: int = Field(ge=1, le=500)


class ProgressIn(BaseModel):
    phone: str | None = Field(default=None, max_length=20)
    account_no: str | None = Field(default=None, max_length=20)
