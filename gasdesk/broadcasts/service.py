"""The broadcast delivery engine: one content version to many customers, queued set-based, sent throttled.

``do_queue_broadcast`` finds or creates the ``Broadcast`` of (subject, content hash) and inserts one
``BroadcastDelivery`` per affected customer straight from SELECTs over the customers' addresses
(``INSERT … SELECT … ON CONFLICT DO NOTHING``): no customer row is loaded and no phone number decrypted to
queue them, and the unique (broadcast, customer) key means publishing the same content again — or an update
that changes nothing residents read — sends nothing twice. 100,000 customers queue in about a second on
SQLite (bench/broadcast.py).

The job ``broadcasts.drain`` hands queued deliveries to the resident's channel at the configured per-channel
rate (``broadcast_wechat_per_s``, ``broadcast_sms_per_s``): once per second it takes at most that many per
channel (a customer with a following WeChat contact counts as WeChat, the others as SMS; the few reached in
their open web chat ride on the SMS budget) and calls ``outbound.notices.do_notify_residents`` for the batch
(a following WeChat contact → template message; else the phone on file → SMS; else an open web chat → a
message in it), which reads and decrypts those customers' contacts and queues the outbound rows that the
outbound worker sends (opt-out, quiet hours, receipts as for every notice). It re-enqueues itself while
deliveries wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.broadcasts.models import Broadcast, BroadcastDelivery, DeliveryStatus
from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.conversations.models import Channel, Conversation, ConversationState, Message
from gasdesk.customers.models import ContactIdentity, ContactKind
from gasdesk.db import UTCDateTime, execute_counted, table_of
from gasdesk.jobs.models import ACTIVE, Job
from gasdesk.jobs.queue import enqueue
from gasdesk.outbound.models import STATUS_LABELS, OutboundMessage, Purpose
from gasdesk.outbound.notices import do_notify_residents
from gasdesk.outbound.service import mask_recipient, reason_label

JOB = "broadcasts.drain"
TICK_S = 1.0
_ID_CHUNK = 5000

STATUS_TEXT = {**{s.value: label for s, label in STATUS_LABELS.items()},
               DeliveryStatus.queued.value: "排队中", DeliveryStatus.unreachable.value: "无法送达",
               DeliveryStatus.superseded.value: "已被新版本取代", "posted": "已推送到网页聊天"}


@dataclass(frozen=True)
class CustomerSource:
    """Who a broadcast goes to: SELECTs whose one column is a customer id, and ids found otherwise."""

    selects: list[Select[Any]] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def ensure_draining(session: AsyncSession) -> None:
    """Queue the drain job unless one is already waiting, retrying or running (it re-enqueues itself while
    needed)."""
    waiting = await session.scalar(select(Job.id).where(Job.name == JOB, Job.status.in_(ACTIVE))
                                   .limit(1))
    if waiting is None:
        enqueue(session, JOB, {}, max_attempts=3)


async def do_queue_broadcast(session: AsyncSession, *, subject: str, content_hash: str, purpose: Purpose,
                             params: dict[str, str], text: str, sources: CustomerSource) -> int:
    """Queue one delivery per customer of ``sources`` for this content (none for customers who have one
    already). Returns how many were queued. The caller audits the change that caused it."""
    broadcast = await session.scalar(select(Broadcast).where(Broadcast.subject == subject,
                                                             Broadcast.content_hash == content_hash))
    if broadcast is None:
        broadcast = Broadcast(subject=subject, content_hash=content_hash, purpose=purpose.value, params=params,
                              text=text[:600], queued_count=0, created_at=utcnow())
        session.add(broadcast)
        await session.flush()
    table = table_of(BroadcastDelivery)
    make = _insert(session)
    now = utcnow()
    columns = ["broadcast_id", "customer_id", "status", "created_at"]
    queued = 0
    for source in sources.selects:
        sub = source.subquery()
        rows = select(literal(broadcast.id), sub.c.customer_id, literal(DeliveryStatus.queued.value),
                      literal(now, UTCDateTime())).where(true()).distinct()  # SQLite: WHERE before ON CONFLICT
        statement = make(table).from_select(columns, rows).on_conflict_do_nothing()
        queued += max(int(getattr(await session.execute(statement), "rowcount", 0) or 0), 0)
    ids = sorted(sources.ids)
    for start in range(0, len(ids), _ID_CHUNK):
        values = [{"broadcast_id": broadcast.id, "customer_id": cid, "status": DeliveryStatus.queued.value,
                   "created_at": now} for cid in ids[start:start + _ID_CHUNK]]
        result = await session.execute(make(table).values(values).on_conflict_do_nothing())
        queued += max(int(getattr(result, "rowcount", 0) or 0), 0)
    if queued:
        broadcast.queued_count += queued
        await ensure_draining(session)
    return queued


async def supersede_older(session: AsyncSession, *, subject: str, keep_hash: str) -> int:
    """Deliveries of the subject's other versions that have not gone out yet are dropped: a resident gets the
    newest content only."""
    older = select(Broadcast.id).where(Broadcast.subject == subject, Broadcast.content_hash != keep_hash)
    return await execute_counted(session, update(BroadcastDelivery).where(
        BroadcastDelivery.broadcast_id.in_(older.scalar_subquery()),
        BroadcastDelivery.status == DeliveryStatus.queued.value,
    ).values(status=DeliveryStatus.superseded.value).execution_options(synchronize_session=False))


def channel_rates() -> dict[str, int]:
    """Messages handed per second to each channel (Settings)."""
    settings = get_settings()
    return {"wechat": settings.broadcast_wechat_per_s, "sms": settings.broadcast_sms_per_s}


async def _wechat_followers(session: AsyncSession, customer_ids: list[int]) -> set[int]:
    """Customers among ``customer_ids`` with a following, not opted-out WeChat contact (they get WeChat)."""
    if not customer_ids:
        return set()
    return set(await session.scalars(select(ContactIdentity.customer_id).where(
        ContactIdentity.customer_id.in_(customer_ids), ContactIdentity.kind == ContactKind.wechat.value,
        ContactIdentity.subscribed.is_(True), ContactIdentity.opted_out_at.is_(None))))


async def _open_webchats(session: AsyncSession, customer_ids: list[int]) -> dict[int, Conversation]:
    """Each customer's open web chat, if any (a notice reaches a web-chat-only resident there)."""
    found: dict[int, Conversation] = {}
    for conversation in await session.scalars(select(Conversation).where(
            Conversation.customer_id.in_(customer_ids), Conversation.channel == Channel.webchat.value,
            Conversation.state != ConversationState.closed.value).order_by(Conversation.id.desc())):
        found.setdefault(conversation.customer_id or 0, conversation)
    return found


def _dedupe_key_for(broadcast_id: int) -> Callable[[int], str]:
    """One outbound message per (broadcast, customer), whatever happens to the delivery row."""
    return lambda customer_id: f"broadcast:{broadcast_id}:{customer_id}"


async def drain(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The ``broadcasts.drain`` job: hand at most one second's worth of queued deliveries per channel to
    ``do_notify_residents`` (one batch per content version), then come back in a second while any wait."""
    rates = channel_rates()
    rows = list(await session.execute(
        select(BroadcastDelivery.id, BroadcastDelivery.broadcast_id, BroadcastDelivery.customer_id)
        .where(BroadcastDelivery.status == DeliveryStatus.queued.value)
        .order_by(BroadcastDelivery.id).limit(sum(rates.values()))))
    followers = await _wechat_followers(session, [row.customer_id for row in rows])
    budget = dict(rates)
    batches: dict[int, list[tuple[int, int]]] = {}
    for delivery_id, broadcast_id, customer_id in rows:
        # The channel it will most likely take (a follower: WeChat; else SMS): each is throttled on its own.
        expected = "wechat" if customer_id in followers else "sms"
        if budget[expected] <= 0:
            continue
        budget[expected] -= 1
        batches.setdefault(broadcast_id, []).append((delivery_id, customer_id))
    now = utcnow()
    changes: list[dict[str, Any]] = []
    for broadcast_id, batch in batches.items():
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        customer_ids = [customer_id for _, customer_id in batch]
        got = await do_notify_residents(session, customer_ids=customer_ids, purpose=Purpose(broadcast.purpose),
                                        params=dict(broadcast.params or {}),
                                        dedupe_key_of=_dedupe_key_for(broadcast_id),
                                        webchats=await _open_webchats(session, customer_ids))
        for delivery_id, customer_id in batch:
            sent = got.get(customer_id)
            change: dict[str, Any] = {"id": delivery_id, "handed_at": now, "status": DeliveryStatus.handed.value,
                                      "channel": None, "outbound_id": None, "message_id": None}
            if isinstance(sent, OutboundMessage):
                change.update(channel=sent.channel, outbound_id=sent.id)
            elif isinstance(sent, Message):
                change.update(channel="webchat", message_id=sent.id)
            else:
                change["status"] = DeliveryStatus.unreachable.value
            changes.append(change)
    if changes:
        await session.execute(update(BroadcastDelivery), changes)  # bulk UPDATE by primary key
    waiting = await session.scalar(select(BroadcastDelivery.id).where(
        BroadcastDelivery.status == DeliveryStatus.queued.value).limit(1))
    if waiting is not None:
        enqueue(session, JOB, {}, run_at=utcnow() + timedelta(seconds=TICK_S), max_attempts=3)


async def kick_drain(session: AsyncSession) -> None:
    """Periodic safety net: a drain job lost (e.g. failed for good) while deliveries wait is queued again."""
    waiting = await session.scalar(select(BroadcastDelivery.id).where(
        BroadcastDelivery.status == DeliveryStatus.queued.value).limit(1))
    if waiting is not None:
        await ensure_draining(session)


# ---------------------------------------------------------------- staff views


def _effective_status() -> Any:
    """One status per delivery: the outbound row's once handed to WeChat/SMS, "posted" for a web-chat message,
    else the delivery's own (queued, unreachable, superseded)."""
    return case((BroadcastDelivery.outbound_id.is_not(None), OutboundMessage.status),
                (BroadcastDelivery.message_id.is_not(None), literal("posted")),
                else_=BroadcastDelivery.status)


@dataclass(frozen=True)
class VersionStats:
    broadcast_id: int
    created_at: datetime
    text: str
    total: int
    by_status: dict[str, int]
    by_channel: dict[str, int]


async def delivery_stats(session: AsyncSession, subject: str) -> list[VersionStats]:
    """Per content version of ``subject`` (newest first): deliveries by status and by channel."""
    broadcasts = list(await session.scalars(select(Broadcast).where(Broadcast.subject == subject)
                                            .order_by(Broadcast.id.desc())))
    out = []
    status = _effective_status()
    for broadcast in broadcasts:
        joined = (select(status, BroadcastDelivery.channel, func.count())
                  .select_from(BroadcastDelivery)
                  .outerjoin(OutboundMessage, OutboundMessage.id == BroadcastDelivery.outbound_id)
                  .where(BroadcastDelivery.broadcast_id == broadcast.id)
                  .group_by(status, BroadcastDelivery.channel))
        by_status: dict[str, int] = {}
        by_channel: dict[str, int] = {}
        for state, channel, count in await session.execute(joined):
            by_status[state] = by_status.get(state, 0) + count
            if channel:
                by_channel[channel] = by_channel.get(channel, 0) + count
        out.append(VersionStats(broadcast_id=broadcast.id, created_at=broadcast.created_at, text=broadcast.text,
                                total=sum(by_status.values()), by_status=by_status, by_channel=by_channel))
    return out


@dataclass(frozen=True)
class DeliveryRow:
    customer_id: int
    channel: str | None
    recipient: str
    status: str
    status_label: str
    reason: str
    handed_at: datetime | None


async def delivery_rows(session: AsyncSession, subject: str, *, status: str | None = None,
                        limit: int = 200) -> list[DeliveryRow]:
    """The newest version's deliveries of ``subject``, one per customer (recipients masked)."""
    latest = await session.scalar(select(func.max(Broadcast.id)).where(Broadcast.subject == subject))
    if latest is None:
        return []
    effective = _effective_status()
    query = (select(BroadcastDelivery, OutboundMessage, effective)
             .outerjoin(OutboundMessage, and_(OutboundMessage.id == BroadcastDelivery.outbound_id))
             .where(BroadcastDelivery.broadcast_id == latest))
    if status:
        query = query.where(effective == status)
    rows = []
    for delivery, outbound, state in await session.execute(query.order_by(BroadcastDelivery.id).limit(limit)):
        rows.append(DeliveryRow(
            customer_id=delivery.customer_id, channel=delivery.channel,
            recipient=mask_recipient(outbound.channel, outbound.recipient) if outbound is not None else "",
            status=state, status_label=STATUS_TEXT.get(state, state),
            reason=reason_label(outbound.reason) if outbound is not None else "", handed_at=delivery.handed_at))
    return rows
