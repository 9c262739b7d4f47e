"""Notify staff: a stored notification, pushed live to their console after commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import utcnow
from gasdesk.events import emit
from gasdesk.notifications.models import Notification
from gasdesk.security.pii import redact_pii


def do_notify(session: AsyncSession, user_id: int, kind: str, title: str, body: str = "",
              link: str | None = None) -> Notification:
    """Store a notification for ``user_id`` and push it to their open consoles after commit.

    Title and body often quote a resident (a leak report): phones, ID numbers and 户号 are redacted
    (the linked ticket holds the contact details for those allowed to see them)."""
    note = Notification(user_id=user_id, kind=kind, title=redact_pii(title)[:120], body=redact_pii(body)[:500],
                        link=link, created_at=utcnow())
    session.add(note)
    emit(session, "notification.created", {"user_id": user_id, "kind": kind, "title": note.title,
                                           "body": note.body, "link": link})
    return note
