"""Intent classifier: char n-grams + jieba words -> linear SVM with calibrated probabilities.

Trained at first use from the shipped ``data/train.jsonl`` (about three seconds on two cores), so no
binary model is ever checked in; the fitted model is then kept in ``GASDESK_NLU_CACHE_DIR`` for the next
process. ``train.jsonl`` is generated: edit ``data/seed.jsonl`` or the
paraphrase families in ``scripts/generate_nlu_training_data.py`` and run it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import threading
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gasdesk.bot.nlu import model_store
from gasdesk.bot.nlu.normalize import canonicalize
from gasdesk.bot.nlu.segment import words
from gasdesk.config import get_settings

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)
TRAIN_PATH = Path(__file__).resolve().parent / "data" / "train.jsonl"

_LONG_NUMBER = re.compile(r"\d{7,}")
_SHORT_NUMBER = re.compile(r"\d+")
_PUNCT = re.compile(r"[\s,.!?;:~，。！？；：、…·\"'“”()（）\[\]【】<>《》-]+")


def load_examples(path: Path = TRAIN_PATH) -> tuple[list[str], list[str]]:
    """Texts and intents from a ``{"text", "intent"}`` JSON-lines file."""
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                texts.append(row["text"])
                labels.append(row["intent"])
    return texts, labels


def prepare(text: str) -> str:
    """Classifier view of a message: canonical words, numbers collapsed to their shape, no punctuation.

    An account number or a date should count as "a long number" / "a number", not as itself.
    """
    text = canonicalize(text)
    text = _LONG_NUMBER.sub("Ｎ", text)
    text = _SHORT_NUMBER.sub("9", text)
    return _PUNCT.sub(" ", text).strip()


def _word_features(text: str) -> list[str]:
    tokens = words(text)
    return tokens + [f"{a}_{b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def build_pipeline() -> Pipeline:
    # scikit-learn is imported here, not at the top: importing it costs about 1.5 s of CPU, which every
    # process (a server on the rule bot, the CLI, each test's live server) would pay at start-up for a model
    # that is only trained at first use.
    from sklearn.calibration import CalibratedClassifierCV  # noqa: PLC0415 - scikit-learn, see above
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 - scikit-learn, see above
    from sklearn.pipeline import FeatureUnion, Pipeline  # noqa: PLC0415 - scikit-learn, see above
    from sklearn.svm import LinearSVC  # noqa: PLC0415 - scikit-learn, see above

    features = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1)),
            ("words", TfidfVectorizer(analyzer=_word_features, sublinear_tf=True, min_df=1)),
        ]
    )
    # Sigmoid calibration over an SVM gives usable confidences at a fraction of LR's training cost.
    # A fixed seed for liblinear's shuffling: the same data always gives the same model, so `gasdesk bot retrain`
    # compares a candidate with the deployed model on the corrections alone, not on the luck of the draw.
    model = CalibratedClassifierCV(LinearSVC(C=0.5, random_state=0), method="sigmoid", cv=3)
    return Pipeline([("features", features), ("model", model)])


@dataclass(frozen=True)
class Prediction:
    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...]  # all intents, most likely first


class IntentClassifier:
    """A trained pipeline plus the label order; ``predict`` is safe to call from many threads.

    ``predict`` does not go through ``CalibratedClassifierCV.predict_proba``, whose per-class Python
    loop over 3 folds x 21 sigmoid calibrators dominated latency; the same arithmetic is done here as
    three matrix products (results are identical to sklearn's up to float rounding).
    """

    def __init__(self, texts: list[str], labels: list[str]) -> None:
        self.pipeline = build_pipeline()
        self.pipeline.fit([prepare(text) for text in texts], labels)
        self.classes: list[str] = list(self.pipeline.classes_)
        self._features = self.pipeline.named_steps["features"]
        folds = self.pipeline.named_steps["model"].calibrated_classifiers_
        # Per fold: weights (features x classes), intercepts, sigmoid slopes a and offsets b.
        self._folds = [
            (
                fold.estimator.coef_.T.copy(),
                fold.estimator.intercept_.copy(),
                np.array([c.a_ for c in fold.calibrators]),
                np.array([c.b_ for c in fold.calibrators]),
            )
            for fold in folds
        ]

    def probabilities(self, text: str) -> np.ndarray:
        return self.probabilities_many([text])[0]

    def probabilities_many(self, texts: list[str]) -> np.ndarray:
        """One row of class probabilities per text, with one feature transform for all of them (scoring a
        held-out set one text at a time spent most of its time in the transform's per-call overhead)."""
        rows = self._features.transform([prepare(text) for text in texts])
        total = np.zeros((len(texts), len(self.classes)))
        for weights, intercept, slope, offset in self._folds:
            scores = np.asarray(rows @ weights) + intercept
            proba = 1.0 / (1.0 + np.exp(slope * scores + offset))
            denominator = proba.sum(axis=1, keepdims=True)
            uniform = np.full_like(proba, 1.0 / len(self.classes))
            total += np.divide(proba, denominator, out=uniform, where=denominator > 0)
        return total / len(self._folds)

    def predict(self, text: str) -> Prediction:
        return self.predict_many([text])[0]

    def predict_many(self, texts: list[str]) -> list[Prediction]:
        """``predict`` for many texts at once (``probabilities_many``)."""
        predictions = []
        for probabilities in self.probabilities_many(texts):
            order = np.argsort(probabilities)[::-1]
            ranking = tuple((str(self.classes[i]), float(probabilities[i])) for i in order)
            predictions.append(Prediction(intent=ranking[0][0], confidence=ranking[0][1], ranking=ranking))
        return predictions


_lock = threading.Lock()
_classifier: IntentClassifier | None = None
NLU_DIR = Path(__file__).resolve().parent


def model_fingerprint() -> str:
    """What the trained model depends on: every file of the NLU package (code, lexicon, training data) and
    the versions of the libraries that fit it. A change to any of them means training again."""
    # Versions from the installed metadata: importing scikit-learn just to ask costs a second.
    digest = hashlib.sha256(f"{version('scikit-learn')}|{version('scipy')}|{np.__version__}".encode())
    for path in sorted(p for p in NLU_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(NLU_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:24]


def _cached_classifier() -> IntentClassifier:
    # Training takes seconds of CPU, paid by every new process (each app worker, each test server). The fitted
    # model is kept on local disk, written by this install only, under a name that changes with the fingerprint.
    folder = get_settings().nlu_cache_folder
    path = folder / f"intent-{model_fingerprint()}.pkl" if folder is not None else None
    if path is not None and path.is_file():
        try:
            with path.open("rb") as handle:
                loaded = pickle.load(handle)  # noqa: S301 - our own file, see above
            if isinstance(loaded, IntentClassifier):
                return loaded
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            log.warning("NLU model cache unreadable, training again")
    classifier = IntentClassifier(*load_examples())
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            with partial.open("wb") as handle:
                pickle.dump(classifier, handle, protocol=pickle.HIGHEST_PROTOCOL)
            partial.replace(path)  # atomic: concurrent processes never read half a file
        except OSError:
            log.warning("NLU model cache not writable; the model is trained per process")
    return classifier


def get_classifier() -> IntentClassifier:
    """The classifier the bot uses: the model deployed by ``gasdesk bot retrain`` when there is a usable one
    (``model_store``: noticed by every process within ``nlu_model_check_s``), else the shipped one."""
    return model_store.deployed_model(IntentClassifier, model_fingerprint) or shipped_classifier()


def shipped_classifier() -> IntentClassifier:
    """The process-wide model of the shipped training data: loaded from the local model cache, else trained on
    first use (double-checked under a lock)."""
    global _classifier
    if _classifier is None:
        with _lock:
            if _classifier is None:
                _classifier = _cached_classifier()
    return _classifier
