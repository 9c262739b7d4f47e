"""Knowledge-base articles, their version history, unanswered searches and resident feedback."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.conversations.models import CHANNEL_LABELS as CONVERSATION_CHANNEL_LABELS
from gasdesk.db import Base, TimestampMixin, UTCDateTime
from gasdesk.security.crypto import BlindIndex, EncryptedString

CHANNELS = ("webchat", "wechat", "sms", "voice", "agent")
# The conversation channels' names, plus the agent console (articles offered to agents only).
CHANNEL_LABELS = {**{c.value: label for c, label in CONVERSATION_CHANNEL_LABELS.items()}, "agent": "坐席"}
STATUSES = ("draft", "published", "archived")
STATUS_LABELS = {"draft": "草稿", "published": "已发布", "archived": "已归档"}


class KbArticle(TimestampMixin, Base):
    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), unique=True)
    questions: Mapped[list[str]] = mapped_column(JSON, default=list)  # how residents ask it
    answer: Mapped[str] = mapped_column(Text, default="")  # Markdown (raw HTML is not rendered)
    category: Mapped[str] = mapped_column(String(40), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty = every channel
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), index=True, default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    helpful: Mapped[int] = mapped_column(Integer, default=0)
    not_helpful: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KbArticleVersion(Base):
    """A snapshot taken after every change of an article (edit, publish, archive, restore, import)."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(40))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(String(200), default="")
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    editor_name: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KbMiss(Base):
    """A search the knowledge base could not answer well enough (shown to admins as 未解答问题).

    Residents ask with their phone, 户号, name and address in the sentence: the question is stored with
    identifiers redacted and then encrypted; equal questions are grouped by a blind index of the
    normalised (redacted) wording."""

    __tablename__ = "kb_misses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query: Mapped[str] = mapped_column(EncryptedString)
    normalized_index: Mapped[str] = mapped_column(BlindIndex(), index=True)
    channel: Mapped[str | None] = mapped_column(String(10))
    intent: Mapped[str | None] = mapped_column(String(40))
    best_article_id: Mapped[int | None] = mapped_column(ForeignKey("kb_articles.id", ondelete="SET NULL"))
    best_score: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # What an admin did with the suggested article this question was grouped into (kb/suggestions.py):
    # None while open, "dismissed" or "drafted" (then draft_article_id is the draft written from it).
    resolution: Mapped[str | None] = mapped_column(String(10), index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    draft_article_id: Mapped[int | None] = mapped_column(ForeignKey("kb_articles.id", ondelete="SET NULL"))


class KbFeedback(Base):
    __tablename__ = "kb_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(20), default="resident")  # resident | staff
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Set when an admin dismissed or acted on the "not helpful" suggestion this vote fed (kb/suggestions.py).
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
