"""``understand``: the one call the bot makes per resident message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import cast

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
    left: list[tuple[int, dict[str, str]]] = []  # (index, slots) of the messages the rules leave to the model
    for text in texts:
        if not text or not text.strip():
            results.append(Understanding(OUT_OF_SCOPE, 0.0, {}))
            continue
        slots = extract_slots(text, now)
        if is_gas_leak(text):
            results.append(Understanding(GAS_LEAK, 1.0, slots))
        elif is_off_domain(text):
            results.append(Understanding(OUT_OF_SCOPE, 1.0, slots))
        else:
            left.append((len(results), slots))
            results.append(None)
    if left:
        predictions = (classifier or get_classifier()).predict_many([texts[i] for i, _ in left])
        for (i, slots), prediction in zip(left, predictions, strict=True):
            results[i] = Understanding(prediction.intent, round(prediction.confidence, 4), slots)
    return cast(list[Understanding], results)  # every None was filled above
