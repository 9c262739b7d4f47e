"""The smart-tag pages: the rule table (admins edit in place, supervisors read, agents are refused), the address
lookup form with confirm/remove, and the customer 360's tag strip."""

from __future__ import annotations

from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.db import commit
from gasdesk.tags import service
from gasdesk.tags.models import AddressLink, TagRule
from tests.factories import login, staff_user

HTMX = {"HX-Request": "true", "Accept": "text/html"}
RULE_FORM = {
    "tag": "频繁停气区域",
    "kind": "outage_area",
    "days": "60",
    "min_count": "2",
    "colour": "#CC0000",
    "enabled": "on",
}


async def test_admin_creates_and_edits_a_rule_in_place_supervisors_only_read(session, client) -> None:
    admin = await staff_user(session, "admin")
    await login(client, admin.username)
    page = await client.get("/admin/tags", headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'id="new-rule"' in page.text
    made = await client.post("/admin/tags/rules", data=RULE_FORM, headers=HTMX)
    assert made.status_code == 200 and "已新建规则：频繁停气区域" in made.text and "近 60 天" in made.text
    rule = await session.scalar(select(TagRule))
    assert (rule.kind, rule.params, rule.colour, rule.target, rule.enabled) == (
        "outage_area",
        {"days": 60, "min_count": 2},
        "#cc0000",
        "customer",
        True,
    )
    bad = await client.post("/admin/tags/rules", data={**RULE_FORM, "days": "0"}, headers=HTMX)
    assert bad.status_code == 200 and 'role="alert"' in bad.text
    edited = await client.post(
        f"/admin/tags/rules/{rule.id}", data={**RULE_FORM, "enabled": ""}, headers=HTMX
    )
    assert "已保存规则" in edited.text
    await session.refresh(rule)
    assert rule.enabled is False

    supervisor = await staff_user(session, "supervisor")
    await login(client, supervisor.username)
    read = await client.get("/admin/tags", headers={"Accept": "text/html"})
    assert read.status_code == 200 and 'id="new-rule"' not in read.text and "频繁停气区域" in read.text
    assert (await client.post("/admin/tags/rules", data=RULE_FORM, headers=HTMX)).status_code == 403
    agent = await staff_user(session, "agent")
    await login(client, agent.username)
    assert (await client.get("/admin/tags", headers={"Accept": "text/html"})).status_code == 403


async def test_address_page_lists_links_and_confirms_in_place(session, factory, client) -> None:
    from gasdesk.conversations.models import Conversation
    from gasdesk.conversations.service import do_link_customer
    from gasdesk.telephony.media import CallInfo
    from gasdesk.telephony.service import do_start_call

    customer = await factory.customer(phones=["13900003333"])
    call = await do_start_call(
        session,
        CallInfo(call_ref="pg-addr", caller="01065553333", callee="96777", backend="sip"),
        script_version=None,
    )
    conversation = await session.get(Conversation, call.conversation_id)
    await do_link_customer(session, Actor.system("t", "test"), conversation, customer, how="agent")
    await commit(session)
    agent = await staff_user(session, "agent")
    await login(client, agent.username)
    assert (await client.get("/tags/address", headers={"Accept": "text/html"})).status_code == 200
    found = await client.post("/tags/address", data={"district": "朝阳区", "text": "幸福里"}, headers=HTMX)
    assert "139****3333" in found.text and "010****3333" in found.text and "13900003333" not in found.text
    empty = await client.post("/tags/address", data={"district": "", "text": ""}, headers=HTMX)
    assert 'role="alert"' in empty.text

    address_id = customer.addresses[0].id
    confirmed = await client.post(
        "/tags/address/confirm",
        headers=HTMX,
        data={
            "address_id": str(address_id),
            "ref": f"conv:{conversation.id}",
            "district": "朝阳区",
            "text": "幸福里",
        },
    )
    assert "已确认关联" in confirmed.text and 'data-status="confirmed"' in confirmed.text
    stale = await client.post(
        "/tags/address/confirm",
        headers=HTMX,
        data={
            "address_id": str(address_id),
            "ref": f"conv:{conversation.id}",
            "district": "朝阳区",
            "text": "幸福里",
        },
    )
    assert "该关联已不存在" in stale.text
    assert (await session.scalar(select(AddressLink.status))) == "confirmed"

    crew = await staff_user(session, "field_crew")
    await login(client, crew.username)
    assert (await client.get("/tags/address", headers={"Accept": "text/html"})).status_code == 403


async def test_customer_360_loads_its_smart_tags(session, factory, client) -> None:
    customer = await factory.customer()
    agent = await staff_user(session, "agent")
    await service.do_add_tag(session, agent, "重点关注", customer=customer)
    await commit(session)
    await login(client, agent.username)
    page = await client.get(f"/customers/{customer.id}", headers={"Accept": "text/html"})
    assert f'hx-get="/tags/customers/{customer.id}"' in page.text
    strip = await client.get(f"/tags/customers/{customer.id}", headers=HTMX)
    assert "重点关注" in strip.text and "人工" in strip.text
