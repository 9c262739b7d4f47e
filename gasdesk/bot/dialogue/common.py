"""Small helpers shared by the extra flows: the area a resident talks about, contact details, and how a
ticket stands."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gasdesk.bot.base import BotContext
from gasdesk.bot.dialogue.identity import verified_customer
from gasdesk.bot.nlu.slots import extract_phone
from gasdesk.clock import format_local, to_local, utcnow
from gasdesk.customers import validation
from gasdesk.customers.addresses import normalize_district, parse_free_address
from gasdesk.customers.models import Address, Customer
from gasdesk.customers.service import address_parts
from gasdesk.tickets.models import STATUS_LABELS, Ticket, TicketStatus

DISTRICT_RE = re.compile(r"([\u4e00-\u9fa5]{1,6}?(?:新区|区|县))")
# Words that make a district-looking match meaningless ("小区", "社区", "城区" …).
NOT_A_DISTRICT = ("小区", "社区", "城区", "园区", "片区", "校区", "街区", "辖区", "地区", "市区", "郊区", "这个区", "哪个区")
RECOVERED_RE = re.compile(r"恢复了|有气了|来气了|好了|可以了|打着了|着火了|能用了|热了|变热|暖和了|解决了")


@dataclass
class Area:
    district: str | None = None
    community: str | None = None
    address_text: str | None = None


def district_in(text: str, known: list[str] | None = None) -> str | None:
    """A district the resident names: one of ``known`` (also without the 区/县 suffix), else a "XX区" word."""
    text = text or ""
    if known:
        hits = []
        for district in known:
            short = normalize_district(district)
            for needle in {district, short}:
                if needle and len(needle) >= 2 and (pos := text.rfind(needle)) >= 0:
                    hits.append((pos, district))
        if hits:
            return max(hits)[1]  # the last one mentioned wins ("朝阳区，不对，是和平区")
    found = [m for m in DISTRICT_RE.findall(text) if not any(m.endswith(w) for w in NOT_A_DISTRICT)]
    for word in reversed(found):
        # "我住和平区" → "和平区": strip leading verbs/pronouns the lazy match kept
        word = re.sub(r"^.*(住在|住|在|是|到|我家|我们)", "", word)
        if len(word) >= 2:
            return word
    return None


def area_in(text: str, slots: dict[str, str]) -> Area:
    """District/community/address the resident mentioned in one message."""
    address = slots.get("address")
    parts = parse_free_address(address or text)
    district = (parts.district if parts and parts.district else None) or district_in(text)
    community = parts.community if parts else None
    if community is None and address:
        tail = address.split(district, 1)[-1] if district else address
        community = re.split(r"\d|[一二三四五六七八九十]+(?:号楼|栋|幢)", tail)[0] or None
    return Area(district, community, address or (text.strip() if parts else None))


def customer_area(customer: Customer | None) -> Area:
    if customer is None or not customer.addresses:
        return Area()
    address = _main_address(customer)
    return Area(address.district, address.community, address_parts(address).display())


def _main_address(customer: Customer) -> Address:
    for account in customer.accounts:
        if account.address_id:
            for address in customer.addresses:
                if address.id == account.address_id:
                    return address
    return customer.addresses[0]


def customer_phone(customer: Customer | None) -> str | None:
    if customer is None or not customer.phones:
        return None
    primary = next((p for p in customer.phones if p.is_primary), customer.phones[0])
    return primary.phone


def phone_in(text: str, slots: dict[str, str]) -> str | None:
    return slots.get("phone") or extract_phone(text or "")


def mask_phone(phone: str | None) -> str:
    return validation.mask_phone(phone) if phone else ""


BAD_PHONE = "这个电话号码格式不对，请重新输入手机号码（11 位）或带区号的固定电话。"


def promise(deadline: datetime | None) -> str:
    """"我们会在 2 小时内（12-07 12:00 前）与您联系" from a ticket's respond-by time."""
    if deadline is None:
        return "我们会尽快与您联系"
    minutes = max(1, round((to_local(deadline) - to_local(utcnow())).total_seconds() / 60))
    span = f"{minutes // 60} 小时" if minutes >= 60 and minutes % 60 == 0 else (
        f"{minutes} 分钟" if minutes < 60 else f"{minutes / 60:.1f} 小时")
    return f"我们会在 {span}内（{format_local(deadline, '%m-%d %H:%M')} 前）与您联系"


def ticket_status_text(ticket: Ticket) -> str:
    """"已派单" / "新建，…前与您联系": where a ticket stands, for the resident."""
    status = STATUS_LABELS[TicketStatus(ticket.status)]
    if ticket.status == TicketStatus.new.value and ticket.respond_by is not None:
        return f"{status}，{promise(ticket.respond_by)}"
    return status


async def contact_customer(ctx: BotContext) -> Customer | None:
    """The customer linked to the conversation (phone-verified, or verified earlier in this chat)."""
    return await verified_customer(ctx)
