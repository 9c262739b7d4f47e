"""Login/logout and the user administration page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.auth import service
from gasdesk.auth.access import SESSION_ID_KEY, allow, public, start_cookie_session
from gasdesk.auth.models import User
from gasdesk.auth.roles import ROLE_LABELS, Role
from gasdesk.db import DbSession, commit
from gasdesk.errors import GasdeskError, PermissionDenied
from gasdesk.fields import Id
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: never redirect to another host after login.
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or urlparse(target).netloc):
        return "/"
    return target


@router.get("/login", dependencies=[public()])
async def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"error": None, "next": _safe_next(next)})


@router.post("/login", dependencies=[public()])
async def login_submit(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        user = await service.authenticate(session, username, password, source="web",
                                          client_ip=service.client_ip(request))
    except GasdeskError as exc:
        return render(request, "login.html", {"error": exc.message, "next": _safe_next(next)}, status_code=exc.status_code)
    start_cookie_session(request, await service.do_start_session(session, user))
    await commit(session)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request, session: DbSession, user: User | None = public()) -> Response:
    """Ends the session on the server too: a copy of the cookie no longer works."""
    if getattr(request.state, "csrf_failed", False):
        raise PermissionDenied("请求缺少有效的安全令牌（CSRF），请刷新页面后重试", code="csrf_failed")
    session_id = request.session.get(SESSION_ID_KEY)
    if user is not None and isinstance(session_id, str):
        await service.do_end_session(session, session_id)
        await commit(session)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/admin/users")
async def users_page(request: Request, session: DbSession, _: User = allow(Role.admin)) -> Response:
    users = list(await session.scalars(select(User).order_by(User.role, User.username)))
    return render(request, "admin_users.html", {"users": users, "roles": ROLE_LABELS, "error": None, "notice": None})


@router.post("/admin/users")
async def users_create(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
    display_name: Annotated[str, Form()] = "",
    admin: User = allow(Role.admin),
) -> Response:
    error = notice = None
    try:
        created = await service.do_create_user(
            session, Actor.of(admin), username=username, password=password, role=role, display_name=display_name or None
        )
        await commit(session)
        notice = f"已创建用户 {created.username}"
    except GasdeskError as exc:
        error = exc.message
    users = list(await session.scalars(select(User).order_by(User.role, User.username)))
    status = 200 if error is None else 422
    return render(request, "admin_users.html", {"users": users, "roles": ROLE_LABELS, "error": error, "notice": notice}, status)


@router.post("/admin/users/{user_id}/active")
async def users_toggle_active(
    request: Request, user_id: Id, session: DbSession, active: Annotated[bool, Form()], admin: User = allow(Role.admin)
) -> Response:
    user = await service.access_user(session, user_id)
    await service.do_update_user(session, Actor.of(admin), user, is_active=active)
    return RedirectResponse("/admin/users", status_code=303)
