"""The notification list page (/notifications): what the bell's menu shows, in full and without script."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import ALL_ROLES
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.notifications import service
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


def _local_link(link: str | None) -> str:
    # Links are written by server code (/tickets/12); still, never send anyone off-site from here.
    if link and link.startswith("/") and not link.startswith("//") and "\\" not in link:
        return link
    return "/notifications"


@router.get("/notifications")
async def notifications_page(request: Request, session: DbSession, unread: bool = False,
                             before_id: Annotated[Id | None, Query()] = None, user: User = allow(*ALL_ROLES)) -> Response:
    notes = await service.list_notifications(session, user, unread_only=unread, before_id=before_id,
                                             limit=PAGE_SIZE)
    return render(request, "notifications.html", {
        "items": [service.notification_out(n) for n in notes], "unread": await service.unread_count(session, user),
        "only_unread": unread, "next_before": notes[-1].id if len(notes) == PAGE_SIZE else None,
    })


@router.post("/notifications/read-all")
async def notifications_read_all(session: DbSession, user: User = allow(*ALL_ROLES)) -> Response:
    await service.do_mark_all_read(session, user)
    return RedirectResponse("/notifications", status_code=303)


@router.post("/notifications/{notification_id}/read")
async def notification_open(notification_id: Id, session: DbSession, user: User = allow(*ALL_ROLES)) -> Response:
    """Mark read and go where the notification points (the ticket of a leak report)."""
    note = await service.access_notification(session, user, notification_id)
    await service.do_mark_read(session, user, note)
    return RedirectResponse(_local_link(note.link), status_code=303)
