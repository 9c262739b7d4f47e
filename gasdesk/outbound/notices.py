"""Proactive messages to residents (消息通知与指引推送): what to send, to whom, on which channel and when.

``do_notify_resident`` picks the channel for one notice about a customer (or a conversation):

1. a WeChat contact bound to the customer (or the conversation's own WeChat contact) that follows the
   official account and has not opted out → a WeChat template message (``template_key`` = purpose, params =
   every named value);
2. else the customer's phone on file, a bound SMS contact, or the SMS conversation's number → an SMS
   (``template_key`` = purpose, params = exactly the variables of the SMS template, see
   ``gasdesk/channels/sms/templates.py``);
3. else, for a resident who only used the web chat (conversation on ``webchat``), the text is posted into
   their web chat while it is open (the 回访 card keeps its own rule: it opens a new chat if needed);
4. nothing reachable → nothing recorded, ``None``.

Opt-out is per contact (the resident said 退订 on that number or account): an opted-out contact is passed
over for the next channel; when every reachable contact opted out, one ``skipped`` row (reason opted_out)
records that the notice was not sent. Emergencies ignore opt-out. ``dedupe_key`` makes a notice idempotent:
the periodic reminder running twice, a retried transaction, a second hook for the same change → one message.
Quiet hours (SMS) and delivery are ``outbound.service.do_queue_outbound``'s.

The hooks below are registered by ``gasdesk/worker.py``:

- ticket created (no chat behind it, not a booking) → 工单进度 "已受理";
- ticket actions that change what the resident waits for → 工单进度: the first ``assign`` (from new or
  reopened: 已派单), ``start`` (工作人员正在处理 — also the crew's arrival on site), ``resolve`` (已办结).
  Not notified: re-assigning to another crew, ``close`` (office bookkeeping after the resolve), ``reopen``
  (the resident asked for it, or answered the 回访 that caused it), ``cancel`` (the resident cancelled, or
  staff merged a duplicate — a person tells them);
- appointment booked or moved → 预约确认 (time window in local time, service, district + community only);
- periodic ``notices.appointment_reminders`` → 预约提醒 the day before, once per appointment and slot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.appointments.models import Appointment, AppointmentSlot, ServiceOffering
from gasdesk.appointments.service import slot_label
from gasdesk.audit.service import Actor, record_audit
from gasdesk.channels.sms.templates import DEFAULT_TEMPLATES, MAX_VARIABLE_CHARS
from gasdesk.clock import local_zone, to_local, utcnow
from gasdesk.config import get_settings
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Channel, Conversation, Message, SenderType
from gasdesk.customers.contacts import contact_key, contact_of_visitor, contacts_of_customer, find_contact
from gasdesk.customers.models import Address, ContactIdentity, ContactKind, CustomerPhone
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.outbound.models import PURPOSE_LABELS, STATUS_LABELS, OutboundMessage, OutboundStatus, Purpose
from gasdesk.outbound.service import (
    SYSTEM,
    OutboundItem,
    do_queue_outbound,
    do_queue_outbound_many,
    mask_recipient,
    outbound_for,
    phone_on_file,
)
from gasdesk.tickets.models import Ticket, TicketStatus, TicketType

NOTICE_SENDER = "消息通知"
# Web-chat notices already posted are recognised by this payload key (dedupe without an outbound row).
WEBCHAT_DEDUPE_SCAN = 200
# Reminders for tomorrow's appointments go out in this local window only (no template message at midnight);
# an appointment booked today (it just got its confirmation) gets no separate reminder.
REMINDER_HOURS = (time(9, 0), time(20, 0))
REMINDERS_EVERY_S = 600
REASON_LABELS = {"opted_out": "居民已退订", "outside_48h": "超出微信48小时", "unsubscribed": "已取消关注",
                 "daily_limit": "超出每日条数", "outcome_unknown": "结果未知", "invalid_openid": "微信号无效",
                 "no_template": "未配置模板", "wechat_off": "微信未启用", "sms_off": "短信未启用"}
# Ticket actions a resident hears about, and what the notice says (工单进度's {status}).
PROGRESS_TEXT = {"created": "已受理", "assign": "已派单，工作人员将尽快联系您", "start": "工作人员正在处理",
                 "resolve": "已办结"}


def _webchat_text(purpose: Purpose, params: dict[str, str]) -> str:
    """The notice as a chat message: the SMS template's wording, with every value filled in."""
    template = DEFAULT_TEMPLATES.get(purpose.value)
    if template is None:
        return params.get("text", "")
    return template.body.format_map({name: params.get(name, "") for name in template.variables})


def sms_params(purpose: Purpose, params: dict[str, Any]) -> dict[str, str] | None:
    """Exactly the SMS template's variables (values cut to the providers' cap), or None when one is missing
    (this notice cannot go by SMS)."""
    template = DEFAULT_TEMPLATES.get(purpose.value)
    if template is None:
        return None
    values = {}
    for name in template.variables:
        value = str(params.get(name) or "").replace("\n", " ").strip()
        if not value:
            return None
        values[name] = value[:MAX_VARIABLE_CHARS]
    return values


def _usable(contact: ContactIdentity, emergency: bool) -> bool:
    return emergency or contact.opted_out_at is None


async def _wechat_candidates(session: AsyncSession, customer_id: int | None,
                             conversation: Conversation | None) -> list[ContactIdentity]:
    found = [c for c in await contacts_of_customer(session, customer_id)] if customer_id is not None else []
    if conversation is not None and conversation.channel == Channel.wechat.value:
        own = await contact_of_visitor(session, conversation.visitor_id)
        if own is not None and own not in found:
            found.append(own)
    return [c for c in found if c.kind == ContactKind.wechat.value and c.subscribed]


async def _sms_candidates(session: AsyncSession, customer_id: int | None, conversation: Conversation | None,
                          phone: str | None) -> list[tuple[str, ContactIdentity | None]]:
    """(number, its SMS contact if the resident ever texted from it — it carries the opt-out)."""
    out: list[tuple[str, ContactIdentity | None]] = []
    on_file = await phone_on_file(session, customer_id) or phone
    if on_file:
        out.append((on_file, await find_contact(session, ContactKind.sms, on_file)))
    bound = await contacts_of_customer(session, customer_id) if customer_id is not None else []
    if conversation is not None and conversation.channel == Channel.sms.value:
        own = await contact_of_visitor(session, conversation.visitor_id)
        if own is not None:
            bound.append(own)
    for contact in bound:
        if contact.kind == ContactKind.sms.value and all(c is None or c.id != contact.id for _, c in out):
            out.append((contact.value, contact))
    return out


async def do_notify_resident(
    session: AsyncSession, *, customer_id: int | None, purpose: Purpose, params: dict[str, Any],
    dedupe_key: str, ticket_id: int | None = None, appointment_id: int | None = None,
    followup_id: int | None = None, emergency: bool = False, conversation: Conversation | None = None,
    phone: str | None = None, actor: Actor = SYSTEM,
) -> OutboundMessage | Message | None:
    """Send one notice to a resident on the best channel they can be reached on (module docstring). Returns
    the queued (or skipped) outbound row, the web-chat message, or None when nobody could be reached.
    ``phone`` is a number to use when the customer has none on file (a ticket's contact phone)."""
    if purpose is Purpose.chat:
        raise ValueError("chat replies are queued by channels.replies, not as notices")
    values = {k: str(v) for k, v in params.items() if v is not None}
    common: dict[str, Any] = {"purpose": purpose, "customer_id": customer_id, "ticket_id": ticket_id,
                              "appointment_id": appointment_id, "followup_id": followup_id,
                              "dedupe_key": dedupe_key, "emergency": emergency, "actor": actor,
                              "conversation_id": conversation.id if conversation is not None else None}
    opted_out: list[tuple[str, str, ContactIdentity]] = []
    for contact in await _wechat_candidates(session, customer_id, conversation):
        if _usable(contact, emergency):
            return await do_queue_outbound(session, channel="wechat", method="template", recipient=contact.value,
                                           contact=contact, template_key=purpose.value, params=values, **common)
        opted_out.append(("wechat", contact.value, contact))
    texted = sms_params(purpose, values)
    if texted is not None:
        for number, sms_contact in await _sms_candidates(session, customer_id, conversation, phone):
            if sms_contact is None or _usable(sms_contact, emergency):
                return await do_queue_outbound(session, channel="sms", method="sms", recipient=number,
                                               contact=sms_contact, template_key=purpose.value, params=texted,
                                               **common)
            opted_out.append(("sms", number, sms_contact))
    if opted_out:
        channel, recipient, contact = opted_out[0]
        return await do_queue_outbound(
            session, channel=channel, method="template" if channel == "wechat" else "sms", recipient=recipient,
            contact=contact, template_key=purpose.value,
            params=values if channel == "wechat" else (texted or {}), **common)
    if conversation is not None and conversation.channel == Channel.webchat.value:
        return await _post_to_webchat(session, conversation, purpose, values, dedupe_key, actor=actor,
                                      ticket_id=ticket_id, appointment_id=appointment_id)
    return None


async def do_notify_residents(
    session: AsyncSession, *, customer_ids: list[int], purpose: Purpose, params: dict[str, Any],
    dedupe_key_of: Callable[[int], str], webchats: dict[int, Conversation] | None = None, actor: Actor = SYSTEM,
) -> dict[int, OutboundMessage | Message | None]:
    """``do_notify_resident`` for many customers and one notice (a broadcast's batch): the same channel rules —
    a following WeChat contact, else the phone on file or a bound SMS number, a skipped row when every contact
    opted out, else the customer's open web chat (``webchats``) — with each lookup made once for the whole
    batch and the rows queued by ``do_queue_outbound_many``. Returns what each customer got."""
    if purpose is Purpose.chat:
        raise ValueError("chat replies are queued by channels.replies, not as notices")
    webchats = webchats or {}
    values = {k: str(v) for k, v in params.items() if v is not None}
    texted = sms_params(purpose, values)
    contacts: dict[int, list[ContactIdentity]] = {}
    for contact in await session.scalars(select(ContactIdentity).where(ContactIdentity.customer_id.in_(customer_ids))
                                         .order_by(ContactIdentity.id)):
        contacts.setdefault(contact.customer_id or 0, []).append(contact)
    phones: dict[int, str] = {}
    for customer_id, phone in await session.execute(
            select(CustomerPhone.customer_id, CustomerPhone.phone).where(CustomerPhone.customer_id.in_(customer_ids))
            .order_by(CustomerPhone.is_primary.desc(), CustomerPhone.id)):
        phones.setdefault(customer_id, phone)
    sms_contacts = {c.value_index: c for c in await session.scalars(select(ContactIdentity).where(
        ContactIdentity.kind == ContactKind.sms.value,
        ContactIdentity.value_index.in_([contact_key(ContactKind.sms, p) for p in phones.values()])))}
    items: list[OutboundItem] = []
    owners: list[int] = []
    out: dict[int, OutboundMessage | Message | None] = {}
    for customer_id in customer_ids:
        own = contacts.get(customer_id, [])
        key = dedupe_key_of(customer_id)
        opted_out: list[OutboundItem] = []
        chosen: OutboundItem | None = None
        for contact in own:
            if contact.kind == ContactKind.wechat.value and contact.subscribed:
                item = OutboundItem(channel="wechat", method="template", recipient=contact.value, contact=contact,
                                    customer_id=customer_id, template_key=purpose.value, params=values,
                                    dedupe_key=key)
                if _usable(contact, False):
                    chosen = item
                    break
                opted_out.append(item)
        if chosen is None and texted is not None:
            numbers: list[tuple[str, ContactIdentity | None]] = []
            if customer_id in phones:
                phone = phones[customer_id]
                numbers.append((phone, sms_contacts.get(contact_key(ContactKind.sms, phone))))
            numbers += [(c.value, c) for c in own if c.kind == ContactKind.sms.value
                        and all(n is None or n.id != c.id for _, n in numbers)]
            for number, sms_contact in numbers:
                item = OutboundItem(channel="sms", method="sms", recipient=number, contact=sms_contact,
                                    customer_id=customer_id, template_key=purpose.value, params=texted,
                                    dedupe_key=key)
                if sms_contact is None or _usable(sms_contact, False):
                    chosen = item
                    break
                opted_out.append(item)
        chosen = chosen or (opted_out[0] if opted_out else None)
        if chosen is not None:
            items.append(chosen)
            owners.append(customer_id)
        elif customer_id in webchats:
            out[customer_id] = await _post_to_webchat(session, webchats[customer_id], purpose, values, key,
                                                      actor=actor, ticket_id=None, appointment_id=None)
        else:
            out[customer_id] = None
    for customer_id, row in zip(owners, await do_queue_outbound_many(session, purpose, items, actor=actor),
                                strict=True):
        out[customer_id] = row
    return out


async def _post_to_webchat(session: AsyncSession, origin: Conversation, purpose: Purpose, values: dict[str, str],
                           dedupe_key: str, *, actor: Actor, ticket_id: int | None,
                           appointment_id: int | None) -> Message | None:
    """Post into the resident's open web chat (the widget shows it, and its history keeps it). When the chat has
    ended there is nowhere to reach them: nothing is recorded."""
    earlier = await session.scalars(
        select(Message).join(Conversation, Conversation.id == Message.conversation_id).where(
            Conversation.visitor_id == origin.visitor_id, Conversation.channel == Channel.webchat.value,
            Message.sender_name == NOTICE_SENDER).order_by(Message.id.desc()).limit(WEBCHAT_DEDUPE_SCAN))
    for message in earlier:
        if (message.payload or {}).get("notice_key") == dedupe_key:
            return message
    conversation = await conversations.open_conversation_of(session, origin.visitor_id, Channel.webchat.value)
    if conversation is None:
        return None  # no conversation is opened for a notice (it would count as a chat in every report)
    text = _webchat_text(purpose, values)
    posted = await conversations.do_post_message(session, conversation, SenderType.bot, text=text,
                                                 sender_name=NOTICE_SENDER,
                                                 payload={"notice_key": dedupe_key, "purpose": purpose.value})
    record_audit(session, actor, "notice.webchat", "conversation", conversation.id, after={
        "purpose": purpose.value, "ticket_id": ticket_id, "appointment_id": appointment_id,
        "message_id": posted.message.id})
    return posted.message


# ---------------------------------------------------------------- tickets


def _hotline() -> str:
    return get_settings().service_hotline


async def _origin(session: AsyncSession, ticket: Ticket) -> Conversation | None:
    return await session.get(Conversation, ticket.conversation_id) if ticket.conversation_id else None


async def _notify_progress(session: AsyncSession, ticket: Ticket, step: str) -> None:
    await do_notify_resident(
        session, customer_id=ticket.customer_id, purpose=Purpose.ticket_progress,
        params={"ticket_no": ticket.number, "status": PROGRESS_TEXT[step], "hotline": _hotline(),
                "title": ticket.title[:35]},
        ticket_id=ticket.id, dedupe_key=f"ticket_progress:{ticket.id}:{step}:{ticket.reopen_count}",
        conversation=await _origin(session, ticket), phone=ticket.contact_phone)


async def notify_ticket_created(session: AsyncSession, ticket: Ticket) -> None:
    """Hook (tickets ON_CREATED): 已受理 for a ticket filed without a chat (a call, the counter) — a resident
    who filed it in a chat was told there — and not for bookings (预约确认 says it)."""
    if ticket.conversation_id is not None or ticket.type == TicketType.service_appointment.value:
        return
    await _notify_progress(session, ticket, "created")


async def notify_ticket_progress(session: AsyncSession, ticket: Ticket, action: str, previous: str) -> None:
    """Hook (tickets ON_TRANSITION): 工单进度 for the steps a resident waits for (module docstring)."""
    if action == "assign" and previous not in (TicketStatus.new.value, TicketStatus.reopened.value):
        return  # re-assigned to another crew: nothing changes for the resident
    if action not in PROGRESS_TEXT:
        return
    await _notify_progress(session, ticket, action)


# ---------------------------------------------------------------- appointments


async def _short_address(session: AsyncSession, appointment: Appointment) -> str:
    """District + community only: no building, unit or room in a message that may be read by anyone."""
    address = await session.get(Address, appointment.address_id) if appointment.address_id else None
    return f"{address.district}{address.community or ''}" if address is not None else ""


async def _appointment_params(session: AsyncSession, appointment: Appointment,
                              slot: AppointmentSlot) -> dict[str, str]:
    offering = await session.get(ServiceOffering, appointment.service_code)
    ticket = await session.get(Ticket, appointment.ticket_id)
    start, end = to_local(slot.start), to_local(slot.end)
    return {"service": offering.name if offering else appointment.service_code,
            "time": f"{start:%m月%d日} {start:%H:%M}-{end:%H:%M}", "hotline": _hotline(),
            "address": await _short_address(session, appointment), "ticket_no": ticket.number if ticket else "",
            "slot": slot_label(slot)}


async def _notify_appointment(session: AsyncSession, appointment: Appointment, slot: AppointmentSlot,
                              purpose: Purpose) -> OutboundMessage | Message | None:
    ticket = await session.get(Ticket, appointment.ticket_id)
    return await do_notify_resident(
        session, customer_id=appointment.customer_id, purpose=purpose,
        params=await _appointment_params(session, appointment, slot), ticket_id=appointment.ticket_id,
        appointment_id=appointment.id, dedupe_key=f"{purpose.value}:{appointment.id}:{slot.id}",
        conversation=await _origin(session, ticket) if ticket else None, phone=appointment.contact_phone)


async def notify_appointment_booked(session: AsyncSession, appointment: Appointment, slot: AppointmentSlot) -> None:
    """Hook (appointments ON_BOOKED): 预约确认 for the booked (or new) slot."""
    await _notify_appointment(session, appointment, slot, Purpose.appointment_confirmed)


async def send_appointment_reminders(session: AsyncSession) -> int:
    """Periodic: 预约提醒 for every booked appointment whose visit starts tomorrow (local date), once per
    appointment and slot (dedupe key). Runs only between 09:00 and 20:00 local time."""
    now = to_local(utcnow())
    if not REMINDER_HOURS[0] <= now.time() < REMINDER_HOURS[1]:
        return 0
    zone = local_zone()
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=zone)
    today = datetime.combine(now.date(), time(0), tzinfo=zone)
    rows = await session.execute(select(Appointment, AppointmentSlot).join(
        AppointmentSlot, AppointmentSlot.id == Appointment.slot_id).where(
        Appointment.status == "booked", AppointmentSlot.start >= tomorrow,
        AppointmentSlot.start < tomorrow + timedelta(days=1), Appointment.created_at < today))
    sent = 0
    for appointment, slot in rows.all():
        key = f"{Purpose.appointment_reminder.value}:{appointment.id}:{slot.id}"
        if await session.scalar(select(OutboundMessage.id).where(OutboundMessage.dedupe_key == key)):
            continue
        if await _notify_appointment(session, appointment, slot, Purpose.appointment_reminder) is not None:
            sent += 1
    return sent


# ---------------------------------------------------------------- guidance


async def do_send_guidance(session: AsyncSession, actor: Actor, *, customer_id: int, service_code: str,
                           ticket_id: int | None = None) -> OutboundMessage | Message:
    """Staff send the 办理指引 of a service that cannot be booked online (materials, where to go, phone, hours)
    to a customer by WeChat (all of it) or SMS (the service and the 办事指南 link ``GASDESK_GUIDANCE_URL``).
    Once per customer, service and day."""
    offering = await session.get(ServiceOffering, service_code)
    if offering is None or not offering.active:
        raise NotFound(f"没有“{service_code}”这项服务", code="service_not_found")
    if offering.bookable:
        raise InvalidInput(f"“{offering.name}”可以在线预约，无需发送办理指引", code="service_bookable")
    params = {"service": offering.name, "materials": "、".join(offering.materials)[:200],
              "where": offering.where_to_go, "hours": offering.hours, "hotline": offering.phone or _hotline(),
              "link": get_settings().guidance_url}
    day = to_local(utcnow()).date().isoformat()
    row = await do_notify_resident(session, customer_id=customer_id, purpose=Purpose.guidance, params=params,
                                   ticket_id=ticket_id, dedupe_key=f"guidance:{customer_id}:{service_code}:{day}",
                                   actor=actor)
    if row is None:
        raise InvalidInput("该居民没有可用的微信或短信联系方式" + (
            "" if get_settings().guidance_url else "（短信发送办理指引需配置办事指南链接 GASDESK_GUIDANCE_URL）"),
            code="resident_unreachable")
    return row


async def guidance_services(session: AsyncSession) -> list[ServiceOffering]:
    """Services that cannot be booked online (what staff may send guidance for)."""
    return list(await session.scalars(select(ServiceOffering).where(
        ServiceOffering.bookable.is_(False), ServiceOffering.active.is_(True)).order_by(ServiceOffering.code)))


# ---------------------------------------------------------------- for staff pages


def notice_rows(rows: list[OutboundMessage]) -> list[dict[str, Any]]:
    """What the 通知记录 section shows of each outbound row (no message text, recipient masked)."""
    out = []
    for row in rows:
        at = row.delivered_at or row.sent_at or row.updated_at or row.created_at
        out.append({
            "id": row.id, "purpose": PURPOSE_LABELS.get(Purpose(row.purpose), row.purpose)
            if row.purpose in Purpose.__members__ else row.purpose,
            "channel": row.channel,  # shown through channel_label() like every channel name
            "status": row.status, "status_label": STATUS_LABELS.get(OutboundStatus(row.status), row.status)
            if row.status in OutboundStatus.__members__ else row.status,
            "reason": REASON_LABELS.get(row.reason or "", row.reason or ""),
            "at": at, "not_before": row.not_before, "recipient": mask_recipient(row.channel, row.recipient),
            "fallback": row.fallback_of_id is not None})
    return out


async def notices_of_ticket(session: AsyncSession, ticket_id: int,
                            appointment_id: int | None = None) -> list[dict[str, Any]]:
    """The messages sent about a ticket and its appointment, newest first."""
    rows = {row.id: row for row in await outbound_for(session, ticket_id=ticket_id)}
    if appointment_id is not None:
        rows.update({row.id: row for row in await outbound_for(session, appointment_id=appointment_id)})
    return notice_rows(sorted(rows.values(), key=lambda r: r.id, reverse=True))
