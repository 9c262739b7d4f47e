"""Word segmentation with jieba and the shipped domain dictionary.

A private ``jieba.Tokenizer`` keeps our user dictionary out of the process-wide default instance
that other parts of the application may use.
"""

from __future__ import annotations

import logging
import threading

import jieba

from gasdesk.bot.nlu.lexicon import USERDICT_PATH

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def _get_tokenizer() -> jieba.Tokenizer:
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                logging.getLogger("jieba").setLevel(logging.WARNING)  # silence "Building prefix dict"
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                tokenizer.load_userdict(str(USERDICT_PATH))
                _tokenizer = tokenizer
    return _tokenizer


def words(text: str) -> list[str]:
    """Segment ``text`` into words, dropping whitespace tokens. HMM off: faster and more stable."""
    return [token for token in _get_tokenizer().lcut(text, HMM=False) if token.strip()]
