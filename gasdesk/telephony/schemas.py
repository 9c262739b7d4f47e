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


class PromptOut(Out):
    """A fixed prompt of the IVR script and its uploaded recording (``uploaded`` false: the TTS reads ``text``)."""

    key: str  # <node>.<field>, or prompts.<name> for the script-wide prompts
    node: str | None
    field: str
    label: str
    text: str
    uploaded: bool
    duration_s: float | None
    bytes: int | None
    uploaded_at: str | None
    audio_url: str | None  # the recording (staff only); None when synthesised


class PromptDeleted(Out):
    key: str
    uploaded: bool  # always false: calls hear the synthesised text again


class IvrNodeStatsOut(Out):
    node_id: str
    visits: int
    digit: int  # chose an option
    timeout: int  # no input after every retry
    invalid: int  # wrong input after every retry
    hangup: int  # hung up in this node
    next: int  # the node finished and went on
    open: int  # the call is still in the node
    hangup_rate: float  # hangup / visits, 0–1


class CallStatsOut(Out):
    total: int
    refused: int  # turned away over capacity
    ivr_only: int  # ended in the IVR without queueing for a person
    queued: int
    answered: int  # connected to an agent
    abandoned: int  # hung up while waiting in the queue
    avg_queue_wait_s: float | None
    avg_talk_s: float | None
    avg_hold_s: float | None


class IvrReportOut(Out):
    since: IsoDatetime
    until: IsoDatetime
    calls: CallStatsOut
    nodes: list[IvrNodeStatsOut]


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
