"""The billing-system interface: balance, arrears, last payment and usage for a 户号.

gasdesk ships a local implementation over its own tables (standalone/demo). A utility
plugs its real billing system by setting ``GASDESK_BILLING_URL``; ``HttpBillingSystem``
then calls ``GET {url}/accounts/{account_no}/summary`` (JSON shape in ``BalanceInfo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.config import get_settings
from gasdesk.customers.lookup_keys import account_no_key
from gasdesk.customers.models import Account, BillingBalance, UsageRecord
from gasdesk.errors import NotFound, ServiceUnavailable


@dataclass(frozen=True)
class Usage:
    period: str
    kind: str
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class BalanceInfo:
    account_no: str
    balance: Decimal
    arrears: Decimal
    last_payment_at: datetime | None = None
    last_payment_amount: Decimal | None = None
    usage: list[Usage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_no": self.account_no,
            "balance": str(self.balance),
            "arrears": str(self.arrears),
            "last_payment_at": self.last_payment_at.isoformat() if self.last_payment_at else None,
            "last_payment_amount": None if self.last_payment_amount is None else str(self.last_payment_amount),
            "usage": [{"period": u.period, "kind": u.kind, "quantity": str(u.quantity), "amount": str(u.amount)}
                      for u in self.usage],
        }


class BillingSystem(Protocol):
    async def summary(self, account_no: str) -> BalanceInfo:
        """Balance, arrears, last payment and recent usage; raises NotFound for an unknown 户号."""
        ...


class LocalBillingSystem:
    """Billing figures from gasdesk's own ledger tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def summary(self, account_no: str) -> BalanceInfo:
        account = await self.session.scalar(
            select(Account).where(Account.account_no_index == account_no_key(account_no))
        )
        if account is None:
            raise NotFound("户号不存在", code="account_not_found")
        ledger = await self.session.get(BillingBalance, account.id)
        usage = await self.session.scalars(
            select(UsageRecord).where(UsageRecord.account_id == account.id).order_by(UsageRecord.period.desc()).limit(12)
        )
        return BalanceInfo(
            account_no=account_no,
            balance=ledger.balance if ledger else Decimal("0"),
            arrears=ledger.arrears if ledger else Decimal("0"),
            last_payment_at=ledger.last_payment_at if ledger else None,
            last_payment_amount=ledger.last_payment_amount if ledger else None,
            usage=[Usage(u.period, u.kind, u.quantity, u.amount) for u in usage],
        )


class HttpBillingSystem:
    """Adapter for a utility's own billing system over HTTP (bearer-token authenticated)."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 3.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                         transport=transport)

    async def summary(self, account_no: str) -> BalanceInfo:
        try:
            response = await self._client.get(f"/accounts/{account_no}/summary")
        except httpx.HTTPError as exc:
            raise ServiceUnavailable("计费系统暂时无法访问，请稍后再试", code="billing_unavailable") from exc
        if response.status_code == 404:
            raise NotFound("计费系统中没有该户号", code="account_not_found")
        if response.status_code >= 400:
            raise ServiceUnavailable(f"计费系统返回错误 {response.status_code}", code="billing_unavailable")
        data = response.json()
        return BalanceInfo(
            account_no=account_no,
            balance=Decimal(str(data.get("balance", "0"))),
            arrears=Decimal(str(data.get("arrears", "0"))),
            last_payment_at=datetime.fromisoformat(data["last_payment_at"]) if data.get("last_payment_at") else None,
            last_payment_amount=(Decimal(str(data["last_payment_amount"]))
                                 if data.get("last_payment_amount") is not None else None),
            usage=[Usage(u["period"], u.get("kind", "gas"), Decimal(str(u["quantity"])), Decimal(str(u["amount"])))
                   for u in data.get("usage", [])],
        )

    async def aclose(self) -> None:
        await self._client.aclose()


_http_clients: dict[str, HttpBillingSystem] = {}


def billing_system_for(session: AsyncSession) -> BillingSystem:
    """The configured billing system: the utility's over HTTP (one pooled client), or the local ledger."""
    settings = get_settings()
    if settings.billing_url:
        if settings.billing_url not in _http_clients:
            _http_clients[settings.billing_url] = HttpBillingSystem(
                settings.billing_url, settings.billing_token, timeout=settings.billing_timeout_s
            )
        return _http_clients[settings.billing_url]
    return LocalBillingSystem(session)
