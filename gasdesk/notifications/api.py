"""Notification REST API: every staff role reads and marks only their own notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.notifications import service
from gasdesk.notifications.schemas import MarkedRead, NotificationList, NotificationOut, UnreadCount

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


@router.get("", response_model=NotificationList)
async def list_notifications(
    session: DbSession,
    unread: bool = Query(False, description="只看未读"),
    before_id: Annotated[Id | None, Query(description="翻页：早于该 id 的通知")] = None,
    limit: int = Query(20, ge=1, le=service.PAGE_SIZE_MAX),
    user: User = allow(*ALL_ROLES),
) -> NotificationList:
    """My notifications, newest first, with the unread total."""
    notes = await service.list_notifications(session, user, unread_only=unread, before_id=before_id, limit=limit)
    return NotificationList(items=[service.notification_out(n) for n in notes],
                            unread=await service.unread_count(session, user))


@router.get("/unread-count", response_model=UnreadCount)
async def unread_count(session: DbSession, user: User = allow(*ALL_ROLES)) -> UnreadCount:
    return UnreadCount(unread=await service.unread_count(session, user))


@router.post("/read-all", response_model=MarkedRead)
async def mark_all_read(session: DbSession, user: User = allow(*ALL_ROLES)) -> MarkedRead:
    marked = await service.do_mark_all_read(session, user, source="api")
    return MarkedRead(marked=marked, unread=await service.unread_count(session, user))


@router.post("/{notification_id}/read", response_model=NotificationOut)
async def mark_read(notification_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> NotificationOut:
    note = await service.access_notification(session, user, notification_id)
    await service.do_mark_read(session, user, note, source="api")
    return service.notification_out(note)
