import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from gasdesk.bot.nlu.evaluate import EvalReport, evaluate

# The shared folder sits beside the checkout (here and in CI); GASDESK_SHARED_DIR points elsewhere.
SHARED = Path(os.environ.get("GASDESK_SHARED_DIR") or Path(__file__).resolve().parents[3].parent / "shared")
DEV_EVAL = SHARED / "dev-eval" / "utterances.jsonl"
# The held-out sets, by name (heldout*.jsonl beside this file):
# - heldout: written independently of the training data; heldout2: written before looking at the training data;
# - heldout3: dialect, typos, pinyin, voice input, traditional characters, written before looking at the model's errors;
# - heldout4, heldout5, heldout6 (SMS, WeChat and hotline speech): written by helpers that saw neither the training
#   data nor the model (2026-12-05); the errors of heldout4 and heldout6 were read and the training data and rules
#   extended for what they showed, heldout5 is kept unopened (docs/performance.md);
# - heldout7, heldout8, heldout9: bookings and meter questions with their service_type / meter_topic slots,
#   written the same way; the errors of heldout7 and heldout9 were read, heldout8 is kept unopened.
NLU_TESTS = Path(__file__).resolve().parent
DIALOGUES = Path(__file__).resolve().parents[1] / "dialogues" / "dialogues.jsonl"


@pytest.fixture(scope="session")
def dev_report() -> EvalReport:
    if not DEV_EVAL.is_file():
        pytest.skip(f"shared dev-eval set not present at {DEV_EVAL} (set GASDESK_SHARED_DIR)")
    return evaluate(DEV_EVAL)


@pytest.fixture(scope="session")
def heldout_report() -> Callable[[str], EvalReport]:
    """The evaluation of a held-out set by name ("heldout3"), computed once per test session."""
    return cache(lambda name: evaluate(NLU_TESTS / f"{name}.jsonl"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Understanding is pure computation: no database, so the PostgreSQL pass of `make test` skips it.
    for item in items:
        if "tests/bot/nlu/" in str(item.fspath):
            item.add_marker(pytest.mark.no_database)
