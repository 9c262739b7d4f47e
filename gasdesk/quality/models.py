"""Quality inspection (质检): versioned scoring sheets per team and one score per closed contact.

A score keeps its per-rule results as JSON with evidence that points into the transcript (message seq
numbers, rule ids, the agent's matched phrase) and never copies a resident's words.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedString


class SheetStatus(StrEnum):
    draft = "draft"
    active = "active"
    retired = "retired"


class SampleReason(StrEnum):
    complaint = "complaint"  # a complaint (intent or ticket type): always reviewed
    low_score = "low_score"  # below the sheet's threshold: always reviewed
    random = "random"  # a deterministic share of the rest (by a hash of the conversation id)


class ReviewStatus(StrEnum):
    none = "none"  # not sampled
    pending = "pending"  # in the supervisors' queue
    reviewed = "reviewed"


class AppealStatus(StrEnum):
    none = "none"
    open = "open"
    upheld = "upheld"
    rejected = "rejected"


SHEET_STATUS_LABELS = {SheetStatus.draft: "草稿", SheetStatus.active: "使用中", SheetStatus.retired: "已停用"}
SAMPLE_LABELS = {SampleReason.complaint: "投诉必检", SampleReason.low_score: "低分必检", SampleReason.random: "随机抽检"}
REVIEW_LABELS = {ReviewStatus.none: "未抽中", ReviewStatus.pending: "待复核", ReviewStatus.reviewed: "已复核"}
APPEAL_LABELS = {AppealStatus.none: "未申诉", AppealStatus.open: "申诉中", AppealStatus.upheld: "申诉成立",
                 AppealStatus.rejected: "申诉驳回"}


class QualitySheet(Base):
    """One version of a team's scoring sheet (``rules.SheetBody`` as JSON); ``team_id`` None is the default
    sheet for agents in no team. Saving makes a new version; one version per team is active (the service
    retires the others in the same transaction). Scores name the exact version they were scored with."""

    __tablename__ = "quality_sheets"
    __table_args__ = (Index("ix_quality_sheets_team_status", "team_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default=SheetStatus.draft.value)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QualityScore(Base):
    """The inspection of one closed conversation (a chat, or a call's ``voice`` conversation)."""

    __tablename__ = "quality_scores"
    __table_args__ = (
        Index("ix_quality_scores_review", "review_status", "closed_at"),
        Index("ix_quality_scores_agent_closed", "agent_id", "closed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One score per conversation: the unique key makes the scoring job idempotent.
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(10))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("quality_sheets.id", ondelete="RESTRICT"))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    auto_score: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)  # the auto score, or the supervisor's adjusted one
    # [{rule_id, kind, label, weight, earned, status: pass|fail|na, evidence: [{seq, phrase?, seconds?}]}]
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    sample_reason: Mapped[str | None] = mapped_column(String(12))
    review_status: Mapped[str] = mapped_column(String(10), default=ReviewStatus.none.value)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    adjusted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Free text by staff may quote residents: encrypted like other notes.
    adjust_reason: Mapped[str | None] = mapped_column(EncryptedString)
    appeal_status: Mapped[str] = mapped_column(String(10), default=AppealStatus.none.value, index=True)
    appeal_reason: Mapped[str | None] = mapped_column(EncryptedString)
    appealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_note: Mapped[str | None] = mapped_column(EncryptedString)
    appeal_resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    appeal_resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
