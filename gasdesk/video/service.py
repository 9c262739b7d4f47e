"""Video assist (视频协助): the agent of a conversation invites its resident to show them something through the
phone's rear camera (a one-way video, no sound); the resident's browser streams straight to the agent's over
WebRTC. Signalling is ours, over the two chat sockets (``video_*`` frames, checked by ``realtime/frames.py``),
and reaches the other side through the event bus, so it works across processes (the Redis bridge).

The rules, all enforced here:

* Only the agent the conversation is assigned to may invite, answer, exchange ICE or end; only the resident of
  that conversation (their visitor identity, their current conversation) may accept, decline, offer or end.
  A transferred conversation's session is over for both.
* Nothing but the answer to the invitation is taken before the resident accepted (``video_not_active``).
* The resident sends the offer, the agent the answer: each SDP at most ``MAX_SDP_CHARS``, with video sections
  only (a description asking for the resident's microphone is refused), candidates at most
  ``MAX_CANDIDATE_CHARS``.
* A recording needs the resident's separate consent, given when accepting.

Rows keep ids, times, consent flags and counts; audit rows the same. SDP and candidates carry network addresses:
they are relayed, never stored or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.clock import utcnow
from gasdesk.config import Settings, get_settings
from gasdesk.conversations import service as conversations
from gasdesk.conversations.attachments import ALLOWED, FileKind, do_store_upload
from gasdesk.conversations.models import ContentType, Conversation, ConversationState, SenderType
from gasdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from gasdesk.event_types import VideoSignal
from gasdesk.events import emit, publish_now
from gasdesk.video.models import OPEN_STATES, VideoSession, VideoState

# A browser's video-only description is 3–7 KB (trickled candidates travel apart); twice that is plenty and
# keeps a frame well under the socket's 16,000 characters once JSON-escaped.
MAX_SDP_CHARS = 12_000
MAX_CANDIDATE_CHARS = 1_000
MAX_MLINE_INDEX = 15
MAX_RECORDINGS = 5  # per session: a session is a few minutes of pointing a phone at a meter

RESIDENT = Actor(None, "resident", "webchat")
# A snapshot is a picture as the chat takes them (JPEG or PNG, the chat's size cap), nothing else.
SNAPSHOT_KINDS: dict[str, FileKind] = {ext: ALLOWED[ext] for ext in ("jpg", "jpeg", "png")}


def recording_kinds(settings: Settings | None = None) -> dict[str, FileKind]:
    """The one type a recording may have: WebM (EBML magic), up to ``video_recording_max_bytes``."""
    limit = (settings or get_settings()).video_recording_max_bytes
    return {"webm": FileKind("video/webm", "file", limit, (b"\x1a\x45\xdf\xa3",))}


# ------------------------------------------------------------------ ICE servers


def ice_servers(
    subject: str, settings: Settings | None = None, *, now: float | None = None
) -> list[dict[str, Any]]:
    """The ``iceServers`` of an RTCPeerConnection: none by default (host candidates only). TURN credentials are
    coturn's REST form when ``video_turn_secret`` is set — user ``<expiry>:<subject>``, password
    base64(HMAC-SHA1(secret, user)) — so a credential handed to a resident expires; else the fixed pair."""
    settings = settings or get_settings()
    servers: list[dict[str, Any]] = []
    if settings.video_stun_urls:
        servers.append({"urls": list(settings.video_stun_urls)})
    if settings.video_turn_urls:
        turn: dict[str, Any] = {"urls": list(settings.video_turn_urls)}
        if settings.video_turn_secret is not None:
            expiry = int(now if now is not None else time.time()) + settings.video_turn_ttl_s
            username = f"{expiry}:{subject}"
            digest = hmac.new(
                settings.video_turn_secret.get_secret_value().encode(), username.encode(), hashlib.sha1
            ).digest()
            turn.update(username=username, credential=base64.b64encode(digest).decode())
        elif settings.video_turn_username and settings.video_turn_password is not None:
            turn.update(
                username=settings.video_turn_username,
                credential=settings.video_turn_password.get_secret_value(),
            )
        servers.append(turn)
    return servers


# ------------------------------------------------------------------ checks


def check_sdp(sdp: Any) -> str:
    """A session description of ours: text within ``MAX_SDP_CHARS``, starting ``v=0``, whose media sections are
    all video (the resident agreed to show, not to be heard)."""
    if not isinstance(sdp, str) or not sdp:
        raise InvalidInput("视频协商信息无效", code="invalid_sdp")
    if len(sdp) > MAX_SDP_CHARS:
        raise InvalidInput("视频协商信息过大", code="sdp_too_large")
    if not sdp.startswith("v=0"):
        raise InvalidInput("视频协商信息无效", code="invalid_sdp")
    media = [line for line in sdp.splitlines() if line.startswith("m=")]
    if not media or any(not line.startswith("m=video ") for line in media):
        raise InvalidInput("视频协助只传输画面（不含声音）", code="invalid_sdp")
    return sdp


def check_candidate(candidate: Any) -> dict[str, Any]:
    """An ICE candidate as ``RTCIceCandidate.toJSON()`` gives it, and nothing else (only these fields are passed
    on); the empty ``candidate`` ends gathering."""
    if not isinstance(candidate, dict) or set(candidate) - {
        "candidate",
        "sdpMid",
        "sdpMLineIndex",
        "usernameFragment",
    }:
        raise InvalidInput("ICE 候选地址无效", code="invalid_candidate")
    text, mid = candidate.get("candidate"), candidate.get("sdpMid")
    index, ufrag = candidate.get("sdpMLineIndex"), candidate.get("usernameFragment")
    if (
        not isinstance(text, str)
        or len(text) > MAX_CANDIDATE_CHARS
        or (text and not text.startswith("candidate:"))
    ):
        raise InvalidInput("ICE 候选地址无效", code="invalid_candidate")
    if mid is not None and (not isinstance(mid, str) or len(mid) > 32):
        raise InvalidInput("ICE 候选地址无效", code="invalid_candidate")
    if index is not None and (type(index) is not int or not 0 <= index <= MAX_MLINE_INDEX):
        raise InvalidInput("ICE 候选地址无效", code="invalid_candidate")
    if ufrag is not None and (not isinstance(ufrag, str) or len(ufrag) > 64):
        raise InvalidInput("ICE 候选地址无效", code="invalid_candidate")
    return {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index, "usernameFragment": ufrag}


# ------------------------------------------------------------------ access


def _assigned_to(conversation: Conversation, user: User) -> bool:
    return conversation.agent_id == user.id and conversation.state == ConversationState.assigned.value


async def access_conversation_to_invite(
    session: AsyncSession, user: User, conversation_id: int
) -> Conversation:
    """A conversation assigned to ``user`` right now: only its agent may invite (supervisors reading it may
    not — the resident is asked by the person they talk to)."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("会话不存在", code="conversation_not_found")
    if not _assigned_to(conversation, user):
        raise PermissionDenied("该会话未分配给您", code="conversation_not_yours")
    return conversation


async def access_video_for_agent(
    session: AsyncSession, user: User, session_id: int
) -> tuple[VideoSession, Conversation]:
    """A video session of ``user``'s on a conversation still assigned to them; NotFound for anyone else."""
    video = await session.get(VideoSession, session_id)
    conversation = await session.get(Conversation, video.conversation_id) if video is not None else None
    if (
        video is None
        or conversation is None
        or video.agent_id != user.id
        or not _assigned_to(conversation, user)
    ):
        raise NotFound("视频协助不存在或已结束", code="video_not_found")
    return video, conversation


async def access_video_for_visitor(
    session: AsyncSession, visitor_id: str, conversation_id: int | None, session_id: int
) -> tuple[VideoSession, Conversation]:
    """A video session on the resident's current conversation, with the agent who invited still assigned;
    NotFound for any other (another visitor's, another conversation's)."""
    video = await session.get(VideoSession, session_id)
    conversation = await session.get(Conversation, video.conversation_id) if video is not None else None
    if (
        video is None
        or conversation is None
        or conversation_id != conversation.id
        or conversation.visitor_id != visitor_id
        or conversation.agent_id != video.agent_id
        or conversation.state == ConversationState.closed.value
    ):
        raise NotFound("视频协助不存在或已结束", code="video_not_found")
    return video, conversation


def _require_active(video: VideoSession) -> None:
    if video.state != VideoState.active.value:
        raise Conflict("居民尚未同意视频协助，或视频已结束", code="video_not_active")


# ------------------------------------------------------------------ changes


def _signal(video: VideoSession, to: str, kind: str, data: dict[str, Any] | None = None) -> VideoSignal:
    return VideoSignal(
        conversation_id=video.conversation_id,
        session_id=video.id,
        agent_id=video.agent_id,
        to=to,
        kind=kind,
        data=data or {},
    )


def _state(video: VideoSession) -> dict[str, Any]:
    return {
        "state": video.state,
        "consent_video": video.consent_video,
        "consent_recording": video.consent_recording,
    }


async def do_invite(
    session: AsyncSession, user: User, conversation: Conversation, *, recording: bool = False
) -> VideoSession:
    """Invite the resident (``access_conversation_to_invite`` first). A session still open on the conversation
    (a reloaded console) ends: one camera at a time."""
    for stale in await session.scalars(
        select(VideoSession).where(
            VideoSession.conversation_id == conversation.id, VideoSession.state.in_(OPEN_STATES)
        )
    ):
        _end(session, stale, Actor.system("video"), by="system", reason="superseded")
    video = VideoSession(
        conversation_id=conversation.id,
        agent_id=user.id,
        state=VideoState.invited.value,
        recording_requested=recording,
        invited_at=utcnow(),
    )
    session.add(video)
    await session.flush()
    record_audit(
        session,
        Actor.of(user, "ws"),
        "video.invite",
        "video_session",
        video.id,
        after={"conversation_id": conversation.id, "recording_requested": recording},
    )
    emit(
        session,
        _signal(
            video, "resident", "invite", {"recording_requested": recording, "agent_name": user.display_name}
        ),
    )
    return video


async def do_answer_invite(
    session: AsyncSession, video: VideoSession, *, accept: bool, recording: bool = False
) -> VideoSession:
    """The resident's answer: accepted (with or without the separate recording consent, which only counts when
    the agent asked for it) or declined. Only an invitation still waiting may be answered."""
    if video.state != VideoState.invited.value:
        raise Conflict("该视频邀请已失效", code="video_not_invited")
    before = _state(video)
    now = utcnow()
    if accept:
        video.state = VideoState.active.value
        video.consent_video = True
        video.consent_recording = bool(recording and video.recording_requested)
        video.started_at = now
    else:
        video.state = VideoState.declined.value
        video.ended_at, video.ended_by, video.end_reason = now, "resident", "declined"
    record_audit(
        session,
        RESIDENT,
        "video.accept" if accept else "video.decline",
        "video_session",
        video.id,
        before=before,
        after=_state(video),
    )
    emit(
        session,
        _signal(
            video,
            "agent",
            "accepted" if accept else "declined",
            {"consent_recording": video.consent_recording},
        ),
    )
    return video


def _end(session: AsyncSession, video: VideoSession, actor: Actor, *, by: str, reason: str) -> None:
    before = _state(video)
    video.state = VideoState.ended.value
    video.ended_at, video.ended_by, video.end_reason = utcnow(), by, reason[:20]
    record_audit(
        session,
        actor,
        "video.end",
        "video_session",
        video.id,
        before=before,
        after={**_state(video), "ended_by": by, "end_reason": video.end_reason},
    )
    data = {"ended_by": by, "reason": video.end_reason}
    emit(session, _signal(video, "resident", "ended", data))
    emit(session, _signal(video, "agent", "ended", data))


END_REASONS = frozenset({"hangup", "camera_error", "connection_failed", "page_closed"})
# An invitation nobody answers, or a video whose pages went away without a word, is ended by the scan.
INVITE_TIMEOUT = timedelta(minutes=10)
MAX_ACTIVE = timedelta(hours=2)
SCAN_EVERY_S = 60


def do_end(
    session: AsyncSession, video: VideoSession, actor: Actor, *, by: str, reason: str | None = None
) -> bool:
    """End an open session (either side may, at any time); False when it had ended already (no change)."""
    if not video.is_open:
        return False
    _end(session, video, actor, by=by, reason=reason if reason in END_REASONS else "hangup")
    return True


async def relay(video: VideoSession, sender: str, kind: str, frame: dict[str, Any]) -> None:
    """Pass SDP or an ICE candidate of an accepted session to the other side, checked and reduced to the fields
    the other browser needs. The resident offers, the agent answers."""
    _require_active(video)
    allowed = {"resident": ("offer", "ice"), "agent": ("answer", "ice")}[sender]
    if kind not in allowed:
        raise InvalidInput("不支持的视频信令", code="invalid_video_frame")
    data = (
        {"candidate": check_candidate(frame.get("candidate"))}
        if kind == "ice"
        else {"sdp": check_sdp(frame.get("sdp"))}
    )
    await publish_now(_signal(video, "agent" if sender == "resident" else "resident", kind, data))


def check_upload_allowed(video: VideoSession, *, recording: bool) -> None:
    """May the session take a snapshot (while the video runs) or a recording (with the resident's recording
    consent, up to ``MAX_RECORDINGS``)? Asked before an upload's body is read, and again when it is stored."""
    if not recording:
        _require_active(video)
        return
    if not video.consent_recording or video.started_at is None:
        raise PermissionDenied("居民未同意录制", code="recording_not_allowed")
    if video.recording_count >= MAX_RECORDINGS:
        raise Conflict("本次视频的录像数量已达上限", code="too_many_recordings")


async def do_add_snapshot(
    session: AsyncSession,
    user: User,
    video: VideoSession,
    conversation: Conversation,
    filename: str,
    data: bytes,
) -> Any:
    """A still the agent took from the video: stored as the conversation's attachment and posted as a picture
    message (the resident sees it too), counted on the session."""
    return await _post_capture(session, user, video, conversation, filename, data, recording=False)


async def do_add_recording(
    session: AsyncSession,
    user: User,
    video: VideoSession,
    conversation: Conversation,
    filename: str,
    data: bytes,
) -> Any:
    """The agent's recording (webm), only of a session the resident agreed to have recorded; kept like any
    attachment of the conversation and posted as a file message. It may arrive just after the session ended
    (the console uploads when the video stops)."""
    return await _post_capture(session, user, video, conversation, filename, data, recording=True)


async def _post_capture(
    session: AsyncSession,
    user: User,
    video: VideoSession,
    conversation: Conversation,
    filename: str,
    data: bytes,
    *,
    recording: bool,
) -> Any:
    """Store a snapshot or recording as the conversation's attachment, post it, count and audit it."""
    check_upload_allowed(video, recording=recording)
    attachment = await do_store_upload(
        session, conversation, filename, data, user_id=user.id,
        allowed=recording_kinds() if recording else SNAPSHOT_KINDS,
    )
    posted = await conversations.do_post_message(
        session,
        conversation,
        SenderType.agent,
        text="视频协助录像" if recording else "视频协助截图",
        content_type=ContentType.file if recording else ContentType.image,
        payload=attachment.to_payload(),
        user=user,
    )
    after: dict[str, Any] = {"attachment_id": attachment.id}
    if recording:
        video.recording_count += 1
        after.update(recording_count=video.recording_count, size=attachment.size)
    else:
        video.snapshot_count += 1
        after["snapshot_count"] = video.snapshot_count
    record_audit(session, Actor.of(user), "video.recording" if recording else "video.snapshot", "video_session",
                 video.id, after=after)
    return posted.message


async def end_with_conversation(session: AsyncSession, conversation: Conversation) -> None:
    """``on_conversation_closed`` hook: a closed conversation's video ends in the same transaction."""
    for video in await session.scalars(
        select(VideoSession).where(
            VideoSession.conversation_id == conversation.id, VideoSession.state.in_(OPEN_STATES)
        )
    ):
        _end(session, video, Actor.system("video"), by="system", reason="conversation_closed")


async def end_stale_sessions(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Periodic: end open sessions whose conversation closed or passed to another agent (a transfer), invitations
    unanswered for ``INVITE_TIMEOUT`` and videos older than ``MAX_ACTIVE`` (a tab closed without ``video_end``)."""
    now = now or utcnow()
    ended = 0
    rows = await session.execute(
        select(VideoSession, Conversation)
        .join(Conversation, Conversation.id == VideoSession.conversation_id)
        .where(VideoSession.state.in_(OPEN_STATES))
        .order_by(VideoSession.id)
    )
    for video, conversation in list(rows):
        if conversation.state == ConversationState.closed.value:
            reason = "conversation_closed"
        elif conversation.agent_id != video.agent_id:
            reason = "transferred"
        elif video.state == VideoState.invited.value and video.invited_at <= now - INVITE_TIMEOUT:
            reason = "no_answer"
        elif video.started_at is not None and video.started_at <= now - MAX_ACTIVE:
            reason = "timeout"
        else:
            continue
        _end(session, video, Actor.system("video"), by="system", reason=reason)
        ended += 1
    return {"ended": ended}
