"""Per-intent precision/recall, confusions and calibration of the bot's understanding on every held-out set.

Run: .venv/bin/python bench/nlu_quality.py > /tmp/nlu-quality.md   (markdown, pasted into docs/performance.md)

Calibration: the classifier's confidence against how often it is right, pooled over the held-out sets (lines the
safety or domain rules decided carry confidence 1.0 and are reported apart). The bot's thresholds (clarify below
``CONFIDENCE_THRESHOLD``; leave a running flow above ``SWITCH_CONFIDENCE``) are read off this table.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from gasdesk.bot.nlu import understand
from gasdesk.bot.nlu.dialogue_eval import evaluate_dialogues
from gasdesk.bot.nlu.evaluate import evaluate, load_eval_file
from gasdesk.bot.nlu.intents import INTENTS
from gasdesk.bot.nlu_bot import CONFIDENCE_THRESHOLD, SWITCH_CONFIDENCE

ROOT = Path(__file__).resolve().parent.parent
SETS = sorted((ROOT / "tests/bot/nlu").glob("heldout*.jsonl"))
DIALOGUES = ROOT / "tests/bot/dialogues/dialogues.jsonl"
BINS = (0.0, 0.3, 0.45, 0.6, 0.8, 0.9, 0.95, 1.0)


def main() -> int:
    reports = {path.name: evaluate(path) for path in SETS}
    names = list(reports)
    print("| intent | " + " | ".join(f"{n} P / R (n)" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for intent in INTENTS:
        cells = []
        for name in names:
            s = reports[name].per_intent[intent]
            cells.append(f"{s.precision:.2f} / {s.recall:.2f} ({s.support})")
        print(f"| {intent} | " + " | ".join(cells) + " |")
    print("| **accuracy** | " + " | ".join(f"**{reports[n].accuracy:.3f}** (leak recall {reports[n].leak_recall})"
                                         for n in names) + " |")
    for name in names:
        errors = Counter((gold, predicted) for gold, predicted, _ in reports[name].errors)
        pairs = ", ".join(f"{g}→{p} ×{c}" for (g, p), c in errors.most_common())
        print(f"\n**{name}** confusions (gold→predicted, all {sum(errors.values())} errors): {pairs or 'none'}")

    rows: list[tuple[float, bool]] = []
    for path in SETS:
        for example in load_eval_file(path):
            u = understand(example.text)
            rows.append((u.confidence, u.intent == example.intent))
    ruled = [ok for confidence, ok in rows if confidence >= 1.0]
    print(f"\nCalibration, pooled held-out sets ({len(rows)} lines; rule-decided lines at confidence 1.0: "
          f"{len(ruled)}, {sum(ruled) / max(1, len(ruled)):.3f} right)\n")
    print("| classifier confidence | lines | right |")
    print("|---|---|---|")
    for low, high in zip(BINS, BINS[1:], strict=False):
        inside = [ok for c, ok in rows if low <= c < high or (high == 1.0 and low <= c < 1.0)]
        if inside:
            print(f"| [{low:.2f}, {high:.2f}) | {len(inside)} | {sum(inside) / len(inside):.3f} |")
    print(f"\nThresholds in the bot: clarify below {CONFIDENCE_THRESHOLD}, leave a running flow at ≥ {SWITCH_CONFIDENCE}.")

    report = evaluate_dialogues(DIALOGUES)
    print(f"\nDialogues ({report.dialogues} dialogues, {report.turns} turns): turn accuracy {report.turn_accuracy:.3f}, "
          f"intent accuracy {report.intent_accuracy:.3f}, dialogues all right {report.dialogue_accuracy:.3f}, "
          f"second requests found {report.also_recall:.3f}, leak recall {report.leak_recall}, "
          f"p95 {report.latency_p95_ms:.2f} ms per turn; read as {report.how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
