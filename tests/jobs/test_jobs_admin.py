"""The job queue's admin page and API: filters, masked details, retry and discard (audited), bad input."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.db import commit
from gasdesk.jobs.models import Job
from gasdesk.jobs.queue import enqueue, job, run_due_jobs
from gasdesk.jobs.service import mask_payload
from tests.factories import login, staff_user, wo_headers

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
PHONE = "13912345678"
RAN: list[int] = []


@job("test.admin_fails")
async def _fails(session, payload) -> None:
    raise RuntimeError("计费系统超时")


@job("test.admin_ok")
async def _ok(session, payload) -> None:
    RAN.append(payload["n"])


async def _dead_job(session) -> int:
    item = enqueue(
        session,
        "test.admin_fails",
        {
            "ticket_id": 7,
            "contact_phone": PHONE,
            "note": f"请回电 {PHONE}",
            "lines": [{"text": "张三 住 3 单元"}],
        },
        max_attempts=1,
    )
    await commit(session)
    job_id = item.id
    assert await run_due_jobs() == 1
    return job_id


def test_payload_masking_hides_personal_values_and_keeps_ids() -> None:
    masked = mask_payload(
        {
            "delivery_id": 3,
            "ok": True,
            "recipient": PHONE,
            "customer": {"name": "张三", "id": 9},
            "events": [{"type": "ticket.created", "detail": f"回电 {PHONE}"}],
            "title": "",
        }
    )
    assert masked == {
        "delivery_id": 3,
        "ok": True,
        "recipient": "***",
        "customer": {"name": "***", "id": 9},
        "events": [{"type": "ticket.created", "detail": "回电 [手机号]"}],
        "title": "",
    }


async def test_api_lists_filters_and_shows_a_masked_job(client, session, factory) -> None:
    clock.set_now(T0)
    headers = await wo_headers(factory, await staff_user(session, "supervisor"))
    dead_id = await _dead_job(session)
    enqueue(session, "test.admin_ok", {"n": 1}, run_at=datetime(2027, 1, 1, tzinfo=UTC))
    await commit(session)

    r = await client.get("/api/v1/jobs", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 2 and body["counts"]["dead"] == 1 and body["counts"]["pending"] == 1
    r = await client.get("/api/v1/jobs?status=dead", headers=headers)
    [dead] = r.json()["items"]
    assert (dead["id"], dead["status"], dead["status_label"], dead["attempts"]) == (
        dead_id,
        "dead",
        "死信（已放弃）",
        1,
    )
    assert dead["error_summary"] == "RuntimeError: 计费系统超时" and dead["timeout_s"] == 300
    assert (await client.get("/api/v1/jobs?name=test.admin_ok", headers=headers)).json()["total"] == 1

    detail = (await client.get(f"/api/v1/jobs/{dead_id}", headers=headers)).json()
    assert detail["payload"] == {
        "ticket_id": 7,
        "contact_phone": "***",
        "note": "***",
        "lines": [{"text": "***"}],
    }
    assert "Traceback" in detail["last_error"] and PHONE not in r.text + str(detail)


async def test_api_bad_input_is_4xx(client, session, factory) -> None:
    headers = await wo_headers(factory, await staff_user(session, "admin"))
    for url in (
        "/api/v1/jobs?status=bogus",
        "/api/v1/jobs?name=DROP%20TABLE",
        "/api/v1/jobs?limit=0",
        "/api/v1/jobs?offset=-1",
        "/api/v1/jobs/0",
        "/api/v1/jobs/abc",
    ):
        r = await client.get(url, headers=headers)
        assert r.status_code == 422, (url, r.status_code)
    assert (await client.get("/api/v1/jobs/999", headers=headers)).status_code == 404
    assert (await client.post("/api/v1/jobs/999/retry", headers=headers)).status_code == 404
    agent = await wo_headers(factory, await staff_user(session, "agent"))
    assert (await client.get("/api/v1/jobs", headers=agent)).status_code == 403


async def test_retry_a_dead_job_runs_it_again_with_fresh_attempts(client, session, factory) -> None:
    clock.set_now(T0)
    admin = await staff_user(session, "admin")
    headers = await wo_headers(factory, admin)
    dead_id = await _dead_job(session)
    r = await client.post(f"/api/v1/jobs/{dead_id}/retry", headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "job.retry"))
    assert (
        entry.actor_id,
        entry.entity_id,
        entry.changes["before"]["status"],
        entry.changes["after"]["status"],
    ) == (admin.id, str(dead_id), "dead", "pending")
    assert (await client.post(f"/api/v1/jobs/{dead_id}/retry", headers=headers)).status_code == 409
    assert await run_due_jobs() == 1  # it ran (and failed) once more
    session.expire_all()
    row = await session.get(Job, dead_id)
    assert (row.status, row.attempts) == ("dead", 1)


async def test_discard_keeps_the_job_and_it_never_runs(client, session, factory) -> None:
    RAN.clear()
    headers = await wo_headers(factory, await staff_user(session, "supervisor"))
    item = enqueue(session, "test.admin_ok", {"n": 2})
    await commit(session)
    job_id = item.id
    r = await client.post(f"/api/v1/jobs/{job_id}/discard", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    assert await run_due_jobs() == 0 and RAN == []
    assert (await client.post(f"/api/v1/jobs/{job_id}/discard", headers=headers)).status_code == 409
    assert (
        await session.scalar(select(AuditEntry.action).where(AuditEntry.action == "job.discard"))
        == "job.discard"
    )
    # a discarded job can still be retried: then it runs
    assert (await client.post(f"/api/v1/jobs/{job_id}/retry", headers=headers)).status_code == 200
    assert await run_due_jobs() == 1 and RAN == [2]
    assert (await client.post(f"/api/v1/jobs/{job_id}/discard", headers=headers)).status_code == 409  # done


async def test_admin_page_lists_details_and_retries(client, session) -> None:
    clock.set_now(T0)
    admin = await staff_user(session, "admin")
    dead_id = await _dead_job(session)
    await login(client, admin.username)
    home = await client.get("/")
    assert 'href="/admin/jobs"' in home.text, "the nav offers the page to admins"
    page = await client.get("/admin/jobs?status=dead")
    assert page.status_code == 200 and f'data-id="{dead_id}"' in page.text and "计费系统超时" in page.text
    assert (await client.get("/admin/jobs?status=bogus")).status_code == 422
    detail = await client.get(f"/admin/jobs/{dead_id}")
    assert detail.status_code == 200 and "重试" in detail.text and PHONE not in detail.text
    assert '"contact_phone": "***"' in html.unescape(detail.text)
    r = await client.post(f"/admin/jobs/{dead_id}/retry")
    assert r.status_code == 200 and "已重新排队" in r.text
    r = await client.post(f"/admin/jobs/{dead_id}/retry")
    assert r.status_code == 409 and "只有失败、死信或已丢弃的任务可以重试" in r.text
    r = await client.post(f"/admin/jobs/{dead_id}/discard")
    assert r.status_code == 200 and "已丢弃" in r.text


async def test_agents_do_not_see_the_page(client, session) -> None:
    agent = await staff_user(session, "agent")
    await login(client, agent.username)
    assert 'href="/admin/jobs"' not in (await client.get("/")).text
    assert (await client.get("/admin/jobs")).status_code == 403
