"""The SIP user agent server over real UDP on loopback: call flow, INFO and RFC 4733 DTMF, hold re-INVITE,
200 retransmission, CANCEL, codec choice, capacity with the overflow prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gasdesk.telephony.media import CallHungUp, Prompt
from gasdesk.telephony.sip.session import SipMediaSession
from gasdesk.telephony.sip.uac import SipCaller, tone_frames
from tests.telephony.sip.conftest import dominant_hz, idle_handler, write_tone

pytestmark = pytest.mark.no_database


async def test_full_call_with_info_dtmf_rfc4733_hold_and_caller_bye(make_endpoint) -> None:
    seen: dict[str, Any] = {}
    got_digits = asyncio.Event()

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        seen["digits"] = await session.collect_digits(None, max_digits=3, timeout_s=3)
        got_digits.set()
        seen["later"] = await session.collect_digits(None, timeout_s=3)
        seen["by"] = await session.wait_hangup()

    ep = await make_endpoint(handler)
    caller = SipCaller(("127.0.0.1", ep.port), source=tone_frames(440))
    await caller.open()
    try:
        resp = await caller.call()
        assert resp.status == 200
        assert b"a=rtpmap:101 telephone-event/8000" in resp.body
        info = await caller.in_dialog("INFO", body="Signal=5\r\nDuration=160\r\n",
                                      content_type="application/dtmf-relay")
        assert info.status == 200
        assert (await caller.in_dialog("INFO", body="#", content_type="application/dtmf")).status == 200
        bad = await caller.in_dialog("INFO", body="hello", content_type="text/plain")
        assert bad.status == 415
        caller.send_rfc4733("7")  # three progress packets and three identical end packets: one digit
        await asyncio.wait_for(got_digits.wait(), 3)
        assert seen["digits"] == "5"  # '#' terminated the collection; RFC 4733 '7' is buffered for later
        hold = await caller.in_dialog("INVITE", body=caller.sdp("sendonly"))
        assert hold.status == 200 and b"a=recvonly" in hold.body
        sent_before = ep.calls[caller.call_id].stream.packets_sent
        await asyncio.sleep(0.2)
        assert ep.calls[caller.call_id].stream.packets_sent == sent_before  # on hold we send nothing
        resume = await caller.in_dialog("INVITE", body=caller.sdp("sendrecv"))
        assert b"a=sendrecv" in resume.body
        await asyncio.sleep(0.1)
        assert ep.calls[caller.call_id].stream.packets_sent > sent_before
        assert (await caller.hangup()).status == 200
        await asyncio.sleep(0.1)
        assert ep.active_calls == 0
        assert seen["later"] == "7" and seen["by"] == "caller"
    finally:
        caller.close()


async def test_buffered_rfc4733_digit_reaches_collect(make_endpoint) -> None:
    seen: dict[str, str] = {}
    done = asyncio.Event()

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        seen["d"] = await session.collect_digits(None, max_digits=2, timeout_s=2)
        done.set()
        await session.hangup()

    ep = await make_endpoint(handler)
    caller = SipCaller(("127.0.0.1", ep.port))
    await caller.open()
    try:
        assert (await caller.call()).status == 200
        caller.send_rfc4733("7")
        await asyncio.sleep(0.05)
        caller.send_rfc4733("*")
        await asyncio.wait_for(done.wait(), 3)
        assert seen["d"] == "7*"
        await asyncio.wait_for(caller.bye_received.wait(), 2)
    finally:
        caller.close()


async def test_200_is_retransmitted_until_ack_and_the_call_ends_without_one(make_endpoint) -> None:
    ended: dict[str, str] = {}

    async def handler(session: SipMediaSession) -> None:
        await session.answer()
        ended["by"] = await session.wait_hangup()

    ep = await make_endpoint(handler, ack_timeout_s=1.8)
    caller = SipCaller(("127.0.0.1", ep.port))
    await caller.open()
    try:
        first = await caller.call(ack=False)
        assert first.status == 200
        again = await caller.response(1.2, final=True)  # T1 = 0.5 s, then 1 s
        assert again.status == 200 and again.to_tag == first.to_tag
        await asyncio.wait_for(caller.bye_received.wait(), 3)  # no ACK within the timeout: BYE
        await asyncio.sleep(0.05)
        assert ended["by"] == "system"
    finally:
        caller.close()


async def test_cancel_before_answer_gets_487(make_endpoint) -> None:
    outcome: dict[str, str] = {}

    async def slow_handler(session: SipMediaSession) -> None:
        try:
            await asyncio.sleep(0.5)  # ringing: the controller has not answered yet
            await session.answer()
            outcome["r"] = "answered"
        except CallHungUp as exc:
            outcome["r"] = f"hung up by {exc.by}"

    ep = await make_endpoint(slow_handler)
    caller = SipCaller(("127.0.0.1", ep.port))
    await caller.open()
    try:
        invite = caller.request("INVITE", body=caller.sdp())
        caller._invite = invite
        caller._send(invite.serialize())
        assert (await caller.response()).status == 100
        assert (await caller.response()).status == 180
        caller.cancel()
        statuses = {(await caller.response()).status, (await caller.response()).status}
        assert statuses == {200, 487}
        await asyncio.sleep(0.6)
        assert outcome["r"] == "hung up by caller"
        assert ep.active_calls == 0
    finally:
        caller.close()


async def test_pcma_first_in_offer_is_chosen(make_endpoint) -> None:
    ep = await make_endpoint(idle_handler)
    caller = SipCaller(("127.0.0.1", ep.port), codecs=("PCMA", "PCMU"))
    await caller.open()
    try:
        resp = await caller.call()
        assert resp.status == 200 and b"m=audio" in resp.body and b"RTP/AVP 8 101" in resp.body
        await caller.hangup()
    finally:
        caller.close()


async def test_capacity_overflow_prompt_then_busy(make_endpoint, tmp_path: Path) -> None:
    overflow = Prompt(path=write_tone(tmp_path / "overflow.wav", freq=600.0, seconds=0.6), text="线路繁忙")
    ep = await make_endpoint(idle_handler, max_calls=1, overflow_prompt=overflow, max_overflow_calls=1)
    callers = [SipCaller(("127.0.0.1", ep.port)) for _ in range(3)]
    for c in callers:
        await c.open()
    try:
        assert (await callers[0].call()).status == 200  # takes the only slot
        assert (await callers[1].call()).status == 200  # answered for the overflow prompt
        assert (await callers[2].call()).status == 486  # overflow slot taken too: busy
        await asyncio.wait_for(callers[1].bye_received.wait(), 3)  # hung up after the prompt
        heard = bytes(callers[1].received_audio)
        assert abs(dominant_hz(heard) - 600.0) < 20
        assert ep.counters["overflow"] == 1 and ep.counters["busy"] == 1
        await callers[0].hangup()
    finally:
        for c in callers:
            c.close()
