"""The browser softphone's server side without a browser: aiortc plays the browser (an RTCPeerConnection with a
tone as its microphone) against ``WebRtcBridgeProvider``'s leg, in-process; and the signalling routes'
authorization (only the agent the call is offered to; anyone else 404, field crews 403)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from aiortc import RTCSessionDescription
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.db import commit, transaction
from gasdesk.errors import InvalidInput
from gasdesk.telephony.media import BridgeTarget, CallInfo
from gasdesk.telephony.models import Call, CallEvent
from gasdesk.telephony.service import do_start_call
from gasdesk.telephony.sip.uac import rms
from gasdesk.telephony.softphone import AgentRefused, SoftphoneLeg, WebRtcBridgeProvider
from tests.factories import desk_agent, login, staff_user
from tests.telephony.softphone_kit import FakeBrowser


def tone_frame(n: int, hz: float = 1000.0) -> bytes:
    t = (np.arange(160) + n * 160) / 8000
    return (6000 * np.sin(2 * math.pi * hz * t)).astype("<i2").tobytes()


@pytest.fixture
async def offered(session, factory, events) -> AsyncIterator[tuple[WebRtcBridgeProvider, SoftphoneLeg, Any, Any]]:
    """A call from a customer's number, offered by the provider to an online agent."""
    customer = await factory.customer(phones=["13900000081"])
    agent = await desk_agent(factory)
    info = CallInfo(call_ref="rtc-1", caller="13900000081", callee="96777", backend="sip")
    call = await do_start_call(session, info, script_version=None)
    await commit(session)
    provider = WebRtcBridgeProvider()
    provider.install()
    leg = await provider(BridgeTarget(agent.id, f"agent:{agent.id}"), info)
    try:
        yield provider, leg, agent, (call, customer)
    finally:
        await provider.close()


async def test_offer_reaches_only_that_agent_with_the_number_masked(offered, events) -> None:
    _, leg, agent, (call, customer) = offered
    offers = [e.payload for e in events if e.type == "call.offered"]
    assert offers == [{"call_id": call.id, "conversation_id": call.conversation_id, "customer_id": customer.id,
                       "agent_id": agent.id, "caller_masked": "139****0081"}]
    assert leg.agent_id == agent.id and not leg.answered


async def test_audio_flows_both_ways_and_the_agent_hangs_up(offered) -> None:
    provider, leg, _, (call, _) = offered
    browser = FakeBrowser()
    try:
        answer = await asyncio.wait_for(leg.answer(await browser.offer()), 10)
        assert answer.startswith("v=0") and "a=candidate" in answer  # non-trickle: candidates in the answer
        await browser.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(leg.wait_answered(), 10)

        got = bytearray()
        for n in range(60):  # 1.2 s of the caller's 1 kHz tone, paced like the RTP clock
            leg.feed_caller(tone_frame(n))
            frame = leg.agent_frame()
            if frame is not None:
                assert len(frame) == 320
                got += frame
            await asyncio.sleep(0.02)
        assert leg.frames_from_agent > 10 and rms(bytes(got)) > 1000, "the agent's tone reached the caller side"
        assert leg.caller_track.sent > 20
        assert rms(bytes(browser.heard)) > 1000, "the caller's tone reached the browser"

        await leg.hangup()
        assert await asyncio.wait_for(leg.wait_ended(), 2) == "agent"
        assert leg.pc is None and call.id not in provider.legs
        await provider.drain()
        async with transaction() as s:
            ended = await s.scalar(select(CallEvent).where(CallEvent.call_id == call.id,
                                                           CallEvent.kind == "agent_leg_ended"))
        assert ended is not None and ended.data["reason"] == "hangup" and ended.data["agent_frames"] > 10
    finally:
        await browser.close()


async def test_reject_ends_the_ringing_and_withdraws_the_offer(offered, events) -> None:
    provider, leg, agent, (call, _) = offered
    await leg.reject()
    with pytest.raises(AgentRefused):
        await leg.wait_answered()
    assert await leg.wait_ended() == "agent"
    await provider.drain()
    assert [e.payload for e in events if e.type == "call.offer_withdrawn"] == [
        {"call_id": call.id, "agent_id": agent.id, "reason": "rejected"}]


async def test_bad_sdp_is_refused(offered) -> None:
    _, leg, _, _ = offered
    with pytest.raises(InvalidInput):
        await leg.answer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nnonsense")
    assert leg.pc is None


async def test_only_the_offered_agent_may_use_the_call(offered, client, session, events) -> None:
    _, leg, agent, (call, _) = offered
    base = f"/api/v1/calls/{call.id}/softphone"
    colleague = await staff_user(session, "agent")
    await login(client, colleague.username)
    for action, body in (("answer", {"sdp": "v=0\r\nm=audio 9 x"}), ("reject", None), ("hangup", None),
                         ("hold", {"on": True}), ("transfer", {"to_group_id": 1})):
        response = await client.post(f"{base}/{action}", json=body)
        assert response.status_code == 404, (action, response.text)
    client.cookies.clear()
    crew = await staff_user(session, "field_crew")
    await login(client, crew.username)
    assert (await client.post(f"{base}/reject")).status_code == 403
    client.cookies.clear()
    assert not leg._closed

    await login(client, agent.username)
    response = await client.post(f"{base}/reject")
    assert response.status_code == 200 and response.json() == {"call_id": call.id, "state": "rejected"}
    assert (await client.post(f"{base}/reject")).status_code == 404  # gone once refused
    audit = await session.scalar(select(AuditEntry).where(AuditEntry.action == "call.softphone_reject"))
    assert audit is not None and audit.actor_id == agent.id


async def test_hold_is_counted_and_audited(offered, client, session) -> None:
    _, leg, agent, (call, _) = offered
    held: list[bool] = []

    class Media:  # the call's media as the SIP session offers it: only hold matters here
        info = CallInfo(call_ref="rtc-1", caller="", callee="", backend="sip")

        async def hold(self, on: bool) -> None:
            held.append(on)

    leg.media = Media()  # type: ignore[assignment]
    browser = FakeBrowser()
    try:
        await login(client, agent.username)
        response = await client.post(f"/api/v1/calls/{call.id}/softphone/answer", json={"sdp": await browser.offer()})
        assert response.status_code == 200, response.text
        await browser.pc.setRemoteDescription(RTCSessionDescription(sdp=response.json()["sdp"], type="answer"))
        await asyncio.wait_for(leg.wait_answered(), 10)
        for on in (True, False):
            response = await client.post(f"/api/v1/calls/{call.id}/softphone/hold", json={"on": on})
            assert response.status_code == 200, response.text
        assert held == [True, False]
        kinds = list(await session.scalars(select(CallEvent.kind).where(CallEvent.call_id == call.id)))
        assert kinds.count("held") == 1 and kinds.count("unheld") == 1
        actions = set(await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == str(call.id))))
        assert {"call.softphone_answer", "call.softphone_hold", "call.softphone_resume"} <= actions
    finally:
        with contextlib.suppress(Exception):
            await browser.close()
    assert (await session.get(Call, call.id)) is not None
