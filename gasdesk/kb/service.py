"""Knowledge-base articles: validation, audited changes with a version per change, feedback and stats.

Every change goes through a ``do_*`` function: it snapshots the article into ``kb_article_versions``
(editor and time), writes the ``config.kb_article`` audit row in the same transaction, and the search
index notices the change through the articles' version/updated_at fingerprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.clock import utcnow
from gasdesk.db import after_commit
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.event_types import KbFeedbackGiven
from gasdesk.events import emit
from gasdesk.kb.models import (
    CHANNEL_LABELS,
    CHANNELS,
    STATUSES,
    KbArticle,
    KbArticleVersion,
    KbFeedback,
    KbMiss,
)
from gasdesk.kb.search import ANSWER_THRESHOLD, answers, compact, format_answer, invalidate, search_articles
from gasdesk.llm import llm_enabled, phrase_grounded_answer
from gasdesk.security.crypto import blind_index
from gasdesk.security.pii import redact_pii

AUDIT_ACTION = "config.kb_article"
CONTENT_FIELDS = ("title", "questions", "answer", "category", "tags", "channels", "valid_from", "valid_to")
MAX_QUESTIONS = 30
MAX_ANSWER = 20000
_SPLIT_QUESTIONS = re.compile(r"[｜|\n\r]+")
_SPLIT_LIST = re.compile(r"[,，、;；\s/]+")
CHANNEL_ALIASES = {
    **{c: c for c in CHANNELS}, **{label: code for code, label in CHANNEL_LABELS.items()},
    "网页": "webchat", "网站": "webchat", "h5": "webchat", "在线": "webchat", "微信公众号": "wechat",
    "公众号": "wechat", "电话": "voice", "语音": "voice", "电话热线": "voice", "人工": "agent", "坐席端": "agent",
    "网页/H5": "webchat",
}


@dataclass
class ArticleInput:
    """Validated content of an article (what a form, the API or an import row provides)."""

    title: str
    questions: list[str]
    answer: str
    category: str
    tags: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    valid_from: date | None = None
    valid_to: date | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in CONTENT_FIELDS}


# ------------------------------------------------------------------ validation


def split_questions(value: str | list[str] | None) -> list[str]:
    items = value if isinstance(value, list) else _SPLIT_QUESTIONS.split(value or "")
    seen: dict[str, None] = {}
    for item in items:
        text = str(item).strip()
        if text:
            seen.setdefault(text[:200], None)
    return list(seen)


def split_list(value: str | list[str] | None) -> list[str]:
    items = value if isinstance(value, list) else _SPLIT_LIST.split(value or "")
    return list(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))


def check_channels(value: str | list[str] | None) -> list[str]:
    out = []
    for item in split_list(value):
        code = CHANNEL_ALIASES.get(item.lower()) or CHANNEL_ALIASES.get(item)
        if code is None:
            raise InvalidInput(f"未知渠道「{item}」，可选：网页、微信、短信、电话、坐席", code="invalid_kb_channel")
        if code not in out:
            out.append(code)
    return [] if set(out) == set(CHANNELS) else out


def check_date(value: Any, label: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip().replace("/", "-").replace(".", "-")
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text) or re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日", text)
    if not m:
        raise InvalidInput(f"{label}格式应为 2026-11-15", code="invalid_kb_date")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise InvalidInput(f"{label}不是有效日期", code="invalid_kb_date") from exc


def check_article(*, title: Any, questions: Any, answer: Any, category: Any, tags: Any = None,
                  channels: Any = None, valid_from: Any = None, valid_to: Any = None) -> ArticleInput:
    title = str(title or "").strip()
    if not title:
        raise InvalidInput("标题不能为空", code="invalid_kb_title")
    if len(title) > 200:
        raise InvalidInput("标题不能超过 200 字", code="invalid_kb_title")
    answer = str(answer or "").strip()
    if not answer:
        raise InvalidInput("答案不能为空", code="invalid_kb_answer")
    if len(answer) > MAX_ANSWER:
        raise InvalidInput(f"答案不能超过 {MAX_ANSWER} 字", code="invalid_kb_answer")
    category = str(category or "").strip() or "常见问题"
    if len(category) > 40:
        raise InvalidInput("分类不能超过 40 字", code="invalid_kb_category")
    qs = split_questions(questions)
    if len(qs) > MAX_QUESTIONS:
        raise InvalidInput(f"问法最多 {MAX_QUESTIONS} 条", code="invalid_kb_questions")
    tag_list = [t[:20] for t in split_list(tags)][:20]
    start, end = check_date(valid_from, "生效日期"), check_date(valid_to, "失效日期")
    if start and end and end < start:
        raise InvalidInput("失效日期不能早于生效日期", code="invalid_kb_date")
    return ArticleInput(title=title, questions=qs, answer=answer, category=category, tags=tag_list,
                        channels=check_channels(channels), valid_from=start, valid_to=end)


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise InvalidInput("状态应为 draft、published 或 archived", code="invalid_kb_status")
    return status


# ------------------------------------------------------------------ reading


async def access_article(session: AsyncSession, article_id: int) -> KbArticle:
    article = await session.get(KbArticle, article_id)
    if article is None:
        raise NotFound("知识条目不存在", code="kb_article_not_found")
    return article


async def list_articles(session: AsyncSession, *, q: str = "", category: str = "", status: str = "",
                        limit: int = 200, offset: int = 0) -> list[KbArticle]:
    query = select(KbArticle)
    if category:
        query = query.where(KbArticle.category == category)
    if status:
        query = query.where(KbArticle.status == status)
    if q.strip():
        like = f"%{q.strip()[:50]}%"
        query = query.where(or_(KbArticle.title.ilike(like), KbArticle.answer.ilike(like)))
    query = query.order_by(KbArticle.category, KbArticle.title).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def categories(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(KbArticle.category).distinct().order_by(KbArticle.category)))


async def versions_of(session: AsyncSession, article_id: int) -> list[KbArticleVersion]:
    return list(await session.scalars(select(KbArticleVersion).where(KbArticleVersion.article_id == article_id)
                                      .order_by(KbArticleVersion.version.desc())))


def snapshot(article: KbArticle) -> dict[str, Any]:
    data = {f: getattr(article, f) for f in CONTENT_FIELDS}
    data["status"] = article.status
    for key in ("valid_from", "valid_to"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def article_dict(article: KbArticle) -> dict[str, Any]:
    return {"id": article.id, **snapshot(article), "version": article.version, "hits": article.hits,
            "helpful": article.helpful, "not_helpful": article.not_helpful,
            "published_at": article.published_at, "updated_at": article.updated_at}


# ------------------------------------------------------------------ changes


def _add_version(session: AsyncSession, actor: Actor, article: KbArticle, note: str) -> KbArticleVersion:
    version = KbArticleVersion(
        article_id=article.id, version=article.version, title=article.title, questions=list(article.questions),
        answer=article.answer, category=article.category, tags=list(article.tags), channels=list(article.channels),
        valid_from=article.valid_from, valid_to=article.valid_to, status=article.status, note=note[:200],
        editor_id=actor.user_id, editor_name=actor.name[:60], created_at=utcnow())
    session.add(version)
    invalidate()
    after_commit(session, invalidate)
    return version


async def _check_unique_title(session: AsyncSession, title: str, article_id: int | None) -> None:
    found = await session.scalar(select(KbArticle.id).where(KbArticle.title == title))
    if found is not None and found != article_id:
        raise Conflict(f"已存在同名知识条目「{title}」", code="kb_title_taken")


async def do_create_article(session: AsyncSession, actor: Actor, data: ArticleInput, *, status: str = "draft",
                            note: str = "新建") -> KbArticle:
    check_status(status)
    await _check_unique_title(session, data.title, None)
    article = KbArticle(**data.as_dict(), status=status, version=1, hits=0, helpful=0, not_helpful=0,
                        published_at=utcnow() if status == "published" else None)
    session.add(article)
    await session.flush()
    _add_version(session, actor, article, note)
    record_audit(session, actor, AUDIT_ACTION, "config", f"kb_article:{article.id}", after=snapshot(article))
    return article


async def do_update_article(session: AsyncSession, actor: Actor, article: KbArticle, data: ArticleInput, *,
                            status: str | None = None, note: str = "编辑") -> bool:
    """Apply new content (and optionally a status); returns False when nothing changed (no new version)."""
    if status is not None:
        check_status(status)
    await _check_unique_title(session, data.title, article.id)
    before = snapshot(article)
    for key, value in data.as_dict().items():
        setattr(article, key, value)
    if status is not None:
        article.status = status
    after = snapshot(article)
    if after == before:
        return False
    if article.status == "published" and before["status"] != "published":
        article.published_at = utcnow()
    article.version += 1
    article.updated_at = utcnow()
    await session.flush()
    _add_version(session, actor, article, note)
    record_audit(session, actor, AUDIT_ACTION, "config", f"kb_article:{article.id}", before=before, after=after)
    return True


async def do_set_status(session: AsyncSession, actor: Actor, article: KbArticle, status: str) -> KbArticle:
    check_status(status)
    if article.status == status:
        return article
    before = snapshot(article)
    article.status = status
    if status == "published":
        article.published_at = utcnow()
    article.version += 1
    article.updated_at = utcnow()
    await session.flush()
    _add_version(session, actor, article, {"published": "发布", "archived": "归档", "draft": "改为草稿"}[status])
    record_audit(session, actor, AUDIT_ACTION, "config", f"kb_article:{article.id}", before=before,
                 after=snapshot(article))
    return article


async def do_restore_version(session: AsyncSession, actor: Actor, article: KbArticle, version: int) -> KbArticle:
    """Bring back the content of an earlier version as a new version (the status stays as it is)."""
    old = await session.scalar(select(KbArticleVersion).where(KbArticleVersion.article_id == article.id,
                                                              KbArticleVersion.version == version))
    if old is None:
        raise NotFound("该版本不存在", code="kb_version_not_found")
    data = ArticleInput(title=old.title, questions=list(old.questions), answer=old.answer, category=old.category,
                        tags=list(old.tags), channels=list(old.channels), valid_from=old.valid_from,
                        valid_to=old.valid_to)
    await do_update_article(session, actor, article, data, note=f"恢复为版本 {version}")
    return article


async def do_delete_article(session: AsyncSession, actor: Actor, article: KbArticle) -> None:
    before = snapshot(article)
    article_id = article.id
    await session.execute(update(KbMiss).where(KbMiss.best_article_id == article_id).values(best_article_id=None))
    await session.delete(article)
    await session.flush()
    invalidate()
    record_audit(session, actor, AUDIT_ACTION, "config", f"kb_article:{article_id}", before=before)


# ------------------------------------------------------------------ hits, misses, feedback


async def record_hit(session: AsyncSession, article_id: int) -> None:
    # updated_at is kept: a hit is not a content change and must not rebuild the search index.
    await session.execute(update(KbArticle).where(KbArticle.id == article_id)
                          .values(hits=KbArticle.hits + 1, updated_at=KbArticle.updated_at))


def miss_key(query: str) -> str:
    """The blind index that groups equal unanswered questions (normalised after redaction)."""
    redacted = redact_pii(query)
    return blind_index(compact(redacted)[:300] or redacted[:300], kind="kb_miss")


async def record_miss(session: AsyncSession, query: str, *, channel: str | None, intent: str | None,
                      best_article_id: int | None, best_score: float) -> None:
    """Remember a question the knowledge base could not answer: identifiers redacted, then encrypted."""
    session.add(KbMiss(query=redact_pii(query)[:300], normalized_index=miss_key(query), channel=channel,
                       intent=intent, best_article_id=best_article_id, best_score=round(best_score, 4), at=utcnow()))


@dataclass(frozen=True)
class KbAnswer:
    """The bot's knowledge answer: what to say, and the article it quotes (for the resident's feedback)."""

    text: str
    article_id: int
    title: str


async def knowledge_answer(session: AsyncSession, text: str, *, intent: str | None = None,
                           channel: str | None = None) -> KbAnswer | None:
    """The bot's knowledge answer — the article's title and the passage that answers ``text`` (or the LLM's
    wording of the best articles when enabled) — or None below the threshold. Records a hit on the article
    or a miss with the question for the admins."""
    text = (text or "").strip()
    if not text:
        return None
    hits = await search_articles(session, text, limit=3, channel=channel, intent=intent, min_score=0.0)
    top = hits[0] if hits else None
    if top is None or not answers(text, top.score):
        await record_miss(session, text, channel=channel, intent=intent,
                          best_article_id=top.article_id if top else None, best_score=top.score if top else 0.0)
        return None
    await record_hit(session, top.article_id)
    if llm_enabled():
        grounded = [h for h in hits if h.score >= ANSWER_THRESHOLD][:3] or [top]
        phrased = await phrase_grounded_answer(text, grounded)
        if phrased:
            return KbAnswer(phrased, top.article_id, top.title)
    return KbAnswer(format_answer(top, text), top.article_id, top.title)


async def best_answer(session: AsyncSession, text: str, *, intent: str | None = None,
                      channel: str | None = None) -> str | None:
    """The text of ``knowledge_answer`` (None below the threshold)."""
    answer = await knowledge_answer(session, text, intent=intent, channel=channel)
    return answer.text if answer else None


async def do_feedback(session: AsyncSession, article_id: int, helpful: bool, source: str = "resident") -> None:
    article = await access_article(session, article_id)
    if article.status != "published":
        raise NotFound("知识条目不存在", code="kb_article_not_found")
    feedback = KbFeedback(article_id=article_id, helpful=helpful, source=source, at=utcnow())
    session.add(feedback)
    await session.flush()
    emit(session, KbFeedbackGiven(feedback_id=feedback.id, article_id=article_id, helpful=helpful))
    column = KbArticle.helpful if helpful else KbArticle.not_helpful
    await session.execute(update(KbArticle).where(KbArticle.id == article_id)
                          .values({column.key: column + 1, "updated_at": KbArticle.updated_at}))


@dataclass
class KbStats:
    articles: dict[str, int]
    hits: int
    misses: int
    top_misses: list[tuple[str, int, str]]  # group key (blind index), count, one (redacted) wording
    top_articles: list[KbArticle]
    not_helpful: list[KbArticle]


async def kb_stats(session: AsyncSession, *, days: int = 30, top: int = 20) -> KbStats:
    since = utcnow() - timedelta(days=days)
    by_status = dict((await session.execute(select(KbArticle.status, func.count()).group_by(KbArticle.status))).all())
    hits = await session.scalar(select(func.coalesce(func.sum(KbArticle.hits), 0))) or 0
    misses = await session.scalar(select(func.count()).select_from(KbMiss).where(KbMiss.at >= since)) or 0
    rows = (await session.execute(
        select(KbMiss.normalized_index, func.count(), func.max(KbMiss.query)).where(KbMiss.at >= since)
        .group_by(KbMiss.normalized_index).order_by(func.count().desc(), KbMiss.normalized_index).limit(top))).all()
    top_articles = list(await session.scalars(select(KbArticle).where(KbArticle.hits > 0)
                                              .order_by(KbArticle.hits.desc()).limit(top)))
    unhelpful = list(await session.scalars(select(KbArticle).where(KbArticle.not_helpful > 0)
                                           .order_by(KbArticle.not_helpful.desc()).limit(top)))
    return KbStats(articles={s: int(by_status.get(s, 0)) for s in STATUSES}, hits=int(hits), misses=int(misses),
                   top_misses=[(n, int(c), q) for n, c, q in rows], top_articles=top_articles, not_helpful=unhelpful)


async def clear_misses(session: AsyncSession, key: str) -> None:
    await session.execute(delete(KbMiss).where(KbMiss.normalized_index == key))
