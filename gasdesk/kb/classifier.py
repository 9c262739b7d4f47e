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

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, make_union
from sklearn.svm import LinearSVC

from gasdesk.bot.nlu.classifier import load_examples

NONE_INTENT = "out_of_scope"
SVM_C = 1.0
# Decision values are turned into probabilities by a softmax at this temperature (read off the odd half of
# the paraphrase set with the blend weight; see docs/performance.md).
TEMPERATURE = 5.0
_CACHE_SIZE = 8


@cache
def _none_examples() -> tuple[str, ...]:
    texts, labels = load_examples()
    return tuple(t for t, label in zip(texts, labels, strict=True) if label == NONE_INTENT)


class ArticleClassifier:
    """Article probabilities for a question; index ``i`` is the ``i``-th article given to ``train``."""

    def __init__(self, features: FeatureUnion, model: LinearSVC, n_articles: int) -> None:
        self._features = features
        self._model = model
        self.n_articles = n_articles

    def probabilities(self, text: str) -> np.ndarray:
        """Probability of each article (the "none" class's share is left out, so they sum to at most 1)."""
        d = self._model.decision_function(self._features.transform([text]))[0] * TEMPERATURE
        e = np.exp(d - d.max())
        p = e / e.sum()
        return p[: self.n_articles]


_trained: OrderedDict[str, ArticleClassifier] = OrderedDict()


def train(phrasings: Sequence[Sequence[str]], words: Callable[[str], list[str]],
          compact: Callable[[str], str]) -> ArticleClassifier | None:
    """A classifier over articles given each article's phrasings (title and 相似问法); None with fewer than two
    articles. ``words`` and ``compact`` are the search's own text views, so both see the same normalisation."""
    if len(phrasings) < 2:
        return None
    key = hashlib.sha256(repr([list(p) for p in phrasings]).encode()).hexdigest()
    if key in _trained:
        _trained.move_to_end(key)
        return _trained[key]
    texts: list[str] = []
    labels: list[int] = []
    for i, rows in enumerate(phrasings):
        texts.extend(rows)
        labels.extend([i] * len(rows))
    none = _none_examples()
    texts.extend(none)
    labels.extend([len(phrasings)] * len(none))
    features = make_union(
        TfidfVectorizer(analyzer=words, sublinear_tf=True),
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, preprocessor=compact),
    )
    model = LinearSVC(C=SVM_C, random_state=0).fit(features.fit_transform(texts), labels)
    classifier = ArticleClassifier(features, model, len(phrasings))
    _trained[key] = classifier
    while len(_trained) > _CACHE_SIZE:
        _trained.popitem(last=False)
    return classifier
