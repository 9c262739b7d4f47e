"""Offline knowledge search: BM25F over jieba words + character 2-3-gram cosine + a linear classifier over the
articles' phrasings (``classifier.py``), blended into one score with one threshold.

Text is normalised with the NLU's rules (width, typos, 煤气/天然气 -> 燃气, 供暖/采暖 -> 暖气 ...) plus the
knowledge base's own synonyms (``data/synonyms.txt``), then segmented with the NLU's jieba tokenizer and
its domain dictionary. Only published articles are indexed; validity window and channel are checked per
query. The index lives in memory per process and is rebuilt when the articles' fingerprint changes
(count, newest ``updated_at``, sum of versions) or a change in this process bumps the generation.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.bot.nlu.normalize import canonicalize
from gasdesk.bot.nlu.scope import is_off_domain
from gasdesk.bot.nlu.segment import words
from gasdesk.clock import to_local, utcnow
from gasdesk.kb import classifier
from gasdesk.kb.models import KbArticle
from gasdesk.kb.render import to_plain

ANSWER_THRESHOLD = 0.22  # below this the bot does not answer from the knowledge base (a miss is recorded)
SUGGEST_THRESHOLD = 0.12  # staff search and console suggestions show weaker matches too
FIELD_WEIGHTS = {"title": 3.0, "questions": 2.0, "answer": 1.0}
K1, B = 2.0, 0.6
W_BM25, W_NGRAM = 0.55, 0.45
# Share of the score taken by the article classifier's probability (the rest is the BM25 + n-gram score).
W_CLASSIFIER = 0.5
# The classifier's most likely articles are scored even when no query word or n-gram reached them.
CLASSIFIER_CANDIDATES = 5
# A query word matched only through a related word of its expansion group counts this share of its weight.
EXPANSION_WEIGHT = 0.5
INTENT_BOOST = 0.04
# Which article categories an NLU intent usually belongs to (a small tie-breaking boost).
INTENT_CATEGORIES = {
    "payment_howto": {"缴费充值"}, "price_query": {"气价与收费", "供暖"}, "meter_guidance": {"表具使用"},
    "safety_knowledge": {"安全用气"}, "outage_query": {"停气停暖"}, "business_handling": {"业务办理"},
    "no_gas": {"故障自查", "表具使用"}, "heating_not_warm": {"供暖", "故障自查"}, "complaint": {"投诉与服务"},
    "branch_info": {"营业厅"}, "appointment_cancel": {"预约上门"}, "appointment_book": {"预约上门"},
}
STOPWORDS = frozenset(
    "的 了 吗 呢 啊 吧 呀 么 哦 嗯 哈 啦 嘛 我 我家 我们 俺 你 你们 您 您好 你好 请问 请 麻烦 一下 怎么 怎么办 怎样 "
    "如何 什么 啥 咋 咋办 为什么 为啥 是 在 就 都 也 还 又 和 跟 与 或 及 这 那 这个 那个 这样 那样 哪 哪里 哪儿 "
    "可以 能 能不能 可不可以 是不是 有没有 需要 要 想 得 该 应该 吗? 谢谢 好 一 个 些 下 上 给 把 被 让 对 "
    "现在 今天 我想 想要 问 问下 问一下 咨询 知道 帮 帮忙 多少 几 时候 情况 里 着 去 有 过 从 到 还是 行不行 "
    "行 一股 那根 那个 这根 前面 后面 回去 弄 怎么弄 咋弄 搞 怎么搞 不想 感觉 觉得 一直 老是 总是 已经 突然 "
    "就是 但是 可是 因为 所以 如果 时 后 以后 之后 里面 上面 下面".split()
)
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_FILLER_CHARS = re.compile(r"[的了吗呢啊吧呀么哦嗯哈啦嘛请问您你我]")


@cache
def _kb_synonyms() -> tuple[re.Pattern[str], dict[str, str], tuple[tuple[str, ...], ...]]:
    """The folds ("variant<TAB>canonical": one spelling on both sides) and the expansion groups
    ("~word word ...": related words a query may be answered with, at a lower weight)."""
    pairs: dict[str, str] = {}
    groups: list[tuple[str, ...]] = []
    path = Path(__file__).parent / "data" / "synonyms.txt"
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("~"):
            groups.append(tuple(line[1:].split()))
        else:
            key, value = line.split("\t")
            pairs[key.lower()] = value
    keys = sorted(pairs, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, keys))), pairs, tuple(groups)


def normalize_text(text: str) -> str:
    """NLU canonical form plus the knowledge-base synonyms (lower-case, half-width)."""
    pattern, pairs, _ = _kb_synonyms()
    return pattern.sub(lambda m: pairs[m.group(0)], canonicalize(text or ""))


@cache
def _expansions() -> dict[str, tuple[str, ...]]:
    """Query term -> the index terms of its group's other words (written the way the index writes them)."""
    out: dict[str, list[str]] = {}
    for group in _kb_synonyms()[2]:
        # Each word goes through the same folding and segmentation as the articles, so a group may be
        # written in the residents' words.
        # Only words that stay one term take part: a phrase split into generic pieces (没气 -> 没, 气) would
        # expand every sentence holding one of them.
        forms = list(dict.fromkeys(t[0] for word in group if len(t := terms(word)) == 1))
        for key in forms:
            bucket = out.setdefault(key, [])
            bucket.extend(t for t in forms if t != key and t not in bucket)
    return {k: tuple(v) for k, v in out.items() if v}


def expand(query: list[str]) -> dict[str, tuple[str, ...]]:
    """The related terms of each query term that has some (the query's own terms are not repeated)."""
    table = _expansions()
    own = set(query)
    return {t: alts for t in own if (alts := tuple(a for a in table.get(t, ()) if a not in own))}


def terms(text: str) -> list[str]:
    """Content words of ``text`` (normalised, segmented, stop words and punctuation dropped)."""
    out = []
    for word in words(normalize_text(text)):
        token = word.strip().lower()
        if not token or token in STOPWORDS or not _PUNCT.sub("", token):
            continue
        out.append(token)
    return out


def compact(text: str) -> str:
    """Normalised text without punctuation and filler characters: the input of the n-gram similarity."""
    return _FILLER_CHARS.sub("", _PUNCT.sub("", normalize_text(text).lower()))


def text_view(text: str) -> tuple[list[str], str]:
    """``text``'s content words and compact form: what the index and the article classifier read of it."""
    return terms(text), compact(text)


def _ngrams(text: str) -> Counter[str]:
    grams: Counter[str] = Counter()
    for n in (2, 3):
        grams.update(text[i:i + n] for i in range(len(text) - n + 1))
    if len(text) == 1:
        grams[text] += 1
    return grams


class IndexedArticle(Protocol):
    """What the index reads of an article: a published ``KbArticle`` row, or a record of an evaluation set.
    Read-only members, so a frozen record satisfies it as well as an ORM row."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def questions(self) -> list[str]: ...
    @property
    def answer(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def channels(self) -> list[str]: ...
    @property
    def valid_from(self) -> date | None: ...
    @property
    def valid_to(self) -> date | None: ...


@dataclass
class _Doc:
    id: int
    title: str
    category: str
    channels: tuple[str, ...]
    valid_from: date | None
    valid_to: date | None
    plain: str
    fields: dict[str, Counter[str]]
    lengths: dict[str, int]
    phrasings: list[tuple[dict[str, float], float]]  # n-gram tf-idf vectors (weights, norm) of title + questions


@dataclass
class SearchHit:
    article_id: int
    title: str
    category: str
    score: float
    snippet: str
    answer: str  # plain text, for chat or the agent's composer


class KbIndex:
    def __init__(self, articles: Sequence[IndexedArticle], *, use_expansion: bool = True) -> None:
        self.use_expansion = use_expansion  # False: the evaluation's "before" figures
        self.docs: list[_Doc] = []
        df: Counter[str] = Counter()
        gram_df: Counter[str] = Counter()
        raw_phrasings: list[list[Counter[str]]] = []
        views: list[list[classifier.TextView]] = []  # each article's title and questions, as searched
        for a in articles:
            plain = to_plain(a.answer)
            phrasings = [text_view(p) for p in [a.title, *a.questions]]
            views.append(phrasings)
            fields = {"title": Counter(phrasings[0][0]), "questions": Counter(t for w, _ in phrasings[1:] for t in w),
                      "answer": Counter(terms(plain))}
            df.update(set().union(*(set(f) for f in fields.values())))
            grams = [_ngrams(c) for _, c in phrasings]
            grams = [g for g in grams if g]
            for g in grams:
                gram_df.update(set(g))
            raw_phrasings.append(grams)
            self.docs.append(_Doc(a.id, a.title, a.category, tuple(a.channels or ()), a.valid_from, a.valid_to, plain,
                                  fields, {k: sum(v.values()) for k, v in fields.items()}, []))
        n = max(len(self.docs), 1)
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        # An unknown query word weighs like an average word of the index (strict but not harsh on tiny KBs).
        self.unknown_idf = sum(self.idf.values()) / len(self.idf) if self.idf else 1.0
        self.avg = {f: (sum(d.lengths[f] for d in self.docs) / n) or 1.0 for f in FIELD_WEIGHTS}
        n_rows = sum(len(g) for g in raw_phrasings) or 1
        self.gram_idf = {g: math.log((1 + n_rows) / (1 + d)) + 1 for g, d in gram_df.items()}
        self.gram_max_idf = math.log(1 + n_rows) + 1
        for doc, grams in zip(self.docs, raw_phrasings, strict=True):
            doc.phrasings = [self._vector(g) for g in grams]
        self.classifier = classifier.train(views, text_view)
        self.postings: dict[str, list[int]] = {}
        for i, doc in enumerate(self.docs):
            for t in set().union(*(set(f) for f in doc.fields.values())):
                self.postings.setdefault(t, []).append(i)

    def _vector(self, grams: Counter[str]) -> tuple[dict[str, float], float]:
        weights = {g: (1 + math.log(c)) * self.gram_idf.get(g, self.gram_max_idf) for g, c in grams.items()}
        return weights, math.sqrt(sum(w * w for w in weights.values())) or 1.0

    def _tf(self, doc: _Doc, term: str) -> float:
        tf = 0.0
        for f, w in FIELD_WEIGHTS.items():
            c = doc.fields[f].get(term, 0)
            if c:
                tf += w * c / (1 - B + B * doc.lengths[f] / self.avg[f])
        return tf / (K1 + tf) if tf else 0.0

    def _bm25(self, doc: _Doc, query: list[str], expansions: dict[str, tuple[str, ...]] | None = None) -> float:
        score = 0.0
        for t in query:
            sat = self._tf(doc, t)
            alts = expansions.get(t) if expansions and sat < EXPANSION_WEIGHT else None
            if alts:
                # The word's own weight (its idf, or an average word's when the index lacks it), matched at
                # a discount through the best related word: never more than the word itself would give.
                sat = max(sat, EXPANSION_WEIGHT * max(self._tf(doc, a) for a in alts))
                score += self.idf.get(t, self.unknown_idf) * sat
            elif sat:
                score += self.idf.get(t, 0.0) * sat
        return score

    def search(self, text: str, *, limit: int = 5, channel: str | None = None, today: date | None = None,
               intent: str | None = None, min_score: float = 0.0) -> list[tuple[float, _Doc]]:
        query, compact_text = text_view(text)
        expansions = expand(query) if self.use_expansion else {}
        q_ideal = sum(self.idf.get(t, self.unknown_idf) for t in query) or 0.0
        q_vec, q_norm = self._vector(_ngrams(compact_text))
        if not query and not q_vec:
            return []
        candidates = {i for t in query for i in self.postings.get(t, ())}
        candidates.update(i for alts in expansions.values() for a in alts for i in self.postings.get(a, ()))
        q_grams = set(q_vec)
        for i, doc in enumerate(self.docs):  # n-gram overlap catches typos and unsegmented words
            if i not in candidates and any(q_grams & p[0].keys() for p in doc.phrasings):
                candidates.add(i)
        probabilities = self.classifier.probabilities((query, compact_text)) if self.classifier else None
        if probabilities is not None:
            candidates.update(int(i) for i in np.argsort(-probabilities)[:CLASSIFIER_CANDIDATES])
        boosted = INTENT_CATEGORIES.get(intent or "", set())
        results = []
        for i in candidates:
            doc = self.docs[i]
            if channel and doc.channels and channel not in doc.channels:
                continue
            if today and ((doc.valid_from and today < doc.valid_from) or (doc.valid_to and today > doc.valid_to)):
                continue
            bm25 = self._bm25(doc, query, expansions) / q_ideal if q_ideal else 0.0
            cos = 0.0
            for weights, norm in doc.phrasings:
                dot = sum(w * weights.get(g, 0.0) for g, w in q_vec.items())
                cos = max(cos, dot / (norm * q_norm))
            score = W_BM25 * min(bm25, 1.0) + W_NGRAM * cos
            if probabilities is not None:
                score = (1 - W_CLASSIFIER) * score + W_CLASSIFIER * float(probabilities[i])
            score += INTENT_BOOST if doc.category in boosted else 0.0
            if score >= min_score:
                results.append((round(score, 4), doc))
        results.sort(key=lambda r: (-r[0], r[1].id))
        return results[:limit]


_generation = 0
_cache: dict[str, Any] = {"key": None, "index": None}


def invalidate() -> None:
    """Called by every change in this process; other processes notice through the fingerprint."""
    global _generation
    _generation += 1


async def get_index(session: AsyncSession) -> KbIndex:
    row = (await session.execute(select(func.count(KbArticle.id), func.max(KbArticle.updated_at),
                                        func.coalesce(func.sum(KbArticle.version), 0),
                                        func.coalesce(func.max(KbArticle.id), 0)))).one()
    bind = session.get_bind()
    key = (_generation, str(bind.engine.url), row[0], str(row[1]), int(row[2]), int(row[3]))
    if _cache["key"] != key or _cache["index"] is None:
        articles = list(await session.scalars(select(KbArticle).where(KbArticle.status == "published")))
        _cache["index"] = KbIndex(articles)
        _cache["key"] = key
    return _cache["index"]


def _local_today() -> date:
    local = to_local(utcnow())
    assert local is not None
    return local.date()


def snippet(plain: str, query: str, width: int = 80) -> str:
    flat = re.sub(r"\s+", " ", plain).strip()
    pos = -1
    for t in sorted(terms(query), key=len, reverse=True):
        pos = flat.find(t)
        if pos >= 0:
            break
    start = max(0, pos - 20) if pos > 0 else 0
    text = flat[start:start + width]
    return ("…" if start else "") + text + ("…" if start + width < len(flat) else "")


async def search_articles(session: AsyncSession, q: str, limit: int = 5, channel: str | None = None, *,
                          intent: str | None = None, min_score: float = SUGGEST_THRESHOLD) -> list[SearchHit]:
    """Published, currently valid articles for ``channel`` (any channel if None), best first, with score."""
    q = (q or "").strip()[:300]
    if not q:
        return []
    index = await get_index(session)
    found = index.search(q, limit=max(1, min(limit, 50)), channel=channel, today=_local_today(), intent=intent,
                         min_score=min_score)
    return [SearchHit(doc.id, doc.title, doc.category, score, snippet(doc.plain, q), doc.plain)
            for score, doc in found]


def answers(text: str, score: float) -> bool:
    """Whether the bot may answer ``text`` with an article of this score. A question naming another utility or
    everyday subject (电费, 话费, 快递…) and nothing of ours is not answered, however well its wording
    (怎么交, 丢了怎么补) matches an article."""
    return score >= ANSWER_THRESHOLD and not is_off_domain(text)


QUOTE_MAX_CHARS = 180  # an answer up to this long is quoted whole; a longer one by its best passage
_SENTENCE = re.compile(r"(?<=[。！？；!?;])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.、)）])\s*")


def _units(plain: str) -> list[str]:
    """Lines of the answer; a line longer than the quote is cut into sentences."""
    out = []
    for line in plain.splitlines():
        line = line.strip()
        if not line:
            continue
        if len(line) <= QUOTE_MAX_CHARS:
            out.append(line)
        else:
            out.extend(p.strip() for p in _SENTENCE.split(line) if p.strip())
    return out


def _word_weight(term: str) -> float:
    # A one-character word (费, 交) is weak evidence of the line that answers; longer words say more.
    return 0.25 if len(term) == 1 else float(min(len(term), 4))


def quote(plain: str, query: str, title: str = "", max_chars: int = QUOTE_MAX_CHARS) -> str:
    """The part of an answer that answers ``query``: the whole answer when short, else the line (or sentence)
    sharing most with the question, with the lead-in line of its list and the lines after it up to
    ``max_chars``; "…" marks what was left out. Question words in the article's ``title`` found the article
    and say nothing about which line answers, so they count only when the question has no others."""
    flat = plain.strip()
    if len(flat) <= max_chars:
        return flat
    units = _units(flat)
    own = set(terms(query))
    own = (own - set(terms(title))) or own
    related = {a for alts in expand(list(own)).values() for a in alts}
    q_grams = set(_ngrams(compact(query)))

    def score(unit: str) -> float:
        words = set(terms(unit))
        # Longer shared words say more than one-character ones; a related word counts half.
        hit = sum(_word_weight(t) for t in own & words) + 0.5 * sum(_word_weight(t) for t in related & words)
        grams = set(_ngrams(compact(unit)))
        # Shared character n-grams count too: segmentation splits the same word differently (开发票 / 发票).
        return hit + (3 * len(q_grams & grams) / len(q_grams) if q_grams else 0.0)

    scores = [score(u) for u in units]
    best = max(range(len(units)), key=lambda i: (scores[i], -i)) if any(scores) else 0
    start = best
    if start > 0 and units[start - 1].endswith(("：", ":")) and _LIST_ITEM.match(units[start]):
        start -= 1  # the list's lead-in ("办理方式：") belongs to the item
    end = best + 1
    size = sum(len(u) for u in units[start:end])
    # Lines after the best one follow while the quote is short, or while they share something with the question.
    while end < len(units) and size + len(units[end]) <= max_chars and (size < max_chars // 3 or scores[end] >= 1):
        size += len(units[end])
        end += 1
    return ("…\n" if start else "") + "\n".join(units[start:end]) + ("\n…" if end < len(units) else "")


def format_answer(hit: SearchHit, query: str | None = None) -> str:
    """The knowledge answer as the resident reads it: the article's title, then its passage for ``query``
    (the whole answer without a query)."""
    body = quote(hit.answer, query, hit.title) if query else hit.answer
    return f"【{hit.title}】\n{body}"
