"""Knowledge search quality and behaviour on the shipped demo knowledge base."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.db import commit
from gasdesk.kb.importer import load_demo_kb
from gasdesk.kb.models import KbArticle, KbMiss
from gasdesk.kb.search import ANSWER_THRESHOLD, search_articles
from gasdesk.kb.service import best_answer, check_article, do_create_article, do_set_status
from tests.kb.kb_queries import OFF_TOPIC, PARAPHRASES

ACTOR = Actor.system("kb-test", "test")


async def _publish(session, title: str, questions: list[str], answer: str, **extra) -> KbArticle:
    data = check_article(title=title, questions=questions, answer=answer, category=extra.pop("category", "测试"),
                         **extra)
    article = await do_create_article(session, ACTOR, data, status="published")
    await commit(session)
    return article


async def test_demo_kb_is_large_and_loads_idempotently(session) -> None:
    assert await load_demo_kb() >= 110
    assert await load_demo_kb() == 0
    count = len(list(await session.scalars(select(KbArticle.id).where(KbArticle.status == "published"))))
    assert count >= 110


async def test_paraphrased_questions_find_the_right_article(session) -> None:
    await load_demo_kb()
    assert len(PARAPHRASES) >= 30
    top1 = top3 = answered = 0
    failures = []
    for question, expected in PARAPHRASES:
        hits = await search_articles(session, question, limit=3, min_score=0.0)
        titles = [h.title for h in hits]
        assert expected in {a.title for a in await session.scalars(select(KbArticle))}, expected
        if titles and titles[0] == expected:
            top1 += 1
            answered += hits[0].score >= ANSWER_THRESHOLD
        else:
            failures.append((question, expected, titles[:2]))
        top3 += expected in titles
    n = len(PARAPHRASES)
    # Measured on the demo KB: 41/42 top-1, 42/42 in the top 3, 38/42 right and above the bot threshold
    # (before the synonym folds and expansion groups: 39/42, 40/42, 37/42).
    assert top1 / n >= 0.92, failures
    assert top3 / n >= 0.95, failures
    assert answered / n >= 0.85


async def test_off_topic_questions_get_no_answer(session) -> None:
    await load_demo_kb()
    for question in OFF_TOPIC:
        assert await best_answer(session, question, channel="webchat") is None, question
    misses = list(await session.scalars(select(KbMiss)))
    assert {m.query for m in misses} == set(OFF_TOPIC)


async def test_synonyms_and_typos_reach_the_same_article(session) -> None:
    await _publish(session, "天然气灶具打不着火", ["燃气灶点不着怎么办"], "请检查电池和阀门。")
    await _publish(session, "供暖季时间", ["什么时候来暖气"], "每年 11 月 15 日至次年 3 月 15 日。")
    for q in ("煤气灶打不着火", "燃气灶点不着", "天燃气灶打不找火", "天然气灶具点不着火"):
        hits = await search_articles(session, q)
        assert hits and hits[0].title == "天然气灶具打不着火", q
    for q in ("暖气什么时候开始", "采暖季是什么时间", "供暖什么时候来", "暖汽什么时候来"):
        hits = await search_articles(session, q)
        assert hits and hits[0].title == "供暖季时间", q


async def test_validity_window_and_status(session) -> None:
    clock.set_now(datetime(2026, 12, 1, 4, tzinfo=UTC))
    await _publish(session, "元旦营业安排", ["元旦营业厅开门吗"], "元旦休息三天。",
                   valid_from=date(2026, 12, 20), valid_to=date(2027, 1, 4))
    assert await search_articles(session, "元旦营业厅开门吗") == []
    clock.set_now(datetime(2026, 12, 25, 4, tzinfo=UTC))
    assert [h.title for h in await search_articles(session, "元旦营业厅开门吗")] == ["元旦营业安排"]
    clock.set_now(datetime(2027, 1, 5, 4, tzinfo=UTC))
    assert await search_articles(session, "元旦营业厅开门吗") == []
    clock.set_now(datetime(2026, 12, 25, 4, tzinfo=UTC))
    draft = await do_create_article(session, ACTOR, check_article(title="草稿条目", questions=["元旦营业厅开门吗"],
                                                                  answer="未发布", category="测试"))
    await commit(session)
    assert [h.title for h in await search_articles(session, "元旦营业厅开门吗")] == ["元旦营业安排"]
    article = await session.get(KbArticle, (await search_articles(session, "元旦营业厅开门吗"))[0].article_id)
    await do_set_status(session, ACTOR, article, "archived")
    await commit(session)
    assert await search_articles(session, "元旦营业厅开门吗") == []  # archived and draft are never found
    assert draft.status == "draft"


async def test_channel_filtering(session) -> None:
    await _publish(session, "坐席漏气话术", ["燃气泄漏来电怎么处理"], "先确认安全。", channels=["agent"])
    await _publish(session, "短信缴费提醒说明", ["为什么收到缴费短信"], "欠费提醒。", channels="短信，微信")
    assert [h.title for h in await search_articles(session, "燃气泄漏来电怎么处理", channel="agent")] == ["坐席漏气话术"]
    assert await search_articles(session, "燃气泄漏来电怎么处理", channel="webchat") == []
    assert await best_answer(session, "燃气泄漏来电怎么处理", channel="webchat") is None
    assert [h.title for h in await search_articles(session, "为什么收到缴费短信", channel="wechat")] == ["短信缴费提醒说明"]
    assert await search_articles(session, "为什么收到缴费短信", channel="voice") == []
    assert len(await search_articles(session, "燃气泄漏来电怎么处理", channel=None)) == 1  # staff: every channel


async def test_best_answer_records_hits_and_misses(session) -> None:
    article = await _publish(session, "IC卡表换电池", ["燃气表怎么换电池"],
                             "用 **2 节 5 号电池**，详见[说明](https://example.com/battery)。")
    answer = await best_answer(session, "燃气表的电池怎么换", intent="meter_guidance", channel="webchat")
    assert answer is not None
    assert answer.startswith("【IC卡表换电池】")
    assert "**" not in answer and "说明（https://example.com/battery）" in answer
    assert await best_answer(session, "帮我订一张去北京的火车票", channel="webchat") is None
    await commit(session)
    await session.refresh(article)
    assert article.hits == 1
    miss = (await session.scalars(select(KbMiss))).one()
    assert miss.query == "帮我订一张去北京的火车票" and miss.channel == "webchat"


async def test_index_follows_changes(session) -> None:
    first = await _publish(session, "旧标题条目", ["暖气放气阀怎么用"], "逆时针拧开。")
    assert (await search_articles(session, "暖气放气阀怎么用"))[0].title == "旧标题条目"
    from gasdesk.kb.service import do_update_article

    await do_update_article(session, ACTOR, first, check_article(title="新标题条目", questions=["暖气放气阀怎么用"],
                                                                 answer="逆时针拧开。", category="测试"))
    await commit(session)
    assert (await search_articles(session, "暖气放气阀怎么用"))[0].title == "新标题条目"
