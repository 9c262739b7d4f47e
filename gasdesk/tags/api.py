"""Smart tags over REST: rules (admins), tags on customers and conversations (agents), the console's badges,
and the address lookup with its confirm/remove links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE, STAFF_DESK, Role
from gasdesk.conversations.service import access_conversation_for_user, access_conversation_to_accept
from gasdesk.customers.service import access_customer
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Id
from gasdesk.tags import service
from gasdesk.tags.schemas import (
    AddressLookup,
    AddressQuery,
    Badge,
    ConversationTags,
    LinkDecision,
    LinkOut,
    RuleIn,
    RuleOut,
    TagIn,
    TagOut,
)

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])
MAX_BADGES = 200


@router.get("/rules", response_model=list[RuleOut])
async def list_rules(session: DbSession, _: User = allow(*MANAGERS)) -> list[RuleOut]:
    """Every tag rule, enabled or not."""
    return [service.rule_out(r) for r in await service.list_rules(session)]


@router.post("/rules", response_model=RuleOut, status_code=201)
async def create_rule(body: RuleIn, session: DbSession, user: User = allow(Role.admin)) -> RuleOut:
    """A new rule (kind intent / keyword / address / outage_area, its tag, colour and target)."""
    return service.rule_out(await service.do_create_rule(session, user, body))


@router.put("/rules/{rule_id}", response_model=RuleOut)
async def update_rule(
    rule_id: Id, body: RuleIn, session: DbSession, user: User = allow(Role.admin)
) -> RuleOut:
    """Change a rule, or enable/disable it."""
    rule = await service.access_rule(session, rule_id)
    return service.rule_out(await service.do_update_rule(session, user, rule, body))


@router.get("/badges", response_model=list[Badge])
async def badges(
    session: DbSession,
    conversation_id: Annotated[list[Id], Query(max_length=MAX_BADGES)],
    _: User = allow(*STAFF_DESK),
) -> list[Badge]:
    """For the console's lists: 陌生号码 and the tags of each conversation (and of its customer)."""
    return await service.badges(session, conversation_id)


@router.get("/conversations/{conversation_id}", response_model=ConversationTags)
async def conversation_tags(
    conversation_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)
) -> ConversationTags:
    """The tags the console's customer panel shows for a conversation you may see."""
    conversation = await access_conversation_to_accept(session, user, conversation_id)
    return await service.conversation_tags(session, conversation)


@router.get("/customers/{customer_id}", response_model=list[TagOut])
async def customer_tags(customer_id: Id, session: DbSession, _: User = allow(*OFFICE)) -> list[TagOut]:
    """A customer's tags (rules' and agents')."""
    await access_customer(session, customer_id)
    return await service.customer_tags(session, customer_id)


@router.post("/assignments", response_model=TagOut, status_code=201)
async def add_tag(body: TagIn, session: DbSession, user: User = allow(*STAFF_DESK)) -> TagOut:
    """Put a tag on a customer or on a conversation of yours."""
    if (body.customer_id is None) == (body.conversation_id is None):
        raise InvalidInput("请指定 customer_id 或 conversation_id（二选一）", code="invalid_tag_target")
    if body.conversation_id is not None:
        conversation = await access_conversation_for_user(session, user, body.conversation_id)
        row = await service.do_add_tag(session, user, body.tag, conversation=conversation)
    else:
        customer = await access_customer(session, body.customer_id)  # type: ignore[arg-type]
        row = await service.do_add_tag(session, user, body.tag, customer=customer)
    return service.tag_out(row, await service.tag_colours(session))


@router.post("/assignments/{assignment_id}/remove", response_model=TagOut)
async def remove_tag(assignment_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)) -> TagOut:
    """Take a tag off (a conversation's only when the conversation is yours); rules do not put it back."""
    row = await service.access_assignment(session, assignment_id)
    if row.conversation_id is not None:
        await access_conversation_for_user(session, user, row.conversation_id)
    await service.do_remove_tag(session, user, row)
    return service.tag_out(row, await service.tag_colours(session))


@router.post("/address-lookup", response_model=AddressLookup)
async def address_lookup(
    body: AddressQuery, session: DbSession, user: User = allow(*STAFF_DESK)
) -> AddressLookup:
    """Every phone number and WeChat identity linked to an address, and the suggested ones. A POST: the
    address stays out of URLs and access logs."""
    return await service.lookup_address(session, user, body.district, body.text)


@router.post("/address-links/confirm", response_model=LinkOut)
async def confirm_link(body: LinkDecision, session: DbSession, user: User = allow(*STAFF_DESK)) -> LinkOut:
    """Confirm a suggested link (``ref`` from the lookup)."""
    address = await service.access_address(session, body.address_id)
    link = await service.do_confirm_link(session, user, address, body.ref)
    return LinkOut(id=link.id, address_id=link.address_id, kind=link.kind, status=link.status)


@router.post("/address-links/remove", response_model=LinkOut)
async def remove_link(body: LinkDecision, session: DbSession, user: User = allow(*STAFF_DESK)) -> LinkOut:
    """Dismiss a suggestion or withdraw a confirmed link (``ref`` from the lookup)."""
    address = await service.access_address(session, body.address_id)
    link = await service.do_remove_link(session, user, address, body.ref)
    return LinkOut(id=link.id, address_id=link.address_id, kind=link.kind, status=link.status)
