"""Video assist (视频协助) in two real browsers: the agent invites the resident of a web chat from the console, the
resident consents in the widget, the fake rear camera (Chromium's --use-fake-device-for-media-stream) streams to
the agent over WebRTC (signalling on the two chat sockets, host candidates on this machine, no STUN/TURN), the
agent's RTCPeerConnection decodes frames, a snapshot becomes a picture in the conversation, a short recording (the
resident ticked its separate consent) a WebM file, and the resident stops the video."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from gasdesk.conversations.attachments import Attachment
from gasdesk.db import commit
from gasdesk.routing.service import do_set_presence, do_set_skills
from gasdesk.video.models import VideoSession
from tests.browser.conftest import MOBILE, login_as, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

STATS_JS = """async () => {
  const pc = window.gasdeskVideo.state.pc;
  if (!pc) return null;
  const out = {decoded: 0, received: 0, state: pc.connectionState};
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") { out.decoded = r.framesDecoded || 0; out.received = r.framesReceived || 0; }
  });
  return out;
}"""


async def _frames(page: Any, *, at_least: int, timeout: float = 8.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        stats = await page.evaluate(STATS_JS)
        if stats and stats["decoded"] >= at_least:
            return stats
        if loop.time() > deadline:
            raise AssertionError(f"the agent's connection decoded too few video frames: {stats}")
        await asyncio.sleep(0.2)


async def test_agent_sees_the_residents_camera_and_takes_a_snapshot(
    live_server, browser, factory, session
) -> None:
    agent = await factory.user("agent", username="agentvideo")
    agent.display_name = "王敏"
    await do_set_skills(session, agent, [1, 2, 3, 4], max_concurrent=3)
    await do_set_presence(session, agent, "online")
    await commit(session)
    agent_id = agent.id

    resident = await (await browser.new_context(**MOBILE)).new_page()
    console = await (await browser.new_context(viewport={"width": 1440, "height": 900})).new_page()
    errors: list[str] = []
    for page in (resident, console):
        page.set_default_timeout(8000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))

    # The resident asks for a person; the online agent gets the conversation and accepts it.
    await resident.goto(live_server + "/chat")
    await resident.wait_for_selector("li:has-text('智能客服')")
    await resident.click("#btn-handoff")
    await resident.wait_for_function("() => window.gasdeskChat.state.convState === 'assigned'")
    conversation_id = await resident.evaluate("() => window.gasdeskChat.state.conversationId")
    await login_as(console, live_server, "agentvideo")
    await console.goto(live_server + "/agent")
    await console.wait_for_selector("#conn-state.ok")
    await console.click(f"#mine-list .conv-item[data-id='{conversation_id}']")
    await console.click("#btn-accept")
    await console.wait_for_selector("#composer-input:enabled")

    # Invitation → consent prompt (in Chinese) → accepted: the camera starts only now.
    await console.click("#btn-video")
    await console.check("#video-invite-recording")  # a recording too: the resident's separate consent
    await console.click("#video-invite-send")
    await console.wait_for_selector("#video-status:has-text('等待居民同意')")
    prompt = resident.locator("#video-consent")
    await prompt.wait_for()
    assert "后置摄像头" in await prompt.inner_text() and "不传输声音" in await prompt.inner_text()
    assert await resident.locator("#video-consent-recording").is_checked() is False  # opt-in, never preset
    assert await resident.evaluate("() => window.gasdeskVideoResident.state.stream") is None
    await screenshot(resident, "video-resident-consent")
    await resident.check("#video-consent-recording")
    await resident.click("#video-accept")
    await resident.wait_for_selector("#video-live")

    stats = await _frames(console, at_least=10)
    assert stats["state"] == "connected"
    offer = await resident.evaluate("() => window.gasdeskVideoResident.state.pc.localDescription.sdp")
    assert "m=video" in offer and "m=audio" not in offer  # picture only, no microphone
    await console.wait_for_function("() => document.getElementById('video-remote').videoWidth > 0")
    await console.wait_for_selector("#video-snapshot:enabled")
    await screenshot(console, "video-agent-live")

    # A snapshot: a JPEG drawn from the video, saved as a picture message of the conversation.
    await console.click("#video-snapshot")
    picture = console.locator("#msgs img.attach")
    await picture.wait_for()
    src = await picture.get_attribute("src")
    response = await console.request.get(live_server + str(src))
    assert response.status == 200 and response.headers["content-type"] == "image/jpeg"
    assert (await response.body())[:3] == b"\xff\xd8\xff"
    await resident.wait_for_selector("#list img")  # the resident sees what was kept, too

    # A short recording (MediaRecorder, WebM) the resident agreed to: a file message once it stops.
    await console.click("#video-record:visible")
    await asyncio.sleep(1.5)
    await console.click("#video-record:has-text('停止录制')")
    await console.locator("#msgs a.file-link:has-text('.webm')").wait_for()

    # The resident stops: the camera is released and the agent's panel closes.
    await resident.click("#video-stop")
    await resident.wait_for_selector("#video-live", state="detached")
    assert await resident.evaluate("() => window.gasdeskVideoResident.state.stream") is None
    await console.wait_for_selector("#video-panel", state="hidden")
    assert not errors, errors
    print(f"agent decoded {stats['decoded']} frames ({stats['received']} received)")

    session.expire_all()
    video = await session.scalar(select(VideoSession).where(VideoSession.conversation_id == conversation_id))
    assert (video.state, video.ended_by, video.snapshot_count, video.recording_count) == (
        "ended",
        "resident",
        1,
        1,
    )
    assert video.consent_video and video.consent_recording and video.recording_requested
    kept = {
        a.mime: a
        for a in await session.scalars(
            select(Attachment).where(Attachment.conversation_id == conversation_id)
        )
    }
    assert set(kept) == {"image/jpeg", "video/webm"} and {a.owner_user_id for a in kept.values()} == {
        agent_id
    }
    assert kept["video/webm"].size > 1000
