"""Benchmark the bot's NLU: training time, understand() latency percentiles, baseline comparison.

Run: .venv/bin/python bench/nlu_latency.py [EVAL.jsonl ...]
Defaults to the shared dev-eval set (when present) and every held-out set (tests/bot/nlu/heldout*.jsonl).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from gasdesk.bot.nlu import understand
from gasdesk.bot.nlu.classifier import get_classifier
from gasdesk.bot.nlu.evaluate import evaluate, load_eval_file

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = (
    Path(os.environ.get("GASDESK_SHARED_DIR") or ROOT.parent / "shared") / "dev-eval" / "utterances.jsonl",
    *sorted((ROOT / "tests/bot/nlu").glob("heldout*.jsonl")),
)
ROUNDS = 5  # each set is run several times so p99 means something


def main(paths: list[Path]) -> int:
    started = time.perf_counter()
    get_classifier()
    print(f"training (cold, incl. jieba + dictionary load): {time.perf_counter() - started:.2f} s")
    for path in paths:
        if not path.is_file():
            print(f"skip {path}: not found")
            continue
        texts = [example.text for example in load_eval_file(path)]
        latencies = []
        for _ in range(ROUNDS):
            for text in texts:
                tick = time.perf_counter()
                understand(text)
                latencies.append((time.perf_counter() - tick) * 1000)
        p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
        report = evaluate(path)
        baseline = report.baseline
        print(
            f"\n{path.name}: {len(texts)} lines x {ROUNDS}\n"
            f"  understand latency  p50 {p50:.2f} ms   p95 {p95:.2f} ms   p99 {p99:.2f} ms\n"
            f"  gasdesk NLU         accuracy {report.accuracy:.3f}   gas_leak recall {report.leak_recall}\n"
            f"  baseline TF-IDF+LR  accuracy {baseline.accuracy:.3f}   gas_leak recall {baseline.leak_recall}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main([Path(p) for p in sys.argv[1:]] or list(DEFAULT_SETS)))
