"""Calls on the hotline: the call record (one per call, belonging to a ``voice`` conversation), its events,
the IVR nodes it passed through (where callers drop), its recording, and the versioned IVR scripts.

The caller's number is personal data: encrypted, with a blind index for lookups (like customers' phones).
Event data and node visits never hold it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import BlindIndex, EncryptedString


class CallState(StrEnum):
    ringing = "ringing"
    ivr = "ivr"
    queued = "queued"
    talking = "talking"
    ended = "ended"


class HangupBy(StrEnum):
    caller = "caller"
    agent = "agent"
    system = "system"


class CallEventKind(StrEnum):
    ringing = "ringing"
    answered = "answered"
    dtmf = "dtmf"
    ivr_node = "ivr_node"
    queued = "queued"
    transferred = "transferred"
    held = "held"
    unheld = "unheld"
    bridged = "bridged"
    agent_leg_ended = "agent_leg_ended"  # the softphone's leg: why it ended and the audio frames it carried
    recording_started = "recording_started"
    recording_stopped = "recording_stopped"
    hung_up = "hung_up"
    speech = "speech"  # the caller answered a speech menu: intent and confidence only, never the text


class VisitOutcome(StrEnum):
    digit = "digit"  # the caller chose an option
    timeout = "timeout"  # no input after every retry
    invalid = "invalid"  # wrong input after every retry
    hangup = "hangup"  # the caller hung up in this node
    next = "next"  # the node finished and went on (say, lookups, hand-off)


class ScriptStatus(StrEnum):
    draft = "draft"
    active = "active"
    retired = "retired"


CALL_STATE_LABELS = {CallState.ringing: "振铃", CallState.ivr: "语音导航", CallState.queued: "排队中",
                     CallState.talking: "通话中", CallState.ended: "已结束"}
HANGUP_BY_LABELS = {HangupBy.caller: "来电人", HangupBy.agent: "坐席", HangupBy.system: "系统"}


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (UniqueConstraint("backend", "call_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None only for calls refused before a conversation existed (over capacity).
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"),
                                                        index=True)
    backend: Mapped[str] = mapped_column(String(12))  # sip | freeswitch
    call_ref: Mapped[str] = mapped_column(String(128))  # SIP Call-ID or FreeSWITCH channel UUID
    caller: Mapped[str | None] = mapped_column(EncryptedString)
    caller_index: Mapped[str | None] = mapped_column(BlindIndex(), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    state: Mapped[str] = mapped_column(String(10), default=CallState.ringing.value, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    hangup_by: Mapped[str | None] = mapped_column(String(10))
    hangup_cause: Mapped[str | None] = mapped_column(String(40))
    queue_wait_s: Mapped[int | None] = mapped_column(Integer)
    talk_s: Mapped[int | None] = mapped_column(Integer)
    hold_s: Mapped[int | None] = mapped_column(Integer)
    ivr_script_version: Mapped[int | None] = mapped_column(Integer)


class CallEvent(Base):
    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Ids, node names, causes: never the number or the digits of a 户号.
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IvrNodeVisit(Base):
    __tablename__ = "ivr_node_visits"
    __table_args__ = (Index("ix_ivr_node_visits_report", "script_version", "node_id", "outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    script_version: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[str] = mapped_column(String(40))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(10))


class CallRecording(Base):
    __tablename__ = "call_recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(200))  # relative to the settings' var_dir
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IvrScript(Base):
    """One version of the hotline's IVR (a validated ``ivr.script.Script`` as JSON). Exactly one is active:
    a partial unique index holds that on SQLite and PostgreSQL alike."""

    __tablename__ = "ivr_scripts"
    __table_args__ = (
        Index("uq_ivr_scripts_one_active", "status", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(10), default=ScriptStatus.draft.value)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
