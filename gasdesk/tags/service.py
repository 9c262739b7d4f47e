"""Smart tags and data links: rules admins edit, tags put on customers and conversations when a conversation
closes (or by agents), strangers' numbers marked when they first write or call, and the address lookup with
the links agents confirm or remove.

When tags are applied: a conversation's close queues the job ``tags.apply`` in the closing transaction (an
outbox row, only when some rule is enabled), and the job evaluates the rules in a transaction of its own. The
close stays as fast as before (the rules decrypt the resident's messages), a failing rule is retried by the job
queue instead of failing the close, and nothing is tagged for a close that rolled back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.clock import utcnow
from gasdesk.conversations.models import (
    Channel,
    ContentType,
    Conversation,
    ConversationState,
    Message,
    SenderType,
)
from gasdesk.customers.addresses import (
    AddressParts,
    normalize_community,
    normalize_district,
    parse_free_address,
)
from gasdesk.customers.contacts import contact_of_visitor
from gasdesk.customers.lookup_keys import address_key, phone_key
from gasdesk.customers.models import Address, ContactIdentity, ContactKind, Customer, CustomerPhone
from gasdesk.customers.validation import mask_phone, normalize_phone, to_halfwidth
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.event_types import AddressLinkChanged, TagsChanged
from gasdesk.events import emit
from gasdesk.intent_corrections.service import INTENT_NAMES
from gasdesk.jobs.queue import enqueue
from gasdesk.outages.models import OutageNotice, OutageStatus
from gasdesk.outages.service import area_matches
from gasdesk.tags.models import (
    RULE_KIND_LABELS,
    RULE_TARGET_LABELS,
    STRANGER_TAG,
    AddressLink,
    LinkStatus,
    RuleKind,
    RuleTarget,
    TagAssignment,
    TagRule,
    TagSource,
)
from gasdesk.tags.rules import (
    DEFAULT_COLOUR,
    Facts,
    Place,
    RuleSpec,
    check_colour,
    check_params,
    check_tag,
    check_target,
    matching_rules,
)
from gasdesk.tags.schemas import (
    AddressLookup,
    AddressRow,
    Badge,
    ConversationTags,
    LinkEntry,
    RuleIn,
    RuleOut,
    TagOut,
)
from gasdesk.telephony.models import Call
from gasdesk.tickets.models import Ticket

JOB = "tags.apply"
RULES_ACTOR = Actor.system("smart-tags", "job")
STRANGER_ACTOR = Actor.system("smart-tags", "channel")
STRANGER_COLOUR = "#d32f2f"
SOURCE_LABELS = {TagSource.rule.value: "规则", TagSource.manual.value: "人工", TagSource.system.value: "系统"}
# Channels on which a resident is a phone number or a WeChat identity (web chat visitors are neither).
REMOTE_CHANNELS = (Channel.wechat.value, Channel.sms.value, Channel.voice.value)
# An address lookup shows at most this many homes and reads at most this many of their conversations.
MAX_ADDRESSES = 200
MAX_CONVERSATIONS = 1000
KIND_LABELS = {"phone": "电话", "wechat": "微信"}
LINK_STATUS_LABELS = {"linked": "已关联", "confirmed": "已确认关联", "suggested": "建议关联"}


# ---------------------------------------------------------------- rules (admins)


def known_intents() -> dict[str, str]:
    """Intents a rule may name, with their Chinese names (the bot's intents, as the console's 纠正意图 lists)."""
    return dict(INTENT_NAMES)


def rule_summary(rule: TagRule) -> str:
    """The rule's condition in words (lists, the admin page)."""
    p = rule.params or {}
    if rule.kind == RuleKind.intent:
        return "机器人识别到意图：" + "、".join(INTENT_NAMES.get(i, i) for i in p.get("intents", []))
    if rule.kind == RuleKind.keyword:
        return "居民消息含关键词：" + "、".join(p.get("keywords", []))
    if rule.kind == RuleKind.address:
        where = [p["district"]] if p.get("district") else []
        if p.get("communities"):
            where.append("、".join(p["communities"]))
        return "地址位于：" + " ".join(where)
    return f"近 {p.get('days', 90)} 天所在区域停气公告 ≥ {p.get('min_count', 3)} 次"


def rule_out(rule: TagRule) -> RuleOut:
    kind, target = RuleKind(rule.kind), RuleTarget(rule.target)
    return RuleOut(
        id=rule.id,
        tag=rule.tag,
        colour=rule.colour,
        kind=rule.kind,
        kind_label=RULE_KIND_LABELS[kind],
        target=rule.target,
        target_label=RULE_TARGET_LABELS[target],
        params=dict(rule.params or {}),
        summary=rule_summary(rule),
        enabled=rule.enabled,
        updated_at=rule.updated_at,
    )


async def list_rules(session: AsyncSession, *, enabled_only: bool = False) -> list[TagRule]:
    query = select(TagRule).order_by(TagRule.id)
    if enabled_only:
        query = query.where(TagRule.enabled.is_(True))
    return list(await session.scalars(query))


async def access_rule(session: AsyncSession, rule_id: int) -> TagRule:
    rule = await session.get(TagRule, rule_id)
    if rule is None:
        raise NotFound("标签规则不存在", code="tag_rule_not_found")
    return rule


def check_rule(data: RuleIn) -> dict[str, Any]:
    """The row's fields from what an admin typed; ``InvalidInput`` for anything a rule cannot use."""
    kind, params = check_params(data.kind, data.params, INTENT_NAMES)
    return {
        "tag": check_tag(data.tag),
        "colour": check_colour(data.colour),
        "kind": kind.value,
        "target": check_target(data.target, kind).value,
        "params": params,
        "enabled": bool(data.enabled),
    }


def _rule_snapshot(rule: TagRule) -> dict[str, Any]:
    return {
        "tag": rule.tag,
        "colour": rule.colour,
        "kind": rule.kind,
        "target": rule.target,
        "params": dict(rule.params or {}),
        "enabled": rule.enabled,
    }


async def do_create_rule(session: AsyncSession, user: User, data: RuleIn) -> TagRule:
    """A new tag rule; audited (``tag_rule.create``)."""
    rule = TagRule(**check_rule(data), created_by=user.id)
    session.add(rule)
    await session.flush()
    record_audit(session, Actor.of(user), "tag_rule.create", "tag_rule", rule.id, after=_rule_snapshot(rule))
    return rule


async def do_update_rule(session: AsyncSession, user: User, rule: TagRule, data: RuleIn) -> TagRule:
    """Change a rule (its condition, tag, colour, target or enabled flag); audited with before/after. Tags the
    rule already put on stay (a rule decides about conversations closing from now on)."""
    before = _rule_snapshot(rule)
    for name, value in check_rule(data).items():
        setattr(rule, name, value)
    await session.flush()
    after = _rule_snapshot(rule)
    if after != before:
        record_audit(
            session, Actor.of(user), "tag_rule.update", "tag_rule", rule.id, before=before, after=after
        )
    return rule


# ---------------------------------------------------------------- applying rules when a conversation closes


async def queue_rules(session: AsyncSession, conversation: Conversation) -> None:
    """``on_conversation_closed`` hook: queue the rules' evaluation (the job ``tags.apply``) in the closing
    transaction, when some rule is enabled."""
    if await session.scalar(select(TagRule.id).where(TagRule.enabled.is_(True)).limit(1)) is not None:
        enqueue(session, JOB, {"conversation_id": conversation.id})


async def apply_rules_job(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The job ``tags.apply``."""
    await do_apply_rules(session, int(payload["conversation_id"]))


async def _places(session: AsyncSession, conversation: Conversation) -> list[tuple[str, str]]:
    """(district, community) of the homes the conversation concerns: its customer's addresses and the
    addresses of tickets made from it."""
    places: list[tuple[str, str]] = []
    if conversation.customer_id is not None:
        places += [
            (d, c)
            for d, c in await session.execute(
                select(Address.district, Address.community)
                .where(Address.customer_id == conversation.customer_id)
                .order_by(Address.id)
            )
        ]
    rows = await session.execute(
        select(Address.district, Address.community, Ticket.district)
        .select_from(Ticket)
        .outerjoin(Address, Address.id == Ticket.address_id)
        .where(Ticket.conversation_id == conversation.id)
    )
    for district, community, ticket_district in rows:
        if district:
            places.append((district, community or ""))
        elif ticket_district:
            places.append((ticket_district, ""))
    return list(dict.fromkeys(places))


async def _outage_starts(
    session: AsyncSession, places: Sequence[tuple[str, str]], days: int, now: datetime
) -> dict[tuple[str, str], tuple[datetime, ...]]:
    """For each place, the start times of the notices (published at some time, not drafts) covering it that
    started in the last ``days`` days."""
    notices = list(
        await session.scalars(
            select(OutageNotice).where(
                OutageNotice.status != OutageStatus.draft.value,
                OutageNotice.starts_at >= now - timedelta(days=days),
                OutageNotice.starts_at <= now,
            )
        )
    )
    return {
        (district, community): tuple(
            n.starts_at
            for n in notices
            if any(area_matches(a, district=district, community=community or None) for a in n.areas)
        )
        for district, community in places
    }


async def conversation_facts(
    session: AsyncSession,
    conversation: Conversation,
    *,
    rules: Sequence[TagRule] = (),
    now: datetime | None = None,
) -> Facts:
    """What the rules look at: the intents the bot read, the resident's text, the homes concerned and, when an
    outage-area rule is among ``rules``, the outage notices over those homes."""
    now = now or utcnow()
    messages = list(
        await session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation.id, Message.sender_type == SenderType.resident.value
            )
            .order_by(Message.seq)
        )
    )
    intents = {
        str(turn["intent"])
        for m in messages
        if isinstance(turn := (m.channel_meta or {}).get("bot_turn"), dict) and turn.get("intent")
    }
    if isinstance(conversation.handoff_summary, dict) and conversation.handoff_summary.get("intent"):
        intents.add(str(conversation.handoff_summary["intent"]))
    texts = tuple(m.text for m in messages if m.content_type == ContentType.text.value and m.text)
    places = await _places(session, conversation)
    outage_days = [int(r.params.get("days", 90)) for r in rules if r.kind == RuleKind.outage_area]
    starts = await _outage_starts(session, places, max(outage_days), now) if outage_days and places else {}
    return Facts(
        intents=frozenset(intents),
        texts=texts,
        now=now,
        places=tuple(Place(d, c, starts.get((d, c), ())) for d, c in places),
    )


def _spec(rule: TagRule) -> RuleSpec:
    return RuleSpec(
        id=rule.id,
        tag=rule.tag,
        kind=RuleKind(rule.kind),
        target=RuleTarget(rule.target),
        params=dict(rule.params or {}),
    )


async def _assignment(
    session: AsyncSession,
    tag: str,
    *,
    customer_id: int | None = None,
    conversation_id: int | None = None,
    visitor_id: str | None = None,
) -> TagAssignment | None:
    """The row of ``tag`` on that one target, removed or not."""
    query = select(TagAssignment).where(TagAssignment.tag == tag)
    if customer_id is not None:
        query = query.where(TagAssignment.customer_id == customer_id)
    elif conversation_id is not None:
        query = query.where(TagAssignment.conversation_id == conversation_id)
    else:
        query = query.where(TagAssignment.visitor_id == visitor_id)
    return await session.scalar(query.order_by(TagAssignment.id).limit(1))


async def do_apply_rules(
    session: AsyncSession, conversation_id: int, *, now: datetime | None = None
) -> list[TagAssignment]:
    """Put the tags of every enabled rule that matches a closed conversation on it and/or its customer. A tag
    already there, or taken off by an agent, is left as it is. One audit row (``tag.auto``) for what was added."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or conversation.state != ConversationState.closed.value:
        return []
    rules = await list_rules(session, enabled_only=True)
    if not rules:
        return []
    facts = await conversation_facts(session, conversation, rules=rules, now=now)
    added: list[TagAssignment] = []
    for rule in matching_rules([_spec(r) for r in rules], facts):
        targets: list[dict[str, int]] = []
        if rule.target in (RuleTarget.customer, RuleTarget.both) and conversation.customer_id is not None:
            targets.append({"customer_id": conversation.customer_id})
        if rule.target in (RuleTarget.conversation, RuleTarget.both):
            targets.append({"conversation_id": conversation.id})
        for target in targets:
            found = await _assignment(
                session,
                rule.tag,
                customer_id=target.get("customer_id"),
                conversation_id=target.get("conversation_id"),
            )
            if found is not None:
                continue
            if any(
                a.tag == rule.tag
                and a.customer_id == target.get("customer_id")
                and a.conversation_id == target.get("conversation_id")
                for a in added
            ):
                continue  # two rules with one tag
            row = TagAssignment(
                tag=rule.tag, source=TagSource.rule.value, rule_id=rule.id, created_at=utcnow(), **target
            )
            session.add(row)
            added.append(row)
    if added:
        await session.flush()
        record_audit(
            session,
            RULES_ACTOR,
            "tag.auto",
            "conversation",
            conversation.id,
            after={
                "customer_id": conversation.customer_id,
                "tags": [
                    {
                        "tag": a.tag,
                        "rule_id": a.rule_id,
                        "on": "customer" if a.customer_id else "conversation",
                    }
                    for a in added
                ],
            },
        )
        emit(session, TagsChanged(customer_id=conversation.customer_id, conversation_id=conversation.id))
    return added


# ---------------------------------------------------------------- strangers' numbers


async def mark_stranger(session: AsyncSession, conversation: Conversation) -> TagAssignment | None:
    """``on_conversation_started`` hook: a phone number or WeChat identity that writes or calls for the first
    time (no earlier conversation) with no customer is marked 陌生号码 (a tag on its identity, audited)."""
    if conversation.channel not in REMOTE_CHANNELS or conversation.customer_id is not None:
        return None
    visitor_id = conversation.visitor_id or ""
    if not visitor_id.startswith(("sms:", "wechat:", "voice:")) or visitor_id.startswith("voice:anonymous:"):
        return None  # a withheld number is nobody to recognise next time
    contact = await contact_of_visitor(session, visitor_id)
    if contact is not None and contact.customer_id is not None:
        return None
    earlier = await session.scalar(
        select(Conversation.id)
        .where(Conversation.visitor_id == visitor_id, Conversation.id != conversation.id)
        .limit(1)
    )
    if earlier is not None or await _assignment(session, STRANGER_TAG, visitor_id=visitor_id) is not None:
        return None
    row = TagAssignment(
        tag=STRANGER_TAG, visitor_id=visitor_id, source=TagSource.system.value, created_at=utcnow()
    )
    session.add(row)
    await session.flush()
    record_audit(
        session,
        STRANGER_ACTOR,
        "tag.stranger",
        "conversation",
        conversation.id,
        after={"tag": STRANGER_TAG, "channel": conversation.channel, "assignment_id": row.id},
    )
    emit(session, TagsChanged(customer_id=None, conversation_id=conversation.id))
    return row


async def strangers_among(session: AsyncSession, conversations: Sequence[Conversation]) -> set[int]:
    """Ids of the conversations whose resident is still a stranger: marked 陌生号码 (mark not removed), and
    neither the conversation nor the identity has a customer since."""
    candidates = [c for c in conversations if c.customer_id is None and c.visitor_id]
    if not candidates:
        return set()
    marked = set(
        await session.scalars(
            select(TagAssignment.visitor_id).where(
                TagAssignment.tag == STRANGER_TAG,
                TagAssignment.removed_at.is_(None),
                TagAssignment.visitor_id.in_({c.visitor_id for c in candidates}),
            )
        )
    )
    contact_ids = {
        int(c.visitor_id.partition(":")[2])
        for c in candidates
        if c.visitor_id in marked
        and c.visitor_id.partition(":")[0] in (ContactKind.sms.value, ContactKind.wechat.value)
        and c.visitor_id.partition(":")[2].isdigit()
    }
    bound = (
        {
            f"{kind}:{cid}"
            for cid, kind in await session.execute(
                select(ContactIdentity.id, ContactIdentity.kind).where(
                    ContactIdentity.id.in_(contact_ids), ContactIdentity.customer_id.is_not(None)
                )
            )
        }
        if contact_ids
        else set()
    )
    return {c.id for c in candidates if c.visitor_id in marked and c.visitor_id not in bound}


# ---------------------------------------------------------------- reading tags


async def tag_colours(session: AsyncSession) -> dict[str, str]:
    """Each tag name's colour: the first enabled rule using it, else the first rule; 陌生号码 is red."""
    colours: dict[str, str] = {}
    for tag, colour, _ in await session.execute(
        select(TagRule.tag, TagRule.colour, TagRule.enabled).order_by(TagRule.enabled.desc(), TagRule.id)
    ):
        colours.setdefault(tag, colour)
    colours.setdefault(STRANGER_TAG, STRANGER_COLOUR)
    return colours


def tag_out(row: TagAssignment, colours: dict[str, str]) -> TagOut:
    return TagOut(
        id=row.id,
        tag=row.tag,
        colour=colours.get(row.tag, DEFAULT_COLOUR),
        source=row.source,
        source_label=SOURCE_LABELS.get(row.source, row.source),
        created_at=row.created_at,
    )


async def _active(session: AsyncSession, *conditions: Any) -> list[TagAssignment]:
    return list(
        await session.scalars(
            select(TagAssignment)
            .where(TagAssignment.removed_at.is_(None), *conditions)
            .order_by(TagAssignment.id)
        )
    )


async def customer_tags(session: AsyncSession, customer_id: int) -> list[TagOut]:
    colours = await tag_colours(session)
    return [tag_out(r, colours) for r in await _active(session, TagAssignment.customer_id == customer_id)]


async def conversation_tags(session: AsyncSession, conversation: Conversation) -> ConversationTags:
    """The console's customer panel: the conversation's tags, its customer's and whether it is a stranger."""
    colours = await tag_colours(session)
    own = await _active(session, TagAssignment.conversation_id == conversation.id)
    of_customer = (
        await _active(session, TagAssignment.customer_id == conversation.customer_id)
        if conversation.customer_id is not None
        else []
    )
    known = sorted({t for t in colours if t != STRANGER_TAG})
    return ConversationTags(
        conversation_id=conversation.id,
        stranger=conversation.id in await strangers_among(session, [conversation]),
        conversation_tags=[tag_out(r, colours) for r in own],
        customer_tags=[tag_out(r, colours) for r in of_customer],
        known_tags=known,
    )


async def badges(session: AsyncSession, conversation_ids: Iterable[int]) -> list[Badge]:
    """For the console's lists: per conversation, the stranger flag and its (and its customer's) tags."""
    ids = list(dict.fromkeys(conversation_ids))
    if not ids:
        return []
    conversations = list(await session.scalars(select(Conversation).where(Conversation.id.in_(ids))))
    customer_ids = {c.customer_id for c in conversations if c.customer_id is not None}
    rows = await _active(
        session, or_(TagAssignment.conversation_id.in_(ids), TagAssignment.customer_id.in_(customer_ids))
    )
    colours = await tag_colours(session)
    strangers = await strangers_among(session, conversations)
    out = []
    for c in sorted(conversations, key=lambda c: ids.index(c.id)):
        tags = [
            tag_out(r, colours)
            for r in rows
            if r.conversation_id == c.id or (c.customer_id is not None and r.customer_id == c.customer_id)
        ]
        out.append(Badge(conversation_id=c.id, stranger=c.id in strangers, tags=tags))
    return out


# ---------------------------------------------------------------- agents' tags


async def do_add_tag(
    session: AsyncSession,
    user: User,
    tag: str,
    *,
    customer: Customer | None = None,
    conversation: Conversation | None = None,
) -> TagAssignment:
    """An agent puts a tag on a customer or a conversation (a tag taken off before comes back); audited
    (``tag.add``)."""
    if (customer is None) == (conversation is None):
        raise InvalidInput("请指定客户或会话（二选一）", code="invalid_tag_target")
    tag = check_tag(tag)
    target = {"customer_id": customer.id} if customer is not None else {"conversation_id": conversation.id}  # type: ignore[union-attr]
    row = await _assignment(session, tag, **target)
    if row is not None and row.removed_at is None:
        return row
    if row is None:
        row = TagAssignment(
            tag=tag, source=TagSource.manual.value, created_by=user.id, created_at=utcnow(), **target
        )
        session.add(row)
    else:
        row.removed_at, row.removed_by = None, None
        row.source, row.created_by, row.created_at = TagSource.manual.value, user.id, utcnow()
    await session.flush()
    entity, entity_id = next(iter(target.items()))
    record_audit(
        session,
        Actor.of(user),
        "tag.add",
        entity.removesuffix("_id"),
        entity_id,
        after={"tag": tag, "assignment_id": row.id},
    )
    emit(
        session,
        TagsChanged(customer_id=target.get("customer_id"), conversation_id=target.get("conversation_id")),
    )
    return row


async def access_assignment(session: AsyncSession, assignment_id: int) -> TagAssignment:
    row = await session.get(TagAssignment, assignment_id)
    if row is None or row.removed_at is not None:
        raise NotFound("标签不存在", code="tag_not_found")
    return row


async def do_remove_tag(session: AsyncSession, user: User, row: TagAssignment) -> TagAssignment:
    """An agent takes a tag off (a rule will not put it back); audited (``tag.remove``)."""
    if row.removed_at is not None:
        return row
    row.removed_at, row.removed_by = utcnow(), user.id
    if row.customer_id is not None:
        entity, entity_id = "customer", row.customer_id
    elif row.conversation_id is not None:
        entity, entity_id = "conversation", row.conversation_id
    else:
        entity, entity_id = "tag_assignment", row.id
    record_audit(
        session,
        Actor.of(user),
        "tag.remove",
        entity,
        entity_id,
        before={"tag": row.tag, "assignment_id": row.id, "source": row.source},
    )
    conversation_id = row.conversation_id
    if conversation_id is None and row.visitor_id is not None:
        conversation_id = await session.scalar(
            select(func.max(Conversation.id)).where(Conversation.visitor_id == row.visitor_id)
        )
    emit(session, TagsChanged(customer_id=row.customer_id, conversation_id=conversation_id))
    return row


# ---------------------------------------------------------------- address lookup and links


def check_address_query(district: str, text: str) -> tuple[str, str]:
    district, text = to_halfwidth(district or "").strip(), to_halfwidth(text or "").strip()
    if not text:
        raise InvalidInput("请输入小区名称或详细地址", code="invalid_address_query")
    if len(district) > 40 or len(text) > 120:
        raise InvalidInput("地址过长", code="invalid_address_query")
    return district, text


async def matching_addresses(session: AsyncSession, district: str, text: str) -> tuple[list[Address], bool]:
    """The homes an address query names: one home (a full address, matched through the address blind index,
    in every district that has such a community when none is given), or every home of a community (names
    are plain: a partial name matches). Returns (addresses, truncated)."""
    district, text = check_address_query(district, text)
    parts = parse_free_address(text) or (parse_free_address(district + text) if district else None)
    if parts is not None:
        if district and not parts.district:
            parts = replace(parts, district=district)
        keys = await _address_keys(session, parts)
        query = select(Address).where(Address.normalized_index.in_(keys))
    else:
        needle = normalize_community(text)
        query = select(Address).where(Address.community.contains(needle, autoescape=True))
    rows = list(await session.scalars(query.order_by(Address.id).limit(MAX_ADDRESSES * 5)))
    if district:
        rows = [a for a in rows if normalize_district(a.district) == normalize_district(district)]
    return rows[:MAX_ADDRESSES], len(rows) > MAX_ADDRESSES


async def _address_keys(session: AsyncSession, parts: AddressParts) -> list[str]:
    if parts.district:
        return [address_key(parts)]
    community = normalize_community(parts.community)
    rows = await session.execute(
        select(Address.district, Address.community)
        .distinct()
        .where(Address.community.contains(community, autoescape=True))
    )
    return sorted(
        {address_key(replace(parts, district=d)) for d, c in rows if normalize_community(c) == community}
    )


@dataclass
class _Entry:
    address_id: int
    kind: str  # phone | wechat
    index: str
    value: str
    status: str  # linked | confirmed | suggested
    via: list[str] = field(default_factory=list)
    ref: str | None = None


def _identity_of_contact(contact: ContactIdentity) -> tuple[str, str]:
    return ("phone" if contact.kind == ContactKind.sms.value else "wechat"), contact.value_index


async def _collect(session: AsyncSession, addresses: Sequence[Address]) -> list[_Entry]:
    """Every phone number and WeChat identity linked to the addresses (customers' phones, bound contacts,
    confirmed links) and the suggested ones: numbers that contacted about a home (a conversation of its
    customer, a ticket at it) without being linked to it. Dismissed suggestions are left out."""
    address_ids = [a.id for a in addresses]
    homes_of: dict[int, list[int]] = defaultdict(list)  # customer id -> their homes among ``addresses``
    for a in addresses:
        homes_of[a.customer_id].append(a.id)
    entries: dict[tuple[int, str, str], _Entry] = {}
    removed: set[tuple[int, str, str]] = set()

    def add(
        address_id: int, kind: str, index: str, value: str, status: str, via: str, ref: str | None = None
    ) -> None:
        key = (address_id, kind, index)
        entry = entries.get(key)
        if entry is None:
            if status == "suggested" and key in removed:
                return
            entries[key] = _Entry(address_id, kind, index, value, status, [via], ref)
        elif via not in entry.via:
            entry.via.append(via)

    for customer_id, phone, index in await session.execute(
        select(CustomerPhone.customer_id, CustomerPhone.phone, CustomerPhone.phone_index)
        .where(CustomerPhone.customer_id.in_(homes_of))
        .order_by(CustomerPhone.id)
    ):
        for address_id in homes_of[customer_id]:
            add(address_id, "phone", index, phone, "linked", "客户档案电话")
    for contact in await session.scalars(
        select(ContactIdentity).where(ContactIdentity.customer_id.in_(homes_of)).order_by(ContactIdentity.id)
    ):
        kind, index = _identity_of_contact(contact)
        for address_id in homes_of[contact.customer_id]:  # type: ignore[index]
            add(
                address_id,
                kind,
                index,
                contact.value,
                "linked",
                "已绑定微信" if kind == "wechat" else "已绑定号码",
            )
    for link in await session.scalars(
        select(AddressLink).where(AddressLink.address_id.in_(address_ids)).order_by(AddressLink.id)
    ):
        if link.status == LinkStatus.confirmed.value:
            add(
                link.address_id,
                link.kind,
                link.value_index,
                link.value,
                "confirmed",
                "坐席确认",
                f"link:{link.id}",
            )
        else:
            removed.add((link.address_id, link.kind, link.value_index))

    # Suggestions: who contacted about these homes.
    tickets = list(
        await session.scalars(
            select(Ticket)
            .where(or_(Ticket.address_id.in_(address_ids), Ticket.customer_id.in_(homes_of)))
            .order_by(Ticket.id.desc())
            .limit(MAX_CONVERSATIONS)
        )
    )
    homes_of_conversation: dict[int, list[int]] = defaultdict(list)
    for t in tickets:
        homes = [t.address_id] if t.address_id in address_ids else homes_of.get(t.customer_id or 0, [])
        if t.conversation_id is not None:
            homes_of_conversation[t.conversation_id] += homes
        if t.contact_phone:
            phone = normalize_phone(t.contact_phone)
            if phone:
                for address_id in homes:
                    add(
                        address_id,
                        "phone",
                        phone_key(phone),
                        phone,
                        "suggested",
                        "工单联系电话",
                        f"ticket:{t.id}",
                    )
    conversations = list(
        await session.scalars(
            select(Conversation)
            .where(
                or_(Conversation.customer_id.in_(homes_of), Conversation.id.in_(homes_of_conversation)),
                Conversation.channel.in_(REMOTE_CHANNELS),
            )
            .order_by(Conversation.id.desc())
            .limit(MAX_CONVERSATIONS)
        )
    )
    contact_ids = {
        int(c.visitor_id.partition(":")[2])
        for c in conversations
        if c.visitor_id.startswith(("sms:", "wechat:")) and c.visitor_id.partition(":")[2].isdigit()
    }
    contacts = (
        {
            f"{x.kind}:{x.id}": x
            for x in await session.scalars(select(ContactIdentity).where(ContactIdentity.id.in_(contact_ids)))
        }
        if contact_ids
        else {}
    )
    voice_ids = [c.id for c in conversations if c.visitor_id.startswith("voice:")]
    callers = (
        {
            cid: (caller, index)
            for cid, caller, index in await session.execute(
                select(Call.conversation_id, Call.caller, Call.caller_index).where(
                    Call.conversation_id.in_(voice_ids), Call.caller_index.is_not(None)
                )
            )
        }
        if voice_ids
        else {}
    )
    for c in conversations:
        homes = list(
            dict.fromkeys(homes_of.get(c.customer_id or 0, []) + homes_of_conversation.get(c.id, []))
        )
        known = contacts.get(c.visitor_id)
        if known is not None:
            kind, index = _identity_of_contact(known)
            value = known.value
        elif c.id in callers and all(callers[c.id]):
            caller, caller_index = callers[c.id]
            kind, value, index = "phone", str(caller), str(caller_index)
        else:
            continue
        via = {"wechat": "微信咨询", "sms": "短信咨询", "voice": "热线来电"}.get(c.channel, "咨询")
        for address_id in homes:
            add(address_id, kind, index, value, "suggested", via, f"conv:{c.id}")
    return list(entries.values())


async def _seen(
    session: AsyncSession, identities: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[datetime | None, datetime | None]]:
    """First and last contact of each (kind, index): its conversations (as a contact identity, or a landline
    caller) and its calls."""
    if not identities:
        return {}
    indexes = {index for _, index in identities}
    visitors: dict[str, tuple[str, str]] = {}
    for contact in await session.scalars(
        select(ContactIdentity).where(ContactIdentity.value_index.in_(indexes))
    ):
        visitors[f"{contact.kind}:{contact.id}"] = _identity_of_contact(contact)
    for kind, index in identities:
        if kind == "phone":
            visitors[f"voice:{index[:40]}"] = (kind, index)
    seen: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for visitor_id, first, last in await session.execute(
        select(Conversation.visitor_id, func.min(Conversation.created_at), func.max(Conversation.created_at))
        .where(Conversation.visitor_id.in_(visitors))
        .group_by(Conversation.visitor_id)
    ):
        seen[visitors[visitor_id]] += [first, last]
    for caller_index, first, last in await session.execute(
        select(Call.caller_index, func.min(Call.started_at), func.max(Call.started_at))
        .where(Call.caller_index.in_(indexes))
        .group_by(Call.caller_index)
    ):
        if caller_index:
            seen[("phone", caller_index)] += [first, last]
    return {key: (min(times), max(times)) for key, times in seen.items() if times}


def shown_value(kind: str, value: str, viewer: User) -> str:
    """Full numbers for supervisors and admins; agents see 138****5555 and a shortened openid."""
    if Role(viewer.role) in MANAGERS:
        return value
    if kind == "phone":
        return mask_phone(normalize_phone(value))
    return f"{value[:4]}…{value[-4:]}" if len(value) > 10 else "****"


def _mask_name(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1) if name else ""


async def lookup_address(session: AsyncSession, viewer: User, district: str, text: str) -> AddressLookup:
    """Every phone number and WeChat identity linked to an address, and those suggested, with first/last seen.
    Agents see numbers and names masked; nothing here is logged."""
    addresses, truncated = await matching_addresses(session, district, text)
    return await _lookup(session, viewer, addresses, truncated)


async def _lookup(
    session: AsyncSession, viewer: User, addresses: Sequence[Address], truncated: bool
) -> AddressLookup:
    names = {
        cid: name
        for cid, name in await session.execute(
            select(Customer.id, Customer.name).where(Customer.id.in_({a.customer_id for a in addresses}))
        )
    }
    manager = Role(viewer.role) in MANAGERS
    display = {
        a.id: AddressParts(
            a.district, a.community, a.building or "", a.unit or "", a.room or "", a.street or ""
        ).display()
        for a in addresses
    }
    entries = await _collect(session, addresses)
    seen = await _seen(session, {(e.kind, e.index) for e in entries})
    order = {"linked": 0, "confirmed": 1, "suggested": 2}
    entries.sort(key=lambda e: (e.address_id, order[e.status], e.kind))
    return AddressLookup(
        addresses=[
            AddressRow(
                id=a.id,
                display=display[a.id],
                customer_id=a.customer_id,
                customer_name=names.get(a.customer_id, "")
                if manager
                else _mask_name(names.get(a.customer_id, "")),
            )
            for a in addresses
        ],
        entries=[
            LinkEntry(
                address_id=e.address_id,
                address=display[e.address_id],
                kind=e.kind,
                kind_label=KIND_LABELS[e.kind],
                shown=shown_value(e.kind, e.value, viewer),
                status=e.status,
                status_label=LINK_STATUS_LABELS[e.status],
                via=e.via,
                first_seen=seen.get((e.kind, e.index), (None, None))[0],
                last_seen=seen.get((e.kind, e.index), (None, None))[1],
                ref=e.ref if e.status != "linked" else None,
            )
            for e in entries
        ],
        truncated=truncated,
    )


async def access_address(session: AsyncSession, address_id: int) -> Address:
    address = await session.get(Address, address_id)
    if address is None:
        raise NotFound("地址不存在", code="address_not_found")
    return address


async def _entry(session: AsyncSession, address: Address, ref: str, status: str) -> _Entry:
    for entry in await _collect(session, [address]):
        if entry.ref == ref and entry.status == status:
            return entry
    raise NotFound("该关联已不存在，请重新查询", code="link_not_found")


async def _decide_link(session: AsyncSession, user: User, address: Address, entry: _Entry, ref: str,
                       status: LinkStatus, *, new_source: bool) -> tuple[AddressLink, str]:
    """Record an agent's decision on one number of an address (the row is made on the first decision); returns
    the link and its status before ("suggested" when there was no row). ``new_source``: the decision also
    names where the link came from (a confirmation does; a removal keeps the old source)."""
    link = await session.scalar(
        select(AddressLink).where(
            AddressLink.address_id == address.id,
            AddressLink.kind == entry.kind,
            AddressLink.value_index == entry.index,
        )
    )
    before = link.status if link is not None else "suggested"
    if link is None:
        link = AddressLink(address_id=address.id, kind=entry.kind, value=entry.value, value_index=entry.index,
                           source=ref)
        session.add(link)
    elif new_source:
        link.source = ref
    link.status, link.decided_by, link.decided_at = status.value, user.id, utcnow()
    await session.flush()
    return link, before


async def do_confirm_link(session: AsyncSession, user: User, address: Address, ref: str) -> AddressLink:
    """An agent confirms a suggested link (a number that contacted about the address): from now on it shows as
    linked to the address. Audited (``address_link.confirm``, ids only) and announced after commit."""
    entry = await _entry(session, address, ref, "suggested")
    link, _ = await _decide_link(session, user, address, entry, ref, LinkStatus.confirmed, new_source=True)
    record_audit(
        session,
        Actor.of(user),
        "address_link.confirm",
        "address",
        address.id,
        after={"link_id": link.id, "kind": entry.kind, "from": ref, "status": link.status},
    )
    emit(session, AddressLinkChanged(link_id=link.id, address_id=address.id, status=link.status))
    return link


async def do_remove_link(session: AsyncSession, user: User, address: Address, ref: str) -> AddressLink:
    """An agent removes a link: a confirmed one (``link:<id>``) is withdrawn, a suggestion is dismissed (it is
    not suggested again for this address). Links from customer data (phones on file, bound contacts) are
    changed on the customer, not here. Audited (``address_link.remove``) and announced after commit."""
    if ref.startswith("link:"):
        entry = await _entry(session, address, ref, "confirmed")
    else:
        entry = await _entry(session, address, ref, "suggested")
    link, before = await _decide_link(session, user, address, entry, ref, LinkStatus.removed, new_source=False)
    record_audit(
        session,
        Actor.of(user),
        "address_link.remove",
        "address",
        address.id,
        before={"status": before},
        after={"link_id": link.id, "kind": entry.kind, "from": ref, "status": link.status},
    )
    emit(session, AddressLinkChanged(link_id=link.id, address_id=address.id, status=link.status))
    return link
