"""Emergency pages: the board (/emergency: open events, who was notified on which channel when, who
acknowledged, elapsed times; declare, acknowledge, close with a summary, cancel), one event (/emergency/{id},
where the bell's notification leads), the admins' escalation paths (/admin/emergency) and duty list
(/admin/duty)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, DISPATCH, ROLE_LABELS, Role
from gasdesk.clock import as_utc, utcnow
from gasdesk.db import DbSession, rollback
from gasdesk.emergency.models import CHANNEL_LABELS, CHANNELS, DUTY_ROLES, LEVEL_LABELS, LEVELS
from gasdesk.emergency.schemas import int_or_none, local_datetime, policy_from_form
from gasdesk.emergency.service import (
    MAX_STEPS,
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
    staff_contacts,
    user_names,
)
from gasdesk.errors import GasdeskError
from gasdesk.fields import Count, Id
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)
FIELD_MAX = 2000


def _text(form: Any, key: str, limit: int = FIELD_MAX) -> str:
    return str(form.get(key) or "")[:limit]


async def _board_context(session: AsyncSession) -> dict[str, Any]:
    views = await event_views(session, await board_events(session))
    return {"events": views, "levels": LEVEL_LABELS, "open_count": sum(v["status"] in ("open", "escalating",
                                                                                         "acknowledged")
                                                                       for v in views)}


@router.get("/emergency")
async def board_page(request: Request, session: DbSession, _: User = allow(*DISPATCH)) -> Response:
    return render(request, "emergency_board.html", await _board_context(session))


@router.get("/emergency/board")
async def board_fragment(request: Request, session: DbSession, _: User = allow(*DISPATCH)) -> Response:
    """The board's event list alone: the page reloads it when an ``emergency`` frame arrives."""
    return render(request, "emergency_events.html", await _board_context(session))


@router.post("/emergency")
async def declare(request: Request, session: DbSession, user: User = allow(*DISPATCH)) -> Response:
    form = await request.form()
    try:
        level = int_or_none(_text(form, "level", 2)) or 0
        event = await do_open_emergency(session, Actor.of(user, "web"), source="manual", level=level,
                                        title=_text(form, "title", 120), description=_text(form, "description"))
    except GasdeskError as exc:
        await rollback(session, user)
        context = await _board_context(session)
        context.update(error=exc.message, form={"title": _text(form, "title", 120),
                                                 "description": _text(form, "description")})
        return render(request, "emergency_board.html", context, exc.status_code)
    return RedirectResponse(f"/emergency/{event.id}", status_code=303)


async def _detail(request: Request, session: AsyncSession, user: User, event_id: Id, *, error: str | None = None,
                  status: int = 200) -> Response:
    event = await access_event(session, event_id)
    await check_can_acknowledge(session, user, event)
    view = (await event_views(session, [event]))[0]
    return render(request, "emergency_detail.html", {"e": view, "error": error, "manages": user.role in DISPATCH},
                  status)


@router.get("/emergency/{event_id}")
async def detail_page(request: Request, event_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> Response:
    return await _detail(request, session, user, event_id)


def _back(form: Any, event_id: Id) -> str:
    # Back where the button was: the board or the event's own page (never an arbitrary URL).
    return "/emergency" if form.get("back") == "board" else f"/emergency/{event_id}"


@router.post("/emergency/{event_id}/acknowledge")
async def acknowledge(request: Request, event_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> Response:
    form = await request.form()
    via = "board" if form.get("back") == "board" else "notification"
    try:
        await do_acknowledge(session, user, await access_event(session, event_id), via=via)
    except GasdeskError as exc:
        await rollback(session, user)
        return await _detail(request, session, user, event_id, error=exc.message, status=exc.status_code)
    return RedirectResponse(_back(form, event_id), status_code=303)


@router.post("/emergency/{event_id}/close")
async def close(request: Request, event_id: Id, session: DbSession, user: User = allow(*DISPATCH)) -> Response:
    form = await request.form()
    try:
        await do_close_emergency(session, user, await access_event(session, event_id), _text(form, "summary"))
    except GasdeskError as exc:
        await rollback(session, user)
        return await _detail(request, session, user, event_id, error=exc.message, status=exc.status_code)
    return RedirectResponse(_back(form, event_id), status_code=303)


@router.post("/emergency/{event_id}/cancel")
async def cancel(request: Request, event_id: Id, session: DbSession, user: User = allow(*DISPATCH)) -> Response:
    form = await request.form()
    try:
        await do_cancel_emergency(session, user, await access_event(session, event_id), _text(form, "reason", 500))
    except GasdeskError as exc:
        await rollback(session, user)
        return await _detail(request, session, user, event_id, error=exc.message, status=exc.status_code)
    return RedirectResponse(_back(form, event_id), status_code=303)


# ------------------------------------------------------------------ admin: escalation paths


async def _staff(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).where(User.is_active.is_(True), User.role != Role.wall.value)
                                      .order_by(User.display_name)))


async def _policies_context(session: AsyncSession) -> dict[str, Any]:
    views = await policies(session)
    staff = await _staff(session)
    rows = []
    for view in views:
        steps = list(view.steps) + [None] * (MAX_STEPS - len(view.steps))
        rows.append({"level": view.level, "label": LEVEL_LABELS[view.level], "version": view.version,
                     "saved_at": view.saved_at, "steps": steps[:MAX_STEPS]})
    return {"policies": rows, "staff": staff, "duty_roles": DUTY_ROLES, "channels": CHANNELS,
            "channel_labels": CHANNEL_LABELS, "max_steps": MAX_STEPS, "role_labels": ROLE_LABELS}


@router.get("/admin/emergency")
async def policies_page(request: Request, session: DbSession, saved: Count = 0,
                        _: User = allow(Role.admin)) -> Response:
    context = await _policies_context(session)
    context["saved"] = LEVEL_LABELS.get(saved)
    return render(request, "emergency_policies.html", context)


@router.post("/admin/emergency")
async def policies_submit(request: Request, session: DbSession, admin: User = allow(Role.admin)) -> Response:
    form = await request.form()
    raw = {key: [str(v)[:100] for v in form.getlist(key)][:60] for key in form}
    level = int_or_none(_text(form, "level", 2)) or 0
    try:
        steps = policy_from_form(raw, MAX_STEPS)
        await do_save_policy(session, Actor.of(admin, "web"), level, steps)
    except GasdeskError as exc:
        await rollback(session, admin)
        context = await _policies_context(session)
        context.update(error=exc.message, error_level=level)
        return render(request, "emergency_policies.html", context, exc.status_code)
    return RedirectResponse(f"/admin/emergency?saved={level if level in LEVELS else 0}", status_code=303)


# ------------------------------------------------------------------ admin: the duty list and contacts


async def _duty_context(session: AsyncSession) -> dict[str, Any]:
    rows = await duty_list(session)
    staff = await _staff(session)
    names = await user_names(session, {row.user_id for row in rows})
    contacts = await staff_contacts(session)
    now = utcnow()
    return {
        "rows": [{"id": r.id, "user_name": names.get(r.user_id, "—"), "duty_role": DUTY_ROLES.get(r.duty_role, ""),
                  "starts_at": r.starts_at, "ends_at": r.ends_at,
                  "now": as_utc(r.starts_at) <= now < as_utc(r.ends_at)} for r in rows],
        "staff": [{"id": u.id, "name": u.display_name, "username": u.username,
                   "role": ROLE_LABELS.get(Role(u.role), u.role),
                   "mobile": mask_mobile(contacts[u.id].mobile) if u.id in contacts else "",
                   "wechat": bool(contacts[u.id].wechat_openid) if u.id in contacts else False} for u in staff],
        "duty_roles": DUTY_ROLES,
    }


@router.get("/admin/duty")
async def duty_page(request: Request, session: DbSession, _: User = allow(Role.admin)) -> Response:
    return render(request, "emergency_duty.html", await _duty_context(session))


async def _duty_error(request: Request, session: AsyncSession, admin: User, exc: GasdeskError) -> Response:
    await rollback(session, admin)
    context = await _duty_context(session)
    context["error"] = exc.message
    return render(request, "emergency_duty.html", context, exc.status_code)


@router.post("/admin/duty")
async def duty_add(request: Request, session: DbSession, admin: User = allow(Role.admin)) -> Response:
    form = await request.form()
    try:
        await do_add_duty(session, Actor.of(admin, "web"), user_id=int_or_none(_text(form, "user_id", 12)) or 0,
                          duty_role=_text(form, "duty_role", 30), starts_at=local_datetime(_text(form, "starts_at", 30)),
                          ends_at=local_datetime(_text(form, "ends_at", 30)))
    except GasdeskError as exc:
        return await _duty_error(request, session, admin, exc)
    return RedirectResponse("/admin/duty", status_code=303)


@router.post("/admin/duty/{duty_id}/delete")
async def duty_remove(request: Request, duty_id: Id, session: DbSession, admin: User = allow(Role.admin)) -> Response:
    try:
        await do_remove_duty(session, Actor.of(admin, "web"), duty_id)
    except GasdeskError as exc:
        return await _duty_error(request, session, admin, exc)
    return RedirectResponse("/admin/duty", status_code=303)


@router.post("/admin/duty/contacts/{user_id}")
async def contact_save(request: Request, user_id: Id, session: DbSession, admin: User = allow(Role.admin)) -> Response:
    form = await request.form()
    try:
        await do_save_staff_contact(session, Actor.of(admin, "web"), user_id=user_id,
                                    mobile=_text(form, "mobile", 20), wechat_openid=_text(form, "wechat_openid", 64))
    except GasdeskError as exc:
        return await _duty_error(request, session, admin, exc)
    return RedirectResponse("/admin/duty", status_code=303)
