"""One resident, one history: a customer's conversations on every channel and the messages we sent them,
newest first (the customer 360 page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import as_utc
from gasdesk.conversations.history import customer_conversations
from gasdesk.conversations.models import Channel, channel_label
from gasdesk.customers.contacts import contacts_of_customer
from gasdesk.customers.models import CONTACT_KIND_LABELS, ContactKind
from gasdesk.outbound.models import PURPOSE_LABELS, STATUS_LABELS, OutboundStatus, Purpose
from gasdesk.outbound.service import mask_recipient, outbound_for
from gasdesk.security.pii import mask_pii
from gasdesk.telephony.service import CallSummary, calls_of_customer


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    channel_code: str  # for the page's data attribute; people read channel_label
    channel_label: str
    kind: str  # 会话 | 通知 | 来电
    summary: str
    status: str
    link: str | None = None  # the call's recording (an <audio> on the page)


@dataclass(frozen=True)
class ContactLine:
    kind_label: str
    shown: str  # masked
    state: str


async def customer_timeline(session: AsyncSession, customer_id: int, limit: int = 30) -> list[TimelineEntry]:
    """Conversations (web chat, WeChat, SMS, …) and outbound notices of one customer, newest first."""
    calls = await calls_of_customer(session, customer_id, limit=limit)
    by_call = {c.conversation_id for c in calls if c.conversation_id is not None}
    entries = [
        TimelineEntry(datetime.fromisoformat(c["created_at"]), c["channel"], c["channel_label"], "会话",
                      mask_pii(c["preview"]) or "（无文字）", c["state_label"])
        for c in await customer_conversations(session, customer_id, limit=limit)
        if c["id"] not in by_call  # a call's conversation: the call entry below stands for it
    ]
    for call in calls:
        entries.append(TimelineEntry(call.at, Channel.voice.value, channel_label(Channel.voice.value), "来电",
                                     call_line(call), f"{call.hangup_label}挂机" if call.hangup_by else "通话中",
                                     link=call.recording_url))
    for row in await outbound_for(session, customer_id=customer_id, limit=limit):
        if row.purpose == Purpose.chat.value and row.fallback_of_id is None:
            continue  # a reply inside a conversation: the conversation entry stands for it
        status = STATUS_LABELS[OutboundStatus(row.status)] + (f"（{row.reason}）" if row.reason else "")
        entries.append(TimelineEntry(row.created_at, row.channel, channel_label(row.channel), "通知",
                                     PURPOSE_LABELS.get(Purpose(row.purpose), row.purpose), status))
    entries.sort(key=lambda e: as_utc(e.at), reverse=True)
    return entries[:limit]


def call_line(call: CallSummary) -> str:
    """A call in one line: length, queue wait, the IVR path, the agent."""
    parts = [f"通话 {call.duration_s // 60} 分 {call.duration_s % 60} 秒"]
    if call.queue_wait_s is not None:
        parts.append(f"排队 {call.queue_wait_s} 秒")
    if call.ivr_path:
        parts.append("导航：" + " → ".join(call.ivr_path))
    if call.agent_name:
        parts.append(f"坐席：{call.agent_name}")
    return "；".join(parts)


async def customer_contacts(session: AsyncSession, customer_id: int) -> list[ContactLine]:
    """The WeChat followers and mobile numbers bound to the customer, masked."""
    lines = []
    for contact in await contacts_of_customer(session, customer_id):
        kind = ContactKind(contact.kind)
        shown = mask_recipient(kind.value, contact.value)
        state = "已退订通知" if contact.opted_out_at else ("已取消关注" if not contact.subscribed else "正常")
        lines.append(ContactLine(CONTACT_KIND_LABELS[kind], shown, state))
    return lines
