"""HTTP side of video assist: the agent's snapshots and recording (multipart uploads, authorised before the body
is read, capped in ``web.body_limit``), and a conversation's sessions for whoever may read it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import STAFF_DESK
from gasdesk.config import get_settings
from gasdesk.conversations import service as conversations
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Id
from gasdesk.security import limits
from gasdesk.video import service
from gasdesk.video.models import VideoSession
from gasdesk.video.schemas import VideoSessionOut, VideoUploadOut
from gasdesk.web.uploads import read_upload_form

router = APIRouter(prefix="/api/v1", tags=["video"])
FRAMING = 64 * 1024  # multipart framing around the file


def _session_out(video: VideoSession) -> VideoSessionOut:
    return VideoSessionOut.model_validate(video, from_attributes=True)


async def _upload(
    request: Request, session: DbSession, user: User, session_id: int, *, recording: bool
) -> dict[str, Any]:
    # Who asks and for which session is settled before a byte of the body is read.
    video, conversation = await service.access_video_for_agent(session, user, session_id)
    service.check_upload_allowed(video, recording=recording)
    await limits.check_rate(("video_upload.user", str(user.id)))
    max_bytes = get_settings().video_recording_max_bytes + FRAMING if recording else None
    form = await read_upload_form(request, session=session, max_bytes=max_bytes)
    file = form.file("file")
    if file is None:
        raise InvalidInput("请选择要上传的文件", code="file_missing")
    video, conversation = await service.access_video_for_agent(
        session, user, session_id
    )  # reloaded after commit
    add = service.do_add_recording if recording else service.do_add_snapshot
    message = await add(session, user, video, conversation, file.filename, file.data)
    return {"message": message.to_wire(), "session": _session_out(video)}


@router.post("/video/{session_id}/snapshots", status_code=201, response_model=VideoUploadOut)
async def add_snapshot(
    session_id: Id, request: Request, session: DbSession, user: User = allow(*STAFF_DESK)
) -> dict[str, Any]:
    """A still from the resident's video (multipart field ``file``, JPEG or PNG ≤ 5 MB), by the session's agent
    while the video runs; saved as a picture message of the conversation."""
    return await _upload(request, session, user, session_id, recording=False)


@router.post("/video/{session_id}/recordings", status_code=201, response_model=VideoUploadOut)
async def add_recording(
    session_id: Id, request: Request, session: DbSession, user: User = allow(*STAFF_DESK)
) -> dict[str, Any]:
    """The agent's recording (multipart field ``file``, WebM ≤ ``GASDESK_VIDEO_RECORDING_MAX_BYTES``), only when
    the resident agreed to be recorded; saved as a file message of the conversation."""
    return await _upload(request, session, user, session_id, recording=True)


@router.get("/conversations/{conversation_id}/video-sessions", response_model=list[VideoSessionOut])
async def list_sessions(
    conversation_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)
) -> list[VideoSessionOut]:
    """The conversation's video assist sessions, newest first (whoever may read the conversation)."""
    conversation = await conversations.access_conversation_for_user(session, user, conversation_id)
    rows = await session.scalars(
        select(VideoSession)
        .where(VideoSession.conversation_id == conversation.id)
        .order_by(VideoSession.id.desc())
    )
    return [_session_out(v) for v in rows]
