"""Learning from production: a candidate model from the shipped training data plus agents' approved corrections,
compared with the deployed model on every held-out set before it may replace it.

The gate (``compare``): on every held-out set the candidate gets at most one line in 200 fewer right than the
deployed model (``NOISE_LINES_PER``: none on a set under 200 lines) and its gas-leak recall is 1.00. The
allowance is for noise: with five sets (about 2,000 lines) a candidate trained on nothing new — shipped texts
added again — flipped one line of 415, and a gate that refused it would refuse every agent's correction as well.
Both models are scored through ``understand`` — the leak rules and the off-domain gate first, as the bot runs
them — so the figures are the bot's, not the bare classifier's.
The database side (which corrections, the audit row) is ``gasdesk/intent_corrections``; the command is
``gasdesk bot retrain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from gasdesk.bot.nlu.classifier import IntentClassifier, load_examples, model_fingerprint
from gasdesk.bot.nlu.engine import understand_many
from gasdesk.bot.nlu.evaluate import Example, load_eval_file
from gasdesk.bot.nlu.intents import GAS_LEAK, INTENTS
from gasdesk.config import PROJECT_ROOT

# Every held-out set: a new file matching the pattern joins the gate without a change here.
HELDOUT_GLOB = "tests/bot/nlu/heldout*.jsonl"
# A candidate may get one line in this many fewer right on a set than the deployed model (see above).
NOISE_LINES_PER = 200


def heldout_sets(root: Path = PROJECT_ROOT) -> list[Path]:
    """The held-out sets of this checkout, in name order."""
    return sorted(root.glob(HELDOUT_GLOB))


@dataclass(frozen=True)
class Figures:
    """One model on one held-out set."""

    total: int
    correct: int
    leak_support: int
    leak_found: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def leak_recall(self) -> float | None:
        return self.leak_found / self.leak_support if self.leak_support else None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            **asdict(self),
            "accuracy": round(self.accuracy, 4),
            "leak_recall": None if self.leak_recall is None else round(self.leak_recall, 4),
        }


def score(model: IntentClassifier, examples: Sequence[Example]) -> Figures:
    """Accuracy and gas-leak recall of ``model`` behind the bot's rules, counted (no float ties)."""
    correct = leak_support = leak_found = 0
    understood = understand_many([example.text for example in examples], classifier=model)
    for example, understanding in zip(examples, understood, strict=True):
        predicted = understanding.intent
        correct += predicted == example.intent
        if example.intent == GAS_LEAK:
            leak_support += 1
            leak_found += predicted == GAS_LEAK
    return Figures(total=len(examples), correct=correct, leak_support=leak_support, leak_found=leak_found)


@dataclass(frozen=True)
class SetComparison:
    name: str
    deployed: Figures
    candidate: Figures

    @property
    def problems(self) -> list[str]:
        """Why the candidate may not replace the deployed model on this set (English and Chinese)."""
        found = []
        if self.candidate.correct < self.deployed.correct - self.deployed.total // NOISE_LINES_PER:
            found.append(
                f"accuracy fell 准确率下降 {self.deployed.accuracy:.2%} -> {self.candidate.accuracy:.2%}"
            )
        if self.candidate.leak_support and self.candidate.leak_found < self.candidate.leak_support:
            found.append(
                f"gas_leak recall 漏气召回率 {self.candidate.leak_recall:.2f} < 1.00 "
                f"({self.candidate.leak_support - self.candidate.leak_found} missed 漏识别)"
            )
        return found


@dataclass(frozen=True)
class Verdict:
    sets: list[SetComparison]

    @property
    def acceptable(self) -> bool:
        return bool(self.sets) and not any(s.problems for s in self.sets)

    def figures(self) -> dict[str, dict[str, dict[str, float | int | None]]]:
        """For the deployment's metadata and the audit row."""
        return {
            s.name: {"candidate": s.candidate.as_dict(), "deployed": s.deployed.as_dict()} for s in self.sets
        }


def compare(candidate: IntentClassifier, deployed: IntentClassifier, sets: Sequence[Path]) -> Verdict:
    """Score both models on every set (``EvalFileError`` for a malformed one)."""
    comparisons = []
    for path in sets:
        examples = load_eval_file(path)
        comparisons.append(
            SetComparison(path.name, deployed=score(deployed, examples), candidate=score(candidate, examples))
        )
    return Verdict(comparisons)


def train_candidate(extra: Sequence[tuple[str, str]]) -> IntentClassifier:
    """The shipped training data plus ``extra`` (text, intent) pairs; unknown intents are refused."""
    unknown = sorted({intent for _, intent in extra if intent not in INTENTS})
    if unknown:
        raise ValueError(f"unknown intents in the corrections: {unknown}")
    texts, labels = load_examples()
    return IntentClassifier(texts + [t for t, _ in extra], labels + [i for _, i in extra])


def current_fingerprint() -> str:
    """The fingerprint a deployment is made for (the NLU code, data and library versions of this install)."""
    return model_fingerprint()


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def format_verdict(verdict: Verdict) -> str:
    """The comparison as a table: per set, deployed → candidate accuracy and gas-leak recall, and any problem."""
    lines = [
        f"  {'评测集 held-out set':<22}{'准确率 accuracy':<22}{'漏气召回 gas_leak recall':<26}",
        f"  {'':<22}{'现用 deployed → 候选 candidate':<48}",
    ]
    for s in verdict.sets:
        accuracy = f"{_pct(s.deployed.accuracy)} → {_pct(s.candidate.accuracy)}"
        recall = f"{_pct(s.deployed.leak_recall)} → {_pct(s.candidate.leak_recall)}"
        verdict_word = "✗ 不通过 refused" if s.problems else "✓ 通过 ok"
        lines.append(
            f"  {s.name:<22}{accuracy:<22}{recall:<26}{verdict_word}  ({s.candidate.total} 条 lines)"
        )
        lines += [f"      - {problem}" for problem in s.problems]
    return "\n".join(lines)
