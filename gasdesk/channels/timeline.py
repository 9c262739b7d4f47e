"""One resident, one history: a customer's conversations on every channel and the messages we sent them,
newest first (the customer 360 page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import as_utc
from gasdesk.conversations.history import customer_conversations
from gasdesk.conversations.models import channel_label
from gasdesk.customers.contacts import contacts_of_customer
from gasdesk.customers.models import CONTACT_KIND_LABELS, ContactKind
from gasdesk.outbound.models import PURPOSE_LABELS, STATUS_LABELS, OutboundStatus, Purpose
from gasdesk.outbound.service import mask_recipient, outbound_for
from gasdesk.security.pii import mask_pii


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    channel_code: str  # for the page's data attribute; people read channel_label
    channel_label: str
    kind: str  # 会话 | 通知
    summary: str
    status: str


@dataclass(frozen=True)
class ContactLine:
    kind_label: str
    shown: str  # masked
    state: str


async def customer_timeline(session: AsyncSession, customer_id: int, limit: int = 30) -> list[TimelineEntry]:
    """Conversations (web chat, WeChat, SMS, …) and outbound notices of one customer, newest first."""
    entries = [
        TimelineEntry(datetime.fromisoformat(c["created_at"]), c["channel"], c["channel_label"], "会话",
                      mask_pii(c["preview"]) or "（无文字）", c["state_label"])
        for c in await customer_conversations(session, customer_id, limit=limit)
    ]
    for row in await outbound_for(session, customer_id=customer_id, limit=limit):
        if row.purpose == Purpose.chat.value and row.fallback_of_id is None:
            continue  # a reply inside a conversation: the conversation entry stands for it
        status = STATUS_LABELS[OutboundStatus(row.status)] + (f"（{row.reason}）" if row.reason else "")
        entries.append(TimelineEntry(row.created_at, row.channel, channel_label(row.channel), "通知",
                                     PURPOSE_LABELS.get(Purpose(row.purpose), row.purpose), status))
    entries.sort(key=lambda e: as_utc(e.at), reverse=True)
    return entries[:limit]


async def customer_contacts(session: AsyncSession, customer_id: int) -> list[ContactLine]:
    """The WeChat followers and mobile numbers bound to the customer, masked."""
    lines = []
    for contact in await contacts_of_customer(session, customer_id):
        kind = ContactKind(contact.kind)
        shown = mask_recipient(kind.value, contact.value)
        state = "已退订通知" if contact.opted_out_at else ("已取消关注" if not contact.subscribed else "正常")
        lines.append(ContactLine(CONTACT_KIND_LABELS[kind], shown, state))
    return lines
