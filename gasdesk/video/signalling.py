"""The ``video_*`` frames of the two chat sockets (docs/video-assist.md): what the resident's widget
(/ws/webchat) and the agent console (/ws/agent) may send, each checked by ``realtime/frames.py`` first and
limited per visitor / per staff user across sockets and processes (``video.visitor``, ``video.user``).

Each frame runs in its own transaction; changes (invite, answer, end) reach the other side after commit, SDP
and ICE at once (``video.service.relay``)."""

from __future__ import annotations

from typing import Any

from gasdesk.audit.service import Actor
from gasdesk.auth.models import User
from gasdesk.db import transaction
from gasdesk.errors import InvalidInput
from gasdesk.realtime.frames import echo
from gasdesk.security import limits
from gasdesk.video import service

RESIDENT_VIDEO_FRAMES = frozenset({"video_accept", "video_decline", "video_offer", "video_ice", "video_end"})
STAFF_VIDEO_FRAMES = frozenset({"video_invite", "video_answer", "video_ice", "video_end"})


async def on_resident_frame(
    visitor_id: str, conversation_id: int | None, frame: dict[str, Any]
) -> dict[str, Any] | None:
    """Apply one resident video frame on their current conversation; the reply to an acceptance carries the ICE
    servers (TURN credentials are only ever handed to a resident who accepted)."""
    await limits.check_rate(("video.visitor", visitor_id))
    kind = frame["type"]
    session_id = int(frame["session_id"])
    async with transaction() as session:
        video, _ = await service.access_video_for_visitor(session, visitor_id, conversation_id, session_id)
        if kind in ("video_accept", "video_decline"):
            accept = kind == "video_accept"
            await service.do_answer_invite(
                session, video, accept=accept, recording=bool(frame.get("recording"))
            )
            if not accept:
                return None
            return {
                "type": "video",
                "kind": "started",
                "session_id": video.id,
                "conversation_id": video.conversation_id,
                "consent_recording": video.consent_recording,
                "ice_servers": service.ice_servers(f"v{video.id}"),
            }
        if kind == "video_end":
            service.do_end(session, video, service.RESIDENT, by="resident", reason=frame.get("reason"))
            return None
        await service.relay(video, "resident", "offer" if kind == "video_offer" else "ice", frame)
    return None


async def on_staff_frame(user: User, frame: dict[str, Any]) -> dict[str, Any] | None:
    """Apply one video frame of the agent console; ``video_invite`` is answered with the new session's id (its
    ``client_msg_id`` echoed, so the console knows which invitation it was)."""
    await limits.check_rate(("video.user", str(user.id)))
    kind = frame["type"]
    async with transaction() as session:
        if kind == "video_invite":
            conversation = await service.access_conversation_to_invite(
                session, user, int(frame["conversation_id"])
            )
            video = await service.do_invite(
                session, user, conversation, recording=bool(frame.get("recording"))
            )
            return {
                "type": "video",
                "kind": "invited",
                "session_id": video.id,
                "conversation_id": conversation.id,
                "recording_requested": video.recording_requested,
                "client_msg_id": echo(frame, "client_msg_id"),
            }
        if "session_id" not in frame:
            raise InvalidInput("消息格式错误：session_id 缺失", code="invalid_frame")
        video, _ = await service.access_video_for_agent(session, user, int(frame["session_id"]))
        if kind == "video_end":
            service.do_end(session, video, Actor.of(user, "ws"), by="agent", reason=frame.get("reason"))
            return None
        await service.relay(video, "agent", "answer" if kind == "video_answer" else "ice", frame)
    return None
