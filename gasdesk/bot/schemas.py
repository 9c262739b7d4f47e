"""What the bot's understanding API accepts and returns."""

from __future__ import annotations

from pydantic import BaseModel, Field


class UnderstandIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class UnderstandOut(BaseModel):
    intent: str
    confidence: float
    slots: dict[str, str]
