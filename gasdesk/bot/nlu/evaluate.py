"""Measure the NLU engine on a labelled JSON-lines file, next to a plain TF-IDF baseline.

Each line: ``{"text": ..., "intent": ..., "slots": {...}?}``. Slots are scored per line: a line
counts as correct when every gold slot is predicted with the same value (extra slots are fine,
since gold files only label the slots they care about).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from gasdesk.bot.nlu.classifier import get_classifier, load_examples
from gasdesk.bot.nlu.engine import understand
from gasdesk.bot.nlu.intents import GAS_LEAK, INTENTS


class EvalFileError(ValueError):
    """The evaluation file is missing, unreadable or has a malformed line."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    slots: dict[str, str] | None = None


@dataclass(frozen=True)
class IntentScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Confusion:
    gold: str
    predicted: str
    count: int
    example: str


@dataclass(frozen=True)
class BaselineScore:
    """TF-IDF char 1–3 grams + logistic regression on the raw training texts, no rules."""

    accuracy: float
    leak_recall: float | None


@dataclass(frozen=True)
class EvalReport:
    path: str
    total: int
    accuracy: float
    per_intent: dict[str, IntentScore]
    slot_accuracy: float | None
    slot_lines: int
    confusions: list[Confusion]
    latency_p50_ms: float
    latency_p95_ms: float
    leak_recall: float | None
    leak_support: int
    baseline: BaselineScore
    train_seconds: float
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (gold, predicted, text)


def load_eval_file(path: str | Path) -> list[Example]:
    """Parse and validate an evaluation file; raises ``EvalFileError`` with the line number."""
    file = Path(path)
    if not file.is_file():
        raise EvalFileError(f"no such file: {file}")
    examples: list[Example] = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalFileError(f"{file}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) or "intent" not in row:
                raise EvalFileError(f'{file}:{number}: expected an object with "text" and "intent"')
            if row["intent"] not in INTENTS:
                raise EvalFileError(f"{file}:{number}: unknown intent {row['intent']!r}")
            slots = row.get("slots")
            if slots is not None and not isinstance(slots, dict):
                raise EvalFileError(f'{file}:{number}: "slots" must be an object')
            examples.append(Example(row["text"], row["intent"], slots or None))
    if not examples:
        raise EvalFileError(f"{file}: no examples")
    return examples


def _leak_recall(gold: list[str], predicted: list[str]) -> float | None:
    leaks = [p for g, p in zip(gold, predicted, strict=True) if g == GAS_LEAK]
    return sum(p == GAS_LEAK for p in leaks) / len(leaks) if leaks else None


def _per_intent(gold: list[str], predicted: list[str]) -> dict[str, IntentScore]:
    scores: dict[str, IntentScore] = {}
    for intent in INTENTS:
        tp = sum(g == p == intent for g, p in zip(gold, predicted, strict=True))
        predicted_n = predicted.count(intent)
        support = gold.count(intent)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[intent] = IntentScore(precision, recall, f1, support)
    return scores


@functools.cache
def _baseline_model() -> Pipeline:
    """The plain TF-IDF + logistic-regression reference, trained once per process on the shipped data."""
    texts, labels = load_examples()
    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        LogisticRegression(max_iter=1000),
    )
    model.fit(texts, labels)
    return model


def _baseline(examples: list[Example]) -> BaselineScore:
    model = _baseline_model()
    predicted = [str(p) for p in model.predict([e.text for e in examples])]
    gold = [e.intent for e in examples]
    accuracy = sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)
    return BaselineScore(accuracy, _leak_recall(gold, predicted))


def evaluate(path: str | Path, now: datetime | None = None) -> EvalReport:
    """Score ``understand`` on ``path`` and, in the same run, the TF-IDF baseline."""
    examples = load_eval_file(path)
    started = time.perf_counter()
    get_classifier()  # train (once per process) outside the latency measurement
    train_seconds = time.perf_counter() - started

    predicted: list[str] = []
    latencies: list[float] = []
    slot_hits = slot_lines = 0
    for example in examples:
        started = time.perf_counter()
        result = understand(example.text, now)
        latencies.append((time.perf_counter() - started) * 1000)
        predicted.append(result.intent)
        if example.slots:
            slot_lines += 1
            slot_hits += all(result.slots.get(k) == v for k, v in example.slots.items())

    gold = [e.intent for e in examples]
    pairs = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    first_example: dict[tuple[str, str], str] = {}
    for example, p in zip(examples, predicted, strict=True):
        first_example.setdefault((example.intent, p), example.text)
    confusions = [Confusion(g, p, n, first_example[(g, p)]) for (g, p), n in pairs.most_common(10)]
    return EvalReport(
        path=str(path),
        total=len(examples),
        accuracy=sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(examples),
        per_intent=_per_intent(gold, predicted),
        slot_accuracy=slot_hits / slot_lines if slot_lines else None,
        slot_lines=slot_lines,
        confusions=confusions,
        latency_p50_ms=float(np.percentile(latencies, 50)),
        latency_p95_ms=float(np.percentile(latencies, 95)),
        leak_recall=_leak_recall(gold, predicted),
        leak_support=gold.count(GAS_LEAK),
        baseline=_baseline(examples),
        train_seconds=train_seconds,
        errors=[(e.intent, p, e.text) for e, p in zip(examples, predicted, strict=True) if e.intent != p],
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def format_report(report: EvalReport) -> str:
    """A plain-text table (Chinese/English labels) for terminals and logs."""
    lines = [
        f"NLU 评测 / evaluation: {report.path}  ({report.total} 条 lines)",
        f"  意图准确率 intent accuracy : {_pct(report.accuracy)}",
        f"  漏气召回率 gas_leak recall : {_pct(report.leak_recall)} (support {report.leak_support})",
        f"  槽位准确率 slot accuracy   : {_pct(report.slot_accuracy)} ({report.slot_lines} 条带槽位 lines)",
        f"  延迟 latency p50 / p95     : {report.latency_p50_ms:.2f} ms / {report.latency_p95_ms:.2f} ms",
        f"  基线 baseline (TF-IDF char1-3 + LR): accuracy {_pct(report.baseline.accuracy)}, "
        f"gas_leak recall {_pct(report.baseline.leak_recall)}",
        "",
        f"  {'意图 intent':<24}{'precision':>10}{'recall':>10}{'F1':>8}{'support':>9}",
    ]
    for intent, score in report.per_intent.items():
        if score.support or score.precision:
            lines.append(
                f"  {intent:<24}{score.precision:>10.2f}{score.recall:>10.2f}{score.f1:>8.2f}{score.support:>9d}"
            )
    if report.confusions:
        lines += ["", "  常见混淆 top confusions (gold -> predicted, count, example):"]
        lines += [f"    {c.gold} -> {c.predicted}  x{c.count}  「{c.example}」" for c in report.confusions]
    return "\n".join(lines)


def run_eval_cli(path: str) -> int:
    """Entry point for ``gasdesk bot eval FILE.jsonl``: 0 after printing a report, 2 on a bad file."""
    try:
        report = evaluate(path)
    except (EvalFileError, OSError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0
