"""The classifier's shipped training data is exactly what its build script (outside the package) writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_nlu_training_data.py"


def test_shipped_train_jsonl_is_what_the_script_generates() -> None:
    spec = importlib.util.spec_from_file_location("generate_nlu_training_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    shipped = script.TRAIN_PATH.read_text(encoding="utf-8")
    assert script.TRAIN_PATH.parent.parent.name == "nlu"  # it writes into the package's data folder
    assert shipped == script.training_text(), "run scripts/generate_nlu_training_data.py after editing it"


def test_shipped_lexicons_are_what_the_script_generates() -> None:
    path = SCRIPT.parent / "generate_nlu_lexicons.py"
    spec = importlib.util.spec_from_file_location("generate_nlu_lexicons", path)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for name, rows in (("traditional.txt", script.traditional_table()), ("pinyin.txt", script.pinyin_table())):
        shipped = (script.LEXICON / name).read_text(encoding="utf-8").splitlines()[1:]  # after the header line
        assert shipped == rows, f"run scripts/generate_nlu_lexicons.py ({name} is stale)"
