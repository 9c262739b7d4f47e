"""``understand``: the one call the bot makes per resident message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from gasdesk.bot.nlu.classifier import IntentClassifier, get_classifier
from gasdesk.bot.nlu.intents import GAS_LEAK, OUT_OF_SCOPE
from gasdesk.bot.nlu.safety import is_gas_leak
from gasdesk.bot.nlu.scope import is_off_domain
from gasdesk.bot.nlu.slots import extract_slots


@dataclass(frozen=True)
class Understanding:
    intent: str
    confidence: float  # 0..1; 1.0 when the safety rules decided
    slots: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def understand(text: str, now: datetime | None = None, *, classifier: IntentClassifier | None = None) -> Understanding:
    """Intent, confidence and slots of one message. Thread-safe; trains the model on first call.
    ``classifier``: another model than the bot's (``gasdesk bot retrain`` compares a candidate with it).

    The leak rules run before and override the classifier: a possible leak is never classified
    as anything else. The classifier may still say ``gas_leak`` on its own; that is kept too.
    Messages about other utilities/everyday subjects are gated to ``out_of_scope`` next.
    """
    return understand_many([text], now, classifier=classifier)[0]


def understand_many(texts: list[str], now: datetime | None = None, *,
                    classifier: IntentClassifier | None = None) -> list[Understanding]:
    """``understand`` for many messages, with one classifier pass over those the rules leave to it (scoring a
    held-out set)."""
    results: list[Understanding | None] = []
    slots = [extract_slots(text, now) if text and text.strip() else {} for text in texts]
    for text, found in zip(texts, slots, strict=True):
        if not text or not text.strip():
            results.append(Understanding(OUT_OF_SCOPE, 0.0, {}))
        elif is_gas_leak(text):
            results.append(Understanding(GAS_LEAK, 1.0, found))
        elif is_off_domain(text):
            results.append(Understanding(OUT_OF_SCOPE, 1.0, found))
        else:
            results.append(None)
    left = [i for i, result in enumerate(results) if result is None]
    if left:
        predictions = (classifier or get_classifier()).predict_many([texts[i] for i in left])
        for i, prediction in zip(left, predictions, strict=True):
            results[i] = Understanding(prediction.intent, round(prediction.confidence, 4), slots[i])
    return [result for result in results if result is not None]
