"""Appointment REST API: catalogue and guidance, free slots, booking, reschedule/cancel, progress."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from gasdesk.appointments import service
from gasdesk.appointments.models import Appointment, AppointmentSlot, ServiceOffering
from gasdesk.appointments.schemas import (
    BookIn,
    BookingOut,
    CalendarSlot,
    CancelIn,
    CancelledOut,
    ProgressIn,
    ProgressItem,
    RescheduledOut,
    RescheduleIn,
    ServiceGuidance,
    SlotOut,
    SlotsCreated,
    SlotsIn,
)
from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, OFFICE, Role
from gasdesk.clock import local_zone
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import BoundedDate, Id

router = APIRouter(prefix="/api/v1", tags=["appointments"])


def slot_out(slot: AppointmentSlot) -> dict[str, Any]:
    return {"id": slot.id, "district": slot.district, "start": slot.start, "end": slot.end, "label": service.slot_label(slot),
            "capacity": slot.capacity, "booked": slot.booked, "free": slot.capacity - slot.booked}


@router.get("/services", response_model=list[ServiceGuidance])
async def catalogue(session: DbSession, _: User = allow(*ALL_ROLES)) -> list[dict[str, Any]]:
    """The service catalogue; guidance-only services carry materials, where to go, phone and hours."""
    rows = await session.scalars(select(ServiceOffering).where(ServiceOffering.active.is_(True)))
    return [service.guidance(o) for o in rows]


@router.get("/appointment-slots", response_model=list[SlotOut])
async def free_slots(session: DbSession, district: str, service_code: str = Query(..., alias="service"),
                     days: int = Query(14, ge=1, le=60), _: User = allow(*OFFICE)) -> list[dict[str, Any]]:
    offering = await service.access_offering(session, service_code)
    if not offering.bookable:
        raise InvalidInput(f"“{offering.name}”不支持在线预约", code="guidance_only", details=service.guidance(offering))
    return [slot_out(s) for s in await service.available_slots(session, district, service_code, days=days)]


@router.get("/appointment-calendar", response_model=list[CalendarSlot])
async def calendar(session: DbSession, district: str, first_day: BoundedDate, days: int = Query(7, ge=1, le=31),
                   _: User = allow(*OFFICE)) -> list[dict[str, Any]]:
    """Every slot of a district in a date range with its bookings (the calendar page)."""
    start = datetime.combine(first_day, time.min, local_zone())
    rows = await session.scalars(select(AppointmentSlot).where(
        AppointmentSlot.district == district, AppointmentSlot.start >= start,
        AppointmentSlot.start < start + timedelta(days=days)).order_by(AppointmentSlot.start))
    out = []
    for slot in rows:
        bookings = await session.scalars(select(Appointment).where(Appointment.slot_id == slot.id,
                                                                   Appointment.status == "booked"))
        out.append({**slot_out(slot), "appointments": [{"id": a.id, "ticket_id": a.ticket_id,
                                                         "service": a.service_code} for a in bookings]})
    return out


@router.post("/appointment-slots/generate", status_code=201, response_model=SlotsCreated)
async def generate_slots(body: SlotsIn, session: DbSession, user: User = allow(Role.admin, Role.dispatcher)) -> dict:
    made = await service.do_generate_slots(session, district=body.district, first_day=body.first_day, days=body.days,
                                           windows=body.windows, capacity=body.capacity,
                                           actor=Actor.of(user, "api"))
    return {"created": made}


@router.post("/appointments", status_code=201, response_model=BookingOut)
async def book(body: BookIn, session: DbSession, user: User = allow(*OFFICE)) -> dict[str, Any]:
    booking = await service.book_appointment(
        session, Actor.of(user, "api"), customer_id=body.customer_id, service_code=body.service, slot_id=body.slot_id,
        address_id=body.address_id, new_address=body.new_address, contact_phone=body.contact_phone, note=body.note,
        channel="webchat" if body.conversation_id else None, conversation_id=body.conversation_id)
    return {"appointment_id": booking.appointment.id, "ticket_id": booking.ticket.id,
            "ticket_number": booking.ticket.number, "slot": slot_out(booking.slot)}


@router.post("/appointments/{appointment_id}/reschedule", response_model=RescheduledOut)
async def reschedule(appointment_id: Id, body: RescheduleIn, session: DbSession,
                     user: User = allow(*OFFICE)) -> dict[str, Any]:
    appointment = await service.access_appointment(session, appointment_id)
    await service.do_reschedule(session, Actor.of(user, "api"), appointment, body.slot_id)
    return {"appointment_id": appointment.id, "slot_id": appointment.slot_id, "status": appointment.status}


@router.post("/appointments/{appointment_id}/cancel", response_model=CancelledOut)
async def cancel(appointment_id: Id, body: CancelIn, session: DbSession, user: User = allow(*OFFICE)) -> dict[str, Any]:
    appointment = await service.access_appointment(session, appointment_id)
    await service.do_cancel_appointment(session, Actor.of(user, "api"), appointment, body.reason)
    return {"appointment_id": appointment.id, "status": appointment.status}


@router.post("/progress", response_model=list[ProgressItem])
async def progress(body: ProgressIn, session: DbSession, _: User = allow(*OFFICE)) -> list[dict[str, Any]]:
    """Progress by phone or 户号: status, slot and assigned crew of recent tickets.
    A POST so that the phone number or 户号 stays out of URLs and access logs."""
    if not body.phone and not body.account_no:
        raise InvalidInput("请提供手机号或户号", code="missing_query")
    return await service.progress_for(session, phone=body.phone, account_no=body.account_no)
