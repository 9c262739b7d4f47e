"""Regenerate the two machine-made NLU lexicons: ``traditional.txt`` and ``pinyin.txt``.

Run: ``.venv/bin/python scripts/generate_nlu_lexicons.py`` (deterministic). A build script: it needs
``opencc-python-reimplemented`` (its character tables, Apache-2.0) and ``pypinyin`` (MIT), both in the
``test`` extra; nothing in ``gasdesk`` imports either, so the server only reads the two shipped text files.
``tests/bot/test_nlu_training_data.py`` checks that the shipped files are what this writes.

Why: residents type traditional characters (燃氣費怎麼繳) and pinyin (rq xielou, yuyue weixiu) as often as
dialect. Folding both onto simplified characters in ``normalize`` lets every later step (safety rules, slots,
classifier) read them without learning a second script.

- ``traditional.txt``: one ``traditional<TAB>simplified`` character per line (OpenCC's TSCharacters plus the
  Taiwan/Hong Kong variant tables), for ``str.translate``.
- ``pinyin.txt``: ``syllables<TAB>word`` — every word (1-4 characters) of the training data and the domain
  dictionary under its toneless pinyin; where several words share a spelling (没气/煤气) the one residents
  write most often in the training data wins, domain dictionary words counting extra. Initials that
  residents abbreviate (rq = 燃气) come from ``INITIALS`` below.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import jieba
import opencc
from pypinyin import Style, lazy_pinyin

ROOT = Path(__file__).resolve().parent.parent
NLU = ROOT / "gasdesk" / "bot" / "nlu"
LEXICON = NLU / "lexicon"
OPENCC_DICTS = Path(opencc.__file__).resolve().parent / "dictionary"

# Pinyin initials residents type for the domain's words (chat shorthand); only these, since two letters
# alone are ambiguous in general.
INITIALS = {
    "rq": "燃气", "mq": "煤气", "trq": "天然气", "nq": "暖气", "rg": "人工", "kf": "客服", "rgkf": "人工客服",
    "hh": "户号", "yyt": "营业厅", "jf": "交费", "yy": "预约", "wx": "维修", "aj": "安检", "tq": "停气",
    "ts": "投诉", "by": "表扬", "qf": "欠费", "sf": "师傅", "zbf": "自闭阀", "bjq": "报警器",
    "zmb": "怎么办", "zm": "怎么", "sm": "什么", "xx": "谢谢", "nh": "你好",
}
# Spellings where the most frequent word in the training data is not what a resident typing pinyin means:
# "zai na" asks where (在哪). "mei qi" stays 煤气 (the data's choice) although it may mean 没气: "you mei qi wei"
# must read as a smell of gas, never as "没气味" (no smell).
OVERRIDES = {"zai na": "在哪", "zai na li": "在哪里", "na li": "哪里"}
_HANZI = re.compile(r"^[\u4e00-\u9fff]+$")


def _opencc_pairs(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (OPENCC_DICTS / name).read_text(encoding="utf-8").splitlines():
        if line.strip():
            source, targets = line.split("\t")
            rows.append((source, targets.split(" ")[0]))
    return rows


def traditional_table() -> list[str]:
    # Characters that are themselves simplified (后, 里, 么, 皂) are never folded, whatever a variant table says.
    simplified = {source for source, _ in _opencc_pairs("STCharacters.txt")}
    pairs = {s: t for s, t in _opencc_pairs("TSCharacters.txt") if len(s) == len(t) == 1 and s != t}
    # Taiwan/Hong Kong forms (裡, 台) of a traditional character: through that character to the simplified one.
    for name in ("TWVariants.txt", "HKVariants.txt"):
        for standard, variant in _opencc_pairs(name):
            if len(standard) == len(variant) == 1 and variant not in pairs:
                pairs[variant] = pairs.get(standard, standard)
    return [f"{s}\t{t}" for s, t in sorted(pairs.items()) if s not in simplified and s != t]


def _training_texts() -> list[str]:
    texts = []
    for name in ("seed.jsonl", "train.jsonl"):
        for line in (NLU / "data" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    return texts


def _dictionary_words() -> list[str]:
    words = []
    for name in ("userdict.txt", "domain_terms.txt"):
        for line in (LEXICON / name).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                words.append(line.split()[0])
    return words


def pinyin_table() -> list[str]:
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    tokenizer.load_userdict(str(LEXICON / "userdict.txt"))
    counts: Counter[str] = Counter()
    for text in _training_texts():
        for word in tokenizer.lcut(text, HMM=False):
            if _HANZI.match(word) and len(word) <= 4:
                counts[word] += 1
                if len(word) > 1:
                    counts.update(word)  # single characters too, for syllables no word covers
    for word in _dictionary_words():
        if _HANZI.match(word) and len(word) <= 4:
            counts[word] += 50
    best: dict[str, tuple[int, str]] = defaultdict(lambda: (0, ""))
    for word, count in counts.items():
        key = " ".join(lazy_pinyin(word, style=Style.NORMAL, v_to_u=False, errors="ignore"))
        if key.count(" ") + 1 != len(word):
            continue
        if (count, word) > best[key]:
            best[key] = (count, word)
    chosen = {key: word for key, (_, word) in best.items()} | OVERRIDES
    rows = [f"{key}\t{word}" for key, word in sorted(chosen.items())]
    rows += [f"{key}\t{word}" for key, word in sorted(INITIALS.items())]
    return rows


def main() -> None:
    header = "# Generated by scripts/generate_nlu_lexicons.py — edit the script, not this file.\n"
    (LEXICON / "traditional.txt").write_text(header + "\n".join(traditional_table()) + "\n", encoding="utf-8")
    (LEXICON / "pinyin.txt").write_text(header + "\n".join(pinyin_table()) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
