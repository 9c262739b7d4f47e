"""Score understanding in context on a file of multi-turn dialogues.

Each line: ``{"id", "now"?, "turns": [{"text", "intent", "slots"?, "also"?}, ...]}`` — only the resident's
turns, each labelled with what the resident wants at that turn given the earlier ones. Turns are replayed in
order through ``understand_in_context`` with the context it keeps, exactly as the bot does. A turn is correct
when its intent is right and every gold slot is found with the same value (gold slots are what that turn
says; extra slots are fine); ``also`` (a second request in the same message) is scored separately.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from gasdesk.bot.nlu.classifier import get_classifier
from gasdesk.bot.nlu.context import DialogueContext, understand_in_context
from gasdesk.bot.nlu.evaluate import EvalFileError
from gasdesk.bot.nlu.intents import GAS_LEAK, INTENTS


@dataclass(frozen=True)
class DialogueTurn:
    text: str
    intent: str
    slots: dict[str, str] = field(default_factory=dict)
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dialogue:
    id: str
    now: datetime | None
    turns: tuple[DialogueTurn, ...]


@dataclass(frozen=True)
class TurnError:
    dialogue: str
    turn: int
    text: str
    gold: str
    predicted: str
    how: str
    missing_slots: dict[str, str]


@dataclass(frozen=True)
class DialogueReport:
    path: str
    dialogues: int
    turns: int
    turn_accuracy: float  # intent and gold slots right
    intent_accuracy: float
    dialogue_accuracy: float  # every turn right
    also_recall: float | None  # second requests found
    also_support: int
    leak_recall: float | None
    latency_p95_ms: float
    how: dict[str, int]
    confusions: list[tuple[str, str, int]]
    errors: list[TurnError]


def _check_intent(value: object, where: str) -> str:
    if value not in INTENTS:
        raise EvalFileError(f"{where}: unknown intent {value!r}")
    return str(value)


def load_dialogues(path: str | Path) -> list[Dialogue]:
    """Parse and validate a dialogue file; raises ``EvalFileError`` naming the line."""
    file = Path(path)
    if not file.is_file():
        raise EvalFileError(f"no such file: {file}")
    dialogues: list[Dialogue] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalFileError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("turns"), list) or not row["turns"]:
            raise EvalFileError(f'{where}: expected an object with a non-empty "turns" list')
        try:
            now = datetime.fromisoformat(row["now"]) if row.get("now") else None
        except (TypeError, ValueError) as exc:
            raise EvalFileError(f'{where}: "now" is not an ISO date-time') from exc
        turns = []
        for turn in row["turns"]:
            if not isinstance(turn, dict) or not isinstance(turn.get("text"), str):
                raise EvalFileError(f'{where}: every turn needs "text" and "intent"')
            slots = turn.get("slots") or {}
            also = turn.get("also") or []
            if not isinstance(slots, dict) or not isinstance(also, list):
                raise EvalFileError(f'{where}: "slots" must be an object and "also" a list')
            turns.append(DialogueTurn(turn["text"], _check_intent(turn.get("intent"), where),
                                      {str(k): str(v) for k, v in slots.items()},
                                      tuple(_check_intent(a, where) for a in also)))
        dialogues.append(Dialogue(str(row.get("id") or number), now, tuple(turns)))
    if not dialogues:
        raise EvalFileError(f"{file}: no dialogues")
    return dialogues


def is_dialogue_file(path: str | Path) -> bool:
    """True when the first non-blank line of ``path`` is a dialogue (has "turns")."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")
        row = json.loads(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # the line-by-line evaluator reports what is wrong with the file
    return isinstance(row, dict) and "turns" in row


def evaluate_dialogues(path: str | Path) -> DialogueReport:
    """Replay every dialogue through ``understand_in_context`` and score each turn."""
    dialogues = load_dialogues(path)
    get_classifier()  # trained outside the latency measurement
    right = intent_right = dialogues_right = also_found = also_support = 0
    leak_found = leak_support = 0
    how: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    errors: list[TurnError] = []
    latencies: list[float] = []
    turns = 0
    for dialogue in dialogues:
        context = DialogueContext()
        all_right = True
        for index, turn in enumerate(dialogue.turns, start=1):
            started = time.perf_counter()
            reading = understand_in_context(turn.text, context, dialogue.now)
            latencies.append((time.perf_counter() - started) * 1000)
            context = context.after(reading)
            u = reading.understanding
            turns += 1
            how[reading.how] += 1
            missing = {k: v for k, v in turn.slots.items() if u.slots.get(k) != v}
            intent_ok = u.intent == turn.intent
            intent_right += intent_ok
            if turn.intent == GAS_LEAK:
                leak_support += 1
                leak_found += u.intent == GAS_LEAK
            also_support += len(turn.also)
            also_found += sum(a in reading.also for a in turn.also)
            if intent_ok and not missing:
                right += 1
                continue
            all_right = False
            if not intent_ok:
                confusions[(turn.intent, u.intent)] += 1
            errors.append(TurnError(dialogue.id, index, turn.text, turn.intent, u.intent, reading.how, missing))
        dialogues_right += all_right
    return DialogueReport(
        path=str(path), dialogues=len(dialogues), turns=turns, turn_accuracy=right / turns,
        intent_accuracy=intent_right / turns, dialogue_accuracy=dialogues_right / len(dialogues),
        also_recall=also_found / also_support if also_support else None, also_support=also_support,
        leak_recall=leak_found / leak_support if leak_support else None,
        latency_p95_ms=float(np.percentile(latencies, 95)), how=dict(how.most_common()),
        confusions=[(g, p, n) for (g, p), n in confusions.most_common(10)], errors=errors,
    )


def format_dialogue_report(report: DialogueReport, show_errors: int = 0) -> str:
    """A plain-text summary (Chinese/English labels)."""
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.1f}%"

    lines = [
        f"多轮对话评测 / dialogue evaluation: {report.path}  ({report.dialogues} 段 dialogues, {report.turns} 轮 turns)",
        f"  轮次准确率 turn accuracy (intent + slots): {pct(report.turn_accuracy)}",
        f"  意图准确率 intent accuracy             : {pct(report.intent_accuracy)}",
        f"  整段全对 dialogues all right           : {pct(report.dialogue_accuracy)}",
        f"  一句两问 second requests found         : {pct(report.also_recall)} (support {report.also_support})",
        f"  漏气召回率 gas_leak recall             : {pct(report.leak_recall)}",
        f"  延迟 latency p95                       : {report.latency_p95_ms:.2f} ms",
        f"  上下文 how turns were read             : {report.how}",
    ]
    if report.confusions:
        lines += ["", "  常见混淆 top confusions (gold -> predicted, count):"]
        lines += [f"    {g} -> {p}  x{n}" for g, p, n in report.confusions]
    for error in report.errors[:show_errors]:
        lines.append(f"  ✗ {error.dialogue}#{error.turn} [{error.how}] {error.gold} -> {error.predicted}"
                     f" {error.missing_slots or ''} 「{error.text}」")
    return "\n".join(lines)


def run_dialogue_eval_cli(path: str, show_errors: int = 0) -> int:
    """``gasdesk bot eval DIALOGUES.jsonl``: 0 after printing a report, 2 on a bad file."""
    try:
        report = evaluate_dialogues(path)
    except (EvalFileError, OSError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_dialogue_report(report, show_errors))
    return 0
