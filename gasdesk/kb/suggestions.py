"""Suggested articles for the admins: what residents asked that the knowledge base could not answer, and the
articles residents keep voting 没帮助.

Unanswered questions (``KbMiss``, recorded by ``service.knowledge_answer``; stored redacted and encrypted) are
grouped by the similarity of their character 2-3-grams after the search's normalisation, so 户号怎么查 and
怎么查户号啊 land together; each group is a suggested new article with the residents' phrasings (masked once
more for display), how often and when last it was asked. An article with at least ``UNHELPFUL_MIN`` open
没帮助 votes is a suggestion too, with the unanswered questions that came closest to it. An admin dismisses a
suggestion or writes a draft article from it (``do_dismiss_suggestion`` / ``do_draft_from_suggestion``: audit
row ``config.kb_suggestion``, event ``kb.suggestion_resolved`` after commit); either closes the questions and
votes it grouped, and later ones make a new suggestion.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.clock import utcnow
from gasdesk.errors import NotFound
from gasdesk.event_types import KbSuggestionResolved
from gasdesk.events import emit
from gasdesk.kb.models import KbArticle, KbFeedback, KbMiss
from gasdesk.kb.search import compact
from gasdesk.kb.service import ArticleInput, do_create_article
from gasdesk.security.pii import mask_pii

AUDIT_ACTION = "config.kb_suggestion"
SIMILARITY = 0.5  # cosine of character 2-3-gram counts above which two questions are one suggestion
UNHELPFUL_MIN = 3  # open 没帮助 votes that make an article a suggestion
MAX_MISSES = 3000  # newest open unanswered questions grouped per page view
MAX_PHRASINGS = 8
DRAFT_CATEGORY = "待分类"
DRAFT_ANSWER = "（草稿：请根据居民的问法补充答案后再发布。）"


@dataclass
class Phrasing:
    text: str  # masked
    count: int


@dataclass
class Suggestion:
    key: str  # "m<id>" (a group of unanswered questions, named by its first one) | "a<article id>"
    kind: str  # missing | unhelpful
    title: str  # the most asked phrasing, or the article's title
    count: int  # unanswered questions grouped (plus open 没帮助 votes for an article)
    last_seen: datetime
    phrasings: list[Phrasing] = field(default_factory=list)
    miss_ids: list[int] = field(default_factory=list)
    article_id: int | None = None  # the article voted down
    not_helpful: int = 0
    helpful: int = 0
    category: str | None = None  # the nearest article's category (a hint for the draft)


_PLACEHOLDER = re.compile(r"\[[^\]]{1,10}\]")


def _grams(text: str) -> Counter[str]:
    # The placeholders of redacted identifiers ([手机号]) say nothing about what was asked.
    flat = compact(_PLACEHOLDER.sub("", text))
    grams: Counter[str] = Counter()
    for n in (2, 3):
        grams.update(flat[i : i + n] for i in range(len(flat) - n + 1))
    if not grams and flat:
        grams[flat] += 1
    return grams


def _cosine(a: Counter[str], b: Counter[str], norm_a: float, norm_b: float) -> float:
    if not norm_a or not norm_b:
        return 0.0
    small, large = (a, b) if len(a) < len(b) else (b, a)
    return sum(c * large.get(g, 0) for g, c in small.items()) / (norm_a * norm_b)


@dataclass
class _Group:
    grams: Counter[str]  # summed over the members: the group's centroid
    norm: float
    members: list[KbMiss]


def group_questions(misses: list[KbMiss], threshold: float = SIMILARITY) -> list[list[KbMiss]]:
    """Unanswered questions in groups of similar wording (each joins the most similar group's centroid above
    ``threshold``, else starts one), largest and most recent first."""
    groups: list[_Group] = []
    for miss in sorted(misses, key=lambda m: m.id):
        grams = _grams(miss.query)
        norm = math.sqrt(sum(c * c for c in grams.values()))
        best, best_sim = None, threshold
        for g in groups:
            sim = _cosine(grams, g.grams, norm, g.norm)
            if sim >= best_sim:
                best, best_sim = g, sim
        if best is None:
            groups.append(_Group(grams, norm, [miss]))
        else:
            best.members.append(miss)
            best.grams.update(grams)
            best.norm = math.sqrt(sum(c * c for c in best.grams.values()))
    out = [g.members for g in groups]
    out.sort(key=lambda ms: (-len(ms), -max(m.at.timestamp() for m in ms)))
    return out


def _phrasings(misses: list[KbMiss]) -> list[Phrasing]:
    # Questions are stored redacted; masking again covers rows older than the redaction and any identifier
    # the detector learnt to find since.
    counts = Counter(mask_pii(m.query).strip() for m in misses)
    return [Phrasing(t, c) for t, c in counts.most_common(MAX_PHRASINGS) if t]


async def list_suggestions(session: AsyncSession, *, days: int = 90, min_count: int = 2) -> list[Suggestion]:
    """Open suggestions of the last ``days``: groups of at least ``min_count`` unanswered questions, and
    articles with at least ``UNHELPFUL_MIN`` open 没帮助 votes; most asked first."""
    since = utcnow() - timedelta(days=days)
    misses = list(
        await session.scalars(
            select(KbMiss)
            .where(KbMiss.resolution.is_(None), KbMiss.at >= since)
            .order_by(KbMiss.at.desc())
            .limit(MAX_MISSES)
        )
    )
    articles = {a.id: a for a in await session.scalars(select(KbArticle))}
    votes = (
        await session.execute(
            select(KbFeedback.article_id, func.count(), func.max(KbFeedback.at))
            .where(KbFeedback.helpful.is_(False), KbFeedback.handled_at.is_(None), KbFeedback.at >= since)
            .group_by(KbFeedback.article_id)
        )
    ).all()
    unhelpful = {aid: (int(n), last) for aid, n, last in votes if n >= UNHELPFUL_MIN and aid in articles}
    near: dict[int, list[KbMiss]] = {}  # unanswered questions that came closest to a voted-down article
    rest = []
    for m in misses:
        if m.best_article_id in unhelpful:
            near.setdefault(m.best_article_id, []).append(m)
        else:
            rest.append(m)
    out: list[Suggestion] = []
    for members in group_questions(rest):
        if len(members) < min_count:
            continue
        phrasings = _phrasings(members)
        nearest = Counter(m.best_article_id for m in members if m.best_article_id in articles).most_common(1)
        out.append(
            Suggestion(
                key=f"m{min(m.id for m in members)}",
                kind="missing",
                title=phrasings[0].text if phrasings else "",
                count=len(members),
                last_seen=max(m.at for m in members),
                phrasings=phrasings,
                miss_ids=sorted(m.id for m in members),
                category=articles[nearest[0][0]].category if nearest else None,
            )
        )
    for aid, (n, last) in unhelpful.items():
        article, members = articles[aid], near.get(aid, [])
        out.append(
            Suggestion(
                key=f"a{aid}",
                kind="unhelpful",
                title=article.title,
                count=n + len(members),
                last_seen=max([last, *(m.at for m in members)]),
                phrasings=_phrasings(members),
                miss_ids=sorted(m.id for m in members),
                article_id=aid,
                not_helpful=article.not_helpful,
                helpful=article.helpful,
                category=article.category,
            )
        )
    out.sort(key=lambda s: (-s.count, -s.last_seen.timestamp()))
    return out


async def access_suggestion(session: AsyncSession, key: str, *, days: int = 90) -> Suggestion:
    """The open suggestion ``key`` as the page showed it (any size), or NotFound."""
    for s in await list_suggestions(session, days=days, min_count=1):
        if s.key == key:
            return s
    raise NotFound("该建议不存在或已处理", code="kb_suggestion_not_found")


async def _close(session: AsyncSession, s: Suggestion, resolution: str, draft_id: int | None) -> None:
    now = utcnow()
    if s.miss_ids:
        await session.execute(
            update(KbMiss)
            .where(KbMiss.id.in_(s.miss_ids), KbMiss.resolution.is_(None))
            .values(resolution=resolution, resolved_at=now, draft_article_id=draft_id)
        )
    if s.article_id is not None:
        await session.execute(
            update(KbFeedback)
            .where(
                KbFeedback.article_id == s.article_id,
                KbFeedback.helpful.is_(False),
                KbFeedback.handled_at.is_(None),
            )
            .values(handled_at=now)
        )


def _audit(session: AsyncSession, actor: Actor, s: Suggestion, action: str, draft_id: int | None) -> None:
    record_audit(
        session,
        actor,
        AUDIT_ACTION,
        "config",
        f"kb_suggestion:{s.key}",
        after={
            "action": action,
            "kind": s.kind,
            "title": s.title,
            "questions": len(s.miss_ids),
            "article_id": s.article_id,
            "draft_article_id": draft_id,
        },
    )
    emit(
        session,
        KbSuggestionResolved(
            kind=s.kind,
            action=action,
            questions=len(s.miss_ids),
            article_id=s.article_id,
            draft_article_id=draft_id,
        ),
    )


async def do_dismiss_suggestion(session: AsyncSession, actor: Actor, key: str) -> Suggestion:
    """Close a suggestion without an article: its questions and votes no longer count."""
    s = await access_suggestion(session, key)
    await _close(session, s, "dismissed", None)
    _audit(session, actor, s, "dismissed", None)
    return s


async def _free_title(session: AsyncSession, title: str) -> str:
    title = title.strip()[:190] or "居民常问问题"
    taken = set(await session.scalars(select(KbArticle.title).where(KbArticle.title.startswith(title))))
    if title not in taken:
        return title
    n = 2
    while f"{title}（{n}）" in taken:
        n += 1
    return f"{title}（{n}）"


async def do_draft_from_suggestion(session: AsyncSession, actor: Actor, key: str) -> KbArticle:
    """Write a draft article from a suggestion — the residents' phrasings as its questions; for a voted-down
    article a revision draft with its content — and close the suggestion."""
    s = await access_suggestion(session, key)
    phrasings = [p.text[:200] for p in s.phrasings]
    if s.kind == "unhelpful" and s.article_id is not None:
        article = await session.get(KbArticle, s.article_id)
        if article is None:
            raise NotFound("知识条目不存在", code="kb_article_not_found")
        data = ArticleInput(
            title=await _free_title(session, f"{article.title}（修订稿）"),
            questions=list(dict.fromkeys([*article.questions, *phrasings]))[:30],
            answer=article.answer,
            category=article.category,
            tags=list(article.tags),
            channels=list(article.channels),
        )
    else:
        data = ArticleInput(
            title=await _free_title(session, s.title),
            questions=phrasings[:30],
            answer=DRAFT_ANSWER,
            category=s.category or DRAFT_CATEGORY,
        )
    draft = await do_create_article(session, actor, data, status="draft", note="由知识库建议生成")
    await _close(session, s, "drafted", draft.id)
    _audit(session, actor, s, "drafted", draft.id)
    return draft
