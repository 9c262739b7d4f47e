"""The fitted intent model is kept on local disk for the next process, and trained again when it is
unreadable or anything it depends on changes."""

from __future__ import annotations

import pytest

from gasdesk.bot.nlu import classifier
from gasdesk.config import reset_settings_cache

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass


def test_a_new_process_loads_the_model_instead_of_training_it(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_NLU_CACHE_DIR", str(tmp_path))
    reset_settings_cache()
    monkeypatch.setattr(classifier, "_classifier", None)
    trained = classifier.get_classifier()
    cached = list(tmp_path.glob("intent-*.pkl"))
    assert [p.name for p in cached] == [f"intent-{classifier.model_fingerprint()}.pkl"]

    monkeypatch.setattr(classifier, "_classifier", None)  # as a fresh process sees it

    def no_training(*_: object) -> None:
        raise AssertionError("trained although a cached model was there")

    monkeypatch.setattr(classifier.IntentClassifier, "__init__", no_training)
    loaded = classifier.get_classifier()
    assert loaded is not trained and loaded.predict("家里没气了") == trained.predict("家里没气了")


def test_an_unreadable_cache_is_trained_again_and_replaced(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_NLU_CACHE_DIR", str(tmp_path))
    reset_settings_cache()
    monkeypatch.setattr(classifier, "_classifier", None)
    path = tmp_path / f"intent-{classifier.model_fingerprint()}.pkl"
    path.write_bytes(b"not a pickle")
    model = classifier.get_classifier()
    assert model.predict("营业厅几点开门").intent
    assert path.stat().st_size > 1000  # replaced by a real model


def test_the_fingerprint_follows_the_training_data(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = classifier.model_fingerprint()
    package = tmp_path / "nlu"
    (package / "data").mkdir(parents=True)
    (package / "data" / "train.jsonl").write_text('{"text": "a", "intent": "b"}\n')
    monkeypatch.setattr(classifier, "NLU_DIR", package)
    first = classifier.model_fingerprint()
    (package / "data" / "train.jsonl").write_text('{"text": "a", "intent": "c"}\n')
    assert classifier.model_fingerprint() not in (first, before)
