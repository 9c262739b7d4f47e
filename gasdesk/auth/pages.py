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
from gasdesk.db import DbSession, commit, rollback
from gasdesk.errors import GasdeskError, PermissionDenied
from gasdesk.fields import Id
from gasdesk.web.navigation import landing_for
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
    start_cookie_session(request, await service.do_start_session(session, user,
                                                                 client_ip=service.client_ip(request)))
    await commit(session)
    # A page the user was sent away from comes first; otherwise each role starts on its own console.
    target = _safe_next(next)
    if target == "/":
        target = landing_for(request.app, Role(user.role))
    return RedirectResponse(target, status_code=303)


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


async def _users_page(request: Request, session: DbSession, *, error: str | None = None, notice: str | None = None,
                      status: int = 200) -> Response:
    users = list(await session.scalars(select(User).order_by(User.role, User.username)))
    return render(request, "admin_users.html", {"users": users, "roles": ROLE_LABELS, "error": error,
                                                "notice": notice}, status)


@router.get("/admin/users")
async def users_page(request: Request, session: DbSession, _: User = allow(Role.admin)) -> Response:
    return await _users_page(request, session)


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
    try:
        created = await service.do_create_user(
            session, Actor.of(admin), username=username, password=password, role=role, display_name=display_name or None
        )
        await commit(session)
    except GasdeskError as exc:
        await rollback(session)
        return await _users_page(request, session, error=exc.message, status=exc.status_code)
    return await _users_page(request, session, notice=f"已创建用户 {created.username}")


@router.post("/admin/users/{user_id}/role")
async def users_change_role(
    request: Request, user_id: Id, session: DbSession, role: Annotated[str, Form()], admin: User = allow(Role.admin)
) -> Response:
    """Give a user another role (audited as user.update); their sessions and API tokens end, so they log in
    again under the new role."""
    user = await service.access_user(session, user_id)
    try:
        await service.do_update_user(session, Actor.of(admin), user, role=role)
        await commit(session)
    except GasdeskError as exc:
        await rollback(session)
        return await _users_page(request, session, error=exc.message, status=exc.status_code)
    return await _users_page(request, session, notice=f"已将 {user.username} 的角色改为{ROLE_LABELS[Role(user.role)]}，"
                                                     "其原有登录和接口令牌已失效，需重新登录")


@router.post("/admin/users/{user_id}/password")
async def users_reset_password(
    request: Request, user_id: Id, session: DbSession, password: Annotated[str, Form()],
    admin: User = allow(Role.admin),
) -> Response:
    """Set a new password for a user who forgot theirs (audited); their sessions and API tokens end."""
    user = await service.access_user(session, user_id)
    try:
        await service.do_update_user(session, Actor.of(admin), user, password=password)
        await commit(session)
    except GasdeskError as exc:
        await rollback(session)
        return await _users_page(request, session, error=exc.message, status=exc.status_code)
    return await _users_page(request, session,
                             notice=f"已重置 {user.username} 的密码，其原有登录和接口令牌已失效，请将新密码告知本人")


@router.post("/admin/users/{user_id}/active")
async def users_toggle_active(
    request: Request, user_id: Id, session: DbSession, active: Annotated[bool, Form()], admin: User = allow(Role.admin)
) -> Response:
    user = await service.access_user(session, user_id)
    await service.do_update_user(session, Actor.of(admin), user, is_active=active)
    return RedirectResponse("/admin/users", status_code=303)
