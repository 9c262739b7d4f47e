"""A supervised view of the knowledge base: which article a question asks for, learnt from the phrasings.

BM25 and n-gram cosine compare a question with each phrasing on its own; a linear classifier trained on all
phrasings of all articles learns which words tell articles apart (缴费 vs 充值 vs 退费) and which carry no
information. It is trained with one extra class, "none", from the bot's out-of-scope training examples
(银行卡, 餐厅, 换工作…), so a question about something else takes probability away from every article instead
of being forced onto the nearest one. Its probabilities are blended into the search score (``search.py``).

Training takes about 0.2 s for 120 articles; the model is cached by the content it was trained on, so
rebuilding the index for an unchanged knowledge base (another process, another test database) is free.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from gasdesk.bot.nlu.classifier import load_examples

NONE_INTENT = "out_of_scope"
SVM_C = 1.0
# Decision values are turned into probabilities by a softmax at this temperature (read off the odd half of
# the paraphrase set with the blend weight; see docs/performance.md).
TEMPERATURE = 5.0
_CACHE_SIZE = 8


# A text as the search sees it: its content words (``search.terms``) and its compact form (``search.compact``).
TextView = tuple[list[str], str]


@cache
def _none_views(view: Callable[[str], TextView]) -> list[TextView]:
    """The bot's out-of-scope training examples, viewed as the search views text (read once per process)."""
    texts, labels = load_examples()
    return [view(t) for t, label in zip(texts, labels, strict=True) if label == NONE_INTENT]


def _given_words(words: list[str]) -> list[str]:
    return words  # the search segmented them already


class ArticleClassifier:
    """Article probabilities for a question; index ``i`` is the ``i``-th article given to ``train``."""

    def __init__(self, words: TfidfVectorizer, chars: TfidfVectorizer, model: LinearSVC, n_articles: int) -> None:
        self._words = words
        self._chars = chars
        self._model = model
        self.n_articles = n_articles

    def _features(self, views: Sequence[TextView]) -> Any:
        return hstack([self._words.transform([w for w, _ in views]), self._chars.transform([c for _, c in views])],
                      format="csr")

    def probabilities(self, view: TextView) -> np.ndarray:
        """Probability of each article for a question's view (the "none" class's share is left out, so they
        sum to at most 1)."""
        d = self._model.decision_function(self._features([view]))[0] * TEMPERATURE
        e = np.exp(d - d.max())
        p = e / e.sum()
        return p[: self.n_articles]


_trained: OrderedDict[str, ArticleClassifier] = OrderedDict()


def train(phrasings: Sequence[Sequence[TextView]], view: Callable[[str], TextView]) -> ArticleClassifier | None:
    """A classifier over articles given each article's phrasings (title and 相似问法) as the search already
    views them; ``view`` makes the same view of the out-of-scope examples. None with fewer than two articles."""
    if len(phrasings) < 2:
        return None
    key = hashlib.sha256(repr(phrasings).encode()).hexdigest()
    if key in _trained:
        _trained.move_to_end(key)
        return _trained[key]
    views: list[TextView] = []
    labels: list[int] = []
    for i, rows in enumerate(phrasings):
        views.extend(rows)
        labels.extend([i] * len(rows))
    none = _none_views(view)
    views.extend(none)
    labels.extend([len(phrasings)] * len(none))
    words = TfidfVectorizer(analyzer=_given_words, sublinear_tf=True).fit([w for w, _ in views])
    chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True).fit([c for _, c in views])
    classifier = ArticleClassifier(words, chars, LinearSVC(C=SVM_C, random_state=0), len(phrasings))
    classifier._model.fit(classifier._features(views), labels)
    _trained[key] = classifier
    while len(_trained) > _CACHE_SIZE:
        _trained.popitem(last=False)
    return classifier
