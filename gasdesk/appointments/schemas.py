"""What the appointment API accepts."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gasdesk.customers.schemas import AddressIn
from gasdesk.fields import BoundedDate, Id
from gasdesk.schemas import IsoDatetime, Out


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


# ---------------------------------------------------------------- responses


class ServiceGuidance(Out):
    """A service of the catalogue (``service.guidance``): what to bring, where to go, phone and hours."""

    service: str
    name: str
    bookable: bool
    description: str
    materials: list[str]
    where_to_go: str
    phone: str
    hours: str
    fee_note: str


class SlotOut(Out):
    id: int
    district: str
    start: IsoDatetime
    end: IsoDatetime
    label: str
    capacity: int
    booked: int
    free: int


class SlotBooking(Out):
    id: int
    ticket_id: int
    service: str


class CalendarSlot(SlotOut):
    appointments: list[SlotBooking]


class SlotsCreated(Out):
    created: int


class BookingOut(Out):
    appointment_id: int
    ticket_id: int
    ticket_number: str
    slot: SlotOut


class RescheduledOut(Out):
    appointment_id: int
    slot_id: int
    status: str


class CancelledOut(Out):
    appointment_id: int
    status: str


class ProgressItem(Out):
    """A recent ticket of the customer, with its appointment and crew (``service.progress_for``)."""

    ticket_number: str
    type: str
    type_label: str
    status: str
    status_label: str
    title: str
    service: str | None
    appointment_id: int | None
    appointment_status: str | None
    slot: str | None
    crew: str | None
