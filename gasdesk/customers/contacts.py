"""Contact identities: a WeChat openid or a mobile number, and the customer behind it (or a stranger).

Every inbound WeChat or SMS message first finds (or creates) its identity here; a bound identity gives the
conversation its customer, so one resident has one history whatever channel they write from.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.clock import to_local, utcnow
from gasdesk.customers.lookup_keys import phone_key
from gasdesk.customers.models import ContactIdentity, ContactKind, Customer, CustomerPhone
from gasdesk.errors import InvalidInput
from gasdesk.security.crypto import blind_index

BIND_HOW = ("phone_on_file", "resident_identity", "agent", "oauth")
# WeChat lets an official account send 客服消息 only this long after the follower's last message.
WECHAT_WINDOW_S = 48 * 3600


def contact_key(kind: ContactKind | str, value: str) -> str:
    """The blind index of a contact value. A mobile number uses the customers' phone index, so an SMS
    sender is matched to the phone numbers on file without decrypting anything."""
    if kind == ContactKind.sms:
        return phone_key(value)
    return blind_index(value, kind=f"contact:{kind}")


def visitor_id_of(contact: ContactIdentity) -> str:
    """The conversation's visitor id for this contact (no personal data in it)."""
    return f"{contact.kind}:{contact.id}"


async def find_contact(session: AsyncSession, kind: ContactKind | str, value: str) -> ContactIdentity | None:
    return await session.scalar(select(ContactIdentity).where(
        ContactIdentity.kind == str(kind), ContactIdentity.value_index == contact_key(kind, value)))


async def contact_of_visitor(session: AsyncSession, visitor_id: str) -> ContactIdentity | None:
    """The contact behind a conversation's visitor id ("wechat:12"), if it is one."""
    kind, _, raw_id = visitor_id.partition(":")
    if kind not in (ContactKind.wechat, ContactKind.sms) or not raw_id.isdigit():
        return None
    contact = await session.get(ContactIdentity, int(raw_id))
    return contact if contact is not None and contact.kind == kind else None


async def contacts_of_customer(session: AsyncSession, customer_id: int) -> list[ContactIdentity]:
    return list(await session.scalars(select(ContactIdentity).where(ContactIdentity.customer_id == customer_id)
                                      .order_by(ContactIdentity.id)))


async def _customer_with_phone(session: AsyncSession, phone: str) -> int | None:
    return await session.scalar(select(CustomerPhone.customer_id).where(CustomerPhone.phone_index == phone_key(phone))
                                .order_by(CustomerPhone.id).limit(1))


async def do_find_or_create_contact(session: AsyncSession, kind: ContactKind, value: str, *,
                                    unionid: str | None = None) -> ContactIdentity:
    """The identity for a WeChat openid or a mobile number, created on first sight. A new mobile number that is
    on file for a customer is bound to that customer at once (``phone_on_file``); others start as strangers."""
    if not value or len(value) > 64:
        raise InvalidInput("无效的联系人标识", code="invalid_contact")
    contact = await find_contact(session, kind, value)
    if contact is None:
        contact = ContactIdentity(kind=kind.value, value=value, value_index=contact_key(kind, value),
                                  subscribed=True, created_at=utcnow())
        session.add(contact)
        await session.flush()
        if kind is ContactKind.sms:
            customer_id = await _customer_with_phone(session, value)
            customer = await session.get(Customer, customer_id) if customer_id is not None else None
            if customer is not None:
                await do_bind_contact(session, Actor.system("channel", kind.value), contact, customer,
                                      how="phone_on_file")
    if unionid:
        contact.unionid_index = blind_index(unionid, kind="contact:unionid")
    return contact


async def do_record_inbound_contact(session: AsyncSession, kind: ContactKind, value: str, *,
                                    unionid: str | None = None, at: datetime | None = None) -> ContactIdentity:
    """The identity a message came from (``do_find_or_create_contact``), noting when it last wrote: WeChat
    lets us answer by 客服消息 for 48 hours after that."""
    contact = await do_find_or_create_contact(session, kind, value, unionid=unionid)
    contact.last_inbound_at = at or utcnow()
    return contact


async def do_bind_contact(session: AsyncSession, actor: Actor, contact: ContactIdentity, customer: Customer, *,
                          how: str) -> bool:
    """Bind a contact to a customer (a stranger becomes known). Audited with ids only. Returns False when it
    was already bound to this customer."""
    if how not in BIND_HOW:
        raise ValueError(f"unknown binding path {how!r}")
    before = contact.customer_id
    if before == customer.id:
        return False
    contact.customer_id = customer.id
    contact.bound_at = utcnow()
    contact.bound_how = how
    record_audit(session, actor, "contact.bind", "contact", contact.id,
                 before={"customer_id": before}, after={"customer_id": customer.id, "how": how})
    return True


def do_set_subscribed(session: AsyncSession, contact: ContactIdentity, subscribed: bool) -> None:
    """A WeChat follow or unfollow event; audited (an unfollowed user cannot be messaged any more)."""
    if contact.subscribed == subscribed:
        return
    contact.subscribed = subscribed
    record_audit(session, Actor.system("wechat", "wechat"), "contact.subscribe" if subscribed else "contact.unsubscribe",
                 "contact", contact.id, before={"subscribed": not subscribed}, after={"subscribed": subscribed})


def do_set_opt_out(session: AsyncSession, actor: Actor, contact: ContactIdentity, opted_out: bool) -> None:
    """The resident asked for no more proactive messages on this contact (TD / 退订), or asked for them back."""
    was = contact.opted_out_at is not None
    if was == opted_out:
        return
    contact.opted_out_at = utcnow() if opted_out else None
    record_audit(session, actor, "contact.opt_out" if opted_out else "contact.opt_in", "contact", contact.id,
                 before={"opted_out": was}, after={"opted_out": opted_out})


def wechat_window_open(contact: ContactIdentity, now: datetime | None = None) -> bool:
    """Whether 客服消息 may still reach this follower (within 48 hours of their last message)."""
    if contact.kind != ContactKind.wechat or contact.last_inbound_at is None or not contact.subscribed:
        return False
    return ((now or utcnow()) - contact.last_inbound_at).total_seconds() < WECHAT_WINDOW_S


async def phone_on_file(session: AsyncSession, customer_id: int | None) -> str | None:
    """The customer's primary (else first) phone number."""
    if customer_id is None:
        return None
    return await session.scalar(select(CustomerPhone.phone).where(CustomerPhone.customer_id == customer_id)
                                .order_by(CustomerPhone.is_primary.desc(), CustomerPhone.id).limit(1))


async def channel_note(session: AsyncSession, visitor_id: str, customer_id: int | None) -> str | None:
    """What an agent must know about replying on this conversation's channel (WeChat's 48-hour window, SMS)."""
    contact = await contact_of_visitor(session, visitor_id)
    if contact is None:
        return None
    stranger = "陌生人（未绑定客户，可在右侧关联）；" if contact.customer_id is None and customer_id is None else ""
    if contact.kind == ContactKind.sms:
        return f"{stranger}短信渠道：回复以短信发送，超过 140 字会被截断"
    phone = await phone_on_file(session, customer_id)
    instead = "回复将改发短信提醒居民查看" if phone else "回复无法送达，请电话联系居民"
    if not contact.subscribed:
        return f"{stranger}居民已取消关注公众号：{instead}"
    if wechat_window_open(contact):
        assert contact.last_inbound_at is not None
        until = to_local(contact.last_inbound_at + timedelta(seconds=WECHAT_WINDOW_S))
        return f"{stranger}微信：{until:%m-%d %H:%M} 前可直接回复（48 小时窗口）"
    return f"{stranger}微信 48 小时窗口已过：{instead}"
