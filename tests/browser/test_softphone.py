"""The agent's browser softphone, end to end, in the embedded one-process mode (GASDESK_HOTLINE_IN_APP with
GASDESK_SIP_ENABLED): a real SIP client (Debian's baresip) calls the live server from a customer's number on
file and presses 0; the agent sees the screen pop in /agent, answers in Chromium (fake microphone), audio flows
both ways (RTP from baresip to the server, WebRTC to and from the browser, RTP back to baresip), the agent
hangs up, and the call's recording plays from the customer's 360 page."""

from __future__ import annotations

import asyncio
import socket
import time
import wave
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gasdesk.db import commit
from gasdesk.routing.service import do_set_skills
from gasdesk.telephony.models import Call, CallEvent
from gasdesk.telephony.sip.uac import rms
from tests.browser.conftest import screenshot
from tests.factories import TEST_PASSWORD
from tests.servers import LiveServer, free_port
from tests.telephony.sip.conftest import BARESIP_MODULES, Baresip, free_rtp_range

pytestmark = pytest.mark.asyncio(loop_scope="session")

STATS_JS = """async () => {
  const call = window.gasdeskSoftphone.state.call;
  if (!call) return null;
  const out = {inbound: 0, outbound: 0, offer: call.pc.localDescription.sdp};
  (await call.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") out.inbound = r.packetsReceived;
    if (r.type === "outbound-rtp" && r.kind === "audio") out.outbound = r.packetsSent;
  });
  return out;
}"""


async def _stats(page: Any, *, at_least: int, timeout: float = 6.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        stats = await page.evaluate(STATS_JS)
        if stats and stats["inbound"] >= at_least and stats["outbound"] >= at_least:
            return stats
        if loop.time() > deadline:
            raise AssertionError(f"too few packets on the browser's connection: {stats and {**stats, 'offer': ''}}")
        await asyncio.sleep(0.2)


async def test_agent_answers_a_hotline_call_in_the_browser(browser, factory, session, database_url, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    if not BARESIP_MODULES.exists():
        pytest.fail("baresip is not installed (scripts/install-test-deps.sh installs it)")
    customer = await factory.customer(name="李秀兰", phones=["13800005555"], account_no="2100055555")
    agent = await factory.user("agent", username="agentphone")
    await do_set_skills(session, agent, [1, 2, 3, 4], max_concurrent=3)
    await commit(session)

    sip_port = free_port(socket.SOCK_DGRAM)
    low, high = free_rtp_range()
    server = LiveServer({"GASDESK_DATABASE_URL": database_url, "GASDESK_ENV": "test",
                         "GASDESK_UPLOAD_DIR": str(tmp_path / "uploads"), "GASDESK_SQLITE_POOL_SIZE": "1",
                         "GASDESK_HOTLINE_IN_APP": "true", "GASDESK_SIP_ENABLED": "true",
                         "GASDESK_SIP_PORT": str(sip_port), "GASDESK_RTP_PORT_MIN": str(low),
                         "GASDESK_RTP_PORT_MAX": str(high), "GASDESK_TELEPHONY_QUEUE_POLL_S": "0.2"},
                        tmp_path / "server.log")
    base = server.base
    caller = Baresip(tmp_path / "baresip", user="13800005555")
    caller.home.mkdir()
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(8000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto(base + "/login")
        await page.fill("input[name=username]", agent.username)
        await page.fill("input[name=password]", TEST_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state("networkidle")
        await page.goto(base + "/agent")
        await page.wait_for_selector("#conn-state.ok")
        await page.click("#presence button:has-text('在线')")
        await page.wait_for_selector("#presence button.active[data-presence=online]")

        await caller.start()
        assert (await caller.command("dial", f"sip:96777@127.0.0.1:{sip_port}"))["ok"]
        await caller.wait_event("CALL_ESTABLISHED", 5)
        await asyncio.sleep(0.8)  # the welcome menu is playing
        assert (await caller.command("sndcode", "0"))["ok"]  # 人工服务

        # The screen pop (the customer on file: name, 户号) and the call ringing for this agent.
        pop = page.locator(".call-pop").first
        await pop.locator(".cust-name", has_text="李秀兰").wait_for(timeout=8000)
        assert "2100055555" in await pop.inner_text()
        await page.wait_for_selector("#call-answer", timeout=8000)
        bar = await page.inner_text("#call-bar")
        assert "138****5555" in bar and "13800005555" not in bar
        await page.click("#call-answer")
        await page.wait_for_selector("#call-hangup", timeout=5000)
        assert await page.inner_text("#call-bar") and "通话中" in await page.inner_text("#call-bar")

        stats = await _stats(page, at_least=25)  # half a second of audio each way
        assert ".local" not in stats["offer"], "host candidates, not mDNS names (the page has the microphone)"
        await asyncio.sleep(0.6)  # more of the browser's tone towards the caller
        await screenshot(page, "softphone-in-call")
        await page.click("#call-hangup")
        await caller.wait_event("CALL_CLOSED", 5)
        await page.wait_for_selector("#call-bar", state="hidden", timeout=5000)

        # The call with its recording in the customer's 360, playable by the agent. The recording is stored once
        # the call's media has closed, a moment after the hang-up (longer on a busy machine), and the page is
        # not live: open it again until the recording is listed, as an agent would.
        audio = page.locator("audio[src^='/api/v1/calls/recordings/']")
        deadline = time.monotonic() + 20
        while True:
            await page.goto(f"{base}/customers/{customer.id}")
            if await audio.count() or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await audio.first.wait_for(state="attached", timeout=1000)
        src = await audio.first.get_attribute("src")
        response = await page.request.get(base + str(src))
        assert response.status == 200 and response.headers["content-type"].startswith("audio/wav")
        body = await response.body()
        assert body[:4] == b"RIFF"
        with wave.open(BytesIO(body)) as w:
            assert w.getnchannels() == 2 and w.getframerate() == 8000
            frames = w.readframes(w.getnframes())
        left = b"".join(frames[i:i + 2] for i in range(0, len(frames), 4))  # the caller (baresip's 440 Hz)
        assert rms(left) > 300
    finally:
        await caller.stop()
        server.stop()
    assert not errors, errors

    # Server side: frames of the caller's RTP passed to the browser, and frames made from the browser's audio.
    ended = await session.scalar(select(CallEvent).where(CallEvent.kind == "agent_leg_ended"))
    assert ended is not None and ended.data["reason"] == "hangup"
    caller_in, to_browser, agent_out = (ended.data[k] for k in ("caller_frames", "sent_to_browser", "agent_frames"))
    assert caller_in > 40 and to_browser > 40 and agent_out > 40, ended.data
    call = await session.scalar(select(Call).where(Call.id == ended.call_id))
    assert call is not None and call.hangup_by == "agent" and call.agent_id == agent.id
    # baresip decoded the browser's fake microphone (a beeping tone) in the bridged part of the call.
    heard = caller.heard()
    tail = heard[-8000 * 2:]  # the last second: the agent talking
    assert rms(tail) > 100, f"rms of what the caller heard from the agent: {rms(tail)}"
    print(f"browser packets in/out: {stats['inbound']}/{stats['outbound']}; server frames caller→browser "
          f"{caller_in}/{to_browser}, browser→caller {agent_out}; caller heard rms {rms(tail):.0f}")
