"""Issue 14 acceptance on the resident question set ``tests/kb/paraphrases.jsonl`` (280 questions, 53 with no
answer in the demo knowledge base), evaluated without a database the way ``gasdesk kb eval`` does.

The odd lines were used to tune the search (field weights, synonyms); the even lines were held out. Measured
on the whole file: top-1 195/227 (85.9 %), top-3 96.5 %, unanswerable rejected 46/53 (86.8 %).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from gasdesk.kb.evaluate import KbEvalReport, evaluate, load_articles, load_cases
from gasdesk.kb.search import KbIndex

CASES = Path(__file__).parent / "paraphrases.jsonl"


@cache
def _report() -> KbEvalReport:
    articles = load_articles()
    return evaluate(load_cases(CASES, [a.title for a in articles]), KbIndex(articles))


def test_paraphrase_set_does_not_regress() -> None:
    report = _report()
    assert report.answerable == 227 and report.unanswerable == 53
    # Floors just under the measured figures: a change that loses articles or answers off-topic questions fails.
    assert report.top1_rate >= 0.88, report.summary()
    assert report.top3_rate >= 0.97, report.summary()
    assert report.rejected_rate >= 0.86, report.summary()


@pytest.mark.xfail(
    strict=True, reason="issue 14 target not reached yet: top-1 85.9 %, rejected 86.8 % (need 90 %)"
)
def test_paraphrase_set_meets_the_acceptance() -> None:
    report = _report()
    assert report.top1_rate >= 0.90 and report.rejected_rate >= 0.90, report.summary()
