"""A video assist session (视频协助): one invitation from the conversation's agent to its resident, and what
became of it. Ids, times, consent flags and counts only — no SDP, network addresses or pictures (the
snapshots and the recording are conversation attachments, sealed like every upload)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime


class VideoState(StrEnum):
    invited = "invited"  # the agent asked; the resident has not answered
    active = "active"  # the resident accepted: signalling and media may flow
    declined = "declined"  # the resident said no (final)
    ended = "ended"  # either side (or the system) ended it (final)


OPEN_STATES = frozenset({VideoState.invited.value, VideoState.active.value})


class VideoSession(Base):
    __tablename__ = "video_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    state: Mapped[str] = mapped_column(String(10), default=VideoState.invited.value)
    # The agent asked for a recording too; the resident's two answers are separate (video yes, recording no).
    recording_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_video: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_recording: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot_count: Mapped[int] = mapped_column(Integer, default=0)
    recording_count: Mapped[int] = mapped_column(Integer, default=0)
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the resident accepted
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # agent | resident | system (a newer invitation, the conversation closed, a camera that would not start)
    ended_by: Mapped[str | None] = mapped_column(String(10))
    end_reason: Mapped[str | None] = mapped_column(String(20))

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES
