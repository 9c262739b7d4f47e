"""Customer REST API: search, 360, create/update (all audited)."""

from __future__ import annotations

from fastapi import APIRouter

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import OFFICE, STAFF_DESK, Role
from gasdesk.customers import service
from gasdesk.customers.billing import billing_system_for
from gasdesk.customers.schemas import (
    AccountIn,
    AccountOut,
    AddressIn,
    AddressOut,
    Customer360,
    CustomerIn,
    CustomerPatch,
    CustomerSearch,
    CustomerSummary,
)
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Id

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])



@router.post("/search", response_model=list[CustomerSummary])
async def search_customers(body: CustomerSearch, session: DbSession,
                           _: User = allow(*OFFICE)) -> list[CustomerSummary]:
    """Search by phone, 户号, exact name or address (normalised), or one free-text ``q``.
    A POST so that personal data stays out of URLs and access logs."""
    query = service.CustomerQuery(phone=body.phone, account_no=body.account_no, name=body.name,
                                  address=body.address, q=body.q)
    if not any([body.phone, body.account_no, body.name, body.address, body.q]):
        raise InvalidInput("请至少提供一个查询条件：phone、account_no、name、address 或 q", code="missing_query")
    return [service.summarize(c) for c in await service.find_customers(session, query, limit=body.limit)]


@router.post("", response_model=Customer360, status_code=201)
async def create_customer(body: CustomerIn, session: DbSession, user: User = allow(*STAFF_DESK)) -> Customer360:
    customer = await service.do_create_customer(session, Actor.of(user, "api"), body)
    return await service.customer_360(session, customer, billing_system_for(session))


@router.get("/{customer_id}", response_model=Customer360)
async def get_customer(customer_id: Id, session: DbSession, _: User = allow(*OFFICE)) -> Customer360:
    """Customer 360: accounts, addresses and the billing summary of each account."""
    customer = await service.access_customer(session, customer_id)
    return await service.customer_360(session, customer, billing_system_for(session))


@router.patch("/{customer_id}", response_model=Customer360)
async def update_customer(customer_id: Id, body: CustomerPatch, session: DbSession,
                          user: User = allow(*STAFF_DESK)) -> Customer360:
    customer = await service.access_customer(session, customer_id)
    await service.do_update_customer(session, Actor.of(user, "api"), customer, body)
    return await service.customer_360(session, customer, billing_system_for(session))


@router.post("/{customer_id}/addresses", response_model=AddressOut, status_code=201)
async def add_address(customer_id: Id, body: AddressIn, session: DbSession, user: User = allow(*STAFF_DESK)) -> AddressOut:
    customer = await service.access_customer(session, customer_id)
    address = await service.do_add_address(session, Actor.of(user, "api"), customer, body)
    return AddressOut(id=address.id, district=address.district, street=address.street or "",
                      community=address.community, building=address.building or "", unit=address.unit or "",
                      room=address.room or "", display=service.address_parts(address).display())


@router.post("/{customer_id}/accounts", response_model=AccountOut, status_code=201)
async def open_account(customer_id: Id, body: AccountIn, session: DbSession,
                       user: User = allow(Role.admin, Role.supervisor)) -> AccountOut:
    customer = await service.access_customer(session, customer_id)
    account = await service.do_open_account(session, Actor.of(user, "api"), customer, body)
    return service.account_out(account)
