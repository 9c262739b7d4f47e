"""Calls placed by the embedded endpoint: a real baresip on loopback is the gateway/phone that answers, hears our
audio and presses 1; a small raw-UDP gateway in the test answers 486/603, rings until our CANCEL, or stays
silent. Plus the limits in front of every back-end (invalid numbers, lines, the per-number rate)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gasdesk.errors import InvalidInput
from gasdesk.telephony.media import CallHungUp, Prompt
from gasdesk.telephony.originate import OriginateResult, OutboundCalls, Outcome, check_number
from gasdesk.telephony.sip import message as sipmsg
from gasdesk.telephony.sip.session import SipMediaSession
from gasdesk.telephony.sip.ua import SipDialer, SipEndpoint
from gasdesk.telephony.sip.uac import rms
from tests.telephony.sip.conftest import Baresip, dominant_hz, idle_handler, write_tone

pytestmark = pytest.mark.no_database
MOBILE = "13800138001"


class Gateway(asyncio.DatagramProtocol):
    """A scripted SIP gateway: ``mode`` "busy" (100, 486), "reject" (603), "ring" (100, 180, then 487 after our
    CANCEL) or "silent" (never answers). Keeps every request it got."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests: list[sipmsg.SipMessage] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        msg = sipmsg.parse(data)
        if not msg.is_request:
            return
        self.requests.append(msg)
        if self.mode == "silent" or msg.method == "ACK":
            return

        def send(resp: sipmsg.SipMessage) -> None:
            self.transport.sendto(resp.serialize(), addr)

        if msg.method == "INVITE":
            self.invite = msg
            send(sipmsg.make_response(msg, 100))
            if self.mode == "busy":
                send(sipmsg.make_response(msg, 486, to_tag="gw1"))
            elif self.mode == "reject":
                send(sipmsg.make_response(msg, 603, to_tag="gw1"))
            else:
                send(sipmsg.make_response(msg, 180, to_tag="gw1"))
        elif msg.method == "CANCEL":
            send(sipmsg.make_response(msg, 200, to_tag="gw1"))
            send(sipmsg.make_response(self.invite, 487, to_tag="gw1"))

    @property
    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


async def _gateway(mode: str) -> tuple[Gateway, int]:
    gw = Gateway(mode)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: gw, local_addr=("127.0.0.1", 0))
    return gw, int(transport.get_extra_info("sockname")[1])


@pytest.fixture
async def callee(tmp_path: Path) -> Any:
    """baresip as the phone behind the gateway: its account is the mobile number we dial."""
    phone = Baresip(tmp_path / "phone", user=MOBILE)
    phone.home.mkdir()
    await phone.start()
    yield phone
    await phone.stop()


async def _accept_when_ringing(phone: Baresip) -> None:
    await phone.wait_event("CALL_INCOMING", 5)
    assert (await phone.command("accept"))["ok"]


async def test_baresip_answers_hears_the_prompt_and_presses_1(make_endpoint, callee: Baresip, tmp_path: Path) -> None:
    ep: SipEndpoint = await make_endpoint(idle_handler)
    dialer = SipDialer(ep, f"127.0.0.1:{callee.sip_port}")
    accepting = asyncio.create_task(_accept_when_ringing(callee))
    result = await dialer.originate(MOBILE, caller_id="96777", timeout_s=5)
    await accepting
    assert result.outcome is Outcome.answered and result.cause == "200"
    session = result.session
    assert isinstance(session, SipMediaSession)
    assert session.info.callee == MOBILE and session.info.extra["direction"] == "outbound"
    incoming = next(e for e in callee.events if e.get("type") == "CALL_INCOMING")
    assert "96777" in incoming.get("peeruri", "") + incoming.get("param", "")  # our caller id reached the phone

    prompt = Prompt(path=write_tone(tmp_path / "alert.wav", freq=1000.0, seconds=3.0))

    async def press_later() -> None:
        await asyncio.sleep(1.0)
        assert (await callee.command("sndcode", "1"))["ok"]

    presser = asyncio.create_task(press_later())
    digits = await session.collect_digits(prompt, max_digits=1, timeout_s=3, terminators="")
    await presser
    assert digits == "1"
    assert session.stream.stats.packets > 25  # the phone's audio reached us
    await session.hangup()  # our BYE
    await callee.wait_event("CALL_CLOSED", 3)
    heard = callee.heard()
    assert len(heard) >= 8000 * 2 * 0.8 and rms(heard) > 1000
    assert abs(dominant_hz(heard) - 1000.0) < 20
    await asyncio.sleep(0.05)
    assert ep.active_calls == 0 and not ep.ports._used


async def test_the_callee_hanging_up_ends_the_session(make_endpoint, callee: Baresip, tmp_path: Path) -> None:
    ep: SipEndpoint = await make_endpoint(idle_handler)
    accepting = asyncio.create_task(_accept_when_ringing(callee))
    result = await SipDialer(ep, f"127.0.0.1:{callee.sip_port}").originate(MOBILE, caller_id=None, timeout_s=5)
    await accepting
    assert result.session is not None
    await callee.wait_event("CALL_ESTABLISHED", 3)
    assert (await callee.command("hangup"))["ok"]  # their BYE
    assert await asyncio.wait_for(result.session.wait_hangup(), 3) == "caller"
    with pytest.raises(CallHungUp):
        await result.session.play(Prompt(path=write_tone(tmp_path / "p.wav", seconds=0.2)))


async def test_the_phone_that_never_answers_is_cancelled(make_endpoint, callee: Baresip) -> None:
    ep: SipEndpoint = await make_endpoint(idle_handler)
    started = asyncio.get_running_loop().time()
    result = await SipDialer(ep, f"127.0.0.1:{callee.sip_port}").originate(MOBILE, caller_id=None, timeout_s=1.0)
    assert (result.outcome, result.cause) == (Outcome.no_answer, "408")
    assert asyncio.get_running_loop().time() - started < 3
    closed = await callee.wait_event("CALL_CLOSED", 3)  # our CANCEL stopped its ringing
    assert closed
    await asyncio.sleep(0.05)
    assert ep.active_calls == 0 and not ep.ports._used


@pytest.mark.parametrize(("mode", "outcome", "cause", "methods"), [
    ("busy", Outcome.busy, "486", ["INVITE", "ACK"]),
    ("reject", Outcome.rejected, "603", ["INVITE", "ACK"]),
    ("ring", Outcome.no_answer, "408", ["INVITE", "CANCEL", "ACK"]),
])
async def test_gateway_answers(make_endpoint, mode: str, outcome: Outcome, cause: str, methods: list[str]) -> None:
    ep: SipEndpoint = await make_endpoint(idle_handler)
    gw, port = await _gateway(mode)
    try:
        result = await ep.originate(MOBILE, ("127.0.0.1", port), timeout_s=0.5)
        await asyncio.sleep(0.05)
        assert (result.outcome, result.cause, result.session) == (outcome, cause, None)
        assert gw.methods == methods
        invite = gw.requests[0]
        assert invite.uri == f"sip:{MOBILE}@127.0.0.1:{port}"
        body = invite.body.decode()
        assert "m=audio" in body and "RTP/AVP 0 8 101" in body and "telephone-event/8000" in body
        if "CANCEL" in methods:  # the CANCEL is the INVITE's transaction: same branch and CSeq number
            cancel = gw.requests[1]
            assert cancel.branch == invite.branch and cancel.cseq == (1, "CANCEL")
        assert gw.requests[-1].to_tag == "gw1" and gw.requests[-1].branch == invite.branch
        assert ep.active_calls == 0 and not ep.ports._used
    finally:
        gw.transport.close()


async def test_a_silent_gateway_fails_within_the_ring_time(make_endpoint) -> None:
    ep: SipEndpoint = await make_endpoint(idle_handler)
    gw, port = await _gateway("silent")
    try:
        result = await ep.originate(MOBILE, ("127.0.0.1", port), timeout_s=1.2)
        assert (result.outcome, result.cause) == (Outcome.failed, "NO_RESPONSE")
        assert gw.methods.count("INVITE") >= 2  # retransmitted (timer A) while nobody answered
    finally:
        gw.transport.close()


class CountingDialer:
    backend = "test"

    def __init__(self) -> None:
        self.dialled: list[str] = []

    async def originate(self, number: str, *, caller_id: str | None, timeout_s: float) -> OriginateResult:
        self.dialled.append(number)
        return OriginateResult(Outcome.no_answer, cause="NO_ANSWER")


async def test_invalid_numbers_are_never_dialled() -> None:
    dialer = CountingDialer()
    calls = OutboundCalls(dialer)
    for bad in ("", "abc", "12", "1380013800a", "sip:1380@evil", "1" * 21, "138 0013 8001; drop"):
        with pytest.raises(InvalidInput) as err:
            await calls.originate(bad)
        assert err.value.code == "invalid_phone_number"
    assert dialer.dialled == []
    assert check_number("138-0013 8001") == "13800138001"
    assert check_number("+8613800138001") == "+8613800138001"


async def test_one_number_is_rung_at_most_n_times_per_window_and_lines_are_capped() -> None:
    dialer = CountingDialer()
    calls = OutboundCalls(dialer, calls_per_number=2, window_s=600, max_calls=1)
    assert (await calls.originate(MOBILE)).outcome is Outcome.no_answer
    assert (await calls.originate(MOBILE)).outcome is Outcome.no_answer
    assert (await calls.originate(MOBILE)).outcome is Outcome.rate_limited
    assert (await calls.originate("13900139000")).outcome is Outcome.no_answer  # another number is not limited
    assert dialer.dialled == [MOBILE, MOBILE, "13900139000"]
    assert calls.active == 0  # unanswered calls gave their line back
    calls.active = 1  # every line in use
    assert (await calls.originate("13700137000")).outcome is Outcome.no_line
    assert dialer.dialled == [MOBILE, MOBILE, "13900139000"]
