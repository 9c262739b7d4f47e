"""Article changes: a version per change with editor and time, restore, audit rows, safe rendering."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput
from gasdesk.kb.render import to_html, to_plain
from gasdesk.kb.service import (
    check_article,
    do_create_article,
    do_restore_version,
    do_set_status,
    do_update_article,
    versions_of,
)


def _data(answer: str, title: str = "自闭阀复位", **extra):
    return check_article(title=title, questions="自闭阀怎么打开｜灶前阀关了\n自闭阀跳了", answer=answer,
                         category="故障自查", **extra)


async def test_every_change_is_a_version_and_restore_brings_content_back(session, factory) -> None:
    editor = await factory.user("supervisor")
    actor = Actor.of(editor)
    article = await do_create_article(session, actor, _data("先关灶具，再提起复位按钮。"))
    assert article.questions == ["自闭阀怎么打开", "灶前阀关了", "自闭阀跳了"]
    await do_set_status(session, actor, article, "published")
    assert await do_update_article(session, actor, article, _data("错误的答案")) is True
    assert await do_update_article(session, actor, article, _data("错误的答案")) is False  # nothing changed
    await commit(session)
    versions = await versions_of(session, article.id)
    assert [v.version for v in versions] == [3, 2, 1]
    assert versions[0].editor_name == editor.username and versions[0].editor_id == editor.id
    assert versions[0].created_at is not None and versions[1].note == "发布"

    await do_restore_version(session, actor, article, 1)
    await commit(session)
    assert article.answer == "先关灶具，再提起复位按钮。"
    assert article.status == "published"  # restoring content keeps the article published
    assert article.version == 4
    assert (await versions_of(session, article.id))[0].note == "恢复为版本 1"

    rows = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "config.kb_article",
                                                               AuditEntry.entity_id == f"kb_article:{article.id}")))
    assert len(rows) == 4  # create, publish, edit, restore (the no-op edit wrote nothing)
    assert rows[2].changes["after"]["answer"] == "错误的答案"
    assert rows[0].actor_name == editor.username


async def test_validation(session) -> None:
    actor = Actor.system("t", "test")
    with pytest.raises(InvalidInput):
        check_article(title="", questions="", answer="x", category="")
    with pytest.raises(InvalidInput):
        check_article(title="t", questions="", answer="", category="")
    with pytest.raises(InvalidInput):
        check_article(title="t", questions="", answer="a", category="", channels="传真")
    with pytest.raises(InvalidInput):
        check_article(title="t", questions="", answer="a", category="", valid_from="2026-12-01", valid_to="2026-11-01")
    ok = check_article(title="t", questions="", answer="a", category="", channels="微信、短信", valid_from="2026/12/1")
    assert ok.channels == ["wechat", "sms"] and ok.category == "常见问题" and str(ok.valid_from) == "2026-12-01"
    await do_create_article(session, actor, _data("a"))
    with pytest.raises(Conflict):
        await do_create_article(session, actor, _data("b"))


def test_answers_render_safely() -> None:
    html = str(to_html("**注意**<script>alert(1)</script> [链接](javascript:alert(1)) [官网](https://example.com) "
                       "![示意图](https://example.com/a.png) <img src=x onerror=alert(1)>"))
    assert "<script" not in html and "<img src=x" not in html and "href=\"javascript" not in html
    assert "<strong>注意</strong>" in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html
    assert '<img src="https://example.com/a.png" alt="示意图"' in html
    plain = to_plain("## 步骤\n- **关闭**阀门\n详见[官网](https://example.com)")
    assert plain == "步骤\n- 关闭阀门\n详见官网（https://example.com）"
