"""Smart appointments: catalogue, guidance-only services, slot capacity under concurrency, booking rules,
reschedule/cancel cut-off, progress query and the REST API."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from gasdesk import clock, db
from gasdesk.appointments.models import Appointment, AppointmentSlot, ServiceOffering
from gasdesk.appointments.service import (
    book_appointment,
    do_cancel_appointment,
    do_generate_slots,
    do_reschedule,
    progress_for,
)
from gasdesk.customers.schemas import AddressIn
from gasdesk.db import commit
from gasdesk.errors import Conflict, GasdeskError, InvalidInput
from gasdesk.tickets.models import Ticket
from gasdesk.tickets.service import do_ticket_action
from tests.factories import staff_user, wo_actor, wo_audit_rows, wo_headers, wo_reload, wo_ticket_events

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 Shanghai
TOMORROW = date(2026, 12, 8)
SEVEN = {"开栓": True, "维修": True, "改线": True, "安检": True, "阀管改造": False, "旧改施工": False, "报警器安装": True}


async def _slots(session, district: str = "朝阳区", capacity: int = 3, day: date = TOMORROW) -> list[AppointmentSlot]:
    await do_generate_slots(session, district=district, first_day=day, days=1,
                            windows=[("09:00", "12:00"), ("14:00", "17:00")], capacity=capacity)
    await commit(session)
    return list(await session.scalars(select(AppointmentSlot).where(AppointmentSlot.district == district)
                                      .order_by(AppointmentSlot.start)))


async def refused(fn, *args, **kwargs) -> GasdeskError:
    """Run ``fn(session, actor, *args)`` in a transaction of its own and return the error it must raise."""
    with pytest.raises(GasdeskError) as err:
        async with db.transaction() as s:
            resolved = [await s.get(Appointment, a.id) if isinstance(a, Appointment) else a for a in args]
            await fn(s, wo_actor(), *resolved, **kwargs)
    return err.value


@pytest.fixture(autouse=True)
def frozen() -> None:
    clock.set_now(T0)


async def test_the_seven_services_exist(session, client, factory) -> None:
    rows = {o.code: o.bookable for o in await session.scalars(select(ServiceOffering))}
    assert rows == SEVEN
    r = await client.get("/api/v1/services", headers=await wo_headers(factory, await staff_user(session, "agent")))
    assert r.status_code == 200
    catalogue = {s["service"]: s for s in r.json()}
    assert {k: v["bookable"] for k, v in catalogue.items()} == SEVEN
    assert catalogue["阀管改造"]["phone"] == "96777" and catalogue["阀管改造"]["materials"]


@pytest.mark.parametrize("code", ["阀管改造", "旧改施工"])
async def test_guidance_only_services_are_refused_with_guidance(session, factory, client, code: str) -> None:
    customer = await factory.customer()
    [slot, _] = await _slots(session)
    error = await refused(book_appointment, customer_id=customer.id, service_code=code, slot_id=slot.id)
    assert isinstance(error, InvalidInput) and error.code == "guidance_only"
    details = error.details
    assert details["bookable"] is False and details["service"] == code
    assert details["materials"] and details["where_to_go"] and details["phone"] == "96777" and details["hours"]
    assert details["where_to_go"] in error.message
    headers = await wo_headers(factory, await staff_user(session, "agent"))
    r = await client.post("/api/v1/appointments", headers=headers,
                          json={"customer_id": customer.id, "service": code, "slot_id": slot.id})
    assert r.status_code == 422 and r.json()["error"]["code"] == "guidance_only"
    assert r.json()["error"]["details"]["materials"] == details["materials"]
    r = await client.get("/api/v1/appointment-slots", params={"district": "朝阳区", "service": code}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["details"]["hours"] == details["hours"]
    assert (await wo_reload(AppointmentSlot, slot.id)).booked == 0


async def test_parallel_bookings_never_overbook(session, factory) -> None:
    customers = [await factory.customer(name=f"住户{i}") for i in range(10)]
    [slot, _] = await _slots(session, capacity=3)

    async def one(customer_id: int) -> str:
        try:
            async with db.transaction() as s:
                await book_appointment(s, wo_actor(), customer_id=customer_id, service_code="安检", slot_id=slot.id)
            return "ok"
        except Conflict as exc:
            return exc.code

    outcomes = await asyncio.gather(*(one(c.id) for c in customers))
    assert sorted(outcomes) == ["ok"] * 3 + ["slot_full"] * 7
    assert (await wo_reload(AppointmentSlot, slot.id)).booked == 3
    assert await session.scalar(select(func.count()).select_from(Appointment)) == 3
    assert await session.scalar(select(func.count()).select_from(Ticket)
                                .where(Ticket.type == "service_appointment")) == 3


async def test_booking_is_a_service_appointment_ticket(session, factory, events) -> None:
    customer = await factory.customer(name="刘芳", phones=["13912345678"])
    [slot, _] = await _slots(session)
    events.clear()
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="开栓",
                                     slot_id=slot.id, note="新房首次通气")
    await commit(session)
    ticket = await wo_reload(Ticket, booking.ticket.id)
    assert (ticket.type, ticket.service_type, ticket.status) == ("service_appointment", "开栓", "new")
    assert ticket.customer_id == customer.id and ticket.address_id == customer.addresses[0].id
    assert ticket.contact_phone == "13912345678" and ticket.district == "朝阳区"
    assert "12月08日" in ticket.title and "09:00-12:00" in ticket.title and "新房首次通气" in ticket.description
    appointment = await wo_reload(Appointment, booking.appointment.id)
    assert (appointment.status, appointment.slot_id, appointment.service_code) == ("booked", slot.id, "开栓")
    assert (await wo_reload(AppointmentSlot, slot.id)).booked == 1
    assert await wo_audit_rows(session, "appointment", appointment.id, "appointment.book")
    assert [e.type for e in events if e.type.startswith("ticket.")] == ["ticket.created"]


async def test_booking_addresses(session, factory) -> None:
    customer = await factory.customer()
    stranger = await factory.customer()
    [slot, later] = await _slots(session)
    new = AddressIn(district="朝阳区", community="阳光花园", building="7", unit="1", room="1101")
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="安检",
                                     slot_id=slot.id, new_address=new)
    await commit(session)
    assert booking.appointment.address_id not in (None, customer.addresses[0].id)
    error = await refused(book_appointment, customer_id=customer.id, service_code="安检", slot_id=later.id)
    assert error.code == "address_required"  # two addresses now: which one?
    error = await refused(book_appointment, customer_id=customer.id, service_code="安检", slot_id=later.id,
                          address_id=stranger.addresses[0].id)
    assert error.code == "invalid_address"
    again = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="维修",
                                   slot_id=later.id, address_id=booking.appointment.address_id)
    await commit(session)
    assert again.ticket.address_id == booking.appointment.address_id


async def test_refusals_take_no_capacity(session, factory) -> None:
    customer = await factory.customer()
    far = await factory.customer(address={"district": "海淀区", "community": "学院小区", "building": "1",
                                          "unit": "1", "room": "101"})
    [slot, _] = await _slots(session)
    cases = [
        (far.id, "安检", slot.id, "slot_district"),
        (customer.id, "安检", 999999, "slot_not_found"),
        (customer.id, "不存在的服务", slot.id, "service_not_found"),
        (999999, "安检", slot.id, "customer_not_found"),
    ]
    for customer_id, code, slot_id, expected in cases:
        error = await refused(book_appointment, customer_id=customer_id, service_code=code, slot_id=slot_id)
        assert error.code == expected
    clock.set_now(datetime(2026, 12, 8, 0, 30, tzinfo=UTC))  # 08:30 local, the slot starts at 09:00
    error = await refused(book_appointment, customer_id=customer.id, service_code="安检", slot_id=slot.id)
    assert error.code == "slot_too_soon"
    assert (await wo_reload(AppointmentSlot, slot.id)).booked == 0


async def test_reschedule_and_cancel(session, factory, events) -> None:
    customer = await factory.customer()
    [morning, afternoon] = await _slots(session)
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="改线",
                                     slot_id=morning.id)
    await commit(session)
    appointment_id, ticket_id = booking.appointment.id, booking.ticket.id
    await do_reschedule(session, wo_actor(), booking.appointment, afternoon.id)
    await commit(session)
    assert (await wo_reload(AppointmentSlot, morning.id)).booked == 0
    assert (await wo_reload(AppointmentSlot, afternoon.id)).booked == 1
    assert (await wo_reload(Appointment, appointment_id)).slot_id == afternoon.id
    ticket = await wo_reload(Ticket, ticket_id)
    assert "14:00-17:00" in ticket.title
    assert (await wo_ticket_events(ticket_id))[-1].action == "reschedule"
    assert await wo_audit_rows(session, "appointment", appointment_id, "appointment.reschedule")

    error = await refused(do_reschedule, booking.appointment, afternoon.id)  # the same slot
    assert error.code == "invalid_slot"

    # 1 h 59 min before the slot (14:00 local): too late to change online
    clock.set_now(datetime(2026, 12, 8, 4, 1, tzinfo=UTC))
    error = await refused(do_cancel_appointment, booking.appointment, "家里没人")
    assert isinstance(error, Conflict) and error.code == "too_late_to_change"
    error = await refused(do_reschedule, booking.appointment, morning.id)
    assert error.code == "too_late_to_change"
    assert (await wo_reload(AppointmentSlot, afternoon.id)).booked == 1

    clock.set_now(datetime(2026, 12, 8, 4, 0, tzinfo=UTC))  # exactly 2 h before: still allowed
    appointment = booking.appointment
    events.clear()
    await do_cancel_appointment(session, wo_actor(), appointment, "家里没人")
    await commit(session)
    stored = await wo_reload(Appointment, appointment_id)
    assert stored.status == "cancelled" and stored.cancelled_at == datetime(2026, 12, 8, 4, 0, tzinfo=UTC)
    assert (await wo_reload(AppointmentSlot, afternoon.id)).booked == 0
    ticket = await wo_reload(Ticket, ticket_id)
    assert ticket.status == "cancelled"
    assert (await wo_ticket_events(ticket_id))[-1].note == "家里没人"
    assert [e.payload["status"] for e in events if e.type == "ticket.updated"] == ["cancelled"]
    error = await refused(do_cancel_appointment, appointment)
    assert error.code == "appointment_closed"


async def test_reschedule_respects_the_slot_services(session, factory) -> None:
    customer = await factory.customer()
    [morning, afternoon] = await _slots(session)
    afternoon.services = ["安检"]
    await commit(session)
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="改线",
                                     slot_id=morning.id)
    await commit(session)
    error = await refused(do_reschedule, booking.appointment, afternoon.id)
    assert error.code in ("invalid_slot", "slot_service")


async def test_progress_by_phone_and_account(session, factory) -> None:
    customer = await factory.customer(name="赵敏", phones=["13688886666"], account_no="2188006600")
    crew = await staff_user(session, "field_crew", display_name="维修二班陈师傅")
    [slot, _] = await _slots(session)
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="报警器安装",
                                     slot_id=slot.id)
    await commit(session)
    await do_ticket_action(session, wo_actor(), booking.ticket, "assign", crew_id=crew.id)
    await commit(session)
    for query in ({"phone": "13688886666"}, {"account_no": "2188006600"}):
        [item] = await progress_for(session, **query)
        assert item["status"] == "assigned" and item["status_label"] == "已派单"
        assert item["slot"].startswith("12月08日") and "09:00-12:00" in item["slot"]
        assert item["crew"] == "维修二班陈师傅" and item["appointment_status"] == "booked"
        assert item["service"] == "报警器安装" and item["ticket_number"] == booking.ticket.number
    assert await progress_for(session, phone="13000000000") == []


async def test_appointment_api(client, factory, session) -> None:
    customer = await factory.customer(phones=["13577778888"])
    agent = await staff_user(session, "agent")
    headers = await wo_headers(factory, agent)
    crew_headers = await wo_headers(factory, await staff_user(session, "field_crew"))
    dispatcher_headers = await wo_headers(factory, await staff_user(session, "dispatcher"))
    r = await client.post("/api/v1/appointment-slots/generate", headers=headers, json={
        "district": "朝阳区", "first_day": "2026-12-08", "days": 2, "windows": [["09:00", "12:00"]], "capacity": 1})
    assert r.status_code == 403
    r = await client.post("/api/v1/appointment-slots/generate", headers=dispatcher_headers, json={
        "district": "朝阳区", "first_day": "2026-12-08", "days": 2, "windows": [["09:00", "12:00"]], "capacity": 1})
    assert r.status_code == 201 and r.json() == {"created": 2}
    r = await client.get("/api/v1/appointment-slots", params={"district": "朝阳区", "service": "安检"}, headers=headers)
    assert r.status_code == 200
    free = r.json()
    assert [s["free"] for s in free] == [1, 1] and free[0]["label"].startswith("12月08日（周二）09:00")

    r = await client.post("/api/v1/appointments", headers=headers,
                          json={"customer_id": customer.id, "service": "安检", "slot_id": free[0]["id"]})
    assert r.status_code == 201, r.text
    booked = r.json()
    assert booked["slot"]["booked"] == 1 and booked["ticket_number"].startswith("GD")
    r = await client.post("/api/v1/appointments", headers=headers,
                          json={"customer_id": customer.id, "service": "安检", "slot_id": free[0]["id"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "slot_full"
    r = await client.post("/api/v1/appointments", headers=headers,
                          json={"customer_id": customer.id, "service": "安检", "slot_id": 424242})
    assert r.status_code == 404
    r = await client.post("/api/v1/appointments", headers=headers, json={"customer_id": customer.id})
    assert r.status_code == 422
    r = await client.post("/api/v1/appointments", headers=crew_headers,
                          json={"customer_id": customer.id, "service": "安检", "slot_id": free[1]["id"]})
    assert r.status_code == 403
    r = await client.get("/api/v1/appointment-slots", params={"district": "朝阳区", "service": "安检"}, headers=headers)
    assert [s["id"] for s in r.json()] == [free[1]["id"]]

    r = await client.post("/api/v1/progress", json={"phone": "13577778888"}, headers=headers)
    assert r.status_code == 200 and r.json()[0]["slot"].startswith("12月08日")
    r = await client.post("/api/v1/progress", json={}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "missing_query"
    r = await client.post(f"/api/v1/appointments/{booked['appointment_id']}/cancel", headers=headers,
                          json={"reason": "临时出差"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await client.post(f"/api/v1/appointments/{booked['appointment_id']}/cancel", headers=headers, json={})
    assert r.status_code == 409
    r = await client.post("/api/v1/appointments/424242/cancel", headers=headers, json={})
    assert r.status_code == 404
    ticket = await wo_reload(Ticket, booked["ticket_id"])
    assert ticket.status == "cancelled"


async def test_reschedule_over_the_api(client, factory, session) -> None:
    customer = await factory.customer()
    headers = await wo_headers(factory, await staff_user(session, "agent"))
    [morning, afternoon] = await _slots(session)
    r = await client.post("/api/v1/appointments", headers=headers,
                          json={"customer_id": customer.id, "service": "安检", "slot_id": morning.id})
    assert r.status_code == 201
    r = await client.post(f"/api/v1/appointments/{r.json()['appointment_id']}/reschedule", headers=headers,
                          json={"slot_id": afternoon.id})
    assert r.status_code == 200 and r.json()["slot_id"] == afternoon.id
    assert (await wo_reload(AppointmentSlot, afternoon.id)).booked == 1
