"""Where callers drop: calls driven through the real controller leave node visits and call rows, and the report
(API and the table on /admin/ivr) counts them per node and per call."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from telephony_kit import HANGUP, FakeCaller, SilentRenderer, call_rows

from gasdesk import clock
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.telephony import controller, service
from gasdesk.telephony.media import CallInfo
from gasdesk.telephony.models import Call
from tests.factories import desk_agent, login, queued_conversation, staff_user

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday, the gas group is open


@pytest.fixture(autouse=True)
def quick_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_TELEPHONY_QUEUE_POLL_S", "0.02")
    monkeypatch.setenv("GASDESK_TELEPHONY_QUEUE_WAIT_LIMIT_S", "2")
    reset_settings_cache()
    clock.set_now(T0)


async def _call(caller: FakeCaller, prompts: SilentRenderer) -> Call:
    await asyncio.wait_for(controller.handle_call(caller, prompts=prompts), timeout=10)
    return (await call_rows(caller.info.call_ref)).call


async def _calls(session, factory, tmp_path: Path) -> dict[str, Call]:
    """Four calls and a refused one: hung up at the main menu; answered by the agent; hung up waiting in the
    queue; and turned away over capacity."""
    prompts = SilentRenderer(tmp_path / "p")
    agent = await desk_agent(factory)
    calls = {"menu_hangup": await _call(FakeCaller(inputs=[HANGUP], caller="13900000061"), prompts)}
    calls["answered"] = await _call(FakeCaller(inputs=["0"], caller="13900000062"), prompts)
    await queued_conversation(session, channel="voice")  # the agent is on another call now
    calls["abandoned"] = await _call(FakeCaller(inputs=["0"], caller="13900000063", hang_up_on="坐席正忙"), prompts)
    calls["refused"] = await service.do_refuse_call(session, CallInfo("r-1", "13900000064", "96777", "sip"),
                                                    cause="over_capacity")
    await commit(session)
    # the stored durations, as do_end_call would have measured them over real time
    for key, values in {"answered": {"queue_wait_s": 20, "talk_s": 120, "hold_s": 30},
                        "abandoned": {"queue_wait_s": 40}}.items():
        await session.execute(update(Call).where(Call.id == calls[key].id).values(**values))
    await commit(session)
    assert agent is not None
    clock.set_now(T0 + timedelta(minutes=5))
    return calls


async def test_the_report_counts_where_callers_drop(client, session, factory, tmp_path) -> None:
    calls = await _calls(session, factory, tmp_path)
    assert calls["abandoned"].hangup_by == "caller" and calls["abandoned"].connected_at is None
    headers = await factory.headers("supervisor")
    since = (T0 - timedelta(hours=1)).isoformat()
    until = (T0 + timedelta(hours=1)).isoformat()
    response = await client.get("/api/v1/ivr/report", params={"since": since, "until": until}, headers=headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["calls"] == {"total": 4, "refused": 1, "ivr_only": 1, "queued": 2, "answered": 1, "abandoned": 1,
                               "avg_queue_wait_s": 30.0, "avg_talk_s": 120.0, "avg_hold_s": 30.0}
    nodes = {n["node_id"]: n for n in report["nodes"]}
    assert [n["node_id"] for n in report["nodes"]] == ["main", "office_hours", "to_agent"]
    assert nodes["main"] == {"node_id": "main", "visits": 3, "digit": 2, "timeout": 0, "invalid": 0, "hangup": 1,
                             "next": 0, "open": 0, "hangup_rate": 0.3333}
    assert (nodes["to_agent"]["visits"], nodes["to_agent"]["next"], nodes["to_agent"]["hangup"]) == (2, 2, 0)

    # outside the period: nothing
    later = await client.get("/api/v1/ivr/report", headers=headers, params={
        "since": (T0 + timedelta(hours=1)).isoformat(), "until": (T0 + timedelta(hours=2)).isoformat()})
    assert later.json()["calls"]["total"] == 0 and later.json()["nodes"] == []
    # the default period is the last 7 days up to now
    assert (await client.get("/api/v1/ivr/report", headers=headers)).json()["calls"]["total"] == 4


async def test_report_period_checks_and_roles(client, factory) -> None:
    headers = await factory.headers("admin")
    naive = await client.get("/api/v1/ivr/report", params={"since": "2026-11-25T10:00:00"}, headers=headers)
    assert naive.status_code == 422
    backwards = await client.get("/api/v1/ivr/report", headers=headers, params={
        "since": "2026-11-25T10:00:00+08:00", "until": "2026-11-25T09:00:00+08:00"})
    assert backwards.status_code == 422 and backwards.json()["error"]["code"] == "invalid_period"
    too_long = await client.get("/api/v1/ivr/report", headers=headers, params={
        "since": "2025-01-01T00:00:00Z", "until": "2026-11-25T00:00:00Z"})
    assert too_long.status_code == 422
    assert (await client.get("/api/v1/ivr/report", headers=await factory.headers("agent"))).status_code == 403


async def test_the_admin_page_shows_the_report_in_beijing_time(client, session, factory, tmp_path) -> None:
    await _calls(session, factory, tmp_path)
    supervisor = await staff_user(session, "supervisor")
    await login(client, supervisor.username)
    page = (await client.get("/admin/ivr?days=1")).text
    assert "来电流失分析" in page and "<strong>近 1 天</strong>" in page
    assert "2026-11-24 10:05 至 2026-11-25 10:05（北京时间）" in page
    assert '<tr data-node="main"><td>main</td><td>3</td><td>2</td><td>0</td><td>0</td>' in page
    assert "33.3%" in page
    assert (await client.get("/admin/ivr?days=999")).status_code == 200  # an unknown period shows a week
