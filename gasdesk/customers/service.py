"""Finding customers, the customer 360 view, and audited changes to customer data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gasdesk.appointments.models import (
    APPOINTMENT_STATUS_LABELS,
    Appointment,
    AppointmentSlot,
    ServiceOffering,
)
from gasdesk.audit.service import Actor, record_audit
from gasdesk.customers.addresses import AddressParts, normalize_community, parse_free_address
from gasdesk.customers.billing import BillingSystem
from gasdesk.customers.lookup_keys import account_no_key, address_key, id_card_key, name_key, phone_key
from gasdesk.customers.models import (
    ACCOUNT_STATUS_LABELS,
    ACCOUNT_TYPE_LABELS,
    METER_TYPE_LABELS,
    Account,
    AccountStatus,
    AccountType,
    Address,
    Customer,
    CustomerPhone,
    MeterType,
)
from gasdesk.customers.schemas import (
    AccountIn,
    AccountOut,
    AddressIn,
    AddressOut,
    BalanceOut,
    Customer360,
    CustomerAppointment,
    CustomerIn,
    CustomerPatch,
    CustomerSummary,
    CustomerTicket,
)
from gasdesk.customers.validation import (
    ACCOUNT_NO_RE,
    check_account_no,
    check_id_card,
    check_name,
    check_phone,
    mask_id_card,
    normalize_account_no,
    normalize_phone,
    to_halfwidth,
)
from gasdesk.errors import Conflict, GasdeskError, InvalidInput, NotFound
from gasdesk.event_types import AccountCreated, CustomerCreated, CustomerUpdated
from gasdesk.events import emit
from gasdesk.tickets.models import (
    PRIORITY_LABELS,
    STATUS_LABELS,
    TYPE_LABELS,
    Priority,
    Ticket,
    TicketStatus,
    TicketType,
)

MAX_TAGS = 20
# How many of a customer's tickets and appointments the 360 view lists (newest first).
RECENT_WORK = 10


def check_tags(tags: list[str]) -> list[str]:
    cleaned = []
    for tag in tags:
        tag = to_halfwidth(tag).strip()
        if not tag:
            continue
        if len(tag) > 20:
            raise InvalidInput(f"标签过长: {tag!r}（最多 20 字）", code="invalid_tag")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise InvalidInput(f"标签最多 {MAX_TAGS} 个", code="invalid_tag")
    return cleaned


_Member = TypeVar("_Member", bound=StrEnum)


def check_enum(value: str | None, enum: type[_Member], labels: Mapping[_Member, str], field: str) -> str | None:
    """Accept the code (``ic_card``) or its Chinese label (``IC卡表``)."""
    if value is None or value == "":
        return None
    for member in enum:
        if value == member.value or value == labels.get(member):
            return member.value
    options = "、".join(f"{labels[m]}({m.value})" for m in enum)
    raise InvalidInput(f"{field} 取值无效: {value!r}；可选: {options}", code=f"invalid_{field}")


def address_parts(address: Address) -> AddressParts:
    return AddressParts(address.district, address.community, address.building or "", address.unit or "",
                        address.room or "", address.street or "")


def customer_snapshot(customer: Customer) -> dict[str, object]:
    """What the audit log records of a customer (encrypted at rest inside the audit row)."""
    return {
        "name": customer.name,
        "phones": [p.phone for p in customer.phones],
        "id_card": customer.id_card,
        "tags": list(customer.tags or []),
    }


def account_snapshot(account: Account) -> dict[str, object]:
    return {
        "account_no": account.account_no, "customer_id": account.customer_id, "address_id": account.address_id,
        "account_type": account.account_type, "has_gas": account.has_gas, "has_heating": account.has_heating,
        "status": account.status, "meter_type": account.meter_type, "meter_serial": account.meter_serial,
        "heating_area_m2": None if account.heating_area_m2 is None else str(account.heating_area_m2),
    }


def _with_details(query: Select) -> Select:
    return query.options(
        selectinload(Customer.phones),
        selectinload(Customer.addresses),
        selectinload(Customer.accounts).selectinload(Account.address),
    )


# ---------------------------------------------------------------- search


@dataclass(frozen=True)
class CustomerQuery:
    phone: str | None = None
    account_no: str | None = None
    name: str | None = None
    address: str | None = None
    q: str | None = None  # free text: detected as phone, 户号, address or name

    def resolved(self) -> CustomerQuery:
        if not self.q:
            return self
        text = to_halfwidth(self.q).strip()
        digits = re.sub(r"[\s\-()+]", "", text)
        if digits.isdigit():
            if text.startswith("+") or re.fullmatch(r"(86)?1[3-9]\d{9}", digits) or digits.startswith("0"):
                return CustomerQuery(phone=normalize_phone(digits if not text.startswith("+") else "+" + digits))
            if ACCOUNT_NO_RE.match(digits):
                return CustomerQuery(account_no=digits, phone=digits)
            return CustomerQuery(phone=digits)
        if re.search(r"区|县|小区|号楼|栋|单元|室|花园|家园|\d", text):
            return CustomerQuery(address=text)
        return CustomerQuery(name=text)


async def _address_keys(session: AsyncSession, parts: AddressParts) -> list[str]:
    """Blind-index keys a typed address may match. Agents and residents often leave out the district
    ("幸福里小区3号楼2单元501"), but the key includes it: district and community are stored in clear, so the
    districts that have a community of that name complete the address (one key each)."""
    if parts.district:
        return [address_key(parts)]
    community = normalize_community(parts.community)
    if not community:
        return []
    rows = await session.execute(select(Address.district, Address.community).distinct()
                                 .where(Address.community.contains(community, autoescape=True)))
    keys = {address_key(replace(parts, district=district))
            for district, stored in rows if normalize_community(stored) == community}
    return sorted(keys)


async def find_customers(session: AsyncSession, query: CustomerQuery, *, limit: int = 20) -> list[Customer]:
    """Exact-key search through blind indexes (the database never sees plaintext)."""
    query = query.resolved()
    ids: list[int] = []

    async def add(stmt: Select) -> None:
        for cid in await session.scalars(stmt.limit(limit)):
            if cid not in ids:
                ids.append(cid)

    if query.phone:
        await add(select(CustomerPhone.customer_id).where(CustomerPhone.phone_index == phone_key(normalize_phone(query.phone))))
    if query.account_no:
        await add(select(Account.customer_id).where(
            Account.account_no_index == account_no_key(normalize_account_no(query.account_no))))
    if query.name:
        await add(select(Customer.id).where(Customer.name_index == name_key(to_halfwidth(query.name).strip())))
    if query.address:
        parts = parse_free_address(query.address)
        if parts is not None:
            keys = await _address_keys(session, parts)
            await add(select(Address.customer_id).where(Address.normalized_index.in_(keys)))
        else:
            # Area-level fallback: community names are stored plain, so partial matches work there.
            needle = normalize_community(query.address)
            if needle:
                await add(select(Address.customer_id).where(Address.community.contains(needle, autoescape=True)))
    if not ids:
        return []
    rows = await session.scalars(_with_details(select(Customer).where(Customer.id.in_(ids[:limit]))))
    by_id = {c.id: c for c in rows}
    return [by_id[i] for i in ids[:limit] if i in by_id]


async def access_customer(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.scalar(_with_details(select(Customer).where(Customer.id == customer_id)))
    if customer is None:
        raise NotFound("客户不存在", code="customer_not_found")
    return customer


def summarize(customer: Customer) -> CustomerSummary:
    return CustomerSummary(
        id=customer.id,
        name=customer.name,
        phones=[p.phone for p in customer.phones],
        tags=list(customer.tags or []),
        account_nos=[a.account_no for a in customer.accounts],
        addresses=[address_parts(a).display() for a in customer.addresses],
    )


def account_out(account: Account) -> AccountOut:
    return AccountOut(
        id=account.id,
        account_no=account.account_no,
        account_type=account.account_type,
        account_type_label=ACCOUNT_TYPE_LABELS.get(AccountType(account.account_type), account.account_type),
        has_gas=account.has_gas,
        has_heating=account.has_heating,
        status=account.status,
        status_label=ACCOUNT_STATUS_LABELS.get(AccountStatus(account.status), account.status),
        meter_type=account.meter_type,
        meter_type_label=METER_TYPE_LABELS.get(MeterType(account.meter_type)) if account.meter_type else None,
        meter_serial=account.meter_serial,
        heating_area_m2=account.heating_area_m2,
        address=address_parts(account.address).display() if account.address else None,
    )


async def recent_tickets(session: AsyncSession, customer_id: int, limit: int = RECENT_WORK) -> list[CustomerTicket]:
    """The customer's latest tickets, whichever channel or desk created them (来电与工单关联)."""
    rows = await session.scalars(select(Ticket).where(Ticket.customer_id == customer_id)
                                 .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))
    return [
        CustomerTicket(
            id=t.id, number=t.number, type=t.type, type_label=TYPE_LABELS.get(TicketType(t.type), t.type),
            status=t.status, status_label=STATUS_LABELS.get(TicketStatus(t.status), t.status),
            priority=t.priority, priority_label=PRIORITY_LABELS.get(Priority(t.priority), t.priority),
            title=t.title, created_at=t.created_at, conversation_id=t.conversation_id, link=f"/tickets/{t.id}",
        )
        for t in rows
    ]


async def recent_appointments(session: AsyncSession, customer_id: int,
                              limit: int = RECENT_WORK) -> list[CustomerAppointment]:
    """The customer's latest appointments with service name and time slot (latest slot first)."""
    rows = await session.execute(
        select(Appointment, AppointmentSlot, ServiceOffering.name, Ticket.number)
        .join(AppointmentSlot, AppointmentSlot.id == Appointment.slot_id)
        .join(Ticket, Ticket.id == Appointment.ticket_id)
        .outerjoin(ServiceOffering, ServiceOffering.code == Appointment.service_code)
        .where(Appointment.customer_id == customer_id)
        .order_by(AppointmentSlot.start.desc(), Appointment.id.desc()).limit(limit)
    )
    return [
        CustomerAppointment(
            id=a.id, ticket_id=a.ticket_id, ticket_number=number, service_code=a.service_code,
            service_name=service_name or a.service_code, slot_start=slot.start, slot_end=slot.end, status=a.status,
            status_label=APPOINTMENT_STATUS_LABELS.get(a.status, a.status), link=f"/tickets/{a.ticket_id}",
        )
        for a, slot, service_name, number in rows
    ]


async def customer_360(session: AsyncSession, customer: Customer, billing: BillingSystem) -> Customer360:
    """Everything an agent needs about one customer: contact data, accounts with billing, and the recent
    tickets and appointments. Billing failures degrade to a message, not an error."""
    balances = []
    for account in customer.accounts:
        try:
            info = await billing.summary(account.account_no)
            balances.append(BalanceOut(**info.to_dict()))
        except GasdeskError as exc:
            balances.append(BalanceOut(account_no=account.account_no, error=exc.message))
    return Customer360(
        id=customer.id,
        name=customer.name,
        phones=[p.phone for p in customer.phones],
        id_card_masked=mask_id_card(customer.id_card) if customer.id_card else None,
        tags=list(customer.tags or []),
        addresses=[
            AddressOut(id=a.id, district=a.district, street=a.street or "", community=a.community,
                       building=a.building or "", unit=a.unit or "", room=a.room or "",
                       display=address_parts(a).display())
            for a in customer.addresses
        ],
        accounts=[account_out(a) for a in customer.accounts],
        balances=balances,
        tickets=await recent_tickets(session, customer.id),
        appointments=await recent_appointments(session, customer.id),
    )


# ---------------------------------------------------------------- changes


def check_address(data: AddressIn) -> AddressParts:
    parts = AddressParts(
        district=to_halfwidth(data.district).strip(), community=to_halfwidth(data.community).strip(),
        building=data.building.strip(), unit=data.unit.strip(), room=data.room.strip(),
        street=to_halfwidth(data.street).strip(),
    )
    if not parts.district or not parts.community:
        raise InvalidInput("地址需要区和小区", code="invalid_address")
    return parts


def build_address(parts: AddressParts) -> Address:
    return Address(
        district=parts.district, street=parts.street, community=parts.community,
        building=parts.building or None, unit=parts.unit or None, room=parts.room or None,
        normalized_index=address_key(parts),
    )


async def _check_id_card_free(session: AsyncSession, id_card: str, customer_id: int | None) -> None:
    owner = await session.scalar(select(Customer.id).where(Customer.id_card_index == id_card_key(id_card)))
    if owner is not None and owner != customer_id:
        raise Conflict("该身份证号已登记在另一位客户名下", code="id_card_taken")


def _set_phones(customer: Customer, phones: list[str]) -> None:
    wanted = []
    for raw in phones:
        phone = check_phone(raw)
        if phone not in wanted:
            wanted.append(phone)
    existing = {p.phone: p for p in customer.phones}
    customer.phones = [
        existing.get(phone) or CustomerPhone(phone=phone, phone_index=phone_key(phone)) for phone in wanted
    ]
    for i, p in enumerate(customer.phones):
        p.is_primary = i == 0


async def do_create_customer(session: AsyncSession, actor: Actor, data: CustomerIn) -> Customer:
    """Validate and store a new customer (and optional address); audited, emits customer.created."""
    name = check_name(data.name)
    id_card = check_id_card(data.id_card) if data.id_card else None
    if id_card:
        await _check_id_card_free(session, id_card, None)
    customer = Customer(
        name=name, name_index=name_key(name), id_card=id_card,
        id_card_index=id_card_key(id_card) if id_card else None, tags=check_tags(data.tags),
        phones=[], addresses=[], accounts=[],
    )
    _set_phones(customer, data.phones)
    if data.address is not None:
        customer.addresses.append(build_address(check_address(data.address)))
    session.add(customer)
    await session.flush()
    record_audit(session, actor, "customer.create", "customer", customer.id, after=customer_snapshot(customer))
    emit(session, CustomerCreated(customer_id=customer.id))
    return customer


async def do_update_customer(session: AsyncSession, actor: Actor, customer: Customer, patch: CustomerPatch) -> Customer:
    """Apply a partial update; audited with before/after."""
    before = customer_snapshot(customer)
    if patch.name is not None:
        customer.name = check_name(patch.name)
        customer.name_index = name_key(customer.name)
    if patch.phones is not None:
        _set_phones(customer, patch.phones)
    if "id_card" in patch.model_fields_set:
        if patch.id_card:
            id_card = check_id_card(patch.id_card)
            await _check_id_card_free(session, id_card, customer.id)
            customer.id_card, customer.id_card_index = id_card, id_card_key(id_card)
        else:
            customer.id_card, customer.id_card_index = None, None
    if patch.tags is not None:
        customer.tags = check_tags(patch.tags)
    await session.flush()
    after = customer_snapshot(customer)
    if after != before:
        record_audit(session, actor, "customer.update", "customer", customer.id, before=before, after=after)
        emit(session, CustomerUpdated(customer_id=customer.id))
    return customer


async def do_add_address(session: AsyncSession, actor: Actor, customer: Customer, data: AddressIn) -> Address:
    parts = check_address(data)
    key = address_key(parts)
    for existing in customer.addresses:
        if existing.normalized_index == key:
            return existing  # the same home typed differently: keep one
    address = build_address(parts)
    customer.addresses.append(address)
    await session.flush()
    record_audit(session, actor, "customer.address_add", "customer", customer.id,
                 after={"address": parts.display()})
    emit(session, CustomerUpdated(customer_id=customer.id))
    return address


async def do_open_account(session: AsyncSession, actor: Actor, customer: Customer, data: AccountIn) -> Account:
    """Register a 户号 for a customer; the 户号 must be unique."""
    account_no = check_account_no(data.account_no)
    if await session.scalar(select(Account.id).where(Account.account_no_index == account_no_key(account_no))):
        raise Conflict(f"户号 {account_no} 已存在", code="account_no_taken")
    if data.address_id is not None and data.address_id not in {a.id for a in customer.addresses}:
        raise InvalidInput("地址不属于该客户", code="invalid_address")
    if not (data.has_gas or data.has_heating):
        raise InvalidInput("账户至少开通燃气或热力一项业务", code="invalid_services")
    account = Account(
        account_no=account_no, account_no_index=account_no_key(account_no), customer_id=customer.id,
        address_id=data.address_id,
        account_type=check_enum(data.account_type, AccountType, ACCOUNT_TYPE_LABELS, "account_type"),
        has_gas=data.has_gas, has_heating=data.has_heating,
        status=check_enum(data.status, AccountStatus, ACCOUNT_STATUS_LABELS, "status"),
        meter_type=check_enum(data.meter_type, MeterType, METER_TYPE_LABELS, "meter_type"),
        meter_serial=data.meter_serial, heating_area_m2=data.heating_area_m2,
    )
    customer.accounts.append(account)
    await session.flush()
    record_audit(session, actor, "account.create", "account", account.id, after=account_snapshot(account))
    emit(session, AccountCreated(account_id=account.id, customer_id=customer.id))
    return account
