"""Text clean-up before anything else looks at a message.

``normalize`` fixes width, case, emoji noise, traditional characters, pinyin and common typos; slot
extraction and the safety rules read its output. ``canonicalize`` additionally folds synonyms (煤气/天然气 -> 燃气 ...) so the
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
# Latin glued to digits is an identifier (WX20240312001, a work order), never pinyin.
_LATIN_RUN = re.compile(r"(?<![0-9])[a-z]+(?:[ '’]+[a-z]+)*(?![a-z]*[0-9])")
_MAX_WORD_SYLLABLES = 4


@cache
def _traditional() -> dict[int, str]:
    return str.maketrans(load_pairs("traditional.txt"))


@cache
def _pinyin() -> tuple[dict[tuple[str, ...], str], frozenset[str], dict[str, str]]:
    """Words by syllables, the syllable inventory, and the initials residents abbreviate (rq = 燃气)."""
    words: dict[tuple[str, ...], str] = {}
    initials: dict[str, str] = {}
    for key, word in load_pairs("pinyin.txt").items():
        if " " in key or len(word) == 1:
            words[tuple(key.split(" "))] = word
        else:
            initials[key] = word
    return words, frozenset(k[0] for k in words if len(k) == 1), initials


def _syllables(chunk: str, inventory: frozenset[str]) -> list[str] | None:
    """``chunk`` split into pinyin syllables (fewest syllables), or None when it is not pinyin."""
    best: list[list[str] | None] = [[]] + [None] * len(chunk)
    for end in range(1, len(chunk) + 1):
        for start in range(max(0, end - 6), end):
            head = best[start]
            if head is not None and chunk[start:end] in inventory:
                candidate = [*head, chunk[start:end]]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    return best[-1]


def _hanzi_of_pinyin(run: str) -> str:
    """A run of pinyin ("wo jia mei qi le", "rq xielou") -> the characters residents meant; any other Latin
    text (an English word the table does not know, a brand) comes back unchanged."""
    words, inventory, initials = _pinyin()
    parts: list[str | list[str]] = []  # initials as words, runs of syllables (across spaces) as lists
    for chunk in re.split(r"[ '’]+", run):
        if chunk in initials:
            parts.append(initials[chunk])
            continue
        syllables = _syllables(chunk, inventory)
        if syllables is None:
            return run
        if parts and isinstance(parts[-1], list):
            parts[-1].extend(syllables)
        else:
            parts.append(syllables)
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        i = 0
        while i < len(part):  # longest word first
            for size in range(min(_MAX_WORD_SYLLABLES, len(part) - i), 0, -1):
                word = words.get(tuple(part[i : i + size]))
                if word is not None:
                    out.append(word)
                    i += size
                    break
    return "".join(out)


def _from_pinyin(text: str) -> str:
    if not _HAS_LATIN.search(text):
        return text
    return _LATIN_RUN.sub(lambda m: _hanzi_of_pinyin(m.group(0)), text)


def normalize(text: str) -> str:
    """Half-width, lower-case, emoji-free, simplified, typo-corrected text with single spaces; English words
    translated, pinyin turned into characters."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_traditional())
    text = _NOISE.sub(" ", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _from_pinyin(_translate(text))
    text = _apply("typos.txt", text)
    return _SPACES.sub(" ", text).strip()


def canonicalize(text: str) -> str:
    """``normalize`` plus synonym folding; the classifier's view of a message."""
    return _apply("synonyms.txt", normalize(text))
