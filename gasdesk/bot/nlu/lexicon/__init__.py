"""Domain word lists shipped with the package (plain text, so linguists can edit them without code)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

LEXICON_DIR = Path(__file__).resolve().parent
USERDICT_PATH = LEXICON_DIR / "userdict.txt"


@cache
def load_pairs(name: str) -> dict[str, str]:
    """Read a ``key<TAB>value`` table (``.txt`` so packaging ships it), skipping blank lines and ``#`` comments."""
    pairs: dict[str, str] = {}
    for raw in (LEXICON_DIR / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, value = line.split("\t")
        pairs[key] = value
    return pairs


@cache
def load_words(name: str) -> tuple[str, ...]:
    """Read a one-word-per-line list, skipping blank lines and ``#`` comments."""
    lines = (LEXICON_DIR / name).read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
