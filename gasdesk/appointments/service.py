"""Booking on-site services against slot capacity.

Capacity is taken with one conditional UPDATE (``booked = booked + 1 WHERE booked < capacity``), so
parallel bookings can never overbook a slot, on SQLite or across PostgreSQL connections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.appointments.models import Appointment, AppointmentSlot, ServiceOffering
from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.clock import local_zone, to_local, utcnow
from gasdesk.customers.models import Address, Customer
from gasdesk.customers.schemas import AddressIn
from gasdesk.customers.service import CustomerQuery, address_parts, do_add_address, find_customers
from gasdesk.db import execute_counted
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.event_types import AppointmentBookedData, TicketUpdated
from gasdesk.fields import EARLIEST_DAY, LATEST_DAY
from gasdesk.tickets.models import STATUS_LABELS, TYPE_LABELS, Ticket, TicketStatus, TicketType
from gasdesk.tickets.schemas import TicketCreate
from gasdesk.tickets.service import (
    _event,
    _publish,
    do_create_desk_ticket,
    do_create_ticket,
    do_ticket_action,
    load_history,
)
from gasdesk.webhooks.service import publish

CHANGE_CUTOFF = timedelta(hours=2)

# What else a booking (or a move to a new slot) does in the same transaction: the resident's 预约确认 on
# WeChat/SMS (gasdesk/outbound/notices.py). Registered by gasdesk/worker.py, as tickets' ON_RESOLVED is.
BookedHook = Callable[[AsyncSession, Appointment, AppointmentSlot], Awaitable[Any]]
ON_BOOKED: list[BookedHook] = []


def on_appointment_booked(hook: BookedHook) -> None:
    """Run ``hook(session, appointment, slot)`` when an appointment is booked or moved to ``slot``."""
    if hook not in ON_BOOKED:
        ON_BOOKED.append(hook)


async def access_offering(session: AsyncSession, code: str) -> ServiceOffering:
    offering = await session.get(ServiceOffering, code)
    if offering is None or not offering.active:
        raise NotFound(f"没有“{code}”这项服务", code="service_not_found")
    return offering


def guidance(offering: ServiceOffering) -> dict[str, Any]:
    """What a resident needs for a service that cannot be booked online."""
    return {"service": offering.code, "name": offering.name, "bookable": offering.bookable,
            "description": offering.description, "materials": offering.materials,
            "where_to_go": offering.where_to_go, "phone": offering.phone, "hours": offering.hours,
            "fee_note": offering.fee_note}


async def available_slots(session: AsyncSession, district: str, service_code: str, *,
                          days: int = 14, now: datetime | None = None) -> list[AppointmentSlot]:
    """Slots with free capacity in the district, starting at least the change cut-off from now."""
    now = now or utcnow()
    rows = await session.scalars(select(AppointmentSlot).where(
        AppointmentSlot.district == district, AppointmentSlot.start >= now + CHANGE_CUTOFF,
        AppointmentSlot.start < now + timedelta(days=days), AppointmentSlot.booked < AppointmentSlot.capacity,
    ).order_by(AppointmentSlot.start))
    return [s for s in rows if not s.services or service_code in s.services]


def slot_label(slot: AppointmentSlot) -> str:
    start, end = to_local(slot.start), to_local(slot.end)
    weekday = "一二三四五六日"[start.weekday()]
    return f"{start:%m月%d日}（周{weekday}）{start:%H:%M}-{end:%H:%M}"


async def _take_capacity(session: AsyncSession, slot_id: int) -> None:
    matched = await execute_counted(
        session,
        update(AppointmentSlot).where(AppointmentSlot.id == slot_id, AppointmentSlot.booked < AppointmentSlot.capacity)
        .values(booked=AppointmentSlot.booked + 1).execution_options(synchronize_session=False))
    if matched != 1:
        raise Conflict("该时段已约满，请选择其他时段", code="slot_full")


async def _release_capacity(session: AsyncSession, slot_id: int) -> None:
    await session.execute(update(AppointmentSlot).where(AppointmentSlot.id == slot_id, AppointmentSlot.booked > 0)
                          .values(booked=AppointmentSlot.booked - 1).execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Booking:
    appointment: Appointment
    ticket: Ticket
    slot: AppointmentSlot


async def book_appointment(
    session: AsyncSession, actor: Actor, *, customer_id: int, service_code: str, slot_id: int,
    address_id: int | None = None, new_address: AddressIn | None = None, contact_phone: str | None = None,
    note: str = "", channel: str | None = None, conversation_id: int | None = None,
) -> Booking:
    """Book a bookable service at a slot for one of the customer's addresses (or a new one); the booking
    is a ``service_appointment`` ticket."""
    offering = await access_offering(session, service_code)
    if not offering.bookable:
        raise InvalidInput(f"“{offering.name}”不支持在线预约，请按指引办理：{offering.where_to_go}",
                           code="guidance_only", details=guidance(offering))
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("客户不存在", code="customer_not_found")
    await session.refresh(customer, ["addresses"])
    address: Address | None
    if new_address is not None:
        address = await do_add_address(session, actor, customer, new_address)
    elif address_id is not None:
        address = next((a for a in customer.addresses if a.id == address_id), None)
        if address is None:
            raise InvalidInput("请选择该客户名下的地址", code="invalid_address")
    elif len(customer.addresses) == 1:
        address = customer.addresses[0]
    else:
        raise InvalidInput("请选择上门地址", code="address_required")
    slot = await session.get(AppointmentSlot, slot_id)
    if slot is None:
        raise NotFound("预约时段不存在", code="slot_not_found")
    if slot.district != address.district:
        raise InvalidInput(f"该时段属于{slot.district}，与上门地址所在的{address.district}不符", code="slot_district")
    if slot.services and service_code not in slot.services:
        raise InvalidInput("该时段不提供此项服务", code="slot_service")
    if slot.start < utcnow() + CHANGE_CUTOFF:
        raise InvalidInput("只能预约 2 小时以后的时段", code="slot_too_soon")
    await _take_capacity(session, slot.id)
    await session.refresh(slot)
    ticket = await do_create_ticket(session, actor, TicketCreate(
        type="service_appointment", service_type=service_code, customer_id=customer.id, address_id=address.id,
        contact_phone=contact_phone, channel=channel, conversation_id=conversation_id,
        title=f"预约{offering.name} - {slot_label(slot)}",
        description=(note.strip() + "\n" if note.strip() else "") + f"预约时段：{slot_label(slot)}"))
    appointment = Appointment(ticket_id=ticket.id, slot_id=slot.id, service_code=service_code, customer_id=customer.id,
                              address_id=address.id, contact_phone=ticket.contact_phone, status="booked",
                              created_at=utcnow())
    session.add(appointment)
    await session.flush()
    record_audit(session, actor, "appointment.book", "appointment", appointment.id,
                 after={"ticket": ticket.number, "slot": slot_label(slot), "service": service_code,
                        "address": address_parts(address).display()})
    await publish(session, "appointment.booked", AppointmentBookedData(
        appointment_id=appointment.id, ticket_id=ticket.id, ticket_number=ticket.number,
        service=service_code, district=slot.district, slot_start=slot.start.isoformat(),
        slot_end=slot.end.isoformat()))
    for hook in ON_BOOKED:
        await hook(session, appointment, slot)
    return Booking(appointment, ticket, slot)


async def access_appointment(session: AsyncSession, appointment_id: int) -> Appointment:
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound("预约不存在", code="appointment_not_found")
    return appointment


async def _check_changeable(session: AsyncSession, appointment: Appointment) -> AppointmentSlot:
    if appointment.status != "booked":
        raise Conflict("该预约已取消或已完成，不能再修改", code="appointment_closed")
    slot = await session.get(AppointmentSlot, appointment.slot_id)
    assert slot is not None
    if slot.start - utcnow() < CHANGE_CUTOFF:
        raise Conflict("距离上门时间不足 2 小时，不能在线改约或取消，请致电客服", code="too_late_to_change")
    return slot


async def do_reschedule(session: AsyncSession, actor: Actor, appointment: Appointment, new_slot_id: int) -> Appointment:
    old = await _check_changeable(session, appointment)
    new = await session.get(AppointmentSlot, new_slot_id)
    if new is None or new.id == old.id:
        raise InvalidInput("请选择一个新的时段", code="invalid_slot")
    if new.district != old.district or new.start < utcnow() + CHANGE_CUTOFF:
        raise InvalidInput("新时段须在同一区域且在 2 小时以后", code="invalid_slot")
    if new.services and appointment.service_code not in new.services:
        raise InvalidInput("该时段不提供此项服务", code="slot_service")
    await _take_capacity(session, new.id)
    await _release_capacity(session, old.id)
    appointment.slot_id = new.id
    ticket = await session.get(Ticket, appointment.ticket_id)
    record_audit(session, actor, "appointment.reschedule", "appointment", appointment.id,
                 before={"slot": slot_label(old)}, after={"slot": slot_label(new)})
    if ticket is not None:
        await load_history(session, ticket)
        ticket.title = ticket.title.split(" - ")[0] + f" - {slot_label(new)}"
        _event(ticket, actor, "reschedule", ticket.status, note=f"改约：{slot_label(old)} → {slot_label(new)}")
        await _publish(session, TicketUpdated, ticket)
    for hook in ON_BOOKED:
        await hook(session, appointment, new)
    return appointment


async def do_cancel_appointment(session: AsyncSession, actor: Actor, appointment: Appointment,
                                reason: str = "居民取消") -> Appointment:
    slot = await _check_changeable(session, appointment)
    await _release_capacity(session, slot.id)
    appointment.status, appointment.cancelled_at = "cancelled", utcnow()
    ticket = await session.get(Ticket, appointment.ticket_id)
    if ticket is not None and ticket.status not in (TicketStatus.cancelled.value, TicketStatus.closed.value,
                                                    TicketStatus.resolved.value):
        await do_ticket_action(session, actor, ticket, "cancel", note=reason or "居民取消")
    record_audit(session, actor, "appointment.cancel", "appointment", appointment.id,
                 before={"status": "booked"}, after={"status": "cancelled", "reason": reason})
    return appointment


async def progress_for(session: AsyncSession, *, phone: str | None = None,
                       account_no: str | None = None) -> list[dict[str, Any]]:
    """Recent tickets/appointments of the customer behind a phone or 户号: status, slot and assigned crew."""
    customers = await find_customers(session, CustomerQuery(phone=phone, account_no=account_no), limit=5)
    if not customers:
        return []
    tickets = await session.scalars(select(Ticket).where(Ticket.customer_id.in_([c.id for c in customers]))
                                    .order_by(Ticket.id.desc()).limit(10))
    items = []
    for ticket in tickets:
        appointment = await session.scalar(select(Appointment).where(Appointment.ticket_id == ticket.id))
        slot = await session.get(AppointmentSlot, appointment.slot_id) if appointment else None
        crew = await session.get(User, ticket.crew_id) if ticket.crew_id else None
        items.append({
            "ticket_number": ticket.number, "type": ticket.type, "type_label": TYPE_LABELS[TicketType(ticket.type)],
            "status": ticket.status, "status_label": STATUS_LABELS[TicketStatus(ticket.status)],
            "title": ticket.title, "service": ticket.service_type,
            "appointment_id": appointment.id if appointment else None,
            "appointment_status": appointment.status if appointment else None,
            "slot": slot_label(slot) if slot else None, "crew": crew.display_name if crew else None,
        })
    return items


MAX_SLOT_DAYS = 120
MAX_SLOT_CAPACITY = 500
MAX_SLOT_WINDOWS = 6


def check_slot_windows(windows: list[tuple[str, str]]) -> list[tuple[time, time]]:
    """1–6 local-time windows like ("09:00", "12:00"), each starting before it ends."""
    if not 1 <= len(windows) <= MAX_SLOT_WINDOWS:
        raise InvalidInput("请填写 1–6 个时段，如 09:00-12:00,14:00-17:00", code="invalid_slots")
    out = []
    for pair in windows:
        start: time | None
        end: time | None
        try:
            start, end = (time.fromisoformat(str(part).strip()) for part in pair)
        except ValueError:
            start = end = None
        # A zone offset would make the window ambiguous (and naive/aware times do not compare).
        if start is None or end is None or start.tzinfo or end.tzinfo or start >= end:
            raise InvalidInput(f"时段格式有误：“{'-'.join(map(str, pair))[:40]}”，应如 09:00-12:00",
                               code="invalid_slots")
        out.append((start, end))
    return out


SLOT_PLANNER = Actor.system("时段生成", "cli")


async def do_generate_slots(session: AsyncSession, *, district: str, first_day: date, days: int,
                            windows: list[tuple[str, str]], capacity: int, actor: Actor = SLOT_PLANNER) -> int:
    """Create slots (local-time windows like ("09:00", "12:00")) for a district; existing ones are kept.
    Audited when any slot is made; ``actor`` defaults to the system (seed data, scripts)."""
    if not 1 <= capacity <= MAX_SLOT_CAPACITY or not 1 <= days <= MAX_SLOT_DAYS:
        raise InvalidInput(f"容量 1–{MAX_SLOT_CAPACITY}，天数 1–{MAX_SLOT_DAYS}", code="invalid_slots")
    if not EARLIEST_DAY <= first_day <= LATEST_DAY:
        raise InvalidInput("开始日期须在 1900 年至 2999 年之间", code="invalid_slots")
    times = check_slot_windows(windows)
    zone = local_zone()
    made = 0
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for start_t, end_t in times:
            start = datetime.combine(day, start_t, zone).astimezone(utcnow().tzinfo)
            end = datetime.combine(day, end_t, zone).astimezone(utcnow().tzinfo)
            exists = await session.scalar(select(AppointmentSlot.id).where(
                AppointmentSlot.district == district, AppointmentSlot.start == start))
            if exists is None:
                session.add(AppointmentSlot(district=district, start=start, end=end, capacity=capacity, booked=0,
                                            services=[]))
                made += 1
    await session.flush()
    if made:
        record_audit(session, actor, "config.appointment_slots", "config", f"slots:{district}",
                     after={"district": district, "first_day": first_day.isoformat(), "days": days,
                            "windows": [f"{a}-{b}" for a, b in windows], "capacity": capacity, "created": made})
    return made


async def customer_addresses(session: AsyncSession, customer_id: int) -> list[Address]:
    return list(await session.scalars(select(Address).where(Address.customer_id == customer_id)))


async def do_book_desk_ticket(session: AsyncSession, user: User, actor: Actor, body: TicketCreate,
                              slot_id: int) -> Ticket:
    """A ticket filed at the desk with a slot picked: a booking for the customer's address in the slot's
    district, linked to its source like any desk ticket (``tickets.service.do_create_desk_ticket``)."""

    async def book(body: TicketCreate) -> Ticket:
        if not body.customer_id or not body.service_type:
            raise InvalidInput("预约上门需要选择客户和服务类型", code="booking_needs_customer")
        addresses = await customer_addresses(session, body.customer_id)
        slot = await session.get(AppointmentSlot, slot_id)
        address = next((a for a in addresses if slot is not None and a.district == slot.district), None)
        booking = await book_appointment(
            session, actor, customer_id=body.customer_id, service_code=body.service_type, slot_id=slot_id,
            address_id=address.id if address else None, contact_phone=body.contact_phone, note=body.description,
            channel=body.channel, conversation_id=body.conversation_id)
        return booking.ticket

    return await do_create_desk_ticket(session, user, actor, body, create=book)
