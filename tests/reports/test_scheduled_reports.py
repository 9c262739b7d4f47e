"""Scheduled reports: yesterday's 日报 from 08:00 local and last week's 周报 from Monday 08:00, made once
each (xlsx and PDF, sealed on disk), announced to the supervisors, downloadable by managers only (audited)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.config import reset_settings_cache
from gasdesk.db import transaction
from gasdesk.notifications.models import Notification
from gasdesk.reports.exports.models import ReportFile
from gasdesk.reports.exports.service import due_periods, make_scheduled_reports

# Monday 2026-12-07, 08:30 in Shanghai.
MONDAY_0830 = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)


@pytest.fixture
def scheduled(monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_REPORTS_SCHEDULE_ENABLED", "true")
    reset_settings_cache()


async def _run() -> int:
    async with transaction() as session:  # as the worker runs a periodic task
        return await make_scheduled_reports(session)


@pytest.mark.parametrize(("local", "day", "week"), [
    ("2026-12-07 08:30", date(2026, 12, 6), date(2026, 11, 30)),   # Monday after 08:00: yesterday, last week
    ("2026-12-07 07:59", date(2026, 12, 5), date(2026, 11, 23)),   # Monday before 08:00: not yet
    ("2026-12-09 08:00", date(2026, 12, 8), date(2026, 11, 30)),
    ("2026-12-13 23:59", date(2026, 12, 12), date(2026, 11, 30)),  # Sunday: last week is still Nov 30 – Dec 6
])
def test_due_periods(local, day, week) -> None:
    at = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=clock.local_zone())
    assert due_periods(at.astimezone(UTC), 8) == [("day", day), ("week", week)]


async def test_made_once_per_period_and_announced(scheduled, factory, session) -> None:
    supervisors = [await factory.user("supervisor"), await factory.user("supervisor")]
    agent = await factory.user("agent")
    clock.set_now(MONDAY_0830)
    assert await _run() == 4
    assert await _run() == 0  # idempotent: the rows say what exists
    rows = list(await session.scalars(select(ReportFile).order_by(ReportFile.id)))
    assert sorted((r.grain, r.fmt) for r in rows) == [("day", "pdf"), ("day", "xlsx"), ("week", "pdf"), ("week", "xlsx")]
    day_xlsx = next(r for r in rows if (r.grain, r.fmt) == ("day", "xlsx"))
    assert day_xlsx.filename == "日报-2026-12-06.xlsx"
    for row in rows:
        sealed = Path(row.path).read_bytes()
        assert not sealed.startswith((b"PK", b"%PDF"))  # encrypted at rest
    notes = list(await session.scalars(select(Notification).order_by(Notification.id)))
    assert sorted(n.user_id for n in notes) == sorted([s.id for s in supervisors] * 2)
    assert agent.id not in {n.user_id for n in notes}
    titles = {n.title for n in notes}
    assert "日报已生成：2026-12-06" in titles and any(t.startswith("周报已生成：") for t in titles)
    assert all(n.link and n.link.startswith("/api/v1/report-files/") for n in notes)
    generated = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "report.generate")))
    assert len(generated) == 2 and {e.source for e in generated} == {"job"}

    clock.set_now(datetime(2026, 12, 7, 23, 59, tzinfo=UTC))  # Tuesday 07:59 local: nothing new yet
    assert await _run() == 0
    clock.set_now(datetime(2026, 12, 8, 0, 0, tzinfo=UTC))  # Tuesday 08:00: Monday's 日报
    assert await _run() == 2
    assert await _run() == 0


async def test_off_makes_nothing(factory) -> None:
    await factory.user("supervisor")
    clock.set_now(MONDAY_0830)
    assert await _run() == 0


async def test_download_for_managers_only_and_audited(scheduled, client, factory, session) -> None:
    await factory.user("supervisor")
    clock.set_now(MONDAY_0830)
    await _run()
    row = await session.scalar(select(ReportFile).where(ReportFile.grain == "day", ReportFile.fmt == "xlsx"))
    assert row is not None
    response = await client.get(f"/api/v1/report-files/{row.id}", headers=await factory.headers("supervisor"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f"filename*=UTF-8''{quote('日报-2026-12-06.xlsx')}" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "private, no-store"
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames[0] == "概览"
    audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "report.download"))
    assert audit is not None and audit.entity_id == str(row.id)

    listing = await client.get("/api/v1/report-files", headers=await factory.headers("admin"))
    assert listing.status_code == 200 and len(listing.json()) == 4
    assert {item["url"] for item in listing.json()} >= {f"/api/v1/report-files/{row.id}"}
    for role in ("agent", "dispatcher", "field_crew"):
        denied = await client.get(f"/api/v1/report-files/{row.id}", headers=await factory.headers(role))
        assert denied.status_code == 403
    missing = await client.get("/api/v1/report-files/999999", headers=await factory.headers("supervisor"))
    assert missing.status_code == 404
