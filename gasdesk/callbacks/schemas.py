from __future__ import annotations

from pydantic import BaseModel, Field


class OutcomeIn(BaseModel):
    outcome: str = Field(max_length=12)  # reached | no_answer | cancelled


class DialOut(BaseModel):
    callback_id: int
    phone: str  # not originated: the full number, for the agent who dials (audited); originated: masked
    originated: bool  # True: gasdesk is calling the resident and will ring the agent's phone/softphone


class CallbackOut(BaseModel):
    id: int
    conversation_id: int
    status: str
    attempts: int
    outcome: str | None
