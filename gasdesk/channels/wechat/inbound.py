"""What a parsed WeChat callback does: follow/unfollow, menu clicks, and messages into the conversation."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.channels.inbound import Inbound, conversation_for_contact, receive_from_contact
from gasdesk.channels.wechat.messages import InboundMessage
from gasdesk.clock import utcnow
from gasdesk.conversations.models import ContentType
from gasdesk.customers.contacts import do_record_inbound_contact, do_set_subscribed
from gasdesk.customers.models import ContactKind
from gasdesk.outbound.service import do_record_receipt

CHANNEL = "wechat"
# Menu CLICK keys: "handoff" asks for a person; "ask:<text>" is the same as typing <text> (admins set both
# in the menu editor, so a menu entry is a question the bot already understands).
HANDOFF_KEY = "handoff"
ASK_PREFIX = "ask:"


def inbound_of(msg: InboundMessage) -> Inbound | None:
    """The resident message a WeChat message stands for; None for events that are not messages."""
    meta: dict[str, Any] = {"wechat_type": msg.msg_type}
    client_id = f"wx:{msg.msg_id}" if msg.msg_id else None
    if msg.msg_type == "text":
        return Inbound(text=msg.content, client_msg_id=client_id, channel_meta=meta)
    if msg.msg_type == "voice":
        if msg.recognition:
            # WeChat's own speech recognition (when the OA turned it on): the bot reads it like typed text.
            return Inbound(text=msg.recognition, client_msg_id=client_id, channel_meta={**meta, "voice": True})
        return Inbound(text="[语音消息]", content_type=ContentType.file, client_msg_id=client_id,
                       payload={"wechat": {"media_id": msg.media_id, "format": msg.format}, "name": "语音消息"},
                       channel_meta=meta)
    if msg.msg_type == "image":
        return Inbound(text="[图片]", content_type=ContentType.image, client_msg_id=client_id,
                       payload={"wechat": {"media_id": msg.media_id, "pic_url": msg.pic_url}, "name": "微信图片"},
                       channel_meta=meta)
    if msg.msg_type == "location":
        # The label is an address the bot can use (a leak's address, a branch nearby).
        return Inbound(text=msg.label or "[位置]", client_msg_id=client_id, channel_meta={
            **meta, "location": {"x": msg.location_x, "y": msg.location_y, "scale": msg.scale}})
    if msg.msg_type == "link":
        return Inbound(text=f"[链接] {msg.title or ''} {msg.url or ''}".strip(), client_msg_id=client_id,
                       channel_meta=meta)
    if msg.msg_type == "event" and (msg.event or "").upper() == "CLICK":
        key = msg.event_key or ""
        if key == HANDOFF_KEY:
            return Inbound(text="转人工", payload={"action": "handoff"}, channel_meta=meta)
        if key.startswith(ASK_PREFIX) and key[len(ASK_PREFIX):].strip():
            return Inbound(text=key[len(ASK_PREFIX):].strip(), channel_meta=meta)
    return None


async def handle_callback(session: AsyncSession, msg: InboundMessage) -> None:
    """Act on one verified, decrypted, first-seen callback inside the caller's transaction."""
    event = (msg.event or "").lower() if msg.msg_type == "event" else ""
    if event == "templatesendjobfinish":
        # WeChat's delivery receipt of a template message: "success", "failed:user block", "failed:system failed".
        if msg.msg_id:
            await do_record_receipt(session, CHANNEL, msg.msg_id, delivered=(msg.status or "") == "success",
                                    error_code=(msg.status or "failed")[:40])
        return
    contact = await do_record_inbound_contact(session, ContactKind.wechat, msg.from_user, at=utcnow())
    if event == "unsubscribe":
        do_set_subscribed(session, contact, False)
        return
    if event in ("subscribe", "scan"):
        do_set_subscribed(session, contact, True)
        await conversation_for_contact(session, contact, CHANNEL)  # a new follower is greeted by the bot
        return
    inbound = inbound_of(msg)
    if inbound is None:
        return  # VIEW (the resident opened a menu link), template receipts, unknown types: nothing to say
    await receive_from_contact(session, contact, CHANNEL, inbound)
