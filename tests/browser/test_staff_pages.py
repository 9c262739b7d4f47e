"""An agent logs in, finds a customer by phone and by address, and opens the customer 360;
an admin browses the audit log. All in a real browser, in Chinese."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gasdesk.customers.models import BillingBalance
from gasdesk.db import commit
from tests.browser.conftest import login_as, screenshot

# One Chromium for the whole session (conftest.py): the tests run in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")



async def test_agent_finds_customer_and_opens_360(live_server, browser, factory, session) -> None:
    agent = await factory.user("agent", username="agentzhao")
    customer = await factory.customer(
        name="刘芳", phones=["13912345678"], account_no="2109876543", meter_type="ic_card",
        address={"district": "和平区", "community": "幸福里小区", "building": "3", "unit": "2", "room": "501"},
    )
    session.add(BillingBalance(account_id=customer.accounts[0].id, balance=Decimal("88.50"), arrears=Decimal("0")))
    await commit(session)

    page = await browser.new_page()
    await login_as(page, live_server, agent.username)
    await page.goto(live_server + "/customers")
    await page.fill("input[name=q]", "139 1234 5678")
    await page.click("button:has-text('查询')")
    await page.wait_for_selector("text=刘芳")
    await page.fill("input[name=q]", "和平区幸福里三栋二单元501")
    await page.click("button:has-text('查询')")
    await page.wait_for_selector("#results a:has-text('刘芳')")
    await page.click("#results a:has-text('刘芳')")
    await page.wait_for_selector("text=2109876543")
    body = await page.inner_text("body")
    assert "IC卡表" in body and "¥88.50" in body and "和平区幸福里小区3号楼2单元501室" in body
    await screenshot(page, "customer-360")


async def test_admin_browses_audit_log(live_server, browser, factory) -> None:
    admin = await factory.user("admin", username="adminqian")
    await factory.customer(name="陈静")
    page = await browser.new_page()
    await login_as(page, live_server, admin.username)
    await page.goto(live_server + "/admin/audit?entity_type=customer")
    await page.wait_for_selector("td.audit-action:has-text('新建客户')")
    table = await page.inner_text("table")
    assert "陈静" in table  # decrypted for the admin, encrypted at rest
    # A readable diff, not JSON: one line per field, the new value marked.
    assert await page.locator("ul.changes li:has-text('姓名') ins").first.inner_text() == "陈静"
    assert "customer.create" not in table and '{"' not in table
    await screenshot(page, "audit-log")


async def test_wrong_password_shows_chinese_error(live_server, browser, factory) -> None:
    user = await factory.user("agent", username="agentsun")
    page = await browser.new_page()
    await page.goto(live_server + "/login")
    await page.fill("input[name=username]", user.username)
    await page.fill("input[name=password]", "wrong-password")
    await page.click("button[type=submit]")
    await page.wait_for_selector("text=用户名或密码错误")


async def test_admin_changes_a_role_and_resets_a_password_in_the_page(live_server, browser, factory) -> None:
    admin = await factory.user("admin", username="adminli")
    await factory.user("agent", username="agentforgot")
    page = await browser.new_page()
    await login_as(page, live_server, admin.username)
    await page.goto(live_server + "/admin/users")
    row = page.locator("tr[data-username=agentforgot]")
    await row.locator("select[name=role]").select_option("dispatcher")
    await row.locator("button:has-text('修改角色')").click()
    await page.wait_for_selector(".notice:has-text('已将 agentforgot 的角色改为调度')")
    assert "调度" in await row.locator("select[name=role] option:checked").inner_text()

    page.once("dialog", lambda dialog: dialog.accept())  # 确定重置…？
    await row.locator("summary:has-text('重置密码')").click()
    await row.locator("input[name=password]").fill("reset-by-admin-1")
    await row.locator("button:has-text('确定重置')").click()
    await page.wait_for_selector(".notice:has-text('已重置 agentforgot 的密码')")
    await screenshot(page, "admin-users")

    # The user logs in with the new password and lands on the dispatcher's console.
    other = await browser.new_page()
    await other.goto(live_server + "/login")
    await other.fill("input[name=username]", "agentforgot")
    await other.fill("input[name=password]", "reset-by-admin-1")
    await other.click("button[type=submit]")
    await other.wait_for_url(live_server + "/dispatch")

    await page.goto(live_server + "/admin/audit?action=user.update")
    await page.wait_for_selector("ul.changes li:has-text('密码')")
    text = await page.inner_text("table")
    assert "角色" in text and "调度" in text and "reset-by-admin-1" not in text
