"""What the intent-correction API accepts and answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gasdesk.fields import Id
from gasdesk.schemas import IsoDatetime, Out


class CorrectionIn(BaseModel):
    message_id: Id
    intent: str = Field(min_length=1, max_length=40)  # one of gasdesk/bot/nlu/intents.py INTENTS


class ReviewIn(BaseModel):
    decision: Literal["approve", "reject"]


class CorrectionOut(Out):
    id: int
    message_id: int
    conversation_id: int
    text: str  # the resident's message, phone/ID/户号 numbers replaced by placeholders
    predicted_intent: str | None
    predicted_label: str | None
    predicted_confidence: float | None
    intent: str
    intent_label: str
    status: str  # pending | approved | rejected
    status_label: str
    created_by: int | None
    created_at: IsoDatetime
    reviewed_by: int | None
    reviewed_at: IsoDatetime | None


class CorrectionPage(Out):
    total: int
    items: list[CorrectionOut]


class IntentOptionOut(Out):
    intent: str
    label: str
