"""Chat on text-only channels (WeChat, SMS): what the resident's phone shows for a bot card or quick-reply
buttons, how a numbered answer picks a button, and queueing agents' and the bot's replies for delivery."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.conversations.models import Conversation, Message, SenderType
from gasdesk.customers.contacts import contact_of_visitor, phone_on_file, wechat_window_open
from gasdesk.customers.models import ContactIdentity
from gasdesk.outbound.models import OutboundMessage, OutboundStatus, Purpose
from gasdesk.outbound.service import do_queue_outbound

# How long a reply queued while WeChat waits for our HTTP answer is held back: the answer goes in the response
# when ready within WeChat's 5 seconds (the passive reply); otherwise the worker sends it as 客服消息.
PASSIVE_HOLD_S = 5.0
REMOTE_CHANNELS = ("wechat", "sms")
DIGIT = re.compile(r"^\s*([1-9])\s*$")


def text_for_channel(text: str | None, payload: dict[str, Any] | None) -> str:
    """A message as plain text: quick-reply buttons become a numbered list the resident answers with a digit."""
    lines = [text or ""]
    payload = payload or {}
    buttons = payload.get("quick_replies") or []
    card = payload.get("card") or {}
    if card.get("kind") == "leave_message":
        lines.append("请直接回复您的联系电话和问题，我们会尽快联系您。")
    elif card.get("kind") == "followup":
        lines.append("请回复 1–5 为本次服务打分（5 分为非常满意）。")
    if buttons:
        lines.append("回复数字选择：" + "  ".join(f"{i}.{b.get('label', '')}" for i, b in enumerate(buttons[:9], 1)))
    return "\n".join(line for line in lines if line).strip()


async def pick_quick_reply(session: AsyncSession, conversation_id: int, text: str) -> dict[str, Any] | None:
    """A bare digit answering the latest numbered list in the conversation: that button, else None."""
    match = DIGIT.match(text or "")
    if not match:
        return None
    latest = await session.scalars(select(Message).where(
        Message.conversation_id == conversation_id,
        Message.sender_type.in_([SenderType.bot.value, SenderType.agent.value]),
    ).order_by(Message.seq.desc()).limit(3))
    for message in latest:
        buttons = (message.payload or {}).get("quick_replies") or []
        if buttons:
            index = int(match.group(1)) - 1
            return dict(buttons[index]) if index < len(buttons[:9]) else None
    return None


async def queue_chat_reply(session: AsyncSession, conversation: Conversation, message: Message) -> OutboundMessage | None:
    """The hook ``conversations.service`` calls for every bot/agent/system message in a WeChat or SMS
    conversation: queue it for the resident's phone. WeChat outside its 48-hour window, or to someone who
    unfollowed, is not tried: it is recorded as skipped with the reason (the agent sees why) and an SMS
    notice goes to the phone on file instead."""
    if conversation.channel not in REMOTE_CHANNELS or message.sender_type == "resident":
        return None
    if message.content_type == "event" and not message.text:
        return None
    contact = await contact_of_visitor(session, conversation.visitor_id)
    if contact is None:
        return None
    text = text_for_channel(message.text, message.payload)
    if not text:
        return None
    common: dict[str, Any] = {"contact": contact, "customer_id": conversation.customer_id,
                              "conversation_id": conversation.id, "message_id": message.id, "text": text}
    if contact.kind == "sms":
        return await do_queue_outbound(session, channel="sms", purpose=Purpose.chat, method="sms",
                                       recipient=contact.value, template_key="chat_reply", params={"text": text},
                                       **common)
    if wechat_window_open(contact):
        hold = PASSIVE_HOLD_S if session.info.get("wechat_callback") else 0.0
        row = await do_queue_outbound(session, channel="wechat", purpose=Purpose.chat, method="custom",
                                      recipient=contact.value, delay_s=hold, **common)
        session.info.setdefault("wechat_replies", []).append(row.id)
        return row
    return await _outside_window(session, contact, conversation, message, common)


async def _outside_window(session: AsyncSession, contact: ContactIdentity, conversation: Conversation, message: Message,
                          common: dict[str, Any]) -> OutboundMessage:
    reason = "unsubscribed" if not contact.subscribed else "outside_48h"
    row = OutboundMessage(channel="wechat", purpose=Purpose.chat.value, method="custom", recipient=contact.value,
                          recipient_index=contact.value_index, contact_id=contact.id,
                          customer_id=conversation.customer_id, conversation_id=conversation.id,
                          message_id=message.id, text=common["text"], status=OutboundStatus.skipped.value,
                          reason=reason, attempts=0, emergency=False)
    session.add(row)
    await session.flush()
    phone = await phone_on_file(session, conversation.customer_id)
    if phone is not None:
        await do_queue_outbound(session, channel="sms", purpose=Purpose.chat, method="sms", recipient=phone,
                                customer_id=conversation.customer_id, conversation_id=conversation.id,
                                message_id=message.id, template_key="chat_reply_waiting", params={},
                                fallback_of_id=row.id, dedupe_key=f"fallback:{row.id}")
    return row
