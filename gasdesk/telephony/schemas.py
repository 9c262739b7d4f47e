"""What the hotline's API accepts and returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gasdesk.schemas import IsoDatetime, Out


class IvrScriptIn(BaseModel):
    body: dict[str, Any]  # the script (gasdesk/telephony/ivr/script.py); validated by the service
    note: str = Field(default="", max_length=200)


class IvrScriptCheck(BaseModel):
    body: Any


# ---------------------------------------------------------------- responses


class IvrScriptOut(Out):
    version: int
    status: str  # draft | active | retired
    note: str
    created_by: int | None
    created_at: IsoDatetime


class IvrScriptDetail(IvrScriptOut):
    body: dict[str, Any]


class IvrScriptProblems(Out):
    ok: bool
    problems: list[str]  # in Chinese, one per problem


class CallOut(Out):
    call_id: int
    conversation_id: int | None
    at: IsoDatetime
    duration_s: int
    talk_s: int | None
    queue_wait_s: int | None
    ivr_path: list[str]
    agent_name: str | None
    hangup_by: str | None
    recording_url: str | None


class SoftphoneOfferIn(BaseModel):
    sdp: str = Field(min_length=10, max_length=24_000)  # the browser's offer, ICE candidates gathered


class SoftphoneAnswerOut(Out):
    call_id: int
    type: str  # "answer"
    sdp: str


class SoftphoneHoldIn(BaseModel):
    on: bool


class SoftphoneStateOut(Out):
    call_id: int
    state: str  # rejected | ended | held | talking | transferred
