"""Text clean-up before anything else looks at a message.

``normalize`` fixes width, case, emoji noise and common typos; slot extraction and the safety rules
read its output. ``canonicalize`` additionally folds synonyms (煤气/天然气 -> 燃气 ...) so the
classifier sees one spelling per concept.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from gasdesk.bot.nlu.lexicon import load_pairs

# Emoji, pictographs, dingbats and the joiners/selectors that glue them together.
_NOISE = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d\u20e3\U000e0020-\U000e007f]"
)
_REPEATED_PUNCT = re.compile(r"([,.!?~、。…—\-=*#]){2,}")
_SPACES = re.compile(r"\s+")


@cache
def _replacer(table: str) -> tuple[re.Pattern[str], dict[str, str]]:
    pairs = load_pairs(table)
    # Longest keys first so that protected words (天然气) beat their substrings (然气).
    keys = sorted(pairs, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, keys))), pairs


def _apply(table: str, text: str) -> str:
    pattern, pairs = _replacer(table)
    return pattern.sub(lambda m: pairs[m.group(0)], text)


@cache
def _english() -> tuple[re.Pattern[str], dict[str, str]]:
    pairs = load_pairs("english.txt")
    keys = sorted(pairs, key=len, reverse=True)
    alternatives = "|".join(re.escape(key).replace(r"\ ", r"\s+") for key in keys)
    return re.compile(rf"(?<![a-z])(?:{alternatives})(?![a-z])"), pairs


def _translate(text: str) -> str:
    """Whole English words mixed into a message -> their Chinese equivalents ("gas leak" -> 燃气漏气)."""
    if not _HAS_LATIN.search(text):
        return text
    pattern, pairs = _english()
    return pattern.sub(lambda m: pairs[_SPACES.sub(" ", m.group(0))], text)


_HAS_LATIN = re.compile(r"[a-z]{2}")


def normalize(text: str) -> str:
    """Half-width, lower-case, emoji-free, typo-corrected text with single spaces; English words translated."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _NOISE.sub(" ", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _translate(text)
    text = _apply("typos.txt", text)
    return _SPACES.sub(" ", text).strip()


def canonicalize(text: str) -> str:
    """``normalize`` plus synonym folding; the classifier's view of a message."""
    return _apply("synonyms.txt", normalize(text))
