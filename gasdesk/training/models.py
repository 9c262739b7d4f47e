"""Training (智能培训): learning materials, question banks, exams with timed attempts, and AI sparring (AI陪练).

A ``TrainingMaterial`` is made from a knowledge-base article (its text copied, so a later edit of the article
does not change what was studied) or from an uploaded document (kept sealed as an ``Attachment``). A
``QuestionBank`` holds ``Question`` rows of four kinds; an ``Exam`` draws ``question_count`` of them for each
``ExamAttempt``, which keeps the drawn ids, the answers and a server-side deadline. A ``SparringScenario`` is a
scripted resident (``sparring.ScenarioScript`` as JSON); a ``SparringSession`` is one trainee's conversation
with it, its ``SparringTurn`` rows the transcript.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime


class QuestionKind(StrEnum):
    single = "single"  # one option is right: key {"option": i}
    multiple = "multiple"  # several options are right, all must be chosen: key {"options": [i, j]}
    true_false = "true_false"  # key {"value": true}
    short_answer = "short_answer"  # key {"keywords": ["开窗|通风", …]}: the share of keywords present


KIND_LABELS = {
    QuestionKind.single: "单选题",
    QuestionKind.multiple: "多选题",
    QuestionKind.true_false: "判断题",
    QuestionKind.short_answer: "简答题",
}


class AttemptStatus(StrEnum):
    open = "open"  # being answered, before the deadline
    submitted = "submitted"  # handed in by the trainee
    expired = "expired"  # closed by the server at the deadline, scored on the answers saved before it


ATTEMPT_STATUS_LABELS = {
    AttemptStatus.open: "答题中",
    AttemptStatus.submitted: "已交卷",
    AttemptStatus.expired: "超时自动交卷",
}


class SparringStatus(StrEnum):
    open = "open"
    finished = "finished"


class TrainingMaterial(Base):
    __tablename__ = "training_materials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown (kb.render), or the text of a .txt upload
    source: Mapped[str] = mapped_column(String(10))  # kb | upload
    kb_article_id: Mapped[int | None] = mapped_column(ForeignKey("kb_articles.id", ondelete="SET NULL"))
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuestionBank(Base):
    __tablename__ = "training_banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Question(Base):
    __tablename__ = "training_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("training_banks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSON, default=list)  # choice questions only
    key: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict
    )  # the answer key: never shown before submitting
    explanation: Mapped[str] = mapped_column(Text, default="")
    points: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Exam(Base):
    __tablename__ = "training_exams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("training_banks.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    question_count: Mapped[int] = mapped_column(Integer)
    time_limit_min: Mapped[int] = mapped_column(Integer)
    pass_mark: Mapped[float] = mapped_column(Float)  # percent of the points
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExamAttempt(Base):
    __tablename__ = "training_attempts"
    __table_args__ = (Index("ix_training_attempts_status_deadline", "status", "deadline_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("training_exams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    question_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # drawn at the start, in order
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {question id: answer}
    status: Mapped[str] = mapped_column(String(12), default=AttemptStatus.open.value)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score: Mapped[float | None] = mapped_column(Float)  # percent
    passed: Mapped[bool | None] = mapped_column(Boolean)
    # per question: {"question_id", "earned" (0–1), "points"}, set when the attempt closes
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class SparringScenario(Base):
    __tablename__ = "training_scenarios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    title: Mapped[str] = mapped_column(String(60))
    script: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # sparring.ScenarioScript
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SparringSession(Base):
    __tablename__ = "training_sparring"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(
        ForeignKey("training_scenarios.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10), default=SparringStatus.open.value)
    steps_done: Mapped[list[str]] = mapped_column(JSON, default=list)  # step ids, in the order first done
    said: Mapped[list[str]] = mapped_column(
        JSON, default=list
    )  # persona reply ids already used (each said once)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    step_score: Mapped[float | None] = mapped_column(Float)
    quality_score: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    # {"missed": [step labels], "quality": [findings], "quality_results": [RuleResult.as_dict()]}
    feedback: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SparringTurn(Base):
    __tablename__ = "training_sparring_turns"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("training_sparring.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(10))  # persona | trainee
    text: Mapped[str] = mapped_column(Text)
    steps: Mapped[list[str]] = mapped_column(JSON, default=list)  # steps this trainee turn did first
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
