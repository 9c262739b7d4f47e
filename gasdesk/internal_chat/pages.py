"""The staff chat page (/ichat, /ichat/{id}): chat list with unread counts, the open chat (script-driven over the
REST API and /ws/staff), forms to start a 1:1 or group chat, and the route behind shared cards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES
from gasdesk.db import DbSession
from gasdesk.fields import Id, parse_id
from gasdesk.internal_chat import service
from gasdesk.internal_chat.models import InternalChat
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)


async def _context(session: AsyncSession, user: User, chat: InternalChat | None) -> dict[str, Any]:
    chats = await service.list_chats(session, user)
    current = next((c for c in chats if chat is not None and c.id == chat.id), None)
    return {
        "chats": chats,
        "unread_total": sum(c.unread for c in chats),
        "current": current,
        "members": await service.list_members(session, chat) if chat is not None else [],
        "people": [p for p in await service.list_people(session) if p.id != user.id],
        "teams": await service.list_teams(session),
    }


@router.get("/ichat")
async def chats_page(request: Request, session: DbSession, user: User = allow(*ALL_ROLES)) -> Response:
    return render(request, "ichat.html", await _context(session, user, None))


@router.get("/ichat/{chat_id}")
async def chat_page(
    request: Request, chat_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)
) -> Response:
    chat = await service.access_chat(session, user, chat_id)
    return render(request, "ichat.html", await _context(session, user, chat))


@router.post("/ichat/groups")
async def create_group_form(
    session: DbSession,
    name: Annotated[str, Form()] = "",
    member_ids: Annotated[list[str] | None, Form()] = None,
    team_id: Annotated[str, Form()] = "",
    user: User = allow(*ALL_ROLES),
) -> Response:
    people = [i for i in (parse_id(v) for v in member_ids or []) if i is not None]
    chat = await service.do_create_group(session, user, name, people, team_id=parse_id(team_id))
    return RedirectResponse(f"/ichat/{chat.id}", status_code=303)


@router.post("/ichat/direct")
async def open_direct_form(
    session: DbSession, user_id: Annotated[str, Form()] = "", user: User = allow(*ALL_ROLES)
) -> Response:
    other = parse_id(user_id)
    if other is None:
        return RedirectResponse("/ichat", status_code=303)
    chat, _ = await service.do_open_direct(session, user, other)
    return RedirectResponse(f"/ichat/{chat.id}", status_code=303)


@router.get("/ichat/{chat_id}/cards/{message_id}")
async def open_card(
    chat_id: Id, message_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)
) -> Response:
    """Open a shared ticket or conversation: the viewer's own access check decides (403 page without it)."""
    chat = await service.access_chat(session, user, chat_id)
    _, _, url = await service.access_card_target(session, user, chat, message_id)
    return RedirectResponse(url, status_code=303)
