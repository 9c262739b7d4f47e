"""The demo seed builds a believable utility once."""

from __future__ import annotations

from sqlalchemy import func, select

from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.branches.models import BranchHoliday, ServiceBranch
from gasdesk.customers.models import Account, BillingBalance, Customer, UsageRecord
from gasdesk.customers.service import CustomerQuery, find_customers
from gasdesk.db import sessionmaker
from gasdesk.seed.demo import seed_demo_data
from gasdesk.system.api import DEMO_LOGINS


async def test_seed_demo_data_once(client) -> None:
    result = await seed_demo_data(customers=60)
    assert result is not None
    assert result.branches == 5 and result.customers >= 55 and result.accounts == 60
    assert result.logins == DEMO_LOGINS

    async with sessionmaker()() as s:
        roles = set(await s.scalars(select(User.role)))
        assert roles == {r.value for r in Role}
        branches = list(await s.scalars(select(ServiceBranch)))
        assert len(branches) == 5
        holidays = await s.scalar(select(func.count()).select_from(BranchHoliday))
        assert holidays == 5 * 13
        customers = await s.scalar(select(func.count()).select_from(Customer))
        accounts = list(await s.scalars(select(Account)))
        assert customers == result.customers and len(accounts) == 60
        assert all(a.meter_type in {"ic_card", "smart", "mechanical"} for a in accounts)
        assert {a.meter_type for a in accounts} == {"ic_card", "smart", "mechanical"}
        balances = await s.scalar(select(func.count()).select_from(BillingBalance))
        assert balances == 60
        assert await s.scalar(select(func.count()).select_from(UsageRecord)) > 60
        [demo] = await find_customers(s, CustomerQuery(q="13800001234"))
        assert demo.name == "张伟" and [a.account_no for a in demo.accounts] == ["2103345678"]

    # the demo logins work
    for username, password, _label in DEMO_LOGINS[:2]:
        response = await client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert response.status_code == 200, username

    # a second run changes nothing
    assert await seed_demo_data(customers=60) is None
    async with sessionmaker()() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == result.customers
        assert await s.scalar(select(func.count()).select_from(BillingBalance)) == 60
        assert await s.scalar(select(func.count()).select_from(User)) == len(DEMO_LOGINS)


async def test_demo_has_bookable_slots_in_every_district(session) -> None:
    from sqlalchemy import func, select

    from gasdesk.appointments.models import AppointmentSlot
    from gasdesk.seed.demo import DISTRICTS, seed_demo_slots

    made = await seed_demo_slots(days=3)
    assert made == len(DISTRICTS) * 3 * 2
    assert await seed_demo_slots(days=3) == 0  # idempotent
    rows = await session.execute(select(AppointmentSlot.district, func.count()).group_by(AppointmentSlot.district))
    assert dict(rows.all()) == {d: 6 for d in DISTRICTS}
