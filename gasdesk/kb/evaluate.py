"""Measure the knowledge answers on a set of resident questions, without a database.

A case is a question and the title of the article that answers it, or ``None`` when the knowledge base has
no answer (the bot must stay below ``ANSWER_THRESHOLD`` and say it does not know). Files:

- JSON lines ``{"q": "...", "title": "<article title>" | null}``;
- a Python module with ``PARAPHRASES = [(question, title), ...]`` and optionally ``OFF_TOPIC = [question, ...]``
  (``tests/kb/kb_queries.py``); read with ``ast.literal_eval``, never executed.

The search index is built straight from the article records (the demo knowledge base by default), the way
the bot's search builds it from published rows, and questions are searched as the web chat asks them
(channel ``webchat``, today's validity window, no NLU intent boost — the intent is the classifier's guess
and would make the figures depend on it).
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from gasdesk.kb.importer import DEMO_KB_PATH
from gasdesk.kb.search import KbIndex, answers

EVAL_CHANNEL = "webchat"


class KbEvalFileError(ValueError):
    """The evaluation file is missing, unreadable or malformed (the message names the line)."""


@dataclass(frozen=True)
class EvalCase:
    question: str
    title: str | None  # None: the knowledge base has no answer


@dataclass(frozen=True)
class EvalArticle:
    """The fields of an article the search index reads (a published ``KbArticle`` has the same)."""

    id: int
    title: str
    questions: list[str]
    answer: str
    category: str
    channels: list[str] = field(default_factory=list)
    valid_from: date | None = None
    valid_to: date | None = None


@dataclass
class EvalFailure:
    question: str
    expected: str | None
    got: list[tuple[str, float]]  # the top three titles with their scores

    def describe(self) -> str:
        found = "，".join(f"{t}（{s:.3f}）" for t, s in self.got) or "无结果"
        want = f"「{self.expected}」" if self.expected else "不应回答"
        return f"{self.question} → 期望 {want}；实际 {found}"


@dataclass
class KbEvalReport:
    answerable: int = 0
    unanswerable: int = 0
    top1: int = 0
    top3: int = 0
    answered: int = 0  # right article first AND above the answer threshold: what the bot would really say
    rejected: int = 0  # unanswerable questions kept below the threshold
    failures: list[EvalFailure] = field(default_factory=list)

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.answerable if self.answerable else 0.0

    @property
    def top3_rate(self) -> float:
        return self.top3 / self.answerable if self.answerable else 0.0

    @property
    def answered_rate(self) -> float:
        return self.answered / self.answerable if self.answerable else 0.0

    @property
    def rejected_rate(self) -> float:
        return self.rejected / self.unanswerable if self.unanswerable else 0.0

    def summary(self) -> str:
        """One line with the figures (the bench and the CLI print it)."""
        return (
            f"answerable {self.answerable}: top-1 {self.top1}/{self.answerable} ({self.top1_rate:.1%}), "
            f"top-3 {self.top3}/{self.answerable} ({self.top3_rate:.1%}), "
            f"answered right {self.answered}/{self.answerable} ({self.answered_rate:.1%}); "
            f"unanswerable {self.unanswerable}: rejected {self.rejected}/{self.unanswerable} "
            f"({self.rejected_rate:.1%})"
        )


def load_articles(path: Path = DEMO_KB_PATH) -> list[EvalArticle]:
    """The articles of a JSON-lines knowledge file (the demo knowledge base's format), numbered from 1."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            r = json.loads(line)
            out.append(
                EvalArticle(
                    number,
                    r["title"],
                    list(r.get("questions") or []),
                    r.get("answer") or "",
                    r.get("category") or "",
                    list(r.get("channels") or []),
                    date.fromisoformat(r["valid_from"]) if r.get("valid_from") else None,
                    date.fromisoformat(r["valid_to"]) if r.get("valid_to") else None,
                )
            )
    return out


def cases_from_lists(paraphrases: Iterable[tuple[str, str]], off_topic: Iterable[str] = ()) -> list[EvalCase]:
    """Cases from the test module's lists: (question, title) pairs, then questions with no answer."""
    return [EvalCase(q, t) for q, t in paraphrases] + [EvalCase(q, None) for q in off_topic]


def _cases_from_module(file: Path) -> list[EvalCase]:
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    except SyntaxError as exc:
        raise KbEvalFileError(f"{file}:{exc.lineno}: not valid Python ({exc.msg})") from exc
    lists: dict[str, Any] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        )
        if (
            isinstance(target, ast.Name)
            and target.id in ("PARAPHRASES", "OFF_TOPIC")
            and node.value is not None
        ):
            try:
                lists[target.id] = ast.literal_eval(node.value)
            except ValueError as exc:
                raise KbEvalFileError(f"{file}:{node.lineno}: {target.id} must be a literal list") from exc
    pairs = lists.get("PARAPHRASES")
    if not isinstance(pairs, list) or not all(
        isinstance(p, tuple | list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs
    ):
        raise KbEvalFileError(f"{file}: expected PARAPHRASES = [(question, title), ...]")
    off = lists.get("OFF_TOPIC", [])
    if not isinstance(off, list) or not all(isinstance(q, str) for q in off):
        raise KbEvalFileError(f"{file}: OFF_TOPIC must be a list of questions")
    return cases_from_lists([(q, t) for q, t in pairs], off)


def _cases_from_jsonl(file: Path) -> list[EvalCase]:
    cases = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise KbEvalFileError(f"{file}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("q"), str) or not row["q"].strip():
            raise KbEvalFileError(f'{file}:{number}: expected an object with a non-empty "q"')
        if "title" not in row or not (row["title"] is None or isinstance(row["title"], str)):
            raise KbEvalFileError(f'{file}:{number}: "title" must be an article title or null')
        cases.append(EvalCase(row["q"].strip(), row["title"]))
    return cases


def load_cases(path: str | Path, titles: Iterable[str] | None = None) -> list[EvalCase]:
    """Parse and validate an evaluation file (.jsonl, or a .py module with the lists); with ``titles``, every
    expected title must be one of them. Raises ``KbEvalFileError``."""
    file = Path(path)
    if not file.is_file():
        raise KbEvalFileError(f"no such file: {file}")
    try:
        cases = _cases_from_module(file) if file.suffix == ".py" else _cases_from_jsonl(file)
    except UnicodeDecodeError as exc:
        raise KbEvalFileError(f"{file}: not UTF-8 text") from exc
    if not cases:
        raise KbEvalFileError(f"{file}: no questions")
    if titles is not None:
        known = set(titles)
        unknown = sorted({c.title for c in cases if c.title is not None and c.title not in known})
        if unknown:
            raise KbEvalFileError(
                f"{file}: no article titled {', '.join(map(repr, unknown[:5]))}"
                + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else "")
            )
    return cases


def evaluate(
    cases: list[EvalCase], index: KbIndex, *, today: date | None = None, channel: str | None = EVAL_CHANNEL
) -> KbEvalReport:
    """Search every question as the bot does and count right articles and correct refusals."""
    report = KbEvalReport()
    for case in cases:
        found = index.search(case.question, limit=3, channel=channel, today=today)
        titles = [doc.title for _, doc in found]
        top_score = found[0][0] if found else 0.0
        if case.title is None:
            report.unanswerable += 1
            ok = not answers(case.question, top_score)
            report.rejected += ok
        else:
            report.answerable += 1
            first = bool(titles) and titles[0] == case.title
            report.top1 += first
            report.top3 += case.title in titles
            ok = first and answers(case.question, top_score)
            report.answered += ok
        if not ok:
            report.failures.append(EvalFailure(case.question, case.title, [(d.title, s) for s, d in found]))
    return report


def evaluate_file(
    path: str | Path, articles_path: Path = DEMO_KB_PATH, *, today: date | None = None
) -> KbEvalReport:
    articles = load_articles(articles_path)
    cases = load_cases(path, titles=[a.title for a in articles])
    return evaluate(cases, KbIndex(articles), today=today)


def format_report(report: KbEvalReport, *, max_failures: int = 100) -> str:
    lines = [report.summary()]
    if report.failures:
        lines.append(f"failures ({len(report.failures)}):")
        lines += [f"  {f.describe()}" for f in report.failures[:max_failures]]
    return "\n".join(lines)


def run_eval_cli(path: str, articles_path: str | None = None) -> int:
    """Entry point for ``gasdesk kb eval FILE``: 0 after printing the report, 2 on a bad file."""
    try:
        report = evaluate_file(path, Path(articles_path) if articles_path else DEMO_KB_PATH)
    except KbEvalFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0
