"""Route access rules. Every route declares one: ``allow(Role.agent, ...)`` or ``public()``.

``tests/auth/test_route_access.py`` walks the application's route table and fails
for any route that declares neither, so a new endpoint cannot forget its roles.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, WebSocket, WebSocketException
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.auth.service import user_for_session, user_for_token
from gasdesk.config import get_settings
from gasdesk.db import get_session, lookup_session, transaction
from gasdesk.errors import NotAuthenticated, PermissionDenied
from gasdesk.realtime.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED
from gasdesk.security.origin import origin_allowed
from gasdesk.web.body_limit import is_upload_route

# The signed session cookie holds only these two values: the server-side session id and the CSRF token.
SESSION_ID_KEY = "sid"
CSRF_KEY = "csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Viewer:
    """Who is asking, copied out of the ``User`` row once the request is authenticated. Templates and the
    error handler read this, never the row: an error page renders after the request's transaction rolled
    back, when the row is expired and detached and reading ``user.role`` would raise (a 500 instead of
    the 403/404 page)."""

    id: int
    username: str
    display_name: str
    role: Role

    @classmethod
    def of(cls, user: User) -> Viewer:
        return cls(user.id, user.username, user.display_name, Role(user.role))


def viewer_of(request: HTTPConnection) -> Viewer | None:
    """The authenticated caller of this request as set by the access rule (None when anonymous)."""
    viewer = getattr(request.state, "viewer", None)
    return viewer if isinstance(viewer, Viewer) else None


def bearer_token(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


async def user_from_connection(session: AsyncSession, request: HTTPConnection) -> User | None:
    """The caller of an HTTP request or WebSocket: bearer token first (API clients), then the cookie session.
    Looked up on the reader (``db.lookup_session``) and attached to ``session``, the request's."""
    user: User | None = None
    token = bearer_token(request)
    session_id = request.session.get(SESSION_ID_KEY) if token is None and "session" in request.scope else None
    if token is not None or isinstance(session_id, str):
        async with lookup_session(session) as reader:
            if token is not None:
                user = await user_for_token(reader, token)
            elif isinstance(session_id, str):
                user = await user_for_session(reader, session_id)
        if user is not None:
            user = _attach(session, user)
    if token is not None and user is None:
        raise NotAuthenticated("令牌无效或已过期", code="invalid_token")
    if token is None and user is None and "session" in request.scope and request.session:
        request.session.clear()  # logged out, expired, revoked, or an old cookie layout
    return user


def _attach(session: AsyncSession, user: User) -> User:
    """``user``, read on the reader and detached, as ``session``'s own: the instance ``session`` already holds
    for that row (``user`` itself when the lookup used ``session``; a route that looked its caller up before),
    else ``user`` added without a query."""
    key = inspect(user).identity_key
    held = session.sync_session.identity_map.get(key) if key is not None else None
    if isinstance(held, User):
        return held
    session.add(user)
    return user


def start_cookie_session(request: Request, session_id: str) -> None:
    """Put a fresh session id and CSRF token into the cookie (a new one at each login: no fixation)."""
    request.session.clear()
    request.session[SESSION_ID_KEY] = session_id
    request.session[CSRF_KEY] = secrets.token_urlsafe(32)


def csrf_token(request: HTTPConnection) -> str:
    """The CSRF token of the caller's cookie session ("" when not logged in): pages put it into forms
    (hidden ``csrf_token`` field) and a meta tag that htmx and fetch() send as ``X-CSRF-Token``."""
    if "session" not in request.scope:
        return ""
    value = request.session.get(CSRF_KEY)
    return value if isinstance(value, str) else ""


async def csrf_ok(request: Request) -> bool:
    """A state-changing request authenticated by the cookie must carry the session's CSRF token."""
    expected = csrf_token(request)
    if not expected:
        return False
    sent = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if sent is None and content_type.startswith("multipart/form-data") and is_upload_route(
            request.method, request.url.path):
        # Upload bodies are read only after the caller and the target are checked (``web.uploads``): the
        # form's token is checked there, once the parts are parsed.
        request.state.csrf_expected = expected
        return True
    if sent is None and content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        # Starlette caches the parsed form: the route's own Form() parameters still read it.
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


async def current_user_or_none(
    request: Request, session: Annotated[AsyncSession, Depends(get_session, scope="function")]
) -> User | None:
    user = await user_from_connection(session, request)
    if user is not None and bearer_token(request) is None and request.method not in SAFE_METHODS:
        if not await csrf_ok(request):
            # The cookie alone grants nothing for a change: public routes see an anonymous caller and
            # protected ones answer 403 (AccessRule).
            request.state.csrf_failed = True
            user = None
    # Lets templates and the error handler know who is asking, without touching the ORM row later.
    request.state.viewer = Viewer.of(user) if user is not None else None
    return user


class AccessRule:
    """A dependency that authenticates the caller and checks the role; also a marker for the route walk."""

    def __init__(self, roles: frozenset[Role] | None) -> None:
        self.roles = roles  # None means public

    @property
    def is_public(self) -> bool:
        return self.roles is None

    async def __call__(
        self, request: Request, user: Annotated[User | None, Depends(current_user_or_none)]
    ) -> User | None:
        if self.roles is None:
            return user
        if user is None:
            if getattr(request.state, "csrf_failed", False):
                raise PermissionDenied("请求缺少有效的安全令牌（CSRF），请刷新页面后重试", code="csrf_failed")
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
        allowed = frozenset(o.rstrip("/").lower() for o in get_settings().allowed_origins)
        if not origin_allowed(websocket.headers, allowed):
            # A page on another site must not open a staff socket with the staff member's cookie
            # (cross-site WebSocket hijacking); browsers always send Origin on WebSocket handshakes.
            await websocket.accept()
            raise WebSocketException(code=CLOSE_FORBIDDEN, reason="forbidden_origin")
        async with transaction() as session:
            user = await user_from_connection(session, websocket)
        if user is None or Role(user.role) not in self.roles:
            # Accept first: a close before the handshake reaches browsers as a bare HTTP 403, and the
            # console needs 4401/4403 to tell "log in again" from a network drop.
            await websocket.accept()
            if user is None:
                raise WebSocketException(code=CLOSE_UNAUTHORIZED, reason="not_authenticated")
            raise WebSocketException(code=CLOSE_FORBIDDEN, reason="forbidden")
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
