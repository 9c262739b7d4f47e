"""Knowledge answers residents trust: the evaluation, query expansion, quoted passages, the 有帮助/没帮助 and
转人工 buttons, and suggested articles from unanswered questions and 没帮助 votes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.bot.base import BotContext
from gasdesk.bot.nlu_bot import NluBot
from gasdesk.db import commit
from gasdesk.kb.evaluate import (
    EvalArticle,
    EvalCase,
    KbEvalFileError,
    evaluate,
    evaluate_file,
    load_articles,
    load_cases,
)
from gasdesk.kb.models import KbArticle, KbFeedback, KbMiss
from gasdesk.kb.search import KbIndex, quote
from gasdesk.kb.service import check_article, do_create_article, do_feedback, knowledge_answer, record_miss
from gasdesk.kb.suggestions import (
    UNHELPFUL_MIN,
    do_dismiss_suggestion,
    do_draft_from_suggestion,
    group_questions,
    list_suggestions,
)
from tests.factories import bot_conversation, login

ACTOR = Actor.system("kb-test", "test")
T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)

ARTICLES = [
    EvalArticle(
        1,
        "燃气表换电池",
        ["燃气表没电了怎么办", "卡表电池怎么换"],
        "用两节五号电池，装好后插卡。",
        "表具使用",
    ),
    EvalArticle(
        2, "营业厅营业时间", ["营业厅几点开门", "周末营业厅上班吗"], "周一至周日 8:30-17:00。", "营业厅"
    ),
    EvalArticle(
        3, "暖气放气阀怎么排气", ["暖气怎么放气", "暖气片上凉下热"], "逆时针拧开放气阀，出水后拧紧。", "供暖"
    ),
]


# ------------------------------------------------------------------ 1. evaluation


def test_evaluation_counts_right_articles_and_refusals() -> None:
    cases = [
        EvalCase("燃气表没有电了咋办", "燃气表换电池"),  # right, first
        EvalCase("营业厅星期天几点开门", "营业厅营业时间"),  # right, first
        EvalCase("暖气片上面凉下面热", "营业厅营业时间"),  # wrongly labelled on purpose: a failure at top-1
        EvalCase("帮我订一张去北京的火车票", None),  # nothing similar: refused
        EvalCase("暖气怎么放气", None),  # answerable in fact: the refusal fails
    ]
    report = evaluate(cases, KbIndex(ARTICLES))
    assert (report.answerable, report.unanswerable) == (3, 2)
    assert (report.top1, report.answered, report.rejected) == (2, 2, 1)
    assert report.top1_rate == pytest.approx(2 / 3) and report.rejected_rate == 0.5
    assert [f.question for f in report.failures] == ["暖气片上面凉下面热", "暖气怎么放气"]
    assert report.failures[0].got[0][0] == "暖气放气阀怎么排气"
    assert "top-1 2/3" in report.summary() and "rejected 1/2" in report.summary()


def test_eval_files_jsonl_and_the_test_module(tmp_path) -> None:
    titles = [a.title for a in load_articles()]
    good = tmp_path / "set.jsonl"
    good.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"q": "微信怎么交燃气费", "title": "微信公众号缴纳燃气费步骤"},
                {"q": "明天天气怎么样", "title": None},
            ]
        )
        + "\n"
    )
    assert load_cases(good, titles) == [
        EvalCase("微信怎么交燃气费", "微信公众号缴纳燃气费步骤"),
        EvalCase("明天天气怎么样", None),
    ]
    report = evaluate_file(good)
    assert (report.answerable, report.top1, report.unanswerable, report.rejected) == (1, 1, 1, 1)
    module = load_cases("tests/kb/kb_queries.py", titles)  # read with ast, never imported
    assert sum(c.title is None for c in module) >= 7 and len(module) >= 49
    for text, message in [
        ('{"q": "x"}', '"title" must be'),
        ('{"title": null}', 'non-empty "q"'),
        ("not json", "not valid JSON"),
        ('{"q": "x", "title": "没有这条"}', "no article titled"),
    ]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text + "\n")
        with pytest.raises(KbEvalFileError, match=message):
            load_cases(bad, titles)
    with pytest.raises(KbEvalFileError, match="no such file"):
        load_cases(tmp_path / "missing.jsonl")


# ------------------------------------------------------------------ 2. expansion


def test_expansion_lets_a_related_word_answer_at_a_lower_weight() -> None:
    # 账号 is in the 户号 group of synonyms.txt: the article never says 账号.
    articles = [
        EvalArticle(1, "怎么查询户号", ["户号在哪里看"], "户号印在账单和燃气卡上。", "业务办理"),
        EvalArticle(2, "营业厅营业时间", ["营业厅几点开门"], "8:30-17:00。", "营业厅"),
        EvalArticle(3, "燃气卡丢失补卡", ["燃气卡丢了"], "带身份证到营业厅补卡。", "业务办理"),
    ]
    plain, expanded = KbIndex(articles, use_expansion=False), KbIndex(articles)
    before = {d.title: s for s, d in plain.search("燃气账号在哪里看")}
    after = {d.title: s for s, d in expanded.search("燃气账号在哪里看")}
    assert after["怎么查询户号"] > before.get("怎么查询户号", 0.0)
    assert max(after, key=after.__getitem__) == "怎么查询户号"
    # ...but less than the word itself would give
    assert expanded.search("燃气户号在哪里看")[0][0] > after["怎么查询户号"]


def test_expansion_does_not_hurt_the_demo_figures() -> None:
    articles = load_articles()
    cases = load_cases("tests/kb/kb_queries.py", [a.title for a in articles])
    before, after = (
        evaluate(cases, KbIndex(articles, use_expansion=False)),
        evaluate(cases, KbIndex(articles)),
    )
    # What the bot really says (right article above the threshold) and what it refuses must not get worse; with the
    # 10-14 phrasings per article the top-1 ranking alone moved by one question (40 -> 39 of 42) while the
    # paraphrase set's dev half answered 2 more with expansion (docs/performance.md).
    assert after.top3 >= before.top3 and after.answered >= before.answered and after.top1 >= before.top1 - 1
    assert after.rejected == before.rejected == before.unanswerable


# ------------------------------------------------------------------ 3. quoted passages and buttons

LONG = (
    "燃气费可以通过以下方式缴纳：\n- 微信：关注公众号，进入缴费服务后输入户号支付。\n"
    "- 支付宝：打开生活缴费，选择燃气公司并输入户号。\n- 银行代扣：到营业厅签订代扣协议，每月自动扣费。\n"
    "- 营业厅柜台：携带户号或燃气卡到任一营业厅缴费。\n"
    "提示：IC卡表用户线上缴费后，还需要把燃气卡插入燃气表，气量才会写入表内。\n"
    "发票：缴费后可在公众号“电子发票”中申请开具增值税普通发票，发票抬头可以填写个人或单位名称。"
)


def test_quote_picks_the_passage_that_answers() -> None:
    assert len(LONG) > 180
    alipay = quote(LONG, "能用支付宝交燃气费吗", "燃气费有哪些缴费方式")
    assert alipay.startswith("…\n- 支付宝") and "发票" not in alipay
    invoice = quote(LONG, "交完费怎么开发票", "燃气费有哪些缴费方式")
    assert "电子发票" in invoice and "支付宝" not in invoice and invoice.startswith("…")
    assert quote("逆时针拧开放气阀。", "暖气怎么放气") == "逆时针拧开放气阀。"  # short: whole


async def test_bot_answer_quotes_the_article_and_offers_feedback_and_a_person(session) -> None:
    article = await do_create_article(
        session,
        ACTOR,
        check_article(
            title="燃气费有哪些缴费方式",
            questions=["燃气费在哪交", "怎么交燃气费"],
            answer=LONG,
            category="缴费充值",
        ),
        status="published",
    )
    conversation = await bot_conversation(session)
    await commit(session)
    answer = await knowledge_answer(session, "能用支付宝交燃气费吗", channel="webchat")
    assert answer is not None and answer.article_id == article.id
    assert answer.text.startswith("【燃气费有哪些缴费方式】\n…\n- 支付宝") and "电子发票" not in answer.text
    text, quick = await NluBot()._knowledge_answer(
        BotContext(session, conversation), "能用支付宝交燃气费吗", "payment_howto"
    )
    assert text.startswith("【燃气费有哪些缴费方式】")
    assert [q["label"] for q in quick] == ["有帮助", "没帮助", "没解决？转人工"]
    assert quick[1] == {
        "label": "没帮助",
        "action": "kb_feedback",
        "article_id": str(article.id),
        "helpful": "0",
    }
    conversation.channel = "wechat"  # numbered replies there: only the person
    _, quick = await NluBot()._knowledge_answer(
        BotContext(session, conversation), "能用支付宝交燃气费吗", "payment_howto"
    )
    assert quick == [{"label": "没解决？转人工", "action": "handoff"}]


async def test_off_domain_question_is_not_answered(session) -> None:
    await do_create_article(
        session,
        ACTOR,
        check_article(
            title="燃气费有哪些缴费方式", questions=["燃气费在哪交"], answer=LONG, category="缴费充值"
        ),
        status="published",
    )
    await commit(session)
    assert await knowledge_answer(session, "电费在哪交", channel="webchat") is None
    assert await knowledge_answer(session, "燃气费在哪交", channel="webchat") is not None


# ------------------------------------------------------------------ 4. suggestions


async def _misses(session, *questions: str, best: int | None = None) -> None:
    for i, q in enumerate(questions):
        clock.set_now(T0 + timedelta(minutes=i))
        await record_miss(session, q, channel="webchat", intent=None, best_article_id=best, best_score=0.1)
    await commit(session)


def test_grouping_by_character_ngrams() -> None:
    rows = [
        KbMiss(id=i, query=q, at=T0)
        for i, q in enumerate(
            [
                "发票抬头能改成公司吗",
                "发票抬头可以改成公司吗",
                "燃气发票抬头改成公司",
                "小区能装充电桩吗",
                "小区可以装充电桩吗",
                "明天天气",
            ],
            start=1,
        )
    ]
    groups = [[m.id for m in g] for g in group_questions(rows)]
    assert groups == [[1, 2, 3], [4, 5], [6]]


async def test_suggestions_group_mask_and_count(session) -> None:
    await _misses(
        session,
        "发票抬头能改成公司吗，我电话13812345678",
        "发票抬头可以改成公司吗",
        "燃气发票抬头改成公司",
        "小区能装充电桩吗",
    )
    found = await list_suggestions(session)
    assert len(found) == 1  # a question asked once waits for a second
    s = found[0]
    assert s.kind == "missing" and s.count == 3 and s.last_seen == T0 + timedelta(minutes=2)
    texts = [p.text for p in s.phrasings]
    assert all("13812345678" not in t and "1381234" not in t for t in texts)
    assert any(t.startswith("发票抬头能改成公司吗") and "[手机号]" in t for t in texts)
    assert len(await list_suggestions(session, min_count=1)) == 2


async def test_dismiss_and_draft_store_state_audit_and_events(session, events) -> None:
    await _misses(
        session, "发票抬头能改成公司吗", "发票抬头可以改成公司吗", "小区能装充电桩吗", "小区可以装充电桩吗"
    )
    found = await list_suggestions(session)
    first, second = (next(s for s in found if word in s.title) for word in ("发票", "充电桩"))
    await do_dismiss_suggestion(session, ACTOR, first.key)
    await commit(session)
    closed = list(await session.scalars(select(KbMiss).where(KbMiss.id.in_(first.miss_ids))))
    assert {m.resolution for m in closed} == {"dismissed"} and all(m.resolved_at for m in closed)
    assert [s.key for s in await list_suggestions(session)] == [second.key]
    assert second.title in {"小区能装充电桩吗", "小区可以装充电桩吗"}
    draft = await do_draft_from_suggestion(session, ACTOR, second.key)
    await commit(session)
    assert (
        draft.status == "draft"
        and draft.title == second.title
        and set(draft.questions) == {"小区能装充电桩吗", "小区可以装充电桩吗"}
    )
    assert {
        m.draft_article_id
        for m in await session.scalars(select(KbMiss).where(KbMiss.id.in_(second.miss_ids)))
    } == {draft.id}
    assert await list_suggestions(session) == []
    audits = list(
        await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "config.kb_suggestion").order_by(AuditEntry.id)
        )
    )
    assert [a.entity_id for a in audits] == [f"kb_suggestion:{first.key}", f"kb_suggestion:{second.key}"]
    resolved = [e.payload for e in events if e.type == "kb.suggestion_resolved"]
    assert [(p["action"], p["questions"], p["draft_article_id"]) for p in resolved] == [
        ("dismissed", 2, None),
        ("drafted", 2, draft.id),
    ]


async def test_unhelpful_article_becomes_a_revision_suggestion(session) -> None:
    article = await do_create_article(
        session,
        ACTOR,
        check_article(
            title="暖气放气阀怎么排气", questions=["暖气怎么放气"], answer="逆时针拧开。", category="供暖"
        ),
        status="published",
    )
    await commit(session)
    for _ in range(UNHELPFUL_MIN):
        await do_feedback(session, article.id, helpful=False)
    await _misses(session, "暖气片放气阀拧不动", best=article.id)
    (s,) = await list_suggestions(session)
    assert s.kind == "unhelpful" and s.article_id == article.id and s.count == UNHELPFUL_MIN + 1
    assert [p.text for p in s.phrasings] == ["暖气片放气阀拧不动"]
    draft = await do_draft_from_suggestion(session, ACTOR, s.key)
    await commit(session)
    assert draft.title == "暖气放气阀怎么排气（修订稿）" and draft.answer == "逆时针拧开。"
    assert draft.questions == ["暖气怎么放气", "暖气片放气阀拧不动"]
    assert all(f.handled_at for f in await session.scalars(select(KbFeedback)))
    assert await list_suggestions(session) == []
    assert (await session.get(KbArticle, article.id)).status == "published"  # the original is left alone


async def test_suggestions_page_roles_and_actions(client, factory, session) -> None:
    await _misses(session, "发票抬头能改成公司吗，电话13812345678", "发票抬头可以改成公司吗")
    agent = await factory.headers("agent")
    assert (await client.get("/admin/kb/suggestions", headers=agent)).status_code == 403
    assert (await client.get("/admin/kb/suggestions")).status_code == 401
    admin = await factory.user("admin", password="admin-pass-123")
    await login(client, admin.username, "admin-pass-123")
    page = await client.get("/admin/kb/suggestions")
    assert (
        page.status_code == 200 and "发票抬头可以改成公司吗" in page.text and "13812345678" not in page.text
    )
    (s,) = await list_suggestions(session)
    made = await client.post("/admin/kb/suggestions/draft", data={"key": s.key})
    assert made.status_code == 303 and made.headers["location"].startswith("/admin/kb/")
    assert (await client.post("/admin/kb/suggestions/dismiss", data={"key": s.key})).status_code == 404
