"""智能排班 in a real browser: an admin generates next month's roster on /admin/roster, sees the grid, and the
stored roster passes the independent hard-rule checker; an edit that breaks a rule comes back (htmx) with the
warning in Chinese."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.analytics.facts import FactIn, write_facts
from gasdesk.analytics.rollup import rollup
from gasdesk.audit.service import Actor
from gasdesk.db import commit, transaction
from gasdesk.rostering.models import Roster, RosterStatus
from gasdesk.rostering.schemas import RulesIn
from gasdesk.rostering.service import do_save_rules, month_key, roster_assignments
from tests.browser.conftest import login_as, screenshot
from tests.factories import staff_user
from tests.rostering.checker import hard_violations

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_admin_generates_a_month_and_the_roster_keeps_the_rules(live_server, browser, session) -> None:
    admin = await staff_user(session, "admin", display_name="排班管理员")
    agents = [await staff_user(session, "agent", display_name=f"坐席{i}") for i in range(5)]
    for i in range(2):
        await staff_user(session, "supervisor", display_name=f"班长{i}")
    await do_save_rules(session, Actor.system("test", "test"), RulesIn(history_weeks=2, agents_per_contact=0.5))
    await commit(session)
    # two weeks of contacts, 09:00–17:00 local every day: four an hour
    today = clock.to_local(clock.utcnow()).date()
    facts = []
    for back in range(1, 15):
        day = today - timedelta(days=back)
        for hour in range(9, 17):
            start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=8)
            facts += [FactIn("contact.started", start + timedelta(minutes=10 * k), f"c:{day}:{hour}:{k}")
                      for k in range(4)]
    async with transaction() as s:
        await write_facts(s, facts)
    async with transaction() as s:
        await rollup(s)
    month = month_key((today.replace(day=1) + timedelta(days=32)).replace(day=1))

    page = await browser.new_page(viewport={"width": 1600, "height": 1000})
    await login_as(page, live_server, admin.username)
    await page.goto(f"{live_server}/admin/roster?month={month}")
    assert await page.locator("#roster-empty").count() == 1
    await page.fill("input[name=month]", month)
    await page.fill("input[name=time_limit_s]", "4")
    await page.click("#roster-generate")
    await page.wait_for_selector("#roster-grid", timeout=60_000)
    summary = await page.inner_text("#roster-summary")
    assert "草稿" in summary and "覆盖率" in summary
    assert await page.locator("#roster-grid tbody tr").count() == 7  # five agents, two supervisors

    roster = await session.scalar(select(Roster).where(Roster.status == RosterStatus.draft.value))
    assert roster is not None and month_key(roster.month) == month
    assert await hard_violations(session, roster.id) == []
    rows = await roster_assignments(session, roster)
    assert len(rows) > 0
    # the grid shows what is stored
    first = rows[0]
    selected = await page.locator(f"select[data-user='{first.user_id}'][data-day='{first.day.isoformat()}']") \
        .input_value()
    assert selected == str(first.shift_id)
    await screenshot(page, "roster-generated")

    # an agent on nine days running: the board answers with the rule it breaks, and keeps the edit
    agent = agents[0]
    days = [roster.month + timedelta(days=i) for i in range(9)]
    for day in days:
        cell = page.locator(f"select[data-user='{agent.id}'][data-day='{day.isoformat()}']")
        early = await cell.locator("option", has_text="早").get_attribute("value")
        async with page.expect_response(lambda r: r.url.endswith(f"/admin/roster/{roster.id}/cell")):
            await cell.select_option(early)
    await page.wait_for_selector("#roster-warnings li[data-code=consecutive]")
    assert "连续工作超过" in await page.inner_text("#roster-warnings")
    await screenshot(page, "roster-edited-with-warnings")
