import os
from pathlib import Path

import pytest

from gasdesk.bot.nlu.evaluate import EvalReport, evaluate

# The shared folder sits beside the checkout (here and in CI); GASDESK_SHARED_DIR points elsewhere.
SHARED = Path(os.environ.get("GASDESK_SHARED_DIR") or Path(__file__).resolve().parents[3].parent / "shared")
DEV_EVAL = SHARED / "dev-eval" / "utterances.jsonl"
HELDOUT = Path(__file__).resolve().parent / "heldout.jsonl"
# Written independently of the training data (colloquial, dialect, typos, English-mixed, long stories).
HELDOUT2 = Path(__file__).resolve().parent / "heldout2.jsonl"
# Written before looking at the model's errors: dialect, typos, pinyin, voice input, traditional characters.
HELDOUT3 = Path(__file__).resolve().parent / "heldout3.jsonl"
# Written by helpers that saw neither the training data nor the model (2026-12-05). heldout4's errors were read
# and the training families extended for what they showed; heldout5 is kept unopened (docs/performance.md).
HELDOUT4 = Path(__file__).resolve().parent / "heldout4.jsonl"
HELDOUT5 = Path(__file__).resolve().parent / "heldout5.jsonl"
DIALOGUES = Path(__file__).resolve().parents[1] / "dialogues" / "dialogues.jsonl"


@pytest.fixture(scope="session")
def dev_report() -> EvalReport:
    if not DEV_EVAL.is_file():
        pytest.skip(f"shared dev-eval set not present at {DEV_EVAL} (set GASDESK_SHARED_DIR)")
    return evaluate(DEV_EVAL)


@pytest.fixture(scope="session")
def heldout_report() -> EvalReport:
    return evaluate(HELDOUT)


@pytest.fixture(scope="session")
def heldout2_report() -> EvalReport:
    return evaluate(HELDOUT2)


@pytest.fixture(scope="session")
def heldout3_report() -> EvalReport:
    return evaluate(HELDOUT3)


@pytest.fixture(scope="session")
def heldout4_report() -> EvalReport:
    return evaluate(HELDOUT4)


@pytest.fixture(scope="session")
def heldout5_report() -> EvalReport:
    return evaluate(HELDOUT5)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Understanding is pure computation: no database, so the PostgreSQL pass of `make test` skips it.
    for item in items:
        if "tests/bot/nlu/" in str(item.fspath):
            item.add_marker(pytest.mark.no_database)
