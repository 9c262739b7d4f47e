"""Report builders, the JSON API and the pages, on facts made by the real do_* functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from gasdesk import clock
from gasdesk.analytics import ingest
from gasdesk.analytics.rollup import rollup
from gasdesk.conversations.service import do_accept, do_close
from gasdesk.db import commit, transaction
from gasdesk.followups.service import do_answer_followup
from gasdesk.reports.builders import BUILDERS, build_report, period_for, previous_period
from gasdesk.reports.schemas import ReportOut, report_out
from tests.factories import bot_conversation, desk_agent, queued_conversation, staff_user, wo_ticket

MONDAY = datetime(2026, 12, 7, 2, 5, tzinfo=UTC)  # 10:05 Shanghai


def test_periods_are_local_and_stored_in_utc() -> None:
    day = period_for("day", date(2026, 12, 3))
    assert (day.start, day.end, day.label) == (datetime(2026, 12, 2, 16, tzinfo=UTC),
                                              datetime(2026, 12, 3, 16, tzinfo=UTC), "2026-12-03")
    week = period_for("week", date(2026, 12, 3))  # a Thursday: Monday 11-30 to Sunday 12-06
    assert (week.start, week.end) == (datetime(2026, 11, 29, 16, tzinfo=UTC), datetime(2026, 12, 6, 16, tzinfo=UTC))
    assert "11-30 至 12-06" in week.label
    month = period_for("month", date(2026, 12, 31))
    assert (month.start, month.end, month.label) == (datetime(2026, 11, 30, 16, tzinfo=UTC),
                                                    datetime(2026, 12, 31, 16, tzinfo=UTC), "2026年12月")
    year = period_for("year", date(2026, 6, 1))
    assert (year.start, year.end, year.label) == (datetime(2025, 12, 31, 16, tzinfo=UTC),
                                                 datetime(2026, 12, 31, 16, tzinfo=UTC), "2026年")
    assert previous_period(month) == period_for("month", date(2026, 11, 5))
    assert previous_period(week).end == week.start
    assert previous_period(year).label == "2025年"


async def _two_days(session: Any, factory: Any) -> dict[str, Any]:
    """Sunday: one web chat the bot ends. Monday: two web chats (one closed by the bot) and a WeChat chat an
    agent handles, a ticket resolved and its 回访 answered with 4."""
    clock.set_now(MONDAY - timedelta(days=1))
    sunday = await bot_conversation(session)
    await do_close(session, sunday, by="bot")
    await commit(session)
    clock.set_now(MONDAY)
    for n in range(2):
        chat = await bot_conversation(session)
        if n == 0:
            await do_close(session, chat, by="bot")
            await commit(session)
    agent = await desk_agent(factory)
    chat = await queued_conversation(session, channel="wechat")
    clock.set_now(MONDAY + timedelta(minutes=1))
    await do_accept(session, agent, chat)
    await commit(session)
    clock.set_now(MONDAY + timedelta(minutes=6))
    await do_close(session, chat, by="agent", user=agent)
    await commit(session)
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="resolved", crew_id=crew.id, district="和平区",
                             channel="webchat", conversation_id=chat.id)
    from sqlalchemy import select

    from gasdesk.followups.models import FollowUpSurvey
    survey = await session.scalar(select(FollowUpSurvey).where(FollowUpSurvey.ticket_id == ticket.id))
    await do_answer_followup(session, survey.id, score=4, solved=True)
    await commit(session)
    await ingest.drain()
    async with transaction() as s:
        await rollup(s)
    return {"agent": agent}


def _kpis(report: Any) -> dict[str, tuple[float | None, float | None]]:
    return {k.key: (k.value, k.previous) for k in report.kpis}


async def test_overview_with_the_previous_day(session, factory) -> None:
    await _two_days(session, factory)
    report = await build_report(session, "overview", period_for("day", date(2026, 12, 7)), filters={})
    kpis = _kpis(report)
    assert kpis["contacts"] == (3, 1)
    assert kpis["ai_rate"] == (50.0, 100.0)  # Monday: 1 of 2 closed by the bot alone; Sunday 1 of 1
    assert kpis["transfer_rate"] == (pytest.approx(33.33), 0.0)
    assert kpis["avg_wait_s"] == (60.0, None) and kpis["avg_handle_s"] == (300.0, None)
    assert kpis["tickets_created"] == (1, 0) and kpis["followup_score"] == (4.0, None)
    trend = report.charts[0]
    assert len(trend.categories) == 24 and trend.categories[10] == "10:00"
    assert trend.series[0].values[10] == 3 and sum(v or 0 for v in trend.series[0].values) == 3
    ReportOut.model_validate(report_out(report))  # the API's shape holds


async def test_every_report_builds_and_filters_apply(session, factory) -> None:
    await _two_days(session, factory)
    week = period_for("week", date(2026, 12, 7))
    for key in BUILDERS:
        report = await build_report(session, key, week, filters={"channel": "wechat"})
        assert report.filters == {"channel": "wechat"}
        ReportOut.model_validate(report_out(report))
    channels = await build_report(session, "channels", period_for("week", date(2026, 12, 7)), filters={})
    assert channels.tables[0].rows[0][:2] == ["网页聊天", 2.0] and channels.tables[0].rows[1][:2] == ["微信", 1.0]
    only_wechat = await build_report(session, "overview", week, filters={"channel": "wechat"})
    assert _kpis(only_wechat)["contacts"][0] == 1
    peaks = await build_report(session, "peaks", week, filters={})
    heat = peaks.charts[0]
    assert heat.y_categories[0] == "周一" and heat.series[0].values[10] == 3  # Monday 10:00
    assert "10:00–11:00" in peaks.notes[0]
    followups = await build_report(session, "followups", week, filters={})
    assert followups.tables[0].rows == [["维修", 1.0, 4.0, 100.0]]
    agents = await build_report(session, "agents", week, filters={})
    row = agents.tables[0].rows[0]
    assert row[1:4] == [1.0, 1.0, 300.0] and row[4] == pytest.approx(100 * 300 / 3600, abs=0.01)


async def test_api_and_pages(client, factory, session) -> None:
    await _two_days(session, factory)
    sup, agent = await factory.headers("supervisor"), await factory.headers("agent")
    got = await client.get("/api/v1/reports/overview", params={"grain": "day", "day": "2026-12-07"}, headers=sup)
    assert got.status_code == 200
    body = got.json()
    assert set(body) == set(ReportOut.model_fields)
    assert body["period"] == {"grain": "day", "start": "2026-12-06T16:00:00+00:00",
                              "end": "2026-12-07T16:00:00+00:00", "label": "2026-12-07"}
    assert {k["key"]: k["value"] for k in body["kpis"]}["contacts"] == 3
    assert (await client.get("/api/v1/reports/overview", headers=agent)).status_code == 403
    assert (await client.get("/api/v1/reports/nope", headers=sup)).status_code == 404
    assert (await client.get("/api/v1/reports/overview", params={"team": "x"}, headers=sup)).status_code == 422
    assert (await client.get("/api/v1/reports/overview", params={"grain": "decade"}, headers=sup)).status_code == 422
    page = await client.get("/reports", params={"day": "2026-12-07"}, headers=sup)
    assert page.status_code == 200
    assert "运营总览日报" in page.text and "/static/reports/echarts.min.js" in page.text
    assert 'id="report-data"' in page.text and 'id="chart-trend"' in page.text
    peaks = await client.get("/reports/peaks", params={"grain": "month", "day": "2026-12-07"}, headers=sup)
    assert peaks.status_code == 200 and "进线热力图" in peaks.text
    assert (await client.get("/reports", headers=agent)).status_code == 403
    assert (await client.get("/reports/nope", headers=sup)).status_code == 404
    script = await client.get("/static/reports/echarts.min.js")
    assert script.status_code == 200 and len(script.content) > 500_000
