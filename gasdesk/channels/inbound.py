"""A resident's message from WeChat or SMS, after the channel checked and parsed it: one path into the same
conversations, bot, hand-off rules and queue the web chat uses."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.channels.models import InboundReceipt
from gasdesk.channels.replies import pick_quick_reply
from gasdesk.clock import utcnow
from gasdesk.conversations import pipeline
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import ContentType, Conversation
from gasdesk.customers.contacts import contact_of_visitor, visitor_id_of
from gasdesk.customers.models import ContactIdentity, Customer

RECEIPTS_KEPT = timedelta(days=2)

# Text answers that are not chat: a 回访 score sent back by SMS, 退订 (opt-out). Registered by the domains that
# own them (gasdesk/worker.py); the first that returns True has handled the message.
Interceptor = Callable[[AsyncSession, ContactIdentity, str, "Inbound"], Awaitable[bool]]
INTERCEPTORS: list[Interceptor] = []


def intercept_inbound(interceptor: Interceptor) -> None:
    if interceptor not in INTERCEPTORS:
        INTERCEPTORS.append(interceptor)


def receipt_key(*parts: str) -> str:
    """A SHA-256 of a channel's own message identity (MsgId, openid+CreateTime…): no personal data stored."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


async def seen_before(session: AsyncSession, channel: str, key: str) -> bool:
    """Record an inbound callback's identity; True when it was handled already (a retry or a replay)."""
    if await session.scalar(select(InboundReceipt.id).where(InboundReceipt.channel == channel,
                                                            InboundReceipt.key == key)):
        return True
    session.add(InboundReceipt(channel=channel, key=key, created_at=utcnow()))
    await session.flush()
    return False


async def prune_receipts(session: AsyncSession) -> int:
    """Periodic: forget receipts older than any retry a provider makes."""
    result = await session.execute(delete(InboundReceipt).where(InboundReceipt.created_at < utcnow() - RECEIPTS_KEPT))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Inbound:
    """What the resident sent, channel-neutral."""

    text: str | None
    content_type: ContentType = ContentType.text
    payload: dict[str, Any] | None = None
    client_msg_id: str | None = None
    channel_meta: dict[str, Any] | None = None


async def conversation_for_contact(session: AsyncSession, contact: ContactIdentity, channel: str) -> Conversation:
    """The contact's open conversation on ``channel``, or a new one (the bot greets). A bound contact's
    conversation gets its customer."""
    visitor_id = visitor_id_of(contact)
    conversation = await conversations.open_conversation_of(session, visitor_id, channel)
    if conversation is None:
        conversation = await pipeline.start_conversation(session, channel=channel, visitor_id=visitor_id)
    await link_known_resident(session, conversation, contact)
    return conversation


async def link_known_resident(session: AsyncSession, conversation: Conversation,
                              contact: ContactIdentity | None = None) -> None:
    """Give a conversation the customer its contact is bound to (a WeChat follower writing on WeChat, or in the
    H5 chat opened from the official account)."""
    contact = contact or await contact_of_visitor(session, conversation.visitor_id or "")
    if contact is None or contact.customer_id is None or conversation.customer_id is not None:
        return
    customer = await session.get(Customer, contact.customer_id)
    if customer is not None:
        await conversations.do_link_customer(session, Actor.system(contact.kind, contact.kind), conversation,
                                             customer, how="contact")


async def receive_from_contact(session: AsyncSession, contact: ContactIdentity, channel: str,
                               message: Inbound) -> Conversation | None:
    """Store the resident's message and run the bot turn / hand-off rules. A bare digit answering the bot's
    numbered options counts as pressing that button (转人工 included). Interceptors go first."""
    for interceptor in INTERCEPTORS:
        if await interceptor(session, contact, channel, message):
            return None
    conversation = await conversation_for_contact(session, contact, channel)
    payload = dict(message.payload or {})
    text = message.text
    if message.content_type is ContentType.text:
        button = await pick_quick_reply(session, conversation.id, text or "")
        if button is not None:
            if button.get("action") == "handoff":
                payload["action"] = "handoff"
            else:
                payload["quick_reply"] = button.get("label")
                if button.get("value") is not None:
                    payload["value"] = button["value"]
                text = button.get("text") or button.get("label") or text
    await pipeline.receive_resident_message(
        session, conversation, text=text, client_msg_id=message.client_msg_id, payload=payload or None,
        content_type=message.content_type, channel_meta=message.channel_meta)
    return conversation
