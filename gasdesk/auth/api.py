"""REST endpoints: tokens and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.auth import service
from gasdesk.auth.access import allow, public
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, Role
from gasdesk.auth.schemas import TokenRequest, TokenResponse, UserCreate, UserOut, UserUpdate
from gasdesk.db import DbSession
from gasdesk.fields import Id

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenResponse, dependencies=[public()])
async def issue_token(body: TokenRequest, session: DbSession, request: Request) -> TokenResponse:
    """Exchange username + password for a bearer token. Repeated failures from one address delay and then
    lock out further attempts for that username from that address (same answer as a wrong password)."""
    user = await service.authenticate(session, body.username, body.password, source="api",
                                      client_ip=service.client_ip(request))
    token, row = await service.do_issue_api_token(session, user)
    return TokenResponse(access_token=token, expires_at=row.expires_at)


@router.post("/auth/revoke", status_code=204, dependencies=[allow(*ALL_ROLES)])
async def revoke_token(session: DbSession, authorization: Annotated[str, Header()] = "") -> None:
    """Revoke the bearer token used for this call."""
    if authorization.lower().startswith("bearer "):
        await service.do_revoke_api_token(session, authorization[7:].strip())


@router.get("/auth/me", response_model=UserOut)
async def me(user: User = allow(*ALL_ROLES)) -> User:
    return user


@router.get("/users", response_model=list[UserOut])
async def list_users(session: DbSession, _: User = allow(Role.admin)) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.username)))


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, session: DbSession, admin: User = allow(Role.admin)) -> User:
    return await service.do_create_user(
        session, Actor.of(admin, "api"), username=body.username, password=body.password,
        role=body.role, display_name=body.display_name,
    )


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(user_id: Id, body: UserUpdate, session: DbSession, admin: User = allow(Role.admin)) -> User:
    user = await service.access_user(session, user_id)
    return await service.do_update_user(session, Actor.of(admin, "api"), user, **body.model_dump(exclude_unset=True))
