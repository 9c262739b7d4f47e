"""Internal chat (内部沟通协作): staff talk to each other 1:1 or in groups (改线, 巡线, 安检, 区域服务…).

Reading: ``list_chats`` (with unread counts), ``unread_total``, ``list_messages``, ``search_messages`` — only
chats the caller belongs to (``access_chat``). Changes, each audited with its events after commit:
``do_create_group``, ``do_open_direct``, ``do_add_member``, ``do_remove_member``, ``do_post_message`` (@mentions
become bell notifications through ``notifications.do_notify``), ``do_post_file``, ``do_share_card``,
``do_mark_read``; the periodic ``purge_expired`` deletes history past ``internal_chat_retention_days``.

Live delivery: ``internal_chat.message`` carries the ids of the members at commit and the hub pushes the frame
to those users' staff sockets only (``/ws/staff``); a removed member gets nothing more.

Personal data: message text and card titles are encrypted at rest; audit rows and events carry ids, kinds and
counts, never the text; nothing here logs a message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES, ROLE_LABELS, Role
from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.conversations.attachments import Attachment, check_upload, store_staff_file
from gasdesk.conversations.models import STATE_LABELS, ConversationState, channel_label
from gasdesk.conversations.service import access_conversation_for_user
from gasdesk.db import after_commit
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.event_types import (
    ChatMessageWire,
    InternalChatMembersChanged,
    InternalChatMessagePosted,
    InternalChatRead,
)
from gasdesk.events import emit, publish_now
from gasdesk.internal_chat.models import (
    CardType,
    ChatKind,
    InternalChat,
    InternalChatMember,
    InternalChatMessage,
    MemberRole,
    MessageKind,
)
from gasdesk.internal_chat.schemas import (
    ChatCardOut,
    ChatFileOut,
    ChatMemberOut,
    ChatMessageOut,
    ChatSummaryOut,
    PersonOut,
)
from gasdesk.notifications.service import do_notify
from gasdesk.security import limits
from gasdesk.tickets.models import STATUS_LABELS, Team, TeamMember, Ticket, TicketStatus
from gasdesk.tickets.service import access_ticket

log = logging.getLogger(__name__)

MAX_TEXT = 2000
MAX_NAME = 60
MAX_MEMBERS = 200
PAGE_SIZE_MAX = 100
# Search decrypts in the application (the text is encrypted at rest, so SQL cannot match it): the newest
# messages of the caller's chats, up to this many, are looked through.
SEARCH_SCAN_MAX = 5000
RETENTION_EVERY_S = 3600
RETENTION_BATCH = 1000
RETENTION = Actor.system("internal-chat-retention", "job")
MENTION_KIND = "chat.mention"
_TICKET_NUMBER = re.compile(r"^GD\d{4,16}$", re.IGNORECASE)


# ---------------------------------------------------------------- checks


def check_text(text: str) -> str:
    """A message's text: not blank, at most ``MAX_TEXT`` characters."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("消息不能为空", code="message_empty")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"消息过长（最多 {MAX_TEXT} 字）", code="message_too_long")
    return text


def check_group_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("请填写群名称", code="group_name_required")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"群名称最多 {MAX_NAME} 字", code="group_name_too_long")
    return name


async def check_people(session: AsyncSession, user_ids: Iterable[int]) -> list[User]:
    """Active staff users (the wall kiosk is nobody to talk to); an unknown or inactive id is refused."""
    ids = sorted(set(user_ids))
    if len(ids) > MAX_MEMBERS:
        raise InvalidInput(f"成员最多 {MAX_MEMBERS} 人", code="too_many_members")
    if not ids:
        return []
    found = list(await session.scalars(select(User).where(User.id.in_(ids))))
    usable = [u for u in found if u.is_active and Role(u.role) in ALL_ROLES]
    if len(usable) != len(ids):
        raise InvalidInput("成员不存在或已停用", code="member_not_found")
    return usable


# ---------------------------------------------------------------- reading and access


async def membership(session: AsyncSession, chat_id: int, user_id: int) -> InternalChatMember | None:
    return await session.scalar(
        select(InternalChatMember).where(
            InternalChatMember.chat_id == chat_id, InternalChatMember.user_id == user_id
        )
    )


async def access_chat(session: AsyncSession, user: User, chat_id: int) -> InternalChat:
    """A chat ``user`` belongs to. Members only, whatever the role: an admin reads other people's chats
    through the audit log's ids, not here."""
    chat = await session.get(InternalChat, chat_id)
    if chat is None:
        raise NotFound("聊天不存在", code="chat_not_found")
    if await membership(session, chat.id, user.id) is None:
        raise PermissionDenied("您不是该聊天的成员", code="chat_not_member")
    return chat


async def member_ids(session: AsyncSession, chat_id: int) -> list[int]:
    return sorted(
        await session.scalars(select(InternalChatMember.user_id).where(InternalChatMember.chat_id == chat_id))
    )


async def list_members(session: AsyncSession, chat: InternalChat) -> list[ChatMemberOut]:
    rows = await session.execute(
        select(InternalChatMember.user_id, InternalChatMember.role, User.display_name, User.role)
        .join(User, User.id == InternalChatMember.user_id)
        .where(InternalChatMember.chat_id == chat.id)
        .order_by(InternalChatMember.id)
    )
    return [
        ChatMemberOut(
            user_id=uid,
            display_name=name,
            role=role,
            staff_role=ROLE_LABELS.get(Role(staff_role), staff_role),
        )
        for uid, role, name, staff_role in rows
    ]


async def list_people(session: AsyncSession) -> list[PersonOut]:
    """Everyone one may start a chat with or add to a group: active staff."""
    users = await session.scalars(
        select(User).where(User.is_active.is_(True)).order_by(User.display_name, User.id)
    )
    return [
        PersonOut(id=u.id, display_name=u.display_name, staff_role=ROLE_LABELS[Role(u.role)])
        for u in users
        if Role(u.role) in ALL_ROLES
    ]


async def list_teams(session: AsyncSession) -> list[Team]:
    return list(await session.scalars(select(Team).order_by(Team.name)))


def _unread_clause(user_id: int) -> ColumnElement[bool]:
    """Messages of the member's chat that are newer than their read mark and not their own."""
    return and_(
        InternalChatMessage.chat_id == InternalChatMember.chat_id,
        InternalChatMessage.id > InternalChatMember.last_read_id,
        func.coalesce(InternalChatMessage.sender_id, 0) != user_id,
    )


async def unread_by_chat(session: AsyncSession, user: User) -> dict[int, int]:
    """The caller's unread messages per chat (one grouped query)."""
    rows = await session.execute(
        select(InternalChatMember.chat_id, func.count(InternalChatMessage.id))
        .join(InternalChatMessage, _unread_clause(user.id))
        .where(InternalChatMember.user_id == user.id)
        .group_by(InternalChatMember.chat_id)
    )
    return {chat_id: int(count) for chat_id, count in rows}


async def unread_total(session: AsyncSession, user: User) -> int:
    return int(
        await session.scalar(
            select(func.count(InternalChatMessage.id))
            .select_from(InternalChatMember)
            .join(InternalChatMessage, _unread_clause(user.id))
            .where(InternalChatMember.user_id == user.id)
        )
        or 0
    )


async def _names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {
        uid: name
        for uid, name in await session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    }


async def chat_titles(session: AsyncSession, user: User, chats: Sequence[InternalChat]) -> dict[int, str]:
    """A group's name; for a direct chat the other person's name (as the caller sees it)."""
    direct = [c.id for c in chats if c.kind == ChatKind.direct.value]
    others: dict[int, str] = {}
    if direct:
        rows = await session.execute(
            select(InternalChatMember.chat_id, User.display_name)
            .join(User, User.id == InternalChatMember.user_id)
            .where(InternalChatMember.chat_id.in_(direct), InternalChatMember.user_id != user.id)
        )
        others = {chat_id: name for chat_id, name in rows}
    return {
        c.id: (c.name or "群聊") if c.kind == ChatKind.group.value else others.get(c.id, "（仅自己）")
        for c in chats
    }


def preview(message: InternalChatMessage) -> str:
    """One line for the chat list (shown to members only, like the message)."""
    if message.kind == MessageKind.image.value:
        return "[图片]"
    if message.kind == MessageKind.file.value:
        return "[文件]"
    if message.kind == MessageKind.card.value:
        return "[工单卡片]" if message.card_type == CardType.ticket.value else "[会话卡片]"
    text = message.text or ""
    return text[:40] + ("…" if len(text) > 40 else "")


async def list_chats(session: AsyncSession, user: User) -> list[ChatSummaryOut]:
    """The caller's chats, the most recently active first, each with its unread count."""
    chats = list(
        await session.scalars(
            select(InternalChat)
            .join(InternalChatMember, InternalChatMember.chat_id == InternalChat.id)
            .where(InternalChatMember.user_id == user.id)
            .order_by(
                func.coalesce(InternalChat.last_message_at, InternalChat.created_at).desc(),
                InternalChat.id.desc(),
            )
        )
    )
    if not chats:
        return []
    titles = await chat_titles(session, user, chats)
    unread = await unread_by_chat(session, user)
    last_ids = (
        select(func.max(InternalChatMessage.id))
        .where(InternalChatMessage.chat_id.in_([c.id for c in chats]))
        .group_by(InternalChatMessage.chat_id)
    )
    last = {
        m.chat_id: m
        for m in await session.scalars(
            select(InternalChatMessage).where(InternalChatMessage.id.in_(last_ids))
        )
    }
    return [
        ChatSummaryOut(
            id=c.id,
            kind=c.kind,
            title=titles[c.id],
            team_id=c.team_id,
            unread=unread.get(c.id, 0),
            last_message_at=c.last_message_at,
            last_preview=preview(last[c.id]) if c.id in last else None,
        )
        for c in chats
    ]


async def list_messages(
    session: AsyncSession, chat: InternalChat, *, before_id: int | None = None, limit: int = 50
) -> tuple[list[ChatMessageOut], bool]:
    """A page of the chat's messages, oldest first; ``before_id`` pages further back. (The caller has
    passed ``access_chat``.)"""
    limit = max(1, min(limit, PAGE_SIZE_MAX))
    query = select(InternalChatMessage).where(InternalChatMessage.chat_id == chat.id)
    if before_id is not None:
        query = query.where(InternalChatMessage.id < before_id)
    rows = list(await session.scalars(query.order_by(InternalChatMessage.id.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit][::-1]
    return await messages_out(session, rows), has_more


async def messages_out(session: AsyncSession, rows: Sequence[InternalChatMessage]) -> list[ChatMessageOut]:
    names = await _names(session, (m.sender_id for m in rows))
    files = (
        {
            a.id: a
            for a in await session.scalars(
                select(Attachment).where(
                    Attachment.id.in_([m.attachment_id for m in rows if m.attachment_id])
                )
            )
        }
        if any(m.attachment_id for m in rows)
        else {}
    )
    return [
        message_out(m, names.get(m.sender_id or 0, "系统"), files.get(m.attachment_id or 0)) for m in rows
    ]


def message_out(
    message: InternalChatMessage, sender_name: str, attachment: Attachment | None
) -> ChatMessageOut:
    """The one wire form of a chat message: REST answers and live pushes use it alike."""
    file = None
    if attachment is not None:
        file = ChatFileOut(
            name=attachment.name,
            mime=attachment.mime,
            size=attachment.size,
            url=f"/api/v1/internal-chats/files/{attachment.token}",
            image=attachment.kind == "image",
        )
    card = None
    if message.card_type is not None and message.card_id is not None:
        card = ChatCardOut(
            type=message.card_type,
            id=message.card_id,
            title=message.card_title or "",
            status=message.card_status,
            status_label=_status_label(message.card_type, message.card_status),
            open_url=f"/ichat/{message.chat_id}/cards/{message.id}",
        )
    return ChatMessageOut(
        id=message.id,
        chat_id=message.chat_id,
        sender_id=message.sender_id,
        sender_name=sender_name,
        kind=message.kind,
        text=message.text,
        mentions=list(message.mentions or []),
        file=file,
        card=card,
        created_at=message.created_at,
    )


def _status_label(card_type: str, status: str | None) -> str | None:
    if status is None:
        return None
    if card_type == CardType.ticket.value and status in TicketStatus.__members__:
        return STATUS_LABELS[TicketStatus(status)]
    if card_type == CardType.conversation.value and status in ConversationState.__members__:
        return STATE_LABELS[ConversationState(status)]
    return status


@dataclass(frozen=True)
class SearchResult:
    hits: list[tuple[InternalChatMessage, str]]  # (message, chat title)
    scanned: int


async def search_messages(session: AsyncSession, user: User, query: str, *, limit: int = 50) -> SearchResult:
    """Messages of the caller's chats whose text, file name or card title contains ``query`` (case-insensitive),
    newest first. The text is encrypted at rest, so the newest ``SEARCH_SCAN_MAX`` messages of those chats are
    decrypted and matched here; older history is not searched."""
    needle = " ".join((query or "").split()).casefold()
    if not needle:
        raise InvalidInput("请输入要查找的内容", code="query_required")
    mine = select(InternalChatMember.chat_id).where(InternalChatMember.user_id == user.id)
    rows = list(
        await session.scalars(
            select(InternalChatMessage)
            .where(InternalChatMessage.chat_id.in_(mine))
            .order_by(InternalChatMessage.id.desc())
            .limit(SEARCH_SCAN_MAX)
        )
    )
    file_names = (
        {
            a.id: a.name
            for a in await session.scalars(
                select(Attachment).where(
                    Attachment.id.in_([m.attachment_id for m in rows if m.attachment_id])
                )
            )
        }
        if any(m.attachment_id for m in rows)
        else {}
    )
    hits = [
        m
        for m in rows
        if needle
        in " ".join(filter(None, (m.text, m.card_title, file_names.get(m.attachment_id or 0)))).casefold()
    ][:limit]
    chats = list(
        await session.scalars(select(InternalChat).where(InternalChat.id.in_({m.chat_id for m in hits})))
    )
    titles = await chat_titles(session, user, chats)
    return SearchResult([(m, titles[m.chat_id]) for m in hits], len(rows))


# ---------------------------------------------------------------- events


async def _publish_message(
    session: AsyncSession,
    message: InternalChatMessage,
    sender_name: str,
    attachment: Attachment | None = None,
) -> None:
    """Queue ``internal_chat.message`` to the members as they are in this transaction."""
    await session.flush()
    members = await member_ids(session, message.chat_id)

    async def publish() -> None:
        # Built after commit, like the bell's pushes: the row is complete (id, time) and committed.
        wire = cast(ChatMessageWire, message_out(message, sender_name, attachment).model_dump(mode="json"))
        await publish_now(
            InternalChatMessagePosted(chat_id=message.chat_id, member_ids=members, message=wire)
        )

    after_commit(session, publish)


async def _publish_members(session: AsyncSession, chat: InternalChat, removed: Sequence[int] = ()) -> None:
    await session.flush()
    emit(
        session,
        InternalChatMembersChanged(
            chat_id=chat.id, member_ids=await member_ids(session, chat.id), removed_ids=list(removed)
        ),
    )


def _add_message(
    session: AsyncSession,
    chat: InternalChat,
    sender: User | None,
    kind: MessageKind,
    *,
    text: str | None = None,
    mentions: Sequence[int] = (),
    **card: object,
) -> InternalChatMessage:
    now = utcnow()
    message = InternalChatMessage(
        chat_id=chat.id,
        sender_id=sender.id if sender else None,
        kind=kind.value,
        text=text,
        mentions=list(mentions),
        created_at=now,
        **card,
    )
    session.add(message)
    chat.last_message_at = now
    return message


async def _sender_has_read(session: AsyncSession, user: User, message: InternalChatMessage) -> None:
    """One's own message (or the notice of one's own change) is read by oneself: the read mark moves with it."""
    await session.flush()
    member = await membership(session, message.chat_id, user.id)
    if member is not None and member.last_read_id < message.id:
        member.last_read_id = message.id


# ---------------------------------------------------------------- changes


def _direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"


async def do_open_direct(session: AsyncSession, user: User, other_id: int) -> tuple[InternalChat, bool]:
    """The 1:1 chat of ``user`` and ``other_id`` (created at first use; audited then). Returns (chat, created)."""
    if other_id == user.id:
        raise InvalidInput("不能和自己单聊", code="direct_self")
    (other,) = await check_people(session, [other_id])
    key = _direct_key(user.id, other.id)
    chat = await session.scalar(select(InternalChat).where(InternalChat.direct_key == key))
    if chat is not None:
        return chat, False
    chat = InternalChat(kind=ChatKind.direct.value, direct_key=key, created_by=user.id, created_at=utcnow())
    session.add(chat)
    await session.flush()
    for uid in (user.id, other.id):
        session.add(
            InternalChatMember(chat_id=chat.id, user_id=uid, role=MemberRole.member.value, joined_at=utcnow())
        )
    record_audit(
        session,
        Actor.of(user),
        "ichat.create",
        "internal_chat",
        chat.id,
        after={"kind": chat.kind, "members": sorted((user.id, other.id))},
    )
    await _publish_members(session, chat)
    return chat, True


async def do_create_group(
    session: AsyncSession, user: User, name: str, people: Iterable[int] = (), *, team_id: int | None = None
) -> InternalChat:
    """A group chat owned by ``user`` with ``people`` and, for a team (改线班, 巡线…), the team's members."""
    name = check_group_name(name)
    ids = set(people)
    if team_id is not None:
        if await session.get(Team, team_id) is None:
            raise InvalidInput("班组不存在", code="team_not_found")
        ids |= set(await session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id)))
    ids.discard(user.id)
    members = await check_people(session, ids)
    chat = InternalChat(
        kind=ChatKind.group.value, name=name, team_id=team_id, created_by=user.id, created_at=utcnow()
    )
    session.add(chat)
    await session.flush()
    session.add(
        InternalChatMember(chat_id=chat.id, user_id=user.id, role=MemberRole.owner.value, joined_at=utcnow())
    )
    for member in members:
        session.add(
            InternalChatMember(
                chat_id=chat.id, user_id=member.id, role=MemberRole.member.value, joined_at=utcnow()
            )
        )
    message = _add_message(
        session, chat, None, MessageKind.system, text=f"{user.display_name} 创建了群聊「{name}」"
    )
    await _sender_has_read(session, user, message)
    record_audit(
        session,
        Actor.of(user),
        "ichat.create",
        "internal_chat",
        chat.id,
        after={
            "kind": chat.kind,
            "name": name,
            "team_id": team_id,
            "members": sorted({user.id, *(m.id for m in members)}),
        },
    )
    await _publish_members(session, chat)
    await _publish_message(session, message, "系统")
    return chat


async def _require_manager(session: AsyncSession, user: User, chat: InternalChat) -> InternalChatMember:
    if chat.kind != ChatKind.group.value:
        raise InvalidInput("单聊不能增减成员", code="direct_members_fixed")
    me = await membership(session, chat.id, user.id)
    if me is None:
        raise PermissionDenied("您不是该聊天的成员", code="chat_not_member")
    if me.role not in (MemberRole.owner.value, MemberRole.admin.value):
        raise PermissionDenied("只有群主和管理员可以管理成员", code="chat_not_admin")
    return me


async def do_add_member(
    session: AsyncSession, user: User, chat: InternalChat, new_user_id: int, *, as_admin: bool = False
) -> InternalChatMember:
    """Add a person to a group (owner or admins only). They see the history from then on like everyone."""
    await _require_manager(session, user, chat)
    (person,) = await check_people(session, [new_user_id])
    if await membership(session, chat.id, person.id) is not None:
        raise Conflict("已是群成员", code="already_member")
    if len(await member_ids(session, chat.id)) >= MAX_MEMBERS:
        raise InvalidInput(f"成员最多 {MAX_MEMBERS} 人", code="too_many_members")
    member = InternalChatMember(
        chat_id=chat.id,
        user_id=person.id,
        joined_at=utcnow(),
        role=MemberRole.admin.value if as_admin else MemberRole.member.value,
    )
    session.add(member)
    message = _add_message(
        session,
        chat,
        None,
        MessageKind.system,
        text=f"{user.display_name} 邀请 {person.display_name} 加入了群聊",
    )
    await _sender_has_read(session, user, message)
    record_audit(
        session,
        Actor.of(user),
        "ichat.member_add",
        "internal_chat",
        chat.id,
        after={"user_id": person.id, "role": member.role},
    )
    await _publish_members(session, chat)
    await _publish_message(session, message, "系统")
    return member


async def do_remove_member(
    session: AsyncSession, user: User, chat: InternalChat, member_user_id: int
) -> None:
    """Remove a member (owner or admins), or leave (anyone but the owner). The removed person's pages drop the
    chat at once and get no further messages."""
    if chat.kind != ChatKind.group.value:
        raise InvalidInput("单聊不能增减成员", code="direct_members_fixed")
    target = await membership(session, chat.id, member_user_id)
    if target is None:
        raise NotFound("该同事不在群里", code="member_not_found")
    if member_user_id != user.id:
        me = await _require_manager(session, user, chat)
        if target.role == MemberRole.owner.value or (
            target.role == MemberRole.admin.value and me.role != MemberRole.owner.value
        ):
            raise PermissionDenied("不能移除群主或其他管理员", code="chat_member_protected")
    elif target.role == MemberRole.owner.value:
        raise InvalidInput("群主不能退出群聊", code="owner_cannot_leave")
    person = await session.get(User, member_user_id)
    await session.delete(target)
    left = member_user_id == user.id
    name = person.display_name if person else "成员"
    message = _add_message(
        session,
        chat,
        None,
        MessageKind.system,
        text=f"{name} 退出了群聊" if left else f"{user.display_name} 将 {name} 移出了群聊",
    )
    await _sender_has_read(session, user, message)
    record_audit(
        session,
        Actor.of(user),
        "ichat.member_remove",
        "internal_chat",
        chat.id,
        before={"user_id": member_user_id, "role": target.role},
        after={"left": left},
    )
    await _publish_members(session, chat, removed=[member_user_id])
    await _publish_message(session, message, "系统")


def _mentioned(text: str, people: dict[int, str], explicit: Iterable[int]) -> list[int]:
    """Members named ``@姓名`` in the text (longest names first, so 王小明 wins over 王小) or listed by id."""
    found = {uid for uid in explicit if uid in people}
    for uid, name in sorted(people.items(), key=lambda item: -len(item[1])):
        if name and f"@{name}" in text:
            found.add(uid)
    return sorted(found)


async def do_post_message(
    session: AsyncSession, user: User, chat: InternalChat, text: str, mention_ids: Iterable[int] = ()
) -> InternalChatMessage:
    """Post a text message. Each member mentioned (``@姓名`` or by id) gets a bell notification linking to the
    chat; non-members cannot be mentioned. Limited per user (``ichat_message.user``)."""
    text = check_text(text)
    if await membership(session, chat.id, user.id) is None:
        raise PermissionDenied("您不是该聊天的成员", code="chat_not_member")
    await limits.check_rate(("ichat_message.user", str(user.id)))
    others = {
        uid: name
        for uid, name in await session.execute(
            select(User.id, User.display_name)
            .join(InternalChatMember, InternalChatMember.user_id == User.id)
            .where(InternalChatMember.chat_id == chat.id, User.id != user.id)
        )
    }
    mentions = _mentioned(text, others, mention_ids)
    message = _add_message(session, chat, user, MessageKind.text, text=text, mentions=mentions)
    await _sender_has_read(session, user, message)
    where = (chat.name or "群聊") if chat.kind == ChatKind.group.value else "单聊"
    for uid in mentions:
        # do_notify redacts phone/ID/户号 numbers from what the bell shows; the chat holds the full text.
        do_notify(
            session,
            uid,
            MENTION_KIND,
            f"{user.display_name} 在「{where}」中@了您",
            text[:200],
            link=f"/ichat/{chat.id}",
        )
    record_audit(
        session,
        Actor.of(user),
        "ichat.message",
        "internal_chat",
        chat.id,
        after={"message_id": message.id, "kind": message.kind, "mentions": mentions},
    )
    await _publish_message(session, message, user.display_name)
    return message


async def do_post_file(
    session: AsyncSession, user: User, chat: InternalChat, filename: str, data: bytes
) -> InternalChatMessage:
    """Post a picture or file: the types and sizes of chat uploads (``attachments.check_upload``), sealed at
    rest, served only to the chat's members. Limited per user (``ichat_upload.user``)."""
    if await membership(session, chat.id, user.id) is None:
        raise PermissionDenied("您不是该聊天的成员", code="chat_not_member")
    await limits.check_rate(("ichat_upload.user", str(user.id)))
    kind = check_upload(filename, data)
    attachment = await store_staff_file(session, user.id, filename, data, kind, "ichat")
    message = _add_message(
        session, chat, user, MessageKind.image if kind.kind == "image" else MessageKind.file
    )
    message.attachment_id = attachment.id
    await _sender_has_read(session, user, message)
    record_audit(
        session,
        Actor.of(user),
        "ichat.file",
        "internal_chat",
        chat.id,
        after={"message_id": message.id, "kind": message.kind, "mime": kind.mime, "size": len(data)},
    )
    await _publish_message(session, message, user.display_name, attachment)
    return message


async def _card_subject(session: AsyncSession, user: User, card_type: str, ref: str) -> tuple[int, str, str]:
    """(id, title, status) of what ``user`` shares — only what they may open themselves."""
    ref = (ref or "").strip()
    if card_type == CardType.ticket.value:
        if _TICKET_NUMBER.match(ref):
            ticket_id = await session.scalar(select(Ticket.id).where(Ticket.number == ref.upper()))
            if ticket_id is None:
                raise NotFound("工单不存在", code="ticket_not_found")
        elif ref.isascii() and ref.isdigit() and 0 < int(ref) < 2**31:
            ticket_id = int(ref)
        else:
            raise InvalidInput("请填写工单号（GD…）或工单 id", code="invalid_card_ref")
        ticket = await access_ticket(session, user, ticket_id)
        return ticket.id, f"{ticket.number} {ticket.title}"[:200], ticket.status
    if card_type == CardType.conversation.value:
        if not (ref.isascii() and ref.isdigit() and 0 < int(ref) < 2**31):
            raise InvalidInput("请填写会话 id", code="invalid_card_ref")
        conversation = await access_conversation_for_user(session, user, int(ref))
        return (
            conversation.id,
            f"会话 #{conversation.id}（{channel_label(conversation.channel)}）",
            conversation.state,
        )
    raise InvalidInput("只能分享工单或会话", code="invalid_card_type")


async def do_share_card(
    session: AsyncSession, user: User, chat: InternalChat, card_type: str, ref: str, note: str = ""
) -> InternalChatMessage:
    """Share a ticket or conversation the sharer may open as a card (its title and status as of now). Members
    see the card; opening it checks each viewer's own access (``access_card_target``)."""
    if await membership(session, chat.id, user.id) is None:
        raise PermissionDenied("您不是该聊天的成员", code="chat_not_member")
    note = (note or "").strip()
    if len(note) > 500:
        raise InvalidInput("附言最多 500 字", code="message_too_long")
    await limits.check_rate(("ichat_message.user", str(user.id)))
    subject_id, title, status = await _card_subject(session, user, card_type, ref)
    message = _add_message(
        session,
        chat,
        user,
        MessageKind.card,
        text=note or None,
        card_type=card_type,
        card_id=subject_id,
        card_title=title,
        card_status=status,
    )
    await _sender_has_read(session, user, message)
    record_audit(
        session,
        Actor.of(user),
        "ichat.share",
        "internal_chat",
        chat.id,
        after={"message_id": message.id, "card_type": card_type, "card_id": subject_id},
    )
    await _publish_message(session, message, user.display_name)
    return message


async def do_mark_read(
    session: AsyncSession, user: User, chat: InternalChat, up_to_id: int | None = None, *, source: str = "web"
) -> InternalChatMember:
    """Move the caller's read mark forward to ``up_to_id`` (default: the newest message); never backwards.
    Audited when it moves; the caller's other pages learn the new counts (``internal_chat.read``)."""
    member = await membership(session, chat.id, user.id)
    if member is None:
        raise PermissionDenied("您不是该聊天的成员", code="chat_not_member")
    newest = int(
        await session.scalar(
            select(func.max(InternalChatMessage.id)).where(InternalChatMessage.chat_id == chat.id)
        )
        or 0
    )
    target = newest if up_to_id is None else min(up_to_id, newest)
    if target <= member.last_read_id:
        return member
    before = member.last_read_id
    member.last_read_id = target
    record_audit(
        session,
        Actor.of(user, source),
        "ichat.read",
        "internal_chat",
        chat.id,
        before={"last_read_id": before},
        after={"last_read_id": target},
    )
    await session.flush()
    emit(
        session,
        InternalChatRead(
            chat_id=chat.id,
            user_id=user.id,
            last_read_id=target,
            unread_total=await unread_total(session, user),
        ),
    )
    return member


# ---------------------------------------------------------------- files and cards


async def access_chat_file(session: AsyncSession, user: User, token: str) -> Attachment:
    """A file posted in a chat the caller belongs to; anything else is "not found" (no probing of tokens)."""
    found = (
        await session.execute(
            select(Attachment, InternalChatMessage.chat_id)
            .join(InternalChatMessage, InternalChatMessage.attachment_id == Attachment.id)
            .where(Attachment.token == token)
        )
    ).first()
    if found is None or await membership(session, found[1], user.id) is None:
        raise NotFound("文件不存在", code="file_not_found")
    return found[0]


async def access_card_target(
    session: AsyncSession, user: User, chat: InternalChat, message_id: int
) -> tuple[str, int, str]:
    """Where a shared card leads, for this viewer: the normal ``access_ticket`` / ``access_conversation_for_user``
    check runs, so a member who may not open the ticket gets its 403. Returns (type, id, url)."""
    message = await session.get(InternalChatMessage, message_id)
    if message is None or message.chat_id != chat.id or message.card_type is None or message.card_id is None:
        raise NotFound("卡片不存在", code="card_not_found")
    if message.card_type == CardType.ticket.value:
        ticket = await access_ticket(session, user, message.card_id)
        url = f"/crew/tickets/{ticket.id}" if Role(user.role) is Role.field_crew else f"/tickets/{ticket.id}"
        return message.card_type, ticket.id, url
    conversation = await access_conversation_for_user(session, user, message.card_id)
    return message.card_type, conversation.id, f"/agent?conversation={conversation.id}"


# ---------------------------------------------------------------- retention


async def purge_expired(session: AsyncSession) -> int:
    """Periodic: delete chat messages (and their sealed files) older than ``internal_chat_retention_days``, at
    most ``RETENTION_BATCH`` per run; one audit row per chat purged, with the count. Returns how many."""
    cutoff = utcnow() - timedelta(days=get_settings().internal_chat_retention_days)
    rows = (
        await session.execute(
            select(InternalChatMessage.id, InternalChatMessage.chat_id, InternalChatMessage.attachment_id)
            .where(InternalChatMessage.created_at < cutoff)
            .order_by(InternalChatMessage.id)
            .limit(RETENTION_BATCH)
        )
    ).all()
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    attachment_ids = [r[2] for r in rows if r[2] is not None]
    paths = (
        list(await session.scalars(select(Attachment.path).where(Attachment.id.in_(attachment_ids))))
        if attachment_ids
        else []
    )
    await session.execute(
        delete(InternalChatMessage)
        .where(InternalChatMessage.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    if attachment_ids:
        await session.execute(
            delete(Attachment)
            .where(Attachment.id.in_(attachment_ids))
            .execution_options(synchronize_session=False)
        )
    per_chat: dict[int, int] = {}
    for _, chat_id, _ in rows:
        per_chat[chat_id] = per_chat.get(chat_id, 0) + 1
    for chat_id, count in sorted(per_chat.items()):
        record_audit(
            session,
            RETENTION,
            "ichat.purge",
            "internal_chat",
            chat_id,
            after={"messages": count, "before": cutoff.isoformat()},
        )

    def unlink() -> None:
        # Files go once the rows are gone for good; a rolled-back purge keeps both.
        for path in paths:
            try:
                Path(path).unlink(missing_ok=True)
            except OSError:
                log.warning("could not delete a chat file past retention")

    after_commit(session, unlink)
    return len(ids)
