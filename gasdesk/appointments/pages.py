"""Appointment pages: the week calendar of visit slots per district, and generating slots.

Handlers stay thin: they parse the form, call the service functions and render. A ``GasdeskError`` from
a form post rolls the transaction back and re-renders the page with the Chinese message."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.appointments import service
from gasdesk.appointments.models import Appointment, AppointmentSlot
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.clock import local_zone, to_local, utcnow
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.fields import EARLIEST_DAY, LATEST_DAY, parse_id
from gasdesk.tickets.models import STATUS_LABELS, Ticket, TicketStatus
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


def _week_start(value: str) -> date:
    today = to_local(utcnow()).date()
    try:
        day = date.fromisoformat(value) if value else today
    except ValueError:
        day = today
    if not EARLIEST_DAY <= day <= LATEST_DAY:  # the page adds and subtracts weeks around it
        day = today
    return day - timedelta(days=day.weekday())


async def _calendar_context(session: AsyncSession, district: str, week: str) -> dict[str, Any]:
    districts = list(await session.scalars(select(AppointmentSlot.district).distinct().order_by(AppointmentSlot.district)))
    district = district or (districts[0] if districts else "")
    monday = _week_start(week)
    start = datetime.combine(monday, time.min, local_zone())
    slots = list(await session.scalars(select(AppointmentSlot).where(
        AppointmentSlot.district == district, AppointmentSlot.start >= start,
        AppointmentSlot.start < start + timedelta(days=7)).order_by(AppointmentSlot.start)))
    bookings: dict[int, list[dict[str, Any]]] = {}
    if slots:
        rows = await session.execute(select(Appointment, Ticket).join(Ticket, Ticket.id == Appointment.ticket_id).where(
            Appointment.slot_id.in_([s.id for s in slots]), Appointment.status == "booked"))
        for appointment, ticket in rows:
            bookings.setdefault(appointment.slot_id, []).append(
                {"ticket_id": ticket.id, "number": ticket.number, "service": appointment.service_code,
                 "status_label": STATUS_LABELS[TicketStatus(ticket.status)]})
    windows: list[str] = []
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for slot in slots:
        local_start, local_end = to_local(slot.start), to_local(slot.end)
        window = f"{local_start:%H:%M}-{local_end:%H:%M}"
        if window not in windows:
            windows.append(window)
        cells[(window, (local_start.date() - monday).days)] = {
            "slot": slot, "bookings": bookings.get(slot.id, []), "full": slot.booked >= slot.capacity}
    windows.sort()
    days = [{"date": monday + timedelta(days=i), "label": f"{monday + timedelta(days=i):%m-%d} 周{'一二三四五六日'[i]}"}
            for i in range(7)]
    return {"district": district, "districts": districts, "monday": monday, "days": days, "windows": windows,
            "cells": cells, "prev_week": (monday - timedelta(days=7)).isoformat(),
            "next_week": (monday + timedelta(days=7)).isoformat()}


@router.get("/appointments/calendar")
async def calendar_page(request: Request, session: DbSession, district: str = "", week: str = "",
                        user: User = allow(Role.dispatcher, Role.supervisor, Role.admin, Role.agent)) -> Response:
    context = await _calendar_context(session, district[:40], week[:10])
    context["can_generate"] = Role(user.role) in (Role.admin, Role.dispatcher)
    return render(request, "appointments_calendar.html", context)


def _windows(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.replace("，", ",").replace("～", "-").replace("~", "-").split(","):
        if not part.strip():
            continue
        bits = [b.strip() for b in part.split("-")]
        if len(bits) != 2:
            raise InvalidInput(f"时段格式有误：“{part.strip()[:40]}”，应如 09:00-12:00", code="invalid_slots")
        out.append((bits[0], bits[1]))
    service.check_slot_windows(out)
    return out


@router.post("/appointments/calendar/generate")
async def calendar_generate(request: Request, session: DbSession, district: Annotated[str, Form(max_length=40)],
                            first_day: Annotated[str, Form()], days: Annotated[str, Form()] = "7",
                            windows: Annotated[str, Form()] = "09:00-12:00,14:00-17:00",
                            capacity: Annotated[str, Form()] = "4",
                            user: User = allow(Role.admin, Role.dispatcher)) -> Response:
    error = notice = None
    try:
        if not district.strip():
            raise InvalidInput("请填写区域", code="invalid_slots")
        try:
            day = date.fromisoformat(first_day)
        except ValueError:
            raise InvalidInput("请填写开始日期", code="invalid_slots") from None
        day_count, slot_capacity = parse_id(days), parse_id(capacity)
        if day_count is None or slot_capacity is None:
            raise InvalidInput("天数和容量须为正整数", code="invalid_slots")
        made = await service.do_generate_slots(session, district=district.strip(), first_day=day, days=day_count,
                                                    windows=_windows(windows), capacity=slot_capacity)
        notice = f"已生成 {made} 个时段（已存在的时段保持不变）"
    except GasdeskError as exc:
        await rollback(session, user)
        error = exc.message
    context = await _calendar_context(session, district.strip()[:40], first_day if not error else "")
    context.update(can_generate=True, error=error, notice=notice,
                   form={"district": district, "first_day": first_day, "days": days, "windows": windows,
                         "capacity": capacity})
    return render(request, "appointments_calendar.html", context, 200 if error is None else 422)
