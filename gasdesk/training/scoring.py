"""Exam scoring: pure functions of a question's kind, key and options and the trainee's answer.

Choice and true/false questions earn all or nothing (a multiple-choice question only when exactly the right
options are chosen). A short answer earns the share of its keywords present in the answer, both read through
the bot's ``normalize`` (full width, traditional characters, typos and pinyin folded), so 開窗通風 counts for
开窗通风. A keyword may list alternatives separated by ``|`` (关阀|关闭阀门): any one of them counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gasdesk.bot.nlu.normalize import normalize
from gasdesk.training.models import QuestionKind


def keyword_alternatives(keyword: str) -> list[str]:
    """The normalised spellings one keyword accepts."""
    return [n for part in keyword.split("|") if (n := normalize(part))]


def keywords_present(keywords: list[str], text: str) -> list[str]:
    """The keywords (as written in the key) found in ``text`` after normalisation."""
    clean = normalize(text or "")
    return [k for k in keywords if any(alt in clean for alt in keyword_alternatives(k))]


def _as_index(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False, "对": True, "错": False, "1": True, "0": False}.get(
            value.strip().lower()
        )
    return None


def answer_fraction(kind: str, key: dict[str, Any], answer: Any) -> float:
    """What share (0–1) of a question's points ``answer`` earns. An unanswered or malformed answer earns 0."""
    if answer is None:
        return 0.0
    if kind == QuestionKind.single:
        return 1.0 if _as_index(answer) == key.get("option") else 0.0
    if kind == QuestionKind.multiple:
        values = answer if isinstance(answer, list) else [answer]
        chosen = {_as_index(v) for v in values}
        return 1.0 if None not in chosen and chosen == set(key.get("options", [])) else 0.0
    if kind == QuestionKind.true_false:
        given = _as_bool(answer)
        return 1.0 if given is not None and given is key.get("value") else 0.0
    if kind == QuestionKind.short_answer:
        keywords = list(key.get("keywords", []))
        if not keywords or not isinstance(answer, str):
            return 0.0
        return round(len(keywords_present(keywords, answer)) / len(keywords), 4)
    raise ValueError(f"unknown question kind {kind!r}")


@dataclass(frozen=True)
class QuestionScore:
    question_id: int
    points: int
    earned: float  # 0–1 of the points

    def as_dict(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "points": self.points, "earned": self.earned}


@dataclass(frozen=True)
class QuestionView:
    """What scoring needs of a question (the ORM row fits)."""

    id: int
    kind: str
    key: dict[str, Any]
    points: int


def score_attempt(
    questions: list[QuestionView], answers: dict[str, Any]
) -> tuple[float, list[QuestionScore]]:
    """The attempt's percent (one decimal) over ``questions`` and each question's share earned."""
    scores = [
        QuestionScore(q.id, q.points, answer_fraction(q.kind, q.key, answers.get(str(q.id))))
        for q in questions
    ]
    possible = sum(s.points for s in scores)
    if possible == 0:
        return 0.0, scores
    return round(100 * sum(s.points * s.earned for s in scores) / possible, 1), scores
