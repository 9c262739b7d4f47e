"""Route access rules. Every route declares one: ``allow(Role.agent, ...)`` or ``public()``.

``tests/auth/test_route_access.py`` walks the application's route table and fails
for any route that declares neither, so a new endpoint cannot forget its roles.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket, WebSocketException
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.auth.service import user_for_token
from gasdesk.db import get_session, transaction
from gasdesk.errors import NotAuthenticated, PermissionDenied

SESSION_USER_KEY = "uid"
SESSION_EPOCH_KEY = "ep"


async def user_from_connection(session: AsyncSession, request: HTTPConnection) -> User | None:
    """The caller of an HTTP request or WebSocket: bearer token first (API clients), then the cookie session."""
    user: User | None = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = await user_for_token(session, header[7:].strip())
        if user is None:
            raise NotAuthenticated("令牌无效或已过期", code="invalid_token")
    elif "session" in request.scope:
        uid = request.session.get(SESSION_USER_KEY)
        if uid is not None:
            candidate = await session.get(User, int(uid))
            if (
                candidate is not None
                and candidate.is_active
                and candidate.session_epoch == request.session.get(SESSION_EPOCH_KEY)
            ):
                user = candidate
            else:
                request.session.clear()
    return user


async def current_user_or_none(
    request: Request, session: Annotated[AsyncSession, Depends(get_session, scope="function")]
) -> User | None:
    user = await user_from_connection(session, request)
    request.state.user = user  # lets the error handler and templates know who is asking
    return user


class AccessRule:
    """A dependency that authenticates the caller and checks the role; also a marker for the route walk."""

    def __init__(self, roles: frozenset[Role] | None) -> None:
        self.roles = roles  # None means public

    @property
    def is_public(self) -> bool:
        return self.roles is None

    async def __call__(self, user: Annotated[User | None, Depends(current_user_or_none)]) -> User | None:
        if self.roles is None:
            return user
        if user is None:
            raise NotAuthenticated("请先登录", code="not_authenticated")
        if Role(user.role) not in self.roles:
            raise PermissionDenied("当前角色无权访问此功能", code="forbidden")
        return user

    def __repr__(self) -> str:
        return "public" if self.roles is None else f"allow({', '.join(sorted(self.roles))})"


class WebSocketAccessRule(AccessRule):
    """The same declaration for WebSocket routes. Uses its own short transaction: a socket lives long,
    and must not hold a database session. Refusals close the socket with 4401 / 4403."""

    async def __call__(self, websocket: WebSocket) -> User | None:  # type: ignore[override]
        if self.roles is None:
            return None
        async with transaction() as session:
            user = await user_from_connection(session, websocket)
        if user is None or Role(user.role) not in self.roles:
            # Accept first: a close before the handshake reaches browsers as a bare HTTP 403, and the
            # console needs 4401/4403 to tell "log in again" from a network drop.
            await websocket.accept()
            if user is None:
                raise WebSocketException(code=4401, reason="not_authenticated")
            raise WebSocketException(code=4403, reason="forbidden")
        return user


def ws_allow(*roles: Role) -> Any:
    """WebSocket route dependency: staff with one of ``roles`` (cookie session or bearer token)."""
    return Depends(WebSocketAccessRule(frozenset(roles)))


def ws_public() -> Any:
    """WebSocket route open to anyone; the protocol itself authenticates (e.g. a visitor token)."""
    return Depends(WebSocketAccessRule(None))


def allow(*roles: Role) -> Any:
    """Dependency: the caller must be logged in with one of ``roles``. Resolves to the User."""
    if not roles:
        raise ValueError("allow() needs at least one role; use public() for open routes")
    return Depends(AccessRule(frozenset(roles)))


def public() -> Any:
    """Dependency for routes anyone may call (resident pages, health checks, login)."""
    return Depends(AccessRule(None))


def access_rules_of(route: Any) -> list[AccessRule]:
    """All AccessRule dependencies declared on a route (used by the route-table test and /docs)."""
    found: list[AccessRule] = []

    def walk(dependant: Any) -> None:
        if isinstance(dependant.call, AccessRule):
            found.append(dependant.call)
        for sub in dependant.dependencies:
            walk(sub)

    dependant = getattr(route, "dependant", None)
    if dependant is not None:
        walk(dependant)
    return found


def iter_routes(routes: Any) -> list[Any]:
    """Flatten an app's route table, descending into included routers (FastAPI may include them lazily)."""
    flat: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            flat.extend(iter_routes(inner.routes))
        else:
            flat.append(route)
    return flat
