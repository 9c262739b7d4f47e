"""Factories for tests: real rows through the real ``do_*`` functions, committed."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.models import User
from gasdesk.auth.service import do_create_user, do_issue_api_token
from gasdesk.customers.models import Customer
from gasdesk.customers.schemas import AccountIn, AddressIn, CustomerIn
from gasdesk.customers.service import access_customer, do_create_customer, do_open_account
from gasdesk.db import commit

TEST_PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


class Factory:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.actor = Actor.system("test-factory", "test")

    async def user(self, role: str = "agent", username: str | None = None, password: str = TEST_PASSWORD) -> User:
        user = await do_create_user(
            self.session, self.actor, username=username or f"{role.replace('_', '')}{next(_seq)}",
            password=password, role=role,
        )
        await commit(self.session)
        return user

    async def token(self, user: User) -> str:
        token, _ = await do_issue_api_token(self.session, user)
        await commit(self.session)
        return token

    async def headers(self, role: str = "agent") -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(await self.user(role))}"}

    async def customer(
        self,
        name: str = "张伟",
        phones: list[str] | None = None,
        id_card: str | None = None,
        address: dict[str, str] | None = None,
        account_no: str | None = None,
        **account: Any,
    ) -> Customer:
        n = next(_seq)
        customer = await do_create_customer(
            self.session, self.actor,
            CustomerIn(
                name=name, phones=phones or [f"139{n:08d}"], id_card=id_card,
                address=AddressIn(**address) if address else AddressIn(
                    district="朝阳区", community="幸福里小区", building=str(n % 30 + 1), unit="2", room=str(500 + n % 99)),
            ),
        )
        await self.session.flush()
        await do_open_account(
            self.session, self.actor, customer,
            AccountIn(account_no=account_no or f"21{n:08d}", address_id=customer.addresses[0].id, **account),
        )
        await commit(self.session)
        return await access_customer(self.session, customer.id)


async def login(client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD) -> httpx.Response:
    return await client.post("/login", data={"username": username, "password": password, "next": "/"})
