"""Video assist (视频协助): the signalling rules over the real resident and agent sockets, the session row and its
audit trail, snapshots and recordings through the upload API, and the ICE server settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.config import get_settings, reset_settings_cache
from gasdesk.conversations.attachments import Attachment
from gasdesk.conversations.models import Conversation, Message
from gasdesk.db import commit
from gasdesk.video import service
from gasdesk.video.models import VideoSession
from tests.factories import (
    ChatSocket,
    desk_agent,
    new_visitor,
    queued_conversation,
    reload_conversation,
    served,
)

# A browser's one-way video offer, trimmed: what the rules look at (v=0, video sections only).
OFFER = (
    "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"
)
ANSWER = OFFER.replace("a=sendonly", "a=recvonly")
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 64


async def _scene(factory: Any, session: Any, host: str | None) -> dict[str, Any]:
    """An online agent with the web chat of a visitor (a real one with a served app's ``host``) assigned to them;
    a colleague who is not assigned."""
    agent = await desk_agent(factory, username="video_agent")
    colleague = await desk_agent(factory, username="video_other", presence="offline")
    visitor = await new_visitor(host) if host else {"visitor_id": "v_video", "token": ""}
    conversation = await queued_conversation(session, visitor_id=visitor["visitor_id"])
    assert (await reload_conversation(conversation.id)).agent_id == agent.id
    return {
        "agent": agent,
        "agent_id": agent.id,
        "agent_name": agent.display_name,
        "colleague": colleague,
        "visitor": visitor,
        "conversation_id": conversation.id,
        "agent_headers": {"Authorization": f"Bearer {await factory.token(agent)}"},
        "colleague_headers": {"Authorization": f"Bearer {await factory.token(colleague)}"},
    }


def _video(kind: str) -> Any:
    return lambda f: f.get("type") == "video" and f.get("kind") == kind


def _error(request_type: str) -> Any:
    return lambda f: f.get("type") == "error" and f.get("request_type") == request_type


async def test_signalling_rules_session_row_and_audit(app, session, factory) -> None:
    async with served(app) as host:
        s = await _scene(factory, session, host)
        cid = s["conversation_id"]
        async with (
            ChatSocket.connect(host) as resident,
            ChatSocket.connect(host) as stranger,
            ChatSocket.connect(host, "/ws/agent", additional_headers=s["agent_headers"]) as agent,
            ChatSocket.connect(host, "/ws/agent", additional_headers=s["colleague_headers"]) as colleague,
        ):
            await resident.send(type="hello", token=s["visitor"]["token"], conversation_id=cid)
            assert (await resident.until("welcome"))["conversation"]["id"] == cid
            other = await new_visitor(host)  # another resident, in a conversation of their own
            await stranger.send(type="hello", token=other["token"])
            await stranger.until("welcome")
            await agent.until("hello")
            await colleague.until("hello")

            # Only the assigned agent may invite.
            await colleague.send(type="video_invite", conversation_id=cid)
            assert (await colleague.until(_error("video_invite")))["code"] == "conversation_not_yours"
            await agent.send(type="video_invite", conversation_id=cid, recording=True, client_msg_id="inv-1")
            invited = await agent.until(_video("invited"))
            assert invited["client_msg_id"] == "inv-1" and invited["recording_requested"] is True
            sid = invited["session_id"]
            invite = await resident.until(_video("invite"))
            assert (invite["session_id"], invite["recording_requested"], invite["agent_name"]) == (
                sid,
                True,
                s["agent_name"],
            )

            # Nothing flows before the resident consents.
            await resident.send(type="video_offer", session_id=sid, sdp=OFFER)
            assert (await resident.until(_error("video_offer")))["code"] == "video_not_active"
            await agent.send(type="video_answer", session_id=sid, sdp=ANSWER)
            assert (await agent.until(_error("video_answer")))["code"] == "video_not_active"
            await agent.send(type="video_ice", session_id=sid, candidate=CANDIDATE)
            assert (await agent.until(_error("video_ice")))["code"] == "video_not_active"

            # Another conversation's resident cannot answer (or end) it.
            await stranger.send(type="video_accept", session_id=sid, recording=True)
            assert (await stranger.until(_error("video_accept")))["code"] == "video_not_found"
            await stranger.send(type="video_end", session_id=sid)
            assert (await stranger.until(_error("video_end")))["code"] == "video_not_found"

            await resident.send(type="video_accept", session_id=sid, recording=True)
            started = await resident.until(_video("started"))
            assert (
                started["ice_servers"] == [] and started["consent_recording"] is True
            )  # no outside STUN by default
            assert (await agent.until(_video("accepted")))["consent_recording"] is True
            await resident.send(type="video_accept", session_id=sid)  # an answer is given once
            assert (await resident.until(_error("video_accept")))["code"] == "video_not_invited"

            # Size and content caps on what is relayed.
            await resident.send(
                type="video_offer", session_id=sid, sdp=OFFER + "a=x\r\n" * 3000
            )  # past the socket's cap
            assert (await resident.until("error"))["code"] == "frame_too_large"
            await resident.send(
                type="video_offer", session_id=sid, sdp=OFFER + "a=" + "x" * service.MAX_SDP_CHARS
            )
            assert (await resident.until(_error("video_offer")))["code"] == "sdp_too_large"
            await resident.send(
                type="video_offer", session_id=sid, sdp=OFFER + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
            )
            assert (await resident.until(_error("video_offer")))["code"] == "invalid_sdp"
            await resident.send(type="video_ice", session_id=sid, candidate={**CANDIDATE, "extra": "x"})
            assert (await resident.until(_error("video_ice")))["code"] == "invalid_candidate"
            await resident.send(type="video_offer", session_id="seven", sdp=OFFER)
            assert (await resident.until(_error("video_offer")))["code"] == "invalid_frame"
            await resident.send(
                type="video_answer", session_id=sid, sdp=ANSWER
            )  # the agent's frame, not theirs
            assert (await resident.until(lambda f: f.get("type") == "error"))["code"] == "unknown_frame"

            # The offer and the answer reach the other side only; candidates both ways.
            await resident.send(type="video_offer", session_id=sid, sdp=OFFER)
            assert (await agent.until(_video("offer")))["sdp"] == OFFER
            await resident.send(type="video_ice", session_id=sid, candidate=CANDIDATE)
            assert (await agent.until(_video("ice")))["candidate"] == CANDIDATE
            await agent.send(type="video_answer", session_id=sid, sdp=ANSWER)
            assert (await resident.until(_video("answer")))["sdp"] == ANSWER
            await agent.send(type="video_ice", session_id=sid, candidate=CANDIDATE)
            assert (await resident.until(_video("ice")))["candidate"] == CANDIDATE
            assert not [f for f in await colleague.quiet(0.2) if f.get("type") == "video"]
            assert not [f for f in await stranger.quiet(0.05) if f.get("type") == "video"]

            # The colleague cannot signal or end it; the agent ends it and both sides hear.
            await colleague.send(type="video_end", session_id=sid)
            assert (await colleague.until(_error("video_end")))["code"] == "video_not_found"
            await colleague.send(type="video_answer", session_id=sid, sdp=ANSWER)
            assert (await colleague.until(_error("video_answer")))["code"] == "video_not_found"
            await agent.send(type="video_end", session_id=sid)
            assert (await resident.until(_video("ended")))["ended_by"] == "agent"
            assert (await agent.until(_video("ended")))["reason"] == "hangup"
            await resident.send(type="video_ice", session_id=sid, candidate=CANDIDATE)
            assert (await resident.until(_error("video_ice")))["code"] == "video_not_active"

    session.expire_all()
    row = await session.get(VideoSession, sid)
    assert (row.state, row.agent_id, row.conversation_id, row.ended_by) == (
        "ended",
        s["agent_id"],
        cid,
        "agent",
    )
    assert row.consent_video and row.consent_recording and row.recording_requested
    assert row.started_at is not None and row.ended_at >= row.started_at and row.snapshot_count == 0
    audits = list(
        await session.scalars(
            select(AuditEntry).where(AuditEntry.entity_type == "video_session").order_by(AuditEntry.id)
        )
    )
    assert [a.action for a in audits] == ["video.invite", "video.accept", "video.end"]
    assert [a.actor_id for a in audits] == [s["agent_id"], None, s["agent_id"]]
    trail = json.dumps([a.changes for a in audits])
    for secret in (
        "127.0.0.1",
        "candidate",
        "v=0",
        s["visitor"]["visitor_id"],
    ):  # no SDP, addresses or visitor
        assert secret not in trail


async def test_declining_and_a_new_invitation(app, session, factory) -> None:
    async with served(app) as host:
        s = await _scene(factory, session, host)
        cid = s["conversation_id"]
        async with (
            ChatSocket.connect(host) as resident,
            ChatSocket.connect(host, "/ws/agent", additional_headers=s["agent_headers"]) as agent,
        ):
            await resident.send(type="hello", token=s["visitor"]["token"], conversation_id=cid)
            await resident.until("welcome")
            await agent.until("hello")
            await agent.send(type="video_invite", conversation_id=cid)
            first = (await agent.until(_video("invited")))["session_id"]
            await agent.send(type="video_invite", conversation_id=cid)  # a reloaded console asks again
            second = (await agent.until(_video("invited")))["session_id"]
            assert (await resident.until(_video("ended")))["session_id"] == first  # the old prompt goes
            await resident.send(type="video_decline", session_id=second)
            assert (await agent.until(_video("declined")))["session_id"] == second
    session.expire_all()
    rows = {
        v.id: v
        for v in await session.scalars(select(VideoSession).where(VideoSession.conversation_id == cid))
    }
    assert (rows[first].state, rows[first].ended_by, rows[first].end_reason) == (
        "ended",
        "system",
        "superseded",
    )
    assert (rows[second].state, rows[second].consent_video, rows[second].started_at) == (
        "declined",
        False,
        None,
    )


async def test_video_frames_are_rate_limited_per_visitor(app, session, factory, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_RATE_LIMITS", '{"video.visitor": "3/60"}')
    reset_settings_cache()
    async with served(app) as host:
        s = await _scene(factory, session, host)
        async with ChatSocket.connect(host) as resident:
            await resident.send(
                type="hello", token=s["visitor"]["token"], conversation_id=s["conversation_id"]
            )
            await resident.until("welcome")
            codes = []
            for _ in range(4):
                await resident.send(type="video_end", session_id=999)
                codes.append((await resident.until(_error("video_end")))["code"])
    assert codes == ["video_not_found"] * 3 + ["rate_limited"]


async def _active(session: Any, agent: Any, conversation_id: int, *, recording: bool) -> VideoSession:
    conversation = await service.access_conversation_to_invite(session, agent, conversation_id)
    video = await service.do_invite(session, agent, conversation, recording=recording)
    await service.do_answer_invite(session, video, accept=True, recording=recording)
    await commit(session)
    return video


async def test_snapshots_and_recordings_become_conversation_attachments(client, session, factory) -> None:
    s = await _scene(factory, session, None)
    cid = s["conversation_id"]
    plain = await _active(session, s["agent"], cid, recording=False)
    url = f"/api/v1/video/{plain.id}/snapshots"
    files = {"file": ("snap.png", PNG, "image/png")}
    assert (await client.post(url, files=files, headers=s["colleague_headers"])).status_code == 404
    response = await client.post(url, files=files, headers=s["agent_headers"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message"]["type"] == "image" and body["session"]["snapshot_count"] == 1
    token = body["message"]["payload"]["file_token"]
    got = await client.get(f"/api/v1/files/{token}", headers=s["agent_headers"])
    assert got.status_code == 200 and got.content == PNG
    bad = await client.post(
        url, files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}, headers=s["agent_headers"]
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "file_type"
    refused = await client.post(
        f"/api/v1/video/{plain.id}/recordings",
        files={"file": ("r.webm", WEBM, "video/webm")},
        headers=s["agent_headers"],
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "recording_not_allowed"
    too_big = await client.post(
        f"/api/v1/video/{plain.id}/snapshots",
        headers={
            **s["agent_headers"],
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(6 * 1024 * 1024),
        },
        content=b"",
    )
    assert too_big.status_code == 413

    recorded = await _active(session, s["agent"], cid, recording=True)
    response = await client.post(
        f"/api/v1/video/{recorded.id}/recordings",
        files={"file": ("r.webm", WEBM, "video/webm")},
        headers=s["agent_headers"],
    )
    assert response.status_code == 201, response.text
    assert response.json()["message"]["type"] == "file" and response.json()["session"]["recording_count"] == 1
    listed = await client.get(f"/api/v1/conversations/{cid}/video-sessions", headers=s["agent_headers"])
    assert [v["id"] for v in listed.json()] == [recorded.id, plain.id]

    attachments = list(await session.scalars(select(Attachment).where(Attachment.conversation_id == cid)))
    assert sorted(a.mime for a in attachments) == ["image/png", "video/webm"]
    messages = list(
        await session.scalars(
            select(Message).where(Message.conversation_id == cid, Message.content_type.in_(("image", "file")))
        )
    )
    assert {m.payload["file_token"] for m in messages} == {a.token for a in attachments}
    actions = list(
        await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "video_session"))
    )
    assert actions.count("video.snapshot") == 1 and actions.count("video.recording") == 1


def test_ice_servers_hand_out_expiring_turn_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    assert service.ice_servers("v1", get_settings()) == []  # nothing outside is contacted by default
    monkeypatch.setenv("GASDESK_VIDEO_STUN_URLS", "stun:turn.example.com:3478")
    monkeypatch.setenv("GASDESK_VIDEO_TURN_URLS", "turn:turn.example.com:3478,turns:turn.example.com:5349")
    monkeypatch.setenv("GASDESK_VIDEO_TURN_SECRET", "s3cret")
    monkeypatch.setenv("GASDESK_VIDEO_TURN_TTL_S", "600")
    reset_settings_cache()
    stun, turn = service.ice_servers("v7", get_settings(), now=1_000_000)
    assert stun == {"urls": ["stun:turn.example.com:3478"]}
    assert turn["urls"] == ["turn:turn.example.com:3478", "turns:turn.example.com:5349"]
    assert turn["username"] == "1000600:v7"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1000600:v7", hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected
    assert "s3cret" not in repr(get_settings())  # a secret, never printed


async def test_closing_transferring_or_forgetting_ends_the_video(session, factory) -> None:
    from gasdesk import clock
    from gasdesk.conversations.service import do_close, do_transfer

    s = await _scene(factory, session, None)
    closed_id = (await _active(session, s["agent"], s["conversation_id"], recording=False)).id
    conversation = await session.get(Conversation, s["conversation_id"])
    await do_close(
        session, conversation, by="agent", user=s["agent"]
    )  # the worker's on_conversation_closed hook
    await commit(session)
    row = await session.get(VideoSession, closed_id)
    assert (row.state, row.ended_by, row.end_reason) == ("ended", "system", "conversation_closed")

    # A transfer, an unanswered invitation and a video left open too long: the periodic scan ends them.
    agent = s["agent"]  # the only agent online: both conversations are assigned to them
    first = await queued_conversation(session, visitor_id="v_video2")
    second = await queued_conversation(session, visitor_id="v_video3")
    other = await desk_agent(factory, username="video_agent3")
    transferred = (await _active(session, agent, first.id, recording=False)).id
    unanswered = (await service.do_invite(session, agent, await session.get(Conversation, second.id))).id
    await commit(session)
    await do_transfer(session, agent, await session.get(Conversation, first.id), to_agent_id=other.id)
    await commit(session)
    assert await service.end_stale_sessions(session) == {"ended": 1}
    await commit(session)
    later = clock.utcnow() + service.INVITE_TIMEOUT + service.INVITE_TIMEOUT
    assert await service.end_stale_sessions(session, now=later) == {"ended": 1}
    await commit(session)
    session.expire_all()
    reasons = {v.id: (v.state, v.ended_by, v.end_reason) for v in await session.scalars(select(VideoSession))}
    assert reasons[transferred] == ("ended", "system", "transferred")
    assert reasons[unanswered] == ("ended", "system", "no_answer")
