from __future__ import annotations

from pydantic import BaseModel, Field


class OutcomeIn(BaseModel):
    outcome: str = Field(max_length=12)  # reached | no_answer | cancelled


class DialOut(BaseModel):
    callback_id: int
    phone: str  # the full number, for the agent who dials (the reveal is audited)
    originated: bool  # False: no outbound-call API in the telephony layer; the agent dials from their phone


class CallbackOut(BaseModel):
    id: int
    conversation_id: int
    status: str
    attempts: int
    outcome: str | None
