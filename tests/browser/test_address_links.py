"""Address lookup (地址关联) in a real browser: an agent looks up a community, sees the numbers linked to a home
(masked for agents) and a suggested one (a landline that called about it), confirms the suggestion in place
(htmx) and sees it as confirmed; the stored link and its audit row are checked. Screenshot "address-links"."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.conversations.models import Conversation
from gasdesk.conversations.service import do_link_customer
from gasdesk.db import commit
from gasdesk.tags.models import AddressLink
from gasdesk.telephony.media import CallInfo
from gasdesk.telephony.service import do_start_call
from tests.browser.conftest import login_as, screenshot
from tests.factories import staff_user, wo_reload

pytestmark = pytest.mark.asyncio(loop_scope="session")
HOME = {"district": "朝阳区", "community": "幸福里小区", "building": "3", "unit": "2", "room": "501"}


async def test_agent_looks_up_an_address_and_confirms_a_suggested_link(
    live_server, browser, session, factory
) -> None:
    customer = await factory.customer(name="李建国", phones=["13900001111"], address=HOME)
    call = await do_start_call(
        session,
        CallInfo(call_ref="br-addr", caller="01065559876", callee="96777", backend="sip"),
        script_version=None,
    )
    conversation = await session.get(Conversation, call.conversation_id)
    await do_link_customer(session, Actor.system("test", "test"), conversation, customer, how="agent")
    await commit(session)
    agent = await staff_user(session, "agent")
    address_id = customer.addresses[0].id

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await login_as(page, live_server, agent.username)
    await page.goto(live_server + "/tags/address")
    await page.fill("#address-district", "朝阳区")
    await page.fill("#address-text", "幸福里小区")
    await page.click("#address-search")
    block = page.locator(f".address-block[data-address-id='{address_id}']")
    await block.wait_for()
    assert "李**" in await block.locator("h4").inner_text()
    linked = block.locator("tr[data-status=linked]")
    assert "139****1111" in await linked.first.inner_text()
    suggested = block.locator("tr[data-status=suggested]")
    assert await suggested.count() == 1
    row = await suggested.inner_text()
    assert "010****9876" in row and "热线来电" in row
    assert "13900001111" not in await page.content()  # agents see numbers masked

    await suggested.locator("button.link-confirm").click()
    await page.locator("[role=status]", has_text="已确认关联").wait_for()
    confirmed = page.locator(f".address-block[data-address-id='{address_id}'] tr[data-status=confirmed]")
    assert "010****9876" in await confirmed.inner_text()
    await screenshot(page, "address-links")

    link = await wo_reload(AddressLink, 1)
    assert (link.address_id, link.status, link.value, link.decided_by) == (
        address_id,
        "confirmed",
        "01065559876",
        agent.id,
    )
    actions = list(
        await session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.entity_type == "address", AuditEntry.entity_id == str(address_id)
            )
        )
    )
    assert actions == ["address_link.confirm"]
