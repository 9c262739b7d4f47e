"""Internal chat over REST: every staff role, members only (``access_chat``). Live pushes go over ``/ws/staff``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES
from gasdesk.conversations.attachments import serve_attachment
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Id
from gasdesk.internal_chat import service
from gasdesk.internal_chat.models import InternalChat, InternalChatMessage
from gasdesk.internal_chat.schemas import (
    CardIn,
    CardTargetOut,
    ChatDetailOut,
    ChatList,
    ChatMessageOut,
    DirectIn,
    GroupIn,
    MemberIn,
    MessageIn,
    MessagePage,
    PersonOut,
    ReadIn,
    SearchHit,
    SearchIn,
    SearchOut,
    UnreadTotal,
)
from gasdesk.web.uploads import read_upload_form

router = APIRouter(prefix="/api/v1/internal-chats", tags=["internal-chat"])


async def chat_detail(session: DbSession, user: User, chat: InternalChat) -> ChatDetailOut:
    """A chat as its member sees it: title, unread count, members and the caller's role in it."""
    summary = next(s for s in await service.list_chats(session, user) if s.id == chat.id)
    members = await service.list_members(session, chat)
    my_role = next(m.role for m in members if m.user_id == user.id)
    return ChatDetailOut(**summary.model_dump(), my_role=my_role, members=members)


async def _message(session: DbSession, message_id: int) -> ChatMessageOut:
    rows = await service.messages_out(session, [await session.get_one(InternalChatMessage, message_id)])
    return rows[0]


@router.get("", response_model=ChatList)
async def list_chats(session: DbSession, user: User = allow(*ALL_ROLES)) -> ChatList:
    """My chats, the most recently active first, with unread counts and the total."""
    items = await service.list_chats(session, user)
    return ChatList(items=items, unread_total=sum(i.unread for i in items))


@router.get("/unread", response_model=UnreadTotal)
async def unread(session: DbSession, user: User = allow(*ALL_ROLES)) -> UnreadTotal:
    """My unread chat messages in all my chats (the header's badge)."""
    return UnreadTotal(unread_total=await service.unread_total(session, user))


@router.get("/people", response_model=list[PersonOut])
async def people(session: DbSession, user: User = allow(*ALL_ROLES)) -> list[PersonOut]:
    """Colleagues one may chat with (active staff)."""
    return await service.list_people(session)


@router.post("", status_code=201, response_model=ChatDetailOut)
async def create_group(body: GroupIn, session: DbSession, user: User = allow(*ALL_ROLES)) -> ChatDetailOut:
    """A group chat owned by me, with the people listed and, given ``team_id``, the team's members."""
    chat = await service.do_create_group(session, user, body.name, body.member_ids, team_id=body.team_id)
    return await chat_detail(session, user, chat)


@router.post("/direct", response_model=ChatDetailOut)
async def open_direct(body: DirectIn, session: DbSession, user: User = allow(*ALL_ROLES)) -> ChatDetailOut:
    """The 1:1 chat with a colleague (created at first use)."""
    chat, _ = await service.do_open_direct(session, user, body.user_id)
    return await chat_detail(session, user, chat)


@router.post("/search", response_model=SearchOut)
async def search(body: SearchIn, session: DbSession, user: User = allow(*ALL_ROLES)) -> SearchOut:
    """Messages of my chats containing the words (a POST: what staff type may quote residents, and URLs reach
    logs)."""
    found = await service.search_messages(session, user, body.q)
    messages = await service.messages_out(session, [m for m, _ in found.hits])
    return SearchOut(
        items=[
            SearchHit(chat_id=m.chat_id, chat_title=title, message=out)
            for (m, title), out in zip(found.hits, messages, strict=True)
        ],
        scanned=found.scanned,
    )


@router.get("/files/{token}", response_class=Response)
async def download(token: str, session: DbSession, user: User = allow(*ALL_ROLES)) -> Response:
    """A picture (inline) or file (download) posted in one of my chats."""
    if len(token) > 64:
        raise InvalidInput("文件标识无效", code="file_not_found")
    return serve_attachment(await service.access_chat_file(session, user, token))


@router.get("/{chat_id}", response_model=ChatDetailOut)
async def get_chat(chat_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> ChatDetailOut:
    return await chat_detail(session, user, await service.access_chat(session, user, chat_id))


@router.post("/{chat_id}/members", response_model=ChatDetailOut)
async def add_member(
    chat_id: Id, body: MemberIn, session: DbSession, user: User = allow(*ALL_ROLES)
) -> ChatDetailOut:
    """Add a colleague to a group (its owner and admins)."""
    chat = await service.access_chat(session, user, chat_id)
    await service.do_add_member(session, user, chat, body.user_id)
    return await chat_detail(session, user, chat)


@router.delete("/{chat_id}/members/{user_id}", status_code=204, response_class=Response)
async def remove_member(
    chat_id: Id, user_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)
) -> Response:
    """Remove a member (owner and admins), or leave the group (one's own id)."""
    chat = await service.access_chat(session, user, chat_id)
    await service.do_remove_member(session, user, chat, user_id)
    return Response(status_code=204)


@router.get("/{chat_id}/messages", response_model=MessagePage)
async def messages(
    chat_id: Id,
    session: DbSession,
    before_id: Annotated[Id | None, Query()] = None,
    limit: int = Query(50, ge=1, le=service.PAGE_SIZE_MAX),
    user: User = allow(*ALL_ROLES),
) -> MessagePage:
    """A page of the chat's history, oldest first (``before_id`` pages back)."""
    chat = await service.access_chat(session, user, chat_id)
    items, has_more = await service.list_messages(session, chat, before_id=before_id, limit=limit)
    return MessagePage(items=items, has_more=has_more)


@router.post("/{chat_id}/messages", status_code=201, response_model=ChatMessageOut)
async def post_message(
    chat_id: Id, body: MessageIn, session: DbSession, user: User = allow(*ALL_ROLES)
) -> ChatMessageOut:
    """Post a text message; ``@姓名`` (or ``mention_ids``) notifies those members."""
    chat = await service.access_chat(session, user, chat_id)
    message = await service.do_post_message(session, user, chat, body.text, body.mention_ids)
    return await _message(session, message.id)


@router.post("/{chat_id}/files", status_code=201, response_model=ChatMessageOut)
async def post_file(
    chat_id: Id, request: Request, session: DbSession, user: User = allow(*ALL_ROLES)
) -> ChatMessageOut:
    """Post a picture or file (multipart field ``file``; the chat upload types and sizes). Membership is checked
    before the body is read."""
    chat = await service.access_chat(session, user, chat_id)
    form = await read_upload_form(request, session=session)
    file = form.file("file")
    if file is None:
        raise InvalidInput("请选择要发送的文件", code="file_missing")
    message = await service.do_post_file(session, user, chat, file.filename, file.data)
    return await _message(session, message.id)


@router.post("/{chat_id}/cards", status_code=201, response_model=ChatMessageOut)
async def share_card(
    chat_id: Id, body: CardIn, session: DbSession, user: User = allow(*ALL_ROLES)
) -> ChatMessageOut:
    """Share a ticket (number GD… or id) or a conversation I may open, as a card."""
    chat = await service.access_chat(session, user, chat_id)
    message = await service.do_share_card(session, user, chat, body.type, body.ref, body.note)
    return await _message(session, message.id)


@router.get("/{chat_id}/messages/{message_id}/card", response_model=CardTargetOut)
async def card_target(
    chat_id: Id, message_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)
) -> CardTargetOut:
    """Where a shared card leads — after my own access check on the ticket or conversation (403 without it)."""
    chat = await service.access_chat(session, user, chat_id)
    kind, target_id, url = await service.access_card_target(session, user, chat, message_id)
    return CardTargetOut(type=kind, id=target_id, url=url)


@router.post("/{chat_id}/read", response_model=UnreadTotal)
async def mark_read(
    chat_id: Id, body: ReadIn, session: DbSession, user: User = allow(*ALL_ROLES)
) -> UnreadTotal:
    """Mark the chat read up to a message (default: all of it); answers my new unread total."""
    chat = await service.access_chat(session, user, chat_id)
    await service.do_mark_read(session, user, chat, body.up_to_id, source="api")
    return UnreadTotal(unread_total=await service.unread_total(session, user))
