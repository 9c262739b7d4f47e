"""Exports on demand: any report as xlsx or PDF with the report's own query, for supervisors and admins,
with a UTF-8 file name, the same figures as the report built directly, and an audit row."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from urllib.parse import quote

from openpyxl import load_workbook
from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.reports import render
from gasdesk.reports.builders import build_report, period_for
from gasdesk.reports.figures import export_filename
from gasdesk.reports.idle_group import cpu_cgroup, idle_group_dir
from tests.reports.priority_probe import (
    cpu_cgroup_dir,
    cpu_cgroups_when_a_read_starves,
    policies_when_a_read_starves,
    policy_while_reading,
    render_cpu_share,
    session_and_group,
)
from tests.reports.scenario import two_days

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_xlsx_export_matches_the_report(client, factory, session) -> None:
    clock.set_now(datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
    headers = await factory.headers("supervisor")
    response = await client.get("/api/v1/reports/overview/export",
                                params={"format": "xlsx", "grain": "day", "day": "2026-12-03", "district": "和平区"},
                                headers=headers)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == XLSX
    report = await build_report(session, "overview", period_for("day", date(2026, 12, 3)), filters={"district": "和平区"})
    name = export_filename(report, "xlsx")
    assert name.startswith("日报-") and name.endswith(".xlsx")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f"filename*=UTF-8''{quote(name)}" in disposition
    summary = load_workbook(io.BytesIO(response.content))["概览"]
    values = [c.value for row in summary.iter_rows() for c in row if c.value is not None]
    assert values[0] == report.title and "区域：和平区" in values
    for kpi in report.kpis:
        row = next(r for r in summary.iter_rows(values_only=True) if r[0] == kpi.label)
        assert row[1:3] == (kpi.value, kpi.previous)
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "report.export"))
    assert entry is not None and entry.entity_id == "overview"
    assert entry.changes["after"]["format"] == "xlsx" and entry.changes["after"]["district"] == "和平区"
    assert entry.changes["after"]["period"] == report.period.label


async def test_pdf_export(client, factory, session, tmp_path) -> None:
    response = await client.get("/api/v1/reports/overview/export", params={"format": "pdf", "grain": "month",
                                                                           "day": "2026-11-15"},
                                headers=await factory.headers("admin"))
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/pdf"
    report = await build_report(session, "overview", period_for("month", date(2026, 11, 15)), filters={})
    assert quote(export_filename(report, "pdf")) in response.headers["content-disposition"]
    (tmp_path / "r.pdf").write_bytes(response.content)
    text = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True, check=True,
                          timeout=20).stdout
    assert report.title in text and report.period.label in text


async def test_export_needs_a_manager_and_a_valid_query(client, factory) -> None:
    for role in ("agent", "dispatcher", "field_crew"):
        response = await client.get("/api/v1/reports/overview/export", headers=await factory.headers(role))
        assert response.status_code == 403
    headers = await factory.headers("supervisor")
    bad = await client.get("/api/v1/reports/overview/export", params={"format": "docx"}, headers=headers)
    assert bad.status_code == 422
    bad = await client.get("/api/v1/reports/overview/export", params={"grain": "decade"}, headers=headers)
    assert bad.status_code == 422


async def test_report_page_links_its_exports(client, factory) -> None:
    page = await client.get("/reports/channels", params={"grain": "week", "day": "2026-12-03", "district": "和平区"},
                            headers={**await factory.headers("supervisor"), "Accept": "text/html"})
    assert page.status_code == 200
    for fmt in ("xlsx", "pdf"):
        assert f'href="/api/v1/reports/channels/export?format={fmt}&amp;grain=week&amp;day=2026-12-03' in page.text


async def test_exports_render_in_a_lower_priority_process(monkeypatch) -> None:
    # The product default (the suite's conftest renders at normal priority): a pool of its own, started here.
    monkeypatch.delenv("GASDESK_REPORTS_RENDER_IDLE")
    monkeypatch.delenv("GASDESK_REPORTS_RENDER_CPU_SHARE")
    reset_settings_cache()
    assert get_settings().reports_render_idle
    expected_share = get_settings().render_cpu_share
    assert get_settings().reports_render_cpu_share is None and 0.25 <= expected_share <= 1
    render.shutdown_pool()
    try:
        # Builtins or a tiny probe module, not a function of this module: unpickling one would import this test
        # module in the child, at idle priority (seconds on a busy machine).
        loop, pool = asyncio.get_running_loop(), render._executor()
        pid = await loop.run_in_executor(pool, os.getpid)
        niceness = await loop.run_in_executor(pool, os.nice, 0)
        share = await loop.run_in_executor(pool, render_cpu_share)
        policy = await loop.run_in_executor(pool, os.sched_getscheduler, 0) if sys.platform == "linux" else -1
        # the figures are read in the idle class too; a read starved past its guard goes on in the normal
        # class, every thread of it, and back to the idle class after
        reading = await loop.run_in_executor(pool, policy_while_reading) if sys.platform == "linux" else None
        starved = await loop.run_in_executor(pool, policies_when_a_read_starves) if sys.platform == "linux" else None
        child_pid, child_session, group = await loop.run_in_executor(pool, session_and_group)
        child_cgroup = await loop.run_in_executor(pool, cpu_cgroup_dir)
        starved_cgroups = await loop.run_in_executor(pool, cpu_cgroups_when_a_read_starves)
    finally:
        render.shutdown_pool()  # the next test's renders start a pool under the suite's settings
    assert pid != os.getpid()
    assert share == expected_share  # the drawing pauses in the child; the web process itself never does
    assert render._render_cpu_share == 1.0
    assert niceness >= min(19, os.nice(0) + render.RENDER_NICENESS)  # reading, too, comes after chat
    if sys.platform == "linux":
        assert policy == os.SCHED_IDLE
        assert reading == (os.SCHED_IDLE, os.SCHED_IDLE)
        assert starved == ((os.SCHED_OTHER, os.SCHED_OTHER), (os.SCHED_IDLE, os.SCHED_IDLE))
    # a session of its own, so that its nice level counts against every other session (Linux's autogroup)
    assert child_pid == pid and child_session == pid != os.getsid(0)
    if group is not None:
        assert group.endswith("nice 19"), group
    # ... and, where this machine lets a process make one, in an idle CPU cgroup: idle against every group
    ours = cpu_cgroup()
    idle_dir = idle_group_dir(ours) if ours is not None else None
    if ours is not None and idle_dir is not None and os.access(idle_dir if idle_dir.exists() else idle_dir.parent,
                                                               os.W_OK):
        assert child_cgroup == str(idle_dir)
        assert (idle_dir / "cpu.idle").read_text().strip() == "1"
        # a starved read goes on outside it (its snapshot must not wait on idle time), and goes back after
        assert starved_cgroups == (str(ours.own), str(idle_dir))
    else:
        assert child_cgroup == (str(ours.own) if ours is not None else None)
        assert starved_cgroups == (child_cgroup, child_cgroup)


async def test_the_export_is_read_and_rendered_outside_the_web_process(client, factory, session, monkeypatch) -> None:
    await two_days(session, factory)
    expected = await build_report(session, "overview", period_for("day", date(2026, 12, 7)), filters={})
    assert next(k for k in expected.kpis if k.key == "contacts").value == 3

    def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the web process built the export's report")

    # in this (web) process only: the render process imports the real builder
    monkeypatch.setattr(render, "build_report", not_here)
    response = await client.get("/api/v1/reports/overview/export", params={"format": "xlsx", "grain": "day",
                                                                           "day": "2026-12-07"},
                                headers=await factory.headers("supervisor"))
    assert response.status_code == 200, response.text[:300]
    summary = load_workbook(io.BytesIO(response.content))["概览"]
    for kpi in expected.kpis:
        row = next(r for r in summary.iter_rows(values_only=True) if r[0] == kpi.label)
        assert row[1:3] == (kpi.value, kpi.previous), kpi.key
    unknown = await client.get("/api/v1/reports/nosuch/export", headers=await factory.headers("supervisor"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "report_not_found"
