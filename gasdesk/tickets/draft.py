"""A ticket draft filled from a conversation transcript, offline (the NLU's intents and slots).

The agent reviews and corrects it before submitting; nothing here creates anything. The draft is about
the one report it files: the type is the most actionable request said, the service and the visit time
only belong to a visit (never a leak "with" the inspection booked earlier), a time is read against the
moment it was said and dropped once it has passed, and the description keeps the lines that describe the
problem, with numbers redacted. Answers to an identity check (户号, the phone's last four digits) are
never read at all: not for the description, not for any field.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date as date_type
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.bot.nlu import Understanding, understand
from gasdesk.bot.nlu.dates import local_now
from gasdesk.conversations.models import Conversation, Message, SenderType
from gasdesk.customers.addresses import parse_free_address
from gasdesk.customers.service import CustomerQuery, access_customer, find_customers
from gasdesk.security.pii import redact_pii
from gasdesk.tickets.models import STATUS_LABELS, TYPE_LABELS, Ticket, TicketStatus, TicketType
from gasdesk.tickets.service import open_conversation_tickets

# Most actionable first: the draft's type is the highest-ranked intent said anywhere in the chat.
INTENT_TO_TYPE: list[tuple[str, TicketType]] = [
    ("gas_leak", TicketType.gas_leak), ("no_gas", TicketType.no_gas), ("complaint", TicketType.complaint),
    ("appointment_book", TicketType.service_appointment), ("heating_not_warm", TicketType.repair),
    ("meter_guidance", TicketType.repair), ("praise", TicketType.praise),
    ("business_handling", TicketType.info_change), ("appointment_cancel", TicketType.service_appointment),
]
REPAIR_SERVICES = {"维修"}
# Faults: a visit asked for one ("派人来看看") is a repair visit unless a bookable service is named with it.
FAULT_INTENTS = {"heating_not_warm", "meter_guidance"}
# A service and a visit time belong to these types only.
VISIT_TYPES = {TicketType.service_appointment.value, TicketType.repair.value}
IGNORED = {"greeting", "goodbye", "human_agent", "out_of_scope"}
CHATTER = {"greeting", "goodbye", "human_agent"}
ADDRESS_RE = re.compile(r"[\u4e00-\u9fa5]{2,12}(?:区|县)?[\u4e00-\u9fa5A-Za-z0-9]{1,20}?(?:小区|家园|花园|新村|公寓|社区|大院|里)"
                        r"[0-9零一二两三四五六七八九十]+(?:号楼|栋|幢|号|-)[0-9零一二两三四五六七八九十]+(?:单元|门|-)"
                        r"[0-9零一二两三四五六七八九十百]+(?:室|号)?")
# A bot or agent message that asks for identity-check answers: the resident's reply to it is never read.
# (Asking for them, not merely naming them: "办理业务请携带户主身份证和户号" asks nothing.)
IDENTITY_ASK_RE = re.compile(r"(请|麻烦|再)您?(重新)?(输入|提供|告诉|发送|报一下|说一下)[^。！？]{0,16}(户号|后四位|后\s*4\s*位|身份证)"
                             r"|(核实|验证)(一下)?您?的?身份")
# What is left of a line once its numbers and contact words are gone must say something about the problem.
_PLACEHOLDER_RE = re.compile(r"\[[^\]]{1,6}\]")
_FILLER_RE = re.compile(r"我的|我家|我|是|电话|手机号?|号码|户号|联系方式|联系|地址|在|吗|呢|啊|吧|的|了|[\W_\d]")
MIN_DESCRIPTION_CHARS = 4


@dataclass(frozen=True)
class DraftLine:
    """One resident message as the draft reads it."""

    text: str
    at: datetime | None = None  # when it was said: "明天" is the day after this
    identity_answer: bool = False  # the reply to an identity question: never read
    button: bool = False  # a quick-reply press answers a bot question; it describes nothing


@dataclass
class TicketDraft:
    type: str = TicketType.consultation.value
    type_label: str = TYPE_LABELS[TicketType.consultation]
    service_type: str | None = None
    description: str = ""
    phone: str | None = None
    account_no: str | None = None
    address_text: str | None = None
    district: str | None = None
    preferred_time: str | None = None
    customer_id: int | None = None
    account_id: int | None = None
    address_id: int | None = None
    intents: list[str] = field(default_factory=list)
    # Open tickets already made from this conversation: update one of those rather than file a second.
    open_tickets: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _preferred_time(day: str | None, part: str | None, today: date_type) -> str | None:
    """"12月08日 上午"; None when nothing was said or the day has passed."""
    if not day and not part:
        return None
    if day:
        try:
            when = date_type.fromisoformat(day)
        except ValueError:
            when = None
        if when is not None:
            if when < today:
                return None  # said for a day that is over: an old wish, not this ticket's
            day = when.strftime("%m月%d日")
    return " ".join(x for x in (day, part) if x)


def _describes(text: str, result: Understanding) -> bool:
    content = _FILLER_RE.sub("", _PLACEHOLDER_RE.sub("", redact_pii(text)))
    if len(content) < MIN_DESCRIPTION_CHARS:
        return False  # "你好", "电话13800001111", "户号2100003344", "好的"
    return not (result.intent in CHATTER and result.confidence >= 0.6 and len(content) <= 8)


def draft_from_texts(texts: list[str], now: datetime | None = None) -> TicketDraft:
    """Pure extraction from the resident's messages, all said at ``now`` (testable without a database)."""
    return draft_from_lines([DraftLine(t, now) for t in texts], now)


def draft_from_lines(lines: list[DraftLine], now: datetime | None = None) -> TicketDraft:
    draft = TicketDraft()
    found: dict[str, str] = {}
    intents: list[str] = []
    services: list[str] = []
    when: tuple[str | None, str | None] = (None, None)
    described: list[str] = []
    for line in lines:
        if line.identity_answer:
            continue
        result = understand(line.text, now=line.at or now)
        if result.intent not in IGNORED:
            intents.append(result.intent)
        slots = dict(result.slots)
        if slots.get("service_type"):
            services.append(slots.pop("service_type"))
        if slots.get("date") or slots.get("time"):
            when = (slots.pop("date", None), slots.pop("time", None))  # the latest wish replaces earlier ones
        for key, value in slots.items():
            found.setdefault(key, value)  # the first mention wins; later ones are usually repeats
        if "address" not in found:
            match = ADDRESS_RE.search(line.text)
            if match:
                found["address"] = match.group()
        if not line.button and _describes(line.text, result):
            described.append(redact_pii(line.text.strip()))
    draft.intents = list(dict.fromkeys(intents))
    for intent, ticket_type in INTENT_TO_TYPE:
        if intent in intents:
            draft.type = ticket_type.value
            break
    visits = [s for s in services if s not in REPAIR_SERVICES]
    if draft.type == TicketType.service_appointment.value and not visits and (services or FAULT_INTENTS & set(intents)):
        draft.type = TicketType.repair.value
    if draft.type == TicketType.consultation.value and services:
        draft.type = TicketType.service_appointment.value if visits else TicketType.repair.value
    if draft.type == TicketType.service_appointment.value:
        draft.service_type = visits[-1] if visits else None
    elif draft.type == TicketType.repair.value:
        draft.service_type = "维修" if set(services) & REPAIR_SERVICES else None
    draft.type_label = TYPE_LABELS[TicketType(draft.type)]
    draft.phone = found.get("phone")
    draft.account_no = found.get("account_no")
    draft.address_text = found.get("address")
    if draft.address_text:
        parts = parse_free_address(draft.address_text)
        draft.district = parts.district or None if parts else None
    if draft.type in VISIT_TYPES:
        draft.preferred_time = _preferred_time(*when, local_now(now).date())
    draft.description = "\n".join(described)[:2000]
    return draft


async def _transcript_lines(session: AsyncSession, conversation: Conversation) -> list[DraftLine]:
    """The resident's text messages, each marked when it answers an identity question of the bot or an agent."""
    rows = (await session.execute(select(Message.sender_type, Message.content_type, Message.text, Message.payload,
                                         Message.created_at)
                                  .where(Message.conversation_id == conversation.id).order_by(Message.seq))).all()
    lines: list[DraftLine] = []
    asked_identity = False
    for sender, content_type, text, payload, at in rows:
        if sender != SenderType.resident.value:
            if text and sender in (SenderType.bot.value, SenderType.agent.value):
                asked_identity = bool(IDENTITY_ASK_RE.search(text))
            continue
        if content_type != "text" or not text:
            continue
        button = bool(payload and ("value" in payload or "quick_reply" in payload))
        lines.append(DraftLine(text, at, identity_answer=asked_identity, button=button))
        asked_identity = False  # the next message is the answer; what follows it is the resident's own again
    return lines


async def draft_from_conversation(session: AsyncSession, conversation: Conversation,
                                  now: datetime | None = None) -> TicketDraft:
    """Draft from the resident's side of the transcript, linked to the customer when one is known or found,
    with the conversation's open tickets (to be updated rather than duplicated)."""
    draft = draft_from_lines(await _transcript_lines(session, conversation), now)
    customer = None
    if conversation.customer_id:
        customer = await access_customer(session, conversation.customer_id)
    else:
        for query in (CustomerQuery(account_no=draft.account_no) if draft.account_no else None,
                      CustomerQuery(phone=draft.phone) if draft.phone else None):
            if query is not None:
                matches = await find_customers(session, query, limit=2)
                if len(matches) == 1:
                    customer = matches[0]
                    break
    if customer is not None:
        draft.customer_id = customer.id
        account = next((a for a in customer.accounts if draft.account_no and a.account_no == draft.account_no), None) \
            or (customer.accounts[0] if customer.accounts else None)
        draft.account_id = account.id if account else None
        if account and account.address_id and not draft.address_text:
            draft.address_id = account.address_id
        if not draft.phone and customer.phones:
            draft.phone = customer.phones[0].phone
        if draft.account_no is None and account is not None:
            draft.account_no = account.account_no
    draft.open_tickets = [_ticket_ref(t) for t in await open_conversation_tickets(session, conversation.id)]
    return draft


def _ticket_ref(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.id, "number": ticket.number, "type": ticket.type,
            "type_label": TYPE_LABELS[TicketType(ticket.type)],
            "status_label": STATUS_LABELS[TicketStatus(ticket.status)], "title": ticket.title}
