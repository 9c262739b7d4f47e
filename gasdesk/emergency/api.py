"""Emergency REST API: events (declare, acknowledge, close, cancel), escalation policies per level, the duty
list and staff contacts for alerts. Every change goes through ``emergency.service`` (audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, DISPATCH, MANAGERS, Role
from gasdesk.clock import as_utc, utcnow
from gasdesk.db import DbSession
from gasdesk.emergency.models import DUTY_ROLES, LEVEL_LABELS, EmergencyEvent
from gasdesk.emergency.schemas import (
    CancelIn,
    CloseIn,
    DeclareIn,
    DutyIn,
    DutyOut,
    EmergencyOut,
    Level,
    PolicyIn,
    PolicyOut,
    StaffContactIn,
    StaffContactOut,
)
from gasdesk.emergency.service import (
    PolicyView,
    access_event,
    board_events,
    check_can_acknowledge,
    do_acknowledge,
    do_add_duty,
    do_cancel_emergency,
    do_close_emergency,
    do_open_emergency,
    do_remove_duty,
    do_save_policy,
    do_save_staff_contact,
    duty_list,
    event_views,
    mask_mobile,
    policies,
    policy_for,
    user_names,
)
from gasdesk.fields import Id

router = APIRouter(prefix="/api/v1/emergency", tags=["emergency"])


async def _one(session: AsyncSession, event: EmergencyEvent) -> dict[str, Any]:
    return (await event_views(session, [event]))[0]


def _policy_out(view: PolicyView) -> dict[str, Any]:
    return {"level": view.level, "level_label": LEVEL_LABELS[view.level], "version": view.version,
            "steps": view.steps, "saved_at": view.saved_at}


@router.get("/events", response_model=list[EmergencyOut])
async def list_events(session: DbSession, _: User = allow(*DISPATCH)) -> list[dict[str, Any]]:
    """Open events (most severe first), then the last ten closed or cancelled: the board's content."""
    return await event_views(session, await board_events(session))


@router.post("/events", status_code=201, response_model=EmergencyOut)
async def declare(body: DeclareIn, session: DbSession, user: User = allow(*DISPATCH)) -> dict[str, Any]:
    """Declare an emergency by hand: its level's first step is notified at once."""
    event = await do_open_emergency(session, Actor.of(user, "api"), source="manual", level=body.level,
                                    title=body.title, description=body.description)
    return await _one(session, event)


@router.get("/events/{event_id}", response_model=EmergencyOut)
async def get_event(event_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> dict[str, Any]:
    """One event with every notification; for its runners and for whoever it notified."""
    event = await access_event(session, event_id)
    await check_can_acknowledge(session, user, event)
    return await _one(session, event)


@router.post("/events/{event_id}/acknowledge", response_model=EmergencyOut)
async def acknowledge(event_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> dict[str, Any]:
    """Take the event: escalation stops. Supervisors, dispatchers, admins, or anyone it notified."""
    event = await do_acknowledge(session, user, await access_event(session, event_id), via="api", source="api")
    return await _one(session, event)


@router.post("/events/{event_id}/close", response_model=EmergencyOut)
async def close(event_id: Id, body: CloseIn, session: DbSession, user: User = allow(*DISPATCH)) -> dict[str, Any]:
    """Close an acknowledged event; the summary is required."""
    event = await do_close_emergency(session, user, await access_event(session, event_id), body.summary,
                                     source="api")
    return await _one(session, event)


@router.post("/events/{event_id}/cancel", response_model=EmergencyOut)
async def cancel(event_id: Id, body: CancelIn, session: DbSession, user: User = allow(*DISPATCH)) -> dict[str, Any]:
    """Cancel an event (false alarm) with a reason; escalation stops."""
    event = await do_cancel_emergency(session, user, await access_event(session, event_id), body.reason,
                                      source="api")
    return await _one(session, event)


@router.get("/policies", tags=["configuration"], response_model=list[PolicyOut])
async def list_policies(session: DbSession, _: User = allow(*MANAGERS)) -> list[dict[str, Any]]:
    """Each level's escalation path in force (version 0: the built-in default)."""
    return [_policy_out(view) for view in await policies(session)]


@router.put("/policies/{level}", tags=["configuration"], response_model=PolicyOut)
async def put_policy(level: Level, body: PolicyIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Save a new version of a level's path (checked; audited). Open events keep the steps they began with."""
    await do_save_policy(session, Actor.of(admin, "api"), level, body.raw_steps())
    return _policy_out(await policy_for(session, level))


async def _duty_out(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await duty_list(session)
    names = await user_names(session, {row.user_id for row in rows})
    now = utcnow()
    return [{"id": row.id, "user_id": row.user_id, "user_name": names.get(row.user_id, "—"),
             "duty_role": row.duty_role, "duty_role_label": DUTY_ROLES.get(row.duty_role, row.duty_role),
             "starts_at": as_utc(row.starts_at), "ends_at": as_utc(row.ends_at),
             "on_duty_now": as_utc(row.starts_at) <= now < as_utc(row.ends_at)} for row in rows]


@router.get("/duty", tags=["configuration"], response_model=list[DutyOut])
async def get_duty(session: DbSession, _: User = allow(*DISPATCH)) -> list[dict[str, Any]]:
    """The duty list from now on (current and future assignments)."""
    return await _duty_out(session)


@router.post("/duty", tags=["configuration"], status_code=201, response_model=list[DutyOut])
async def add_duty(body: DutyIn, session: DbSession, admin: User = allow(Role.admin)) -> list[dict[str, Any]]:
    """Put someone on duty in a duty role for a time range. Audited."""
    await do_add_duty(session, Actor.of(admin, "api"), user_id=body.user_id, duty_role=body.duty_role,
                      starts_at=body.starts_at, ends_at=body.ends_at)
    return await _duty_out(session)


@router.delete("/duty/{duty_id}", tags=["configuration"], response_model=list[DutyOut])
async def remove_duty(duty_id: Id, session: DbSession, admin: User = allow(Role.admin)) -> list[dict[str, Any]]:
    """Take an assignment off the duty list. Audited."""
    await do_remove_duty(session, Actor.of(admin, "api"), duty_id)
    return await _duty_out(session)


@router.put("/contacts/{user_id}", tags=["configuration"], response_model=StaffContactOut)
async def put_contact(user_id: Id, body: StaffContactIn, session: DbSession,
                      admin: User = allow(Role.admin)) -> dict[str, Any]:
    """A staff member's mobile (SMS alerts) and WeChat openid (template alerts); empty clears. Audited."""
    row = await do_save_staff_contact(session, Actor.of(admin, "api"), user_id=user_id, mobile=body.mobile,
                                      wechat_openid=body.wechat_openid)
    return {"user_id": row.user_id, "mobile_masked": mask_mobile(row.mobile), "wechat": bool(row.wechat_openid)}
