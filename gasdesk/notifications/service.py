"""Notify staff: a stored notification, pushed live to every staff page they have open after commit.

Reading: ``list_notifications`` / ``unread_count`` (only the caller's own). Changes: ``do_notify`` (from the
domain that has news: a leak report, an SLA breach, a lock-out), ``do_mark_read`` / ``do_mark_all_read``
(the user, audited). Each change publishes an event after commit; ``realtime.hub`` turns it into a frame on
the user's ``/ws/staff`` sockets (``notifications/socket.py``), so every open console updates its bell.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.clock import utcnow
from gasdesk.db import after_commit, execute_counted
from gasdesk.errors import NotFound
from gasdesk.event_types import NotificationCreated, NotificationsRead, NotificationWire
from gasdesk.events import Event, bus, publish_now
from gasdesk.notifications.models import Notification
from gasdesk.notifications.schemas import NotificationOut
from gasdesk.security.pii import redact_pii

# Kinds the consoles show as a prominent alert (toast that stays, sound) rather than a quiet badge.
URGENT_KINDS = frozenset({"emergency.gas_leak", "emergency.escalation"})
KIND_LABELS = {
    "emergency.gas_leak": "燃气泄漏报警",
    "emergency.escalation": "紧急事件",
    "sla.at_risk": "工单即将超时",
    "sla.breached": "工单已超时",
    "ticket.new": "新工单",
    "ticket.assigned": "新派工单",
    "security": "安全提醒",
    "security.identify_lockout": "身份核实锁定",
    "report.ready": "定时报表",
    "chat.mention": "内部沟通@我",
}
PAGE_SIZE_MAX = 100


def notification_out(note: Notification) -> NotificationOut:
    """The one wire form of a notification: REST answers and live pushes use it alike."""
    return NotificationOut(
        id=note.id, kind=note.kind, kind_label=KIND_LABELS.get(note.kind, "通知"), urgent=note.kind in URGENT_KINDS,
        title=note.title, body=note.body or "", link=note.link, created_at=note.created_at, read=note.read_at is not None,
    )


def do_notify(session: AsyncSession, user_id: int, kind: str, title: str, body: str = "",
              link: str | None = None) -> Notification:
    """Store a notification for ``user_id`` and push it to their open staff pages after commit.

    Title and body often quote a resident (a leak report): phones, ID numbers and 户号 are redacted
    (the linked ticket holds the contact details for those allowed to see them), then stored encrypted.
    Not audited itself: it is a consequence of a change that is (the ticket, the lock-out)."""
    note = Notification(user_id=user_id, kind=kind, title=redact_pii(title)[:120], body=redact_pii(body)[:500],
                        link=link, created_at=utcnow())
    session.add(note)

    async def publish() -> None:
        # Built after commit: the flush that committed the row gave it its id.
        wire = cast(NotificationWire, notification_out(note).model_dump(mode="json"))
        await publish_now(NotificationCreated(user_id=user_id, notification=wire))

    after_commit(session, publish)
    return note


async def unread_count(session: AsyncSession, user: User) -> int:
    return int(await session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0)


async def list_notifications(session: AsyncSession, user: User, *, unread_only: bool = False,
                             before_id: int | None = None, limit: int = 20) -> list[Notification]:
    """The user's notifications, newest first (``before_id`` pages further back)."""
    query = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    limit = max(1, min(limit, PAGE_SIZE_MAX))
    return list(await session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


async def access_notification(session: AsyncSession, user: User, notification_id: int) -> Notification:
    """One of the caller's own notifications; somebody else's is "not found" (no probing of ids)."""
    note = await session.get(Notification, notification_id)
    if note is None or note.user_id != user.id:
        raise NotFound("通知不存在", code="notification_not_found")
    return note


async def _publish_read(session: AsyncSession, user: User, ids: list[int] | None) -> None:
    # The count as this transaction leaves it: the user's other pages show it without asking again.
    count = await unread_count(session, user)
    event = Event.of(NotificationsRead(user_id=user.id, ids=ids, unread=count))
    after_commit(session, lambda: bus.publish(event))


async def do_mark_read(session: AsyncSession, user: User, note: Notification, *, source: str = "web") -> Notification:
    """Mark one notification read (idempotent); audited; the user's other open pages update their bell."""
    if note.read_at is None:
        note.read_at = utcnow()
        record_audit(session, Actor.of(user, source), "notification.read", "notification", note.id,
                     before={"read": False}, after={"read": True})
        await _publish_read(session, user, [note.id])
    return note


async def do_mark_all_read(session: AsyncSession, user: User, *, source: str = "web") -> int:
    """Mark every unread notification of the user read; returns how many changed. Audited once."""
    now = utcnow()
    marked = await execute_counted(
        session,
        update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=now).execution_options(synchronize_session=False))
    if marked:
        record_audit(session, Actor.of(user, source), "notification.read_all", "user", user.id,
                     after={"marked": marked})
        await _publish_read(session, user, None)
    return marked
