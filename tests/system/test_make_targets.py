"""The Makefile's bench run collects only the modules listed in ``BENCH_TESTS``: every module holding a
bench-marked test must be listed there, or ``make test`` would silently stop running it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH_MARK = re.compile(r"^(@pytest\.mark\.bench\b|pytestmark = .*pytest\.mark\.bench\b)", re.MULTILINE)


@pytest.mark.no_database  # reads source files only: once, in the SQLite pass
def test_every_bench_marked_module_is_in_the_makefiles_bench_run() -> None:
    listed = re.search(r"^BENCH_TESTS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert listed, "Makefile has no BENCH_TESTS line"
    marked = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py")
                    if BENCH_MARK.search(path.read_text()))
    assert marked, "no bench-marked test found: the bench run would run nothing"
    assert sorted(listed.group(1).split()) == marked
