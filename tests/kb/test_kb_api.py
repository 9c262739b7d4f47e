"""The knowledge-base API and admin pages: roles, feedback with rate limiting, CRUD, import, stats."""

from __future__ import annotations

import io

from openpyxl import Workbook
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.kb.api import feedback_limiter
from gasdesk.kb.models import KbArticle, KbFeedback
from tests.factories import login

ARTICLE = {"title": "暖气放气阀怎么排气", "questions": ["暖气怎么放气", "暖气片上凉下热"],
           "answer": "用螺丝刀**逆时针**拧开放气阀，出水后拧紧。", "category": "供暖", "tags": ["排气"]}


async def _create(client, headers, **extra) -> dict:
    response = await client.post("/api/v1/kb/articles", json={**ARTICLE, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_admin_crud_publish_restore_and_audit(client, factory, session) -> None:
    sup = await factory.headers("supervisor")
    created = await _create(client, sup)
    assert created["status"] == "draft" and created["version"] == 1
    aid = created["id"]
    agent = await factory.headers("agent")
    assert (await client.get("/api/v1/kb/search", params={"q": "暖气怎么放气"}, headers=agent)).json()["results"] == []
    assert (await client.post(f"/api/v1/kb/articles/{aid}/publish", headers=sup)).json()["status"] == "published"
    found = (await client.get("/api/v1/kb/search", params={"q": "暖气片怎么放气", "channel": "agent"},
                              headers=agent)).json()["results"]
    assert found[0]["id"] == aid and found[0]["score"] > 0 and "逆时针" in found[0]["snippet"]
    assert "**" not in found[0]["answer"]
    updated = await client.put(f"/api/v1/kb/articles/{aid}", json={**ARTICLE, "answer": "新答案"}, headers=sup)
    assert updated.json()["changed"] is True and updated.json()["version"] == 3
    versions = (await client.get(f"/api/v1/kb/articles/{aid}/versions", headers=sup)).json()
    assert [v["version"] for v in versions] == [3, 2, 1]
    restored = await client.post(f"/api/v1/kb/articles/{aid}/restore", json={"version": 1}, headers=sup)
    assert restored.json()["answer"] == ARTICLE["answer"] and restored.json()["status"] == "published"
    assert (await client.post(f"/api/v1/kb/articles/{aid}/archive", headers=sup)).json()["status"] == "archived"
    assert (await client.delete(f"/api/v1/kb/articles/{aid}", headers=sup)).status_code == 204
    actions = list(await session.scalars(select(AuditEntry.entity_id).where(AuditEntry.action == "config.kb_article")))
    assert actions == [f"kb_article:{aid}"] * 6  # create, publish, edit, restore, archive, delete
    bad = await client.post("/api/v1/kb/articles", json={**ARTICLE, "channels": ["fax"]}, headers=sup)
    assert bad.status_code == 422


async def test_roles_are_enforced(client, factory) -> None:
    agent, crew = await factory.headers("agent"), await factory.headers("field_crew")
    assert (await client.post("/api/v1/kb/articles", json=ARTICLE, headers=agent)).status_code == 403
    assert (await client.get("/api/v1/kb/stats", headers=agent)).status_code == 403
    assert (await client.get("/api/v1/kb/search", params={"q": "暖气"}, headers=crew)).status_code == 403
    assert (await client.get("/api/v1/kb/search", params={"q": "暖气"})).status_code == 401
    assert (await client.get("/admin/kb", headers=agent)).status_code == 403
    assert (await client.post("/api/v1/kb/import", headers=agent,
                              files={"file": ("kb.csv", b"a", "text/csv")})).status_code == 403


async def test_feedback_is_public_counted_once_and_rate_limited(client, factory, session) -> None:
    feedback_limiter.votes.clear()
    sup = await factory.headers("supervisor")
    aid = (await _create(client, sup, status="published"))["id"]
    first = await client.post(f"/api/v1/kb/articles/{aid}/feedback", json={"helpful": False})
    assert first.status_code == 200 and first.json()["counted"] is True
    again = await client.post(f"/api/v1/kb/articles/{aid}/feedback", json={"helpful": False})
    assert again.json()["counted"] is False  # the same visitor voting twice counts once
    staff = await client.post(f"/api/v1/kb/articles/{aid}/feedback", json={"helpful": True}, headers=sup)
    assert staff.json()["counted"] is True
    article = await session.get(KbArticle, aid)
    assert (article.not_helpful, article.helpful) == (1, 1)
    sources = sorted(await session.scalars(select(KbFeedback.source)))
    assert sources == ["resident", "staff"]
    assert (await client.post("/api/v1/kb/articles/999/feedback", json={"helpful": True})).status_code == 404
    feedback_limiter.votes.clear()
    for client_key in ("ip:127.0.0.1", "ip:testclient", "ip:-"):
        for n in range(feedback_limiter.limit):
            feedback_limiter.check(client_key, 10_000 + n)
    limited = await client.post(f"/api/v1/kb/articles/{aid}/feedback", json={"helpful": True})
    assert limited.status_code == 429
    feedback_limiter.votes.clear()


async def test_stats_show_misses_and_not_helpful(client, factory, session) -> None:
    from gasdesk.kb.service import best_answer

    sup = await factory.headers("supervisor")
    aid = (await _create(client, sup, status="published"))["id"]
    for _ in range(2):
        assert await best_answer(session, "能开增值税专用发票吗", channel="webchat") is None
    assert await best_answer(session, "暖气怎么放气", channel="webchat") is not None
    await session.commit()
    feedback_limiter.votes.clear()
    await client.post(f"/api/v1/kb/articles/{aid}/feedback", json={"helpful": False})
    stats = (await client.get("/api/v1/kb/stats", headers=sup)).json()
    assert stats["misses"] == 2 and stats["top_misses"][0]["count"] == 2
    assert stats["top_misses"][0]["example"] == "能开增值税专用发票吗"
    assert stats["not_helpful"][0]["id"] == aid and stats["hits"] == 1
    feedback_limiter.votes.clear()


async def test_admin_pages(client, factory) -> None:
    admin = await factory.user("admin", password="admin-pass-123")
    await login(client, admin.username, "admin-pass-123")
    form = {"title": "营业时间", "questions": "营业厅几点开门\n周末上班吗", "answer": "**周一至周五** 8:30—17:00",
            "category": "营业厅", "tags": "营业时间", "valid_from": "", "valid_to": "", "channel": ["webchat", "agent"]}
    created = await client.post("/admin/kb/new", data=form)
    assert created.status_code == 303
    edit_url = created.headers["location"].split("?")[0]
    page = await client.get(edit_url)
    assert page.status_code == 200 and "版本历史" in page.text and "<strong>周一至周五</strong>" in page.text
    saved = await client.post(edit_url, data={**form, "answer": "周一至周六 8:30—17:00"})
    assert saved.status_code == 303
    await client.post(edit_url + "/status", data={"status": "published"})
    await client.post(edit_url + "/restore", data={"version": "1"})
    page = await client.get(edit_url)
    assert "恢复为版本 1" in page.text and "已发布" in page.text
    bad = await client.post("/admin/kb/new", data={**form, "title": ""})
    assert bad.status_code == 422 and "标题不能为空" in bad.text
    listing = await client.get("/admin/kb", params={"status": "published", "q": "营业"})
    assert "营业时间" in listing.text
    preview = await client.post("/admin/kb/preview", data={"answer": "<script>x</script>**粗**"})
    assert "&lt;script&gt;" in preview.text and "<strong>粗</strong>" in preview.text
    book = Workbook()
    book.active.append(["标题", "问法", "答案", "分类"])
    book.active.append(["补卡", "燃气卡丢了", "带身份证到营业厅补卡。", "业务办理"])
    book.active.append(["", "", "", ""])
    book.active.append(["坏行", "", "", "业务办理"])
    buf = io.BytesIO()
    book.save(buf)
    imported = await client.post("/admin/kb/import", files={"file": ("kb.xlsx", buf.getvalue(), "application/octet-stream")})
    assert imported.status_code == 200 and "新建 1 条" in imported.text and "答案不能为空" in imported.text
    stats = await client.get("/admin/kb/stats")
    assert stats.status_code == 200 and "未解答" in stats.text
    assert "/admin/kb" in (await client.get("/admin/kb")).text  # nav link for admins
