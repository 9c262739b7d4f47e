"""The residents' identity check: 户号 + the last 4 digits of a registered phone.

Ten thousand combinations per account are few, so every attempt is limited per visitor, per client IP and
per account across sockets and processes (``gasdesk.security.limits``): each failure backs the subject off
(1, 2, 4… s) and the fifth within the window locks it; an account lock-out alerts the supervisors once.
The web chat's ``identify`` frame and the bot's identity step both call ``verify_account_holder``.
"""

from __future__ import annotations

import logging
import math

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.customers.lookup_keys import account_no_key
from gasdesk.customers.models import Account, Customer
from gasdesk.customers.validation import normalize_account_no
from gasdesk.errors import InvalidInput, RateLimited
from gasdesk.notifications.service import do_notify
from gasdesk.security import limits

log = logging.getLogger(__name__)
LOCKOUT_S = {"identify.visitor": 900, "identify.ip": 3600, "identify.account": limits.IDENTITY_LOCKOUT_S}
SYSTEM = Actor.system("身份核实", "webchat")


class IdentityCheckFailed(InvalidInput):
    code = "identify_failed"


def _subjects(visitor_id: str, account_key: str) -> list[tuple[str, str]]:
    return [("identify.visitor", visitor_id), ("identify.ip", limits.client_ip.get()),
            ("identify.account", account_key)]


async def verify_account_holder(session: AsyncSession, account_no: str, phone_last4: str, *,
                                visitor_id: str) -> Customer:
    """The customer holding 户号 ``account_no`` whose registered phone ends in ``phone_last4``.

    Raises ``RateLimited`` while the visitor, IP or account is backed off or locked, and
    ``IdentityCheckFailed`` (one vague message, whatever was wrong) on a mismatch. A failure adds a
    notification to ``session`` when it locks the account: callers that roll back on errors must commit first.
    """
    account_no = normalize_account_no(account_no or "")
    phone_last4 = (phone_last4 or "").strip()
    if not account_no or len(phone_last4) != 4 or not phone_last4.isdigit():
        raise InvalidInput("请输入户号和预留手机号后四位", code="identify_input")
    key = account_no_key(account_no)
    subjects = _subjects(visitor_id, key)
    wait = await limits.attempt_wait(*subjects)
    if wait:
        minutes = math.ceil(wait / 60)
        message = (f"核实尝试过于频繁，请约 {minutes} 分钟后再试，或转人工客服" if wait >= 60
                   else f"请 {math.ceil(wait)} 秒后再试")
        raise RateLimited(message, code="identify_locked", details={"retry_after_s": math.ceil(wait)})
    account = await session.scalar(select(Account).where(Account.account_no_index == key))
    customer = await session.get(Customer, account.customer_id) if account else None
    if customer is not None:
        await session.refresh(customer, ["phones", "accounts", "addresses"])
    if customer is None or not any(p.phone.endswith(phone_last4) for p in customer.phones):
        await _record_failure(session, subjects, account)
        raise IdentityCheckFailed("户号或手机号后四位不匹配，请核对后再试")
    for name, subject in subjects:
        if name != "identify.ip":  # one success from a shared address must not clear a spray from it
            await limits.clear_failures(name, subject)
    return customer


async def _record_failure(session: AsyncSession, subjects: list[tuple[str, str]], account: Account | None) -> None:
    for name, subject in subjects:
        state = await limits.record_failure(name, subject, lockout_s=LOCKOUT_S[name])
        if state.failures != limits.limit_for(name).count:
            continue
        log.warning("identity check locked: %s", name)  # no subject: it is personal data
        if name == "identify.account":
            await _alert_lockout(session, account)


async def _alert_lockout(session: AsyncSession, account: Account | None) -> None:
    """Tell supervisors once per lock-out; the 户号 appears only as its last two digits."""
    tail = account.account_no[-2:] if account is not None else None
    body = (f"户号尾号 {tail} 的身份核实连续失败，已锁定 {LOCKOUT_S['identify.account'] // 60} 分钟。"
            if tail else f"一个不存在的户号被连续尝试核实，已锁定 {LOCKOUT_S['identify.account'] // 60} 分钟。")
    body += "可能有人在猜测户主手机号，请留意。"
    managers = await session.scalars(select(User.id).where(User.is_active.is_(True),
                                                           User.role.in_([r.value for r in MANAGERS])))
    for user_id in managers:
        do_notify(session, user_id, "security.identify_lockout", "身份核实已锁定", body)
    record_audit(session, SYSTEM, "security.identify_lockout", "account", account.id if account else None)
