"""Review, adjustment and appeal (with their audit rows and events), sampling, the sheet editor, and who may
see what: supervisors everything, an agent only their own results, field crews nothing."""

from __future__ import annotations

import json

from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.db import commit
from gasdesk.quality.models import QualityScore, QualitySheet
from gasdesk.quality.rules import Sampling, sample_bucket, sample_reason, sheet_problems
from gasdesk.quality.service import do_score_conversation
from tests.factories import login, page_csrf_token, staff_user, wo_headers
from tests.quality.scenes import TEST_SHEET


async def _scored(desk) -> QualityScore:
    conversation = await desk.transcript([
        (5, "agent", "户号多少？"), (10, "resident", "2103345678"), (20, "agent", "好了。")])
    row = await do_score_conversation(desk.session, conversation)
    assert row is not None
    await commit(desk.session)
    return row


async def _audit(session, score_id: int) -> list[str]:
    # A fresh select sees the rows the requests committed; expiring the session here would leave the test's
    # own objects (desk.agent) to lazy-load outside the async context.
    return [a.action for a in await session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "quality_score", AuditEntry.entity_id == str(score_id)).order_by(AuditEntry.id))]


async def test_adjust_needs_a_reason_is_audited_and_announced(desk, client, factory, events) -> None:
    row = await _scored(desk)
    assert [e.payload for e in events if e.type == "quality.scored"] == [{
        "score_id": row.id, "conversation_id": row.conversation_id, "call_id": None, "agent_id": desk.agent.id,
        "team_id": desk.team.id, "sheet_id": row.sheet_id, "score": row.auto_score, "adjusted": False}]
    events.clear()
    supervisor = await staff_user(desk.session, "supervisor")
    headers = await wo_headers(factory, supervisor)
    url = f"/api/v1/quality/scores/{row.id}/adjust"
    assert (await client.post(url, json={"score": 90, "reason": " "}, headers=headers)).status_code == 422
    response = await client.post(url, json={"score": 90, "reason": "居民已确认问题解决，按实际情况调整"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["score"] == 90 and response.json()["adjusted"] is True
    await desk.session.refresh(row)
    assert (row.score, row.review_status, row.reviewed_by) == (90, "reviewed", supervisor.id)
    assert row.adjust_reason == "居民已确认问题解决，按实际情况调整"
    assert await _audit(desk.session, row.id) == ["quality.score", "quality.adjust"]
    assert [(e.payload["score"], e.payload["adjusted"]) for e in events if e.type == "quality.scored"] == [(90.0, True)]
    # Nobody adjusts their own score.
    own = await client.post(url, json={"score": 100, "reason": "我觉得没问题"}, headers=await wo_headers(factory, desk.agent))
    assert own.status_code == 403


async def test_an_agent_appeals_once_and_a_supervisor_resolves(desk, client, factory, events) -> None:
    row = await _scored(desk)
    agent_headers = await wo_headers(factory, desk.agent)
    appeal = f"/api/v1/quality/scores/{row.id}/appeal"
    assert (await client.post(appeal, json={"reason": "居民没有回复，我已等待"}, headers=agent_headers)).status_code == 200
    again = await client.post(appeal, json={"reason": "再申诉一次"}, headers=agent_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_appealed"
    other = await staff_user(desk.session, "agent")
    assert (await client.post(appeal, json={"reason": "替别人申诉"},
                              headers=await wo_headers(factory, other))).status_code == 403
    events.clear()
    supervisor_headers = await wo_headers(factory, await staff_user(desk.session, "supervisor"))
    resolve = f"/api/v1/quality/scores/{row.id}/appeal/resolve"
    missing = await client.post(resolve, json={"outcome": "upheld", "note": "情况属实"}, headers=supervisor_headers)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "score_required"
    done = await client.post(resolve, json={"outcome": "upheld", "note": "情况属实", "score": 85},
                             headers=supervisor_headers)
    assert done.status_code == 200 and done.json()["appeal_status"] == "upheld" and done.json()["score"] == 85
    assert await _audit(desk.session, row.id) == ["quality.score", "quality.appeal", "quality.appeal_resolve"]
    assert [(e.payload["score"], e.payload["adjusted"]) for e in events if e.type == "quality.scored"] == [(85.0, True)]
    closed = await client.post(resolve, json={"outcome": "rejected", "note": "再处理"}, headers=supervisor_headers)
    assert closed.status_code == 409


async def test_a_rejected_appeal_keeps_the_score_and_announces_nothing(desk, client, factory, events) -> None:
    row = await _scored(desk)
    await client.post(f"/api/v1/quality/scores/{row.id}/appeal", json={"reason": "系统判断有误"},
                      headers=await wo_headers(factory, desk.agent))
    events.clear()
    response = await client.post(f"/api/v1/quality/scores/{row.id}/appeal/resolve",
                                 json={"outcome": "rejected", "note": "未使用规范问候语"},
                                 headers=await wo_headers(factory, await staff_user(desk.session, "supervisor")))
    assert response.json()["appeal_status"] == "rejected" and response.json()["score"] == row.auto_score
    assert [e for e in events if e.type == "quality.scored"] == []


async def test_agents_see_only_their_own_results_and_crews_nothing(desk, client, factory) -> None:
    row = await _scored(desk)
    mine = await wo_headers(factory, desk.agent)
    other = await wo_headers(factory, await staff_user(desk.session, "agent"))
    crew = await wo_headers(factory, await staff_user(desk.session, "field_crew"))
    assert (await client.get(f"/api/v1/quality/scores/{row.id}", headers=mine)).status_code == 200
    assert [s["id"] for s in (await client.get("/api/v1/quality/mine", headers=mine)).json()] == [row.id]
    assert (await client.get(f"/api/v1/quality/scores/{row.id}", headers=other)).status_code == 403
    assert (await client.get("/api/v1/quality/mine", headers=other)).json() == []
    assert (await client.get("/api/v1/quality/scores", headers=mine)).status_code == 403
    for path in ("/api/v1/quality/mine", f"/api/v1/quality/scores/{row.id}", "/api/v1/quality/scores"):
        assert (await client.get(path, headers=crew)).status_code == 403
    for path in ("/quality", "/quality/mine", f"/quality/scores/{row.id}"):
        assert (await client.get(path, headers={**crew, "Accept": "text/html"})).status_code == 403
    # The agent's page shows their score and the appeal form; another agent's page is refused.
    page = await client.get(f"/quality/scores/{row.id}", headers={**mine, "Accept": "text/html"})
    assert page.status_code == 200 and "appeal-form" in page.text and "adjust-form" not in page.text
    assert "2103345678" in page.text  # the transcript (the agent handled it)
    assert (await client.get(f"/quality/scores/{row.id}", headers={**other, "Accept": "text/html"})).status_code == 403


async def test_supervisor_pages_show_queue_results_and_trends(desk, client, factory) -> None:
    row = await _scored(desk)  # no greeting or closing: a low score, in the queue
    assert row.sample_reason == "low_score"
    headers = {**await wo_headers(factory, await staff_user(desk.session, "supervisor")), "Accept": "text/html"}
    overview = await client.get("/quality", headers=headers)
    assert overview.status_code == 200
    assert f'data-score-id="{row.id}"' in overview.text and "热线一组" in overview.text and "低分必检" in overview.text
    detail = await client.get(f"/quality/scores/{row.id}", headers=headers)
    assert "adjust-form" in detail.text and 'data-rule="greeting"' in detail.text and "未通过" in detail.text
    queue = (await client.get("/api/v1/quality/scores?queue=true", headers=headers)).json()
    assert [s["id"] for s in queue] == [row.id]


async def test_sheet_editor_validates_versions_and_activates(desk, client, session) -> None:
    supervisor = await staff_user(session, "supervisor")
    await login(client, supervisor.username)
    token = await page_csrf_token(client)
    bad = await client.post("/quality/sheets", data={"sheet": '{"name": "x", "rules": []}', "csrf_token": token})
    assert bad.status_code == 422 and "评分表有误" in bad.text
    assert sheet_problems({"name": "x", "rules": [{"id": "a", "kind": "greeting", "label": "问候", "weight": 0,
                                                   "params": {"phrases": ["您好"]}}]}) == ["规则权重之和必须大于 0"]
    body = {**TEST_SHEET, "name": "热线一组评分表（第二版）"}
    saved = await client.post("/quality/sheets", data={
        "sheet": json.dumps(body, ensure_ascii=False), "team_id": str(desk.team.id), "note": "加严",
        "activate": "1", "csrf_token": token})
    assert saved.status_code == 303, saved.text[:300]
    team_id = desk.team.id  # read before expiring: an expired attribute cannot lazy-load here
    session.expire_all()
    rows = list(await session.scalars(select(QualitySheet).where(QualitySheet.team_id == team_id)
                                      .order_by(QualitySheet.version)))
    assert [(r.body["name"], r.status) for r in rows] == [("热线一组评分表", "retired"), ("热线一组评分表（第二版）", "active")]
    actions = [a.action for a in await session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "quality_sheet", AuditEntry.entity_id == str(rows[1].id)))]
    assert actions == ["quality_sheet.save", "quality_sheet.activate"]


def test_sampling_is_deterministic_by_conversation_id() -> None:
    five = Sampling(complaint_intents=["complaint"], below=80, rate_percent=5)
    picks = [cid for cid in range(1, 20_001) if sample_reason(five, cid, 95, set()) == "random"]
    assert picks == [cid for cid in range(1, 20_001) if sample_bucket(cid) < 500]  # the same ids every time
    assert 800 <= len(picks) <= 1200  # about 5 %
    assert sample_reason(five, picks[0], 95, set()) == "random"
    assert sample_reason(Sampling(rate_percent=0), picks[0], 95, set()) is None
    assert sample_reason(Sampling(rate_percent=100), 7, 95, set()) == "random"
    assert sample_reason(five, 7, 79.9, set()) == "low_score"
    assert sample_reason(five, 7, 100, {"complaint"}) == "complaint"
