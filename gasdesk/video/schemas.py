"""What the video assist HTTP API returns."""

from __future__ import annotations

from datetime import datetime

from gasdesk.conversations.wire import MessageWire
from gasdesk.schemas import Out


class VideoSessionOut(Out):
    """A video assist session: ids, times, consent flags and counts (nothing the resident showed)."""

    id: int
    conversation_id: int
    agent_id: int | None
    state: str
    recording_requested: bool
    consent_video: bool
    consent_recording: bool
    snapshot_count: int
    recording_count: int
    invited_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None


class VideoUploadOut(Out):
    """A snapshot or recording stored: the conversation's new message (with the attachment) and the session."""

    message: MessageWire
    session: VideoSessionOut
