"""回访 on WeChat and SMS: the survey invitation as a notice, and the resident's "4" as the answer.

A ticket from a WeChat or SMS conversation is surveyed there (``FollowUpSurvey.channel`` is the ticket's
channel); a hotline ticket (channel ``voice``) is surveyed by SMS to the caller's number (the ticket's
contact phone, else the customer's phone on file). The invitation is the ``followup_invite`` notice: a
WeChat template message, or the SMS "请回复数字1-5为本次服务评分". Registered by ``gasdesk/worker.py``:
``CHANNELS`` entries for wechat / sms / voice and the inbound interceptor ``answer_by_digit``.

The answer: a message that is only a score 1–5 (half- or full-width, optionally with 分), optionally
followed by 未解决 / 没解决 / 没有解决, from a contact with a survey sent to it on that channel and not answered
yet. Solved = score ≥ 3 unless they wrote 未解决 (a 1 or 2 means the problem is not solved for the
resident; the policy's dissatisfied threshold still decides reopen/complaint). The survey is answered through
``do_answer_followup`` and a thank-you goes back on the same channel. Anything else — or a digit answering
the bot's numbered options sent after the survey — falls through to the chat.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.channels.inbound import Inbound
from gasdesk.clock import as_utc
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import ContentType, Conversation, Message, SenderType
from gasdesk.customers.contacts import contact_of_visitor, find_contact, visitor_id_of
from gasdesk.customers.models import ContactIdentity, ContactKind
from gasdesk.customers.validation import to_halfwidth
from gasdesk.followups.models import FollowUpSurvey
from gasdesk.followups.service import do_answer_followup
from gasdesk.outbound.models import OutboundMessage, OutboundStatus, Purpose
from gasdesk.outbound.notices import sms_params
from gasdesk.outbound.service import do_queue_outbound, phone_on_file
from gasdesk.tickets.models import TYPE_LABELS, Ticket, TicketType

ANSWER_RE = re.compile(r"^\s*([1-5])\s*分?\s*[，,。.\s]*(未解决|没解决|没有解决)?\s*[。.!！]?\s*$")
THANKS = "感谢您参与回访，您的评价我们已记录。"
# SMS carries approved templates only: the thank-you goes as the chat reply template, like every SMS answer.
SMS_CHAT_TEMPLATE = "chat_reply"


def parse_score(text: str | None) -> tuple[int, bool] | None:
    """"4" / "４分" / "2 未解决" → (score, solved); anything else → None."""
    match = ANSWER_RE.match(to_halfwidth(text or ""))
    if match is None:
        return None
    score = int(match.group(1))
    return score, score >= 3 and match.group(2) is None


def _service_label(ticket: Ticket) -> str:
    if ticket.service_type:
        return f"{ticket.service_type}服务"
    try:
        return f"{TYPE_LABELS[TicketType(ticket.type)]}工单"
    except ValueError:
        return "服务"


class RemoteSurvey:
    """The survey invitation on WeChat (template message) or SMS, to the contact the ticket came from."""

    def __init__(self, channel: str) -> None:
        self.channel = channel  # "wechat" | "sms"

    async def _contact(self, session: AsyncSession, ticket: Ticket) -> ContactIdentity | None:
        origin = await session.get(Conversation, ticket.conversation_id) if ticket.conversation_id else None
        contact = await contact_of_visitor(session, origin.visitor_id) if origin is not None else None
        return contact if contact is not None and contact.kind == self.channel else None

    async def send(self, session: AsyncSession, survey: FollowUpSurvey, ticket: Ticket) -> bool:
        params = {"service": _service_label(ticket), "ticket_no": ticket.number}
        common: dict[str, Any] = {"purpose": Purpose.followup_invite, "customer_id": ticket.customer_id, "ticket_id": ticket.id,
                  "followup_id": survey.id, "template_key": Purpose.followup_invite.value,
                  "dedupe_key": f"followup_invite:{survey.id}:{survey.attempts}"}
        contact = await self._contact(session, ticket)
        if self.channel == ContactKind.wechat.value:
            if contact is None or not contact.subscribed:
                return False
            row = await do_queue_outbound(session, channel="wechat", method="template", recipient=contact.value,
                                          contact=contact, params=params, **common)
        else:
            number = contact.value if contact is not None else (
                ticket.contact_phone or await phone_on_file(session, ticket.customer_id))
            texted = sms_params(Purpose.followup_invite, params)
            if not number or texted is None:
                return False
            if contact is None:
                contact = await find_contact(session, ContactKind.sms, number)
            row = await do_queue_outbound(session, channel="sms", method="sms", recipient=number, contact=contact,
                                          params=texted, **common)
        return row.status != OutboundStatus.skipped.value


async def _open_survey(session: AsyncSession, contact: ContactIdentity,
                       channel: str) -> tuple[FollowUpSurvey, OutboundMessage] | None:
    """The newest survey sent to this contact on this channel and not answered yet."""
    invites = await session.scalars(select(OutboundMessage).where(
        OutboundMessage.purpose == Purpose.followup_invite.value, OutboundMessage.channel == channel,
        OutboundMessage.recipient_index == contact.value_index, OutboundMessage.followup_id.is_not(None),
        OutboundMessage.status.not_in([OutboundStatus.skipped.value, OutboundStatus.failed.value]),
    ).order_by(OutboundMessage.id.desc()).limit(5))
    for invite in invites:
        survey = await session.get(FollowUpSurvey, invite.followup_id)
        if survey is not None and survey.status == "sent":
            return survey, invite
    return None


async def _bot_asked_since(session: AsyncSession, contact: ContactIdentity, channel: str, since: datetime) -> bool:
    """Whether the chat offered numbered options after the survey went out (then a digit picks one)."""
    conversation = await conversations.open_conversation_of(session, visitor_id_of(contact), channel)
    if conversation is None:
        return False
    latest = await session.scalars(select(Message).where(
        Message.conversation_id == conversation.id,
        Message.sender_type.in_([SenderType.bot.value, SenderType.agent.value]),
    ).order_by(Message.seq.desc()).limit(3))
    return any((m.payload or {}).get("quick_replies") and as_utc(m.created_at) > as_utc(since) for m in latest)


async def answer_by_digit(session: AsyncSession, contact: ContactIdentity, channel: str, message: Inbound) -> bool:
    """Inbound interceptor: a bare score from a contact with an open survey on this channel answers it."""
    if message.content_type is not ContentType.text or contact.kind != channel:
        return False
    parsed = parse_score(message.text)
    if parsed is None:
        return False
    found = await _open_survey(session, contact, channel)
    if found is None:
        return False
    survey, invite = found
    if await _bot_asked_since(session, contact, channel, survey.last_sent_at or invite.created_at):
        return False
    score, solved = parsed
    await do_answer_followup(session, survey.id, score=score, solved=solved)
    common: dict[str, Any] = {"purpose": Purpose.chat, "contact": contact, "customer_id": contact.customer_id,
              "ticket_id": survey.ticket_id, "followup_id": survey.id, "text": THANKS,
              "dedupe_key": f"followup_thanks:{survey.id}"}
    if channel == ContactKind.wechat.value:
        # The resident just wrote: WeChat's 48-hour window for 客服消息 is open.
        await do_queue_outbound(session, channel="wechat", method="custom", recipient=contact.value, **common)
    else:
        await do_queue_outbound(session, channel="sms", method="sms", recipient=contact.value,
                                template_key=SMS_CHAT_TEMPLATE, params={"text": THANKS}, **common)
    return True
