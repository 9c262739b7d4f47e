"""The customer 360 lists the customer's recent tickets and appointments (来电与工单关联), in the API and on
/customers/{id}; and an address typed without its district still finds the customer."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.appointments.models import AppointmentSlot, ServiceOffering
from gasdesk.appointments.service import book_appointment, do_generate_slots
from gasdesk.customers.service import CustomerQuery, find_customers
from gasdesk.db import commit
from tests.factories import bot_conversation, login, staff_user, wo_actor, wo_ticket

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 Shanghai
HOME = {"district": "和平区", "community": "幸福里小区", "building": "3", "unit": "2", "room": "501"}


@pytest.fixture(autouse=True)
def frozen() -> None:
    clock.set_now(T0)


async def _customer_with_work(session, factory) -> dict:
    customer = await factory.customer(name="刘芳", phones=["13912345678"], account_no="2109876543", address=HOME)
    other = await factory.customer(name="王强", phones=["13700007777"])
    conversation = await bot_conversation(session, customer_id=customer.id)
    repair = await wo_ticket(session, "repair", customer_id=customer.id, title="灶具打不着火")
    clock.set_now(T0.replace(hour=3))
    leak = await wo_ticket(session, "gas_leak", priority="urgent", customer_id=customer.id,
                           conversation_id=conversation.id, title="燃气泄漏（在线报警）")
    await wo_ticket(session, "complaint", customer_id=other.id, title="别人的投诉")
    await do_generate_slots(session, district="和平区", first_day=date(2026, 12, 8), days=1,
                            windows=[("09:00", "12:00")], capacity=3)
    await commit(session)
    slot = await session.scalar(select(AppointmentSlot).where(AppointmentSlot.district == "和平区"))
    booking = await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="安检", slot_id=slot.id)
    await commit(session)
    service_name = await session.scalar(select(ServiceOffering.name).where(ServiceOffering.code == "安检"))
    return {"customer": customer.id, "repair": repair, "leak": leak, "booking": booking, "slot": slot,
            "conversation": conversation.id, "service_name": service_name}


async def test_360_api_lists_recent_tickets_and_appointments(client, session, factory) -> None:
    work = await _customer_with_work(session, factory)
    response = await client.get(f"/api/v1/customers/{work['customer']}", headers=await factory.headers("agent"))
    assert response.status_code == 200, response.text
    body = response.json()
    booked = work["booking"].ticket
    assert [t["number"] for t in body["tickets"]] == [booked.number, work["leak"].number, work["repair"].number]
    leak = body["tickets"][1]
    assert (leak["type_label"], leak["status_label"], leak["priority_label"]) == ("燃气泄漏", "新建", "紧急")
    assert leak["conversation_id"] == work["conversation"] and leak["link"] == f"/tickets/{work['leak'].id}"
    assert leak["title"] == "燃气泄漏（在线报警）"
    [appointment] = body["appointments"]
    assert appointment["ticket_number"] == booked.number and appointment["service_code"] == "安检"
    assert appointment["service_name"] == work["service_name"] and appointment["status_label"] == "已预约"
    assert datetime.fromisoformat(appointment["slot_start"]) == work["slot"].start
    assert datetime.fromisoformat(appointment["slot_end"]) == work["slot"].end


async def test_customer_page_shows_tickets_and_appointments(client, session, factory) -> None:
    work = await _customer_with_work(session, factory)
    agent = await staff_user(session, "agent")
    assert (await login(client, agent.username)).status_code == 303
    page = await client.get(f"/customers/{work['customer']}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    text = page.text
    for ticket in (work["repair"], work["leak"]):
        assert f'href="/tickets/{ticket.id}"' in text and ticket.number in text
    assert "燃气泄漏" in text and "紧急" in text and "别人的投诉" not in text
    assert work["service_name"] in text and "12-08 09:00" in text and "已预约" in text


async def test_customer_without_work_says_so(client, session, factory) -> None:
    customer = await factory.customer(name="陈静")
    body = (await client.get(f"/api/v1/customers/{customer.id}", headers=await factory.headers("dispatcher"))).json()
    assert body["tickets"] == [] and body["appointments"] == []
    agent = await staff_user(session, "agent")
    await login(client, agent.username)
    text = (await client.get(f"/customers/{customer.id}", headers={"Accept": "text/html"})).text
    assert "暂无工单" in text and "暂无预约" in text


# ---------------------------------------------------------------- address without the district


@pytest.mark.parametrize("typed", ["幸福里小区3号楼2单元501", "幸福里三栋二单元501室", "幸福里3-2-0501"])
async def test_address_without_district_finds_the_customer(client, session, factory, typed: str) -> None:
    liu = await factory.customer(name="刘芳", phones=["13912345678"], address=HOME)
    neighbour = await factory.customer(name="李娜", phones=["13900005678"], address={**HOME, "room": "502"})
    namesake = await factory.customer(name="赵敏", phones=["13600006666"],
                                      address={**HOME, "district": "沈河区", "community": "幸福里家园"})
    elsewhere = await factory.customer(name="王强", phones=["13700007777"],
                                       address={**HOME, "community": "兴华小区"})
    headers = await factory.headers("agent")
    for body in ({"address": typed}, {"q": typed}):
        response = await client.post("/api/v1/customers/search", headers=headers, json=body)
        found = sorted(c["id"] for c in response.json())
        # the same home in both districts that have a 幸福里; never the neighbour or another community
        assert found == sorted([liu.id, namesake.id]), (typed, body)
        assert neighbour.id not in found and elsewhere.id not in found
    assert [c.id for c in await find_customers(session, CustomerQuery(address="和平区" + typed))] == [liu.id]
    assert await find_customers(session, CustomerQuery(address="幸福里小区3号楼2单元999")) == []
