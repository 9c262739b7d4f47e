"""Queueing, sending and tracking messages to residents on WeChat and SMS.

``do_queue_outbound`` writes an ``OutboundMessage`` and a job in the caller's transaction (so a message is
never announced for a change that rolled back, and never lost once the change committed). The job
``outbound.deliver`` claims the row (queued → sending, a conditional UPDATE, committed before the provider
is called, so two workers never send it twice and no database connection waits on the network), calls the
channel's sender (registered by ``gasdesk/worker.py``), and records sent / retry / failed. A provider outage
keeps the row queued and retries with backoff; a permanent failure of a WeChat message falls back to SMS when
the resident has a phone number on file.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.channels.sending import SendFailed, SendResult
from gasdesk.channels.sms.templates import CHAT_REPLY, chat_reply_params, resolve_notice
from gasdesk.channels.sms.templates import DEFAULT_TEMPLATES as SMS_TEMPLATES
from gasdesk.clock import as_utc, local_zone, to_local, utcnow
from gasdesk.config import get_settings
from gasdesk.customers.contacts import contact_key, phone_on_file
from gasdesk.customers.models import ContactIdentity
from gasdesk.customers.validation import normalize_phone
from gasdesk.db import commit, execute_counted
from gasdesk.errors import InvalidInput
from gasdesk.jobs.queue import backoff, enqueue
from gasdesk.outbound.models import (
    PURPOSE_LABELS,
    STATUS_LABELS,
    NoticeTemplate,
    OutboundMessage,
    OutboundStatus,
    Purpose,
)

JOB = "outbound.deliver"
SYSTEM = Actor.system("outbound", "job")
MAX_ATTEMPTS = 6
# A row left in "sending" this long (the process died while the provider answered) is not sent again: it may
# have gone out. It is marked failed with reason outcome_unknown, for staff to check.
SENDING_STALE_AFTER = timedelta(minutes=10)
CHANNELS = ("wechat", "sms")
METHODS = {"wechat": ("custom", "template"), "sms": ("sms",)}
# WeChat failures after which the same notice goes by SMS instead (the resident cannot get it on WeChat).
FALLBACK_REASONS = {"outside_48h", "unsubscribed", "invalid_openid", "no_template", "wechat_off"}


@dataclass(frozen=True)
class Outgoing:
    """What a channel sender needs to send one message (no ORM object crosses into the adapters)."""

    id: int
    channel: str
    method: str
    purpose: str
    recipient: str
    text: str | None
    template_key: str | None
    params: dict[str, Any]


Sender = Callable[[Outgoing], Awaitable[SendResult]]
SENDERS: dict[str, Sender] = {}


def register_sender(channel: str, sender: Sender) -> None:
    """The channel adapter that sends ``channel``'s messages (wired in ``gasdesk/worker.py``)."""
    SENDERS[channel] = sender


def parse_quiet_hours(spec: str) -> tuple[time, time] | None:
    """ "21:00-08:00" → (21:00, 08:00); empty → None. Raises InvalidInput on anything else."""
    spec = (spec or "").strip()
    if not spec:
        return None
    try:
        start_s, end_s = (part.strip() for part in spec.split("-", 1))
        return time.fromisoformat(start_s), time.fromisoformat(end_s)
    except ValueError:
        raise InvalidInput(f"静默时段格式应为 21:00-08:00，收到 {spec!r}", code="invalid_quiet_hours") from None


def quiet_hours_end(now: datetime, spec: str) -> datetime | None:
    """When ``now`` falls in the quiet hours, the UTC moment they end; else None."""
    hours = parse_quiet_hours(spec)
    if hours is None:
        return None
    start, end = hours
    local = to_local(now)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=local_zone()).astimezone(now.tzinfo)


async def do_queue_outbound(
    session: AsyncSession,
    *,
    channel: str,
    purpose: Purpose,
    method: str,
    recipient: str,
    contact: ContactIdentity | None = None,
    customer_id: int | None = None,
    conversation_id: int | None = None,
    message_id: int | None = None,
    ticket_id: int | None = None,
    appointment_id: int | None = None,
    followup_id: int | None = None,
    text: str | None = None,
    template_key: str | None = None,
    params: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    emergency: bool = False,
    delay_s: float = 0.0,
    fallback_of_id: int | None = None,
    actor: Actor = SYSTEM,
) -> OutboundMessage:
    """Queue one message to a resident. Idempotent by ``dedupe_key`` (the existing row is returned). Proactive
    messages (not chat replies) respect opt-out and, on SMS, the quiet hours — emergencies excepted."""
    if channel not in METHODS or method not in METHODS[channel]:
        raise InvalidInput(f"渠道 {channel} 不支持发送方式 {method}", code="invalid_outbound")
    if dedupe_key:
        existing = await session.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    row, run_at = _new_row(
        channel=channel, purpose=purpose, method=method, recipient=recipient, contact=contact,
        customer_id=customer_id, conversation_id=conversation_id, message_id=message_id, ticket_id=ticket_id,
        appointment_id=appointment_id, followup_id=followup_id, text=text, template_key=template_key, params=params,
        dedupe_key=dedupe_key, emergency=emergency, delay_s=delay_s, fallback_of_id=fallback_of_id)
    session.add(row)
    await session.flush()
    _queued(session, row, run_at, actor)
    return row


def _new_row(*, channel: str, purpose: Purpose, method: str, recipient: str, contact: ContactIdentity | None,
             customer_id: int | None, conversation_id: int | None, message_id: int | None, ticket_id: int | None,
             appointment_id: int | None, followup_id: int | None, text: str | None, template_key: str | None,
             params: dict[str, Any] | None, dedupe_key: str | None, emergency: bool, delay_s: float,
             fallback_of_id: int | None) -> tuple[OutboundMessage, datetime]:
    """The row to store and when its job runs: opt-out (proactive messages) and SMS quiet hours decided here,
    for one message and for many alike."""
    now = utcnow()
    row = OutboundMessage(
        channel=channel, purpose=purpose.value, method=method, recipient=recipient,
        recipient_index=contact_key(channel, recipient), contact_id=contact.id if contact else None,
        customer_id=customer_id if customer_id is not None else (contact.customer_id if contact else None),
        conversation_id=conversation_id, message_id=message_id, ticket_id=ticket_id, appointment_id=appointment_id,
        followup_id=followup_id, text=text, template_key=template_key, params=params, dedupe_key=dedupe_key,
        emergency=emergency, fallback_of_id=fallback_of_id, status=OutboundStatus.queued.value, attempts=0,
        created_at=now, updated_at=now,
    )
    proactive = purpose is not Purpose.chat and not emergency
    if proactive and contact is not None and contact.opted_out_at is not None:
        row.status, row.reason = OutboundStatus.skipped.value, "opted_out"
    run_at = now + timedelta(seconds=delay_s)
    if channel == "sms" and proactive:
        quiet_end = quiet_hours_end(now, get_settings().sms_quiet_hours)
        if quiet_end is not None:
            row.not_before = quiet_end
            run_at = max(run_at, quiet_end)
    return row, run_at


def _queued(session: AsyncSession, row: OutboundMessage, run_at: datetime, actor: Actor) -> None:
    """After the row is stored: the audit row of a proactive message (or an SMS fallback) and the send job."""
    if (row.purpose != Purpose.chat.value and not row.emergency) or row.fallback_of_id is not None:
        record_audit(session, actor, "outbound.queue", "outbound", row.id, after={
            "channel": row.channel, "purpose": row.purpose, "status": row.status, "reason": row.reason,
            "ticket_id": row.ticket_id, "appointment_id": row.appointment_id, "followup_id": row.followup_id})
    if row.status == OutboundStatus.queued.value:
        enqueue(session, JOB, {"id": row.id}, run_at=run_at, max_attempts=2)


@dataclass(frozen=True)
class OutboundItem:
    """One message of ``do_queue_outbound_many`` (the per-message arguments of ``do_queue_outbound``)."""

    channel: str
    method: str
    recipient: str
    contact: ContactIdentity | None = None
    customer_id: int | None = None
    conversation_id: int | None = None
    template_key: str | None = None
    params: dict[str, Any] | None = None
    dedupe_key: str | None = None


async def do_queue_outbound_many(session: AsyncSession, purpose: Purpose, items: list[OutboundItem], *,
                                 actor: Actor = SYSTEM) -> list[OutboundMessage]:
    """``do_queue_outbound`` for many proactive messages of one purpose (a broadcast's batch): the same rows,
    checks, audit rows and jobs, with one de-duplication query and one flush. Returns the rows in order (an
    existing row for a dedupe key already used)."""
    for item in items:
        if item.channel not in METHODS or item.method not in METHODS[item.channel]:
            raise InvalidInput(f"渠道 {item.channel} 不支持发送方式 {item.method}", code="invalid_outbound")
    keys = [item.dedupe_key for item in items if item.dedupe_key]
    existing: dict[str, OutboundMessage] = {}
    for start in range(0, len(keys), 500):
        for row in await session.scalars(select(OutboundMessage).where(
                OutboundMessage.dedupe_key.in_(keys[start:start + 500]))):
            existing[row.dedupe_key or ""] = row
    out: list[OutboundMessage] = []
    new: list[tuple[OutboundMessage, datetime]] = []
    for item in items:
        if item.dedupe_key and item.dedupe_key in existing:
            out.append(existing[item.dedupe_key])
            continue
        row, run_at = _new_row(
            channel=item.channel, purpose=purpose, method=item.method, recipient=item.recipient,
            contact=item.contact, customer_id=item.customer_id, conversation_id=item.conversation_id,
            message_id=None, ticket_id=None, appointment_id=None, followup_id=None, text=None,
            template_key=item.template_key, params=item.params, dedupe_key=item.dedupe_key, emergency=False,
            delay_s=0.0, fallback_of_id=None)
        if item.dedupe_key:
            existing[item.dedupe_key] = row  # the same key twice in one batch: one message
        session.add(row)
        new.append((row, run_at))
        out.append(row)
    await session.flush()
    for row, run_at in new:
        _queued(session, row, run_at, actor)
    return out


async def _sent_today(session: AsyncSession, row: OutboundMessage) -> int:
    local_midnight = datetime.combine(to_local(utcnow()).date(), time(0), tzinfo=local_zone())
    return int(await session.scalar(select(func.count()).select_from(OutboundMessage).where(
        OutboundMessage.channel == "sms", OutboundMessage.recipient_index == row.recipient_index,
        OutboundMessage.id != row.id, OutboundMessage.sent_at >= local_midnight,
        OutboundMessage.status.in_([OutboundStatus.sent.value, OutboundStatus.delivered.value]))) or 0)


async def deliver_outbound(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The ``outbound.deliver`` job: claim, send outside any transaction, record the result."""
    out_id = int(payload["id"])
    now = utcnow()
    claimed = await execute_counted(session, update(OutboundMessage).where(
        OutboundMessage.id == out_id, OutboundMessage.status == OutboundStatus.queued.value,
    ).values(status=OutboundStatus.sending.value, attempts=OutboundMessage.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False))
    if claimed != 1:
        return  # sent already (a passive WeChat reply, another worker) or no longer wanted
    row = await session.get(OutboundMessage, out_id, populate_existing=True)
    assert row is not None
    if row.channel == "sms" and not row.emergency and row.purpose != Purpose.chat.value:
        if await _sent_today(session, row) >= get_settings().sms_per_number_per_day:
            await _fail(session, row, "daily_limit")
            return
    outgoing = Outgoing(id=row.id, channel=row.channel, method=row.method, purpose=row.purpose,
                        recipient=row.recipient, text=row.text, template_key=row.template_key,
                        params=dict(row.params or {}))
    await commit(session)  # the claim is durable before the provider is called; no connection is held
    sender = SENDERS.get(row.channel)
    try:
        if sender is None:
            raise SendFailed(f"{row.channel}_off", retryable=False)
        result = await sender(outgoing)
    except SendFailed as failure:
        row = await session.get(OutboundMessage, out_id, populate_existing=True)
        assert row is not None
        if failure.retryable and row.attempts < MAX_ATTEMPTS:
            row.status, row.reason, row.updated_at = OutboundStatus.queued.value, failure.reason[:40], utcnow()
            enqueue(session, JOB, {"id": row.id}, run_at=utcnow() + backoff(row.attempts), max_attempts=2)
        else:
            await _fail(session, row, failure.reason)
        return
    row = await session.get(OutboundMessage, out_id, populate_existing=True)
    assert row is not None
    row.status, row.reason, row.provider_id = OutboundStatus.sent.value, None, result.provider_id
    row.sent_at = row.updated_at = utcnow()


async def _fail(session: AsyncSession, row: OutboundMessage, reason: str) -> None:
    row.status, row.reason, row.updated_at = OutboundStatus.failed.value, reason[:40], utcnow()
    fallback = await _queue_sms_fallback(session, row) if row.channel == "wechat" and reason in FALLBACK_REASONS \
        else None
    record_audit(session, SYSTEM, "outbound.fail", "outbound", row.id, after={
        "channel": row.channel, "purpose": row.purpose, "reason": row.reason,
        "fallback_id": fallback.id if fallback else None})


# The SMS template standing in for a WeChat chat reply that cannot go out (SMS carries only approved
# templates, never an agent's free text).
CHAT_FALLBACK_TEMPLATE = "chat_reply_waiting"


async def _queue_sms_fallback(session: AsyncSession, row: OutboundMessage) -> OutboundMessage | None:
    phone = await phone_on_file(session, row.customer_id)
    if phone is None:
        return None
    template_key = CHAT_FALLBACK_TEMPLATE if row.purpose == Purpose.chat.value else row.purpose
    return await do_queue_outbound(
        session, channel="sms", purpose=Purpose(row.purpose), method="sms", recipient=phone,
        customer_id=row.customer_id, conversation_id=row.conversation_id, ticket_id=row.ticket_id,
        appointment_id=row.appointment_id, followup_id=row.followup_id, template_key=template_key,
        params=row.params if row.purpose != Purpose.chat.value else {}, emergency=row.emergency,
        fallback_of_id=row.id, dedupe_key=f"fallback:{row.id}")


async def fail_stale_sending(session: AsyncSession) -> int:
    """Periodic: rows stuck in "sending" (the process died mid-call) become failed/outcome_unknown."""
    cutoff = utcnow() - SENDING_STALE_AFTER
    rows = list(await session.scalars(select(OutboundMessage).where(
        OutboundMessage.status == OutboundStatus.sending.value, OutboundMessage.updated_at < cutoff)))
    for row in rows:
        row.status, row.reason, row.updated_at = OutboundStatus.failed.value, "outcome_unknown", utcnow()
        record_audit(session, SYSTEM, "outbound.fail", "outbound", row.id,
                     after={"channel": row.channel, "purpose": row.purpose, "reason": "outcome_unknown"})
    return len(rows)


async def do_record_receipt(session: AsyncSession, channel: str, provider_id: str, *, delivered: bool,
                            error_code: str | None = None, at: datetime | None = None) -> OutboundMessage | None:
    """A provider's delivery receipt: sent → delivered, or failed with the provider's code. Unknown ids are
    ignored (receipts of messages sent by other systems on the same account)."""
    row = await session.scalar(select(OutboundMessage).where(OutboundMessage.channel == channel,
                                                             OutboundMessage.provider_id == provider_id))
    if row is None or row.status not in (OutboundStatus.sent.value, OutboundStatus.sending.value):
        return row
    if delivered:
        row.status, row.delivered_at = OutboundStatus.delivered.value, as_utc(at) if at else utcnow()
    else:
        row.status, row.reason = OutboundStatus.failed.value, (error_code or "undelivered")[:40]
        record_audit(session, Actor.system(channel, "callback"), "outbound.fail", "outbound", row.id,
                     after={"channel": row.channel, "purpose": row.purpose, "reason": row.reason})
    row.updated_at = utcnow()
    return row


async def claim_for_passive_reply(session: AsyncSession, out_ids: list[int]) -> list[OutboundMessage]:
    """WeChat's passive reply: the bot's answers to a callback go back in the HTTP response when they are ready
    within WeChat's 5 seconds. Rows the worker has not taken yet are marked sent here (conditional UPDATE), so
    an answer goes out exactly once — in the response or as 客服消息."""
    taken = []
    for out_id in out_ids:
        matched = await execute_counted(session, update(OutboundMessage).where(
            OutboundMessage.id == out_id, OutboundMessage.status == OutboundStatus.queued.value,
        ).values(status=OutboundStatus.sent.value, method="passive", sent_at=utcnow(), updated_at=utcnow(),
                 attempts=OutboundMessage.attempts + 1).execution_options(synchronize_session=False))
        if matched == 1:
            row = await session.get(OutboundMessage, out_id, populate_existing=True)
            if row is not None:
                taken.append(row)
    return taken


async def outbound_for(session: AsyncSession, *, ticket_id: int | None = None, appointment_id: int | None = None,
                       conversation_id: int | None = None, customer_id: int | None = None,
                       limit: int = 50) -> list[OutboundMessage]:
    """Messages sent about one ticket / appointment / conversation / customer, newest first."""
    query = select(OutboundMessage)
    if ticket_id is not None:
        query = query.where(OutboundMessage.ticket_id == ticket_id)
    if appointment_id is not None:
        query = query.where(OutboundMessage.appointment_id == appointment_id)
    if conversation_id is not None:
        query = query.where(OutboundMessage.conversation_id == conversation_id)
    if customer_id is not None:
        query = query.where(OutboundMessage.customer_id == customer_id)
    return list(await session.scalars(query.order_by(OutboundMessage.id.desc()).limit(limit)))


# ---------------------------------------------------------------- admin: provider templates of notices

# Which notices an admin maps to a provider template, per channel. SMS: every template the SMS sender uses
# (the notices, chat replies by SMS, the WeChat-reply reminder, opt-out confirmations). WeChat: the notices
# sent as template messages (chat replies go as 客服消息, which need no template).
NOTICE_KEYS: dict[str, tuple[str, ...]] = {
    "sms": tuple(SMS_TEMPLATES),
    "wechat": tuple(p.value for p in Purpose if p is not Purpose.chat),
}
MAX_NOTICE_FIELDS = 20
_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_PROVIDER_FIELD = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class NoticeTemplateIn:
    """A checked notice template (``check_notice_template``)."""

    channel: str
    purpose: str
    provider_template_id: str
    fields: dict[str, str]
    body: str
    enabled: bool


def notice_label(channel: str, key: str) -> str:
    """The notice's name for staff (预约确认, 会话回复（短）…)."""
    if channel == "sms" and key in SMS_TEMPLATES:
        return SMS_TEMPLATES[key].description or key
    try:
        return PURPOSE_LABELS[Purpose(key)]
    except ValueError:
        return key


def parse_fields_text(text: str) -> dict[str, str]:
    """The admin form's ``provider_name=our_param`` lines (in the provider's order) → a mapping. A line with
    one name maps it to itself; blank lines are skipped."""
    mapping: dict[str, str] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        provider, sep, ours = line.partition("=")
        provider, ours = provider.strip(), (ours.strip() if sep else provider.strip())
        if provider in mapping:
            raise InvalidInput(f"变量对应第 {number} 行重复：{provider}", code="invalid_notice_template")
        mapping[provider] = ours
    return mapping


def check_notice_template(*, channel: str, purpose: str, provider_template_id: str, fields: dict[str, Any],
                          body: str, enabled: bool) -> NoticeTemplateIn:
    """Validate an admin's notice template. SMS: ``fields`` maps each variable of the provider's approved
    template (in the provider's order) to one of the notice's parameters — every parameter exactly once (an
    empty mapping keeps the built-in names); the body's ``{placeholders}`` must be the notice's parameters.
    WeChat: ``fields`` maps template fields (first, keyword1…) to the notice's parameters."""
    if channel not in NOTICE_KEYS:
        raise InvalidInput(f"不支持的渠道：{channel}", code="invalid_notice_template")
    if purpose not in NOTICE_KEYS[channel]:
        raise InvalidInput(f"渠道 {channel} 没有通知 {purpose}", code="invalid_notice_template")
    template_id = (provider_template_id or "").strip()
    if not _TEMPLATE_ID.match(template_id):
        raise InvalidInput("模板 ID 应为 1–80 个字母、数字、下划线或连字符", code="invalid_notice_template")
    if not isinstance(fields, dict) or len(fields) > MAX_NOTICE_FIELDS:
        raise InvalidInput(f"变量对应最多 {MAX_NOTICE_FIELDS} 项", code="invalid_notice_template")
    mapping: dict[str, str] = {}
    for provider, ours in fields.items():
        if not isinstance(provider, str) or not _PROVIDER_FIELD.match(provider):
            raise InvalidInput("模板变量名应为字母、数字或下划线（最多 40 个）", code="invalid_notice_template")
        if not isinstance(ours, str) or not _PARAM_NAME.match(ours):
            raise InvalidInput(f"模板变量 {provider} 对应的参数名不正确", code="invalid_notice_template")
        mapping[provider] = ours
    body = (body or "").strip()
    if len(body) > 500:
        raise InvalidInput("模板正文最多 500 个字", code="invalid_notice_template")
    if _CONTROL.search(body):
        raise InvalidInput("模板正文不能包含控制字符", code="invalid_notice_template")
    if channel == "sms":
        params = SMS_TEMPLATES[purpose].variables
        if mapping and sorted(mapping.values()) != sorted(params):
            expected = "、".join(params) or "（无）"
            raise InvalidInput(f"变量对应须恰好包含本通知的参数各一次：{expected}", code="invalid_notice_template")
        if body and sorted(set(_PLACEHOLDER.findall(body))) != sorted(params):
            expected = "、".join("{" + p + "}" for p in params) or "（无变量）"
            raise InvalidInput(f"模板正文的变量应为：{expected}", code="invalid_notice_template")
    return NoticeTemplateIn(channel=channel, purpose=purpose, provider_template_id=template_id, fields=mapping,
                            body=body, enabled=bool(enabled))


def notice_template_out(row: NoticeTemplate) -> dict[str, Any]:
    return {"channel": row.channel, "purpose": row.purpose, "label": notice_label(row.channel, row.purpose),
            "provider_template_id": row.provider_template_id, "fields": dict(row.fields or {}), "body": row.body,
            "enabled": row.enabled, "updated_at": row.updated_at}


async def notice_template_of(session: AsyncSession, channel: str, key: str) -> NoticeTemplate | None:
    """The admin's template for notice ``key`` on ``channel``, if any."""
    return await session.scalar(select(NoticeTemplate).where(NoticeTemplate.channel == channel,
                                                             NoticeTemplate.purpose == key))


async def notice_templates(session: AsyncSession) -> list[NoticeTemplate]:
    return list(await session.scalars(select(NoticeTemplate).order_by(NoticeTemplate.channel,
                                                                      NoticeTemplate.purpose)))


async def do_save_notice_template(session: AsyncSession, actor: Actor, checked: NoticeTemplateIn) -> NoticeTemplate:
    """Create or replace the template of one (channel, notice). Audited as ``config.notice_template``."""
    row = await notice_template_of(session, checked.channel, checked.purpose)
    before = None
    if row is None:
        row = NoticeTemplate(channel=checked.channel, purpose=checked.purpose)
        session.add(row)
    else:
        before = {"provider_template_id": row.provider_template_id, "fields": dict(row.fields or {}),
                  "body": row.body, "enabled": row.enabled}
    row.provider_template_id, row.fields, row.body = checked.provider_template_id, checked.fields, checked.body
    row.enabled, row.updated_at = checked.enabled, utcnow()
    await session.flush()
    record_audit(session, actor, "config.notice_template", "config",
                 f"notice_template:{checked.channel}:{checked.purpose}", before=before,
                 after={"provider_template_id": row.provider_template_id, "fields": dict(row.fields),
                        "body": row.body, "enabled": row.enabled})
    return row


# ---------------------------------------------------------------- staff views of the outbox


def mask_recipient(channel: str, recipient: str) -> str:
    """A recipient as staff lists show it: 138****8000 for a phone, the openid shortened (oAbC…Xy9z)."""
    value = recipient or ""
    if channel == "sms":
        digits = normalize_phone(value)
        if len(digits) >= 7 and digits.isdigit():
            return f"{digits[:3]}****{digits[-4:]}"
        return "****"
    if len(value) > 10:
        return f"{value[:4]}…{value[-4:]}"
    return "****"


async def outbox(session: AsyncSession, *, channel: str | None = None, status: str | None = None,
                 limit: int = 200) -> list[OutboundMessage]:
    """The newest outbound messages, optionally of one channel / status."""
    query = select(OutboundMessage)
    if channel:
        query = query.where(OutboundMessage.channel == channel)
    if status:
        query = query.where(OutboundMessage.status == status)
    return list(await session.scalars(query.order_by(OutboundMessage.id.desc()).limit(limit)))


REASON_LABELS: dict[str, str] = {
    "opted_out": "居民已退订", "daily_limit": "超过每号每日条数", "provider_unavailable": "服务商暂不可用（将重试）",
    "rate_limited": "服务商限流（将重试）", "invalid_phone": "号码无效", "outside_48h": "超出微信48小时窗口",
    "unsubscribed": "居民已取消关注", "invalid_openid": "微信用户无效", "no_template": "未配置模板",
    "notice_disabled": "模板已停用", "outcome_unknown": "结果未知（请人工核实）", "template_rejected": "模板被服务商拒绝",
    "template_params_rejected": "模板变量被拒绝", "template_params_mismatch": "模板变量不符",
    "invalid_params": "模板变量不合规", "sign_name_rejected": "签名被拒绝", "content_blocked": "内容被拦截",
    "provider_configuration": "服务商配置错误", "provider_account": "服务商账户异常", "clock_skew": "服务器时间偏差",
    "provider_rejected": "服务商拒绝", "sms_off": "短信未启用", "wechat_off": "微信未启用", "undelivered": "未送达",
}


def reason_label(reason: str | None) -> str:
    if not reason:
        return ""
    return REASON_LABELS.get(reason, reason)


def preview_text(row: OutboundMessage, overrides: dict[tuple[str, str], NoticeTemplate], *,
                 sign_name: str | None = None) -> str:
    """What the resident reads (or would read): an SMS template filled in as the sender fills it, a WeChat
    message's text, a WeChat template's body with its values."""
    params = {k: str(v) for k, v in (row.params or {}).items()}
    key = row.template_key or row.purpose
    if row.channel == "sms":
        if key == CHAT_REPLY:
            key, params = chat_reply_params(params.get("text") or row.text or "")
        override = overrides.get(("sms", key))
        try:
            notice = resolve_notice(key, provider_template_id=override.provider_template_id if override else None,
                                    fields=dict(override.fields or {}) if override else None,
                                    body=override.body if override else None)
        except InvalidInput:
            return row.text or ""
        return notice.preview(params, sign_name=sign_name)
    if row.method == "template":
        override = overrides.get(("wechat", key))
        if override is not None and override.body:
            return _PLACEHOLDER.sub(lambda m: params.get(m.group(1), m.group(0)), override.body)
        return row.text or notice_label("wechat", key)
    return row.text or ""


async def notice_overrides(session: AsyncSession) -> dict[tuple[str, str], NoticeTemplate]:
    """Every admin template by (channel, notice), for previews."""
    return {(row.channel, row.purpose): row for row in await notice_templates(session)}


def outbound_out(row: OutboundMessage, overrides: dict[tuple[str, str], NoticeTemplate]) -> dict[str, Any]:
    """A message as staff see it (API and outbox page): the recipient masked, the text as the resident reads it."""
    try:
        purpose_label = PURPOSE_LABELS[Purpose(row.purpose)]
    except ValueError:
        purpose_label = row.purpose
    try:
        status_label = STATUS_LABELS[OutboundStatus(row.status)]
    except ValueError:
        status_label = row.status
    return {"id": row.id, "channel": row.channel, "method": row.method, "purpose": row.purpose,
            "purpose_label": purpose_label, "recipient": mask_recipient(row.channel, row.recipient),
            "status": row.status, "status_label": status_label, "reason": row.reason,
            "reason_label": reason_label(row.reason),
            "preview": preview_text(row, overrides, sign_name=get_settings().sms_sign_name),
            "attempts": row.attempts, "ticket_id": row.ticket_id, "appointment_id": row.appointment_id,
            "conversation_id": row.conversation_id, "message_id": row.message_id, "customer_id": row.customer_id,
            "created_at": row.created_at,
            "sent_at": row.sent_at, "delivered_at": row.delivered_at}
