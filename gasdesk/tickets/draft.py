"""A ticket draft filled from a conversation transcript, offline (the NLU's intents and slots).

The agent reviews and corrects it before submitting; nothing here creates anything."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.conversations.models import Conversation, Message, SenderType
from gasdesk.customers.addresses import parse_free_address
from gasdesk.customers.service import CustomerQuery, find_customers
from gasdesk.tickets.models import TYPE_LABELS, TicketType

# Most actionable first: the draft's type is the highest-ranked intent said anywhere in the chat.
INTENT_TO_TYPE: list[tuple[str, TicketType]] = [
    ("gas_leak", TicketType.gas_leak), ("no_gas", TicketType.no_gas), ("complaint", TicketType.complaint),
    ("appointment_book", TicketType.service_appointment), ("heating_not_warm", TicketType.repair),
    ("meter_guidance", TicketType.repair), ("praise", TicketType.praise),
    ("business_handling", TicketType.info_change), ("appointment_cancel", TicketType.service_appointment),
]
REPAIR_SERVICES = {"维修"}
IGNORED = {"greeting", "goodbye", "human_agent", "out_of_scope"}
ADDRESS_RE = re.compile(r"[\u4e00-\u9fa5]{2,12}(?:区|县)?[\u4e00-\u9fa5A-Za-z0-9]{1,20}?(?:小区|家园|花园|新村|公寓|社区|大院|里)"
                        r"[0-9零一二两三四五六七八九十]+(?:号楼|栋|幢|号|-)[0-9零一二两三四五六七八九十]+(?:单元|门|-)"
                        r"[0-9零一二两三四五六七八九十百]+(?:室|号)?")


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _preferred_time(slots: dict[str, str]) -> str | None:
    date, time_ = slots.get("date"), slots.get("time")
    if not date and not time_:
        return None
    if date:
        try:
            date = datetime.fromisoformat(date).strftime("%m月%d日")
        except ValueError:
            pass
    return " ".join(x for x in (date, time_) if x)


def draft_from_texts(texts: list[str], now: datetime | None = None) -> TicketDraft:
    """Pure extraction from the resident's messages (testable without a database)."""
    from gasdesk.bot.nlu import understand

    draft = TicketDraft()
    found: dict[str, str] = {}
    intents: list[str] = []
    for text in texts:
        result = understand(text, now=now)
        if result.intent not in IGNORED:
            intents.append(result.intent)
        for key, value in result.slots.items():
            found.setdefault(key, value)  # the first mention wins; later ones are usually repeats
        if "address" not in found:
            match = ADDRESS_RE.search(text)
            if match:
                found["address"] = match.group()
    draft.intents = list(dict.fromkeys(intents))
    for intent, ticket_type in INTENT_TO_TYPE:
        if intent in intents:
            draft.type = ticket_type.value
            break
    draft.service_type = found.get("service_type")
    if draft.type == TicketType.service_appointment.value and draft.service_type in REPAIR_SERVICES:
        draft.type = TicketType.repair.value
    if draft.type == TicketType.consultation.value and draft.service_type:
        draft.type = TicketType.repair.value if draft.service_type in REPAIR_SERVICES else \
            TicketType.service_appointment.value
    draft.type_label = TYPE_LABELS[TicketType(draft.type)]
    draft.phone = found.get("phone")
    draft.account_no = found.get("account_no")
    draft.address_text = found.get("address")
    if draft.address_text:
        parts = parse_free_address(draft.address_text)
        draft.district = parts.district or None if parts else None
    draft.preferred_time = _preferred_time(found)
    draft.description = "\n".join(t.strip() for t in texts if t.strip())[:2000]
    return draft


async def draft_from_conversation(session: AsyncSession, conversation: Conversation,
                                  now: datetime | None = None) -> TicketDraft:
    """Draft from the resident's side of the transcript, linked to the customer when one is known or found."""
    texts = list(await session.scalars(select(Message.text).where(
        Message.conversation_id == conversation.id, Message.sender_type == SenderType.resident.value,
        Message.content_type == "text").order_by(Message.seq)))
    draft = draft_from_texts([t for t in texts if t], now)
    customer = None
    if conversation.customer_id:
        from gasdesk.customers.service import access_customer

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
    return draft
