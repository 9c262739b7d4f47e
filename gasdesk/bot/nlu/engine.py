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
    if not text or not text.strip():
        return Understanding(OUT_OF_SCOPE, 0.0, {})
    slots = extract_slots(text, now)
    if is_gas_leak(text):
        return Understanding(GAS_LEAK, 1.0, slots)
    if is_off_domain(text):
        return Understanding(OUT_OF_SCOPE, 1.0, slots)
    prediction = (classifier or get_classifier()).predict(text)
    return Understanding(prediction.intent, round(prediction.confidence, 4), slots)
