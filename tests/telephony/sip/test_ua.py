"""The SIP user agent server over real UDP on loopback: call flow, CANCEL, INFO DTMF, hold re-INVITE,
unknown methods, malformed datagrams, unknown codecs (488), capacity and a flood."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from pathlib import Path
from typing import Any

import pytest

from gasdesk.telephony.media import CallHungUp, Prompt
from gasdesk.telephony.sip import message as sipmsg
from gasdesk.telephony.sip.session import SipMediaSession
from gasdesk.telephony.sip.uac import SipCaller, tone_frames
from tests.telephony.sip.conftest import dominant_hz, write_tone

pytestmark = pytest.mark.no_database


class RawUdp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.inbox.put_nowait(data)


async def raw_socket() -> RawUdp:
    proto = RawUdp()
    await asyncio.get_running_loop().create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    return proto


async def replies(proto: RawUdp, wait: float = 0.15) -> list[sipmsg.SipMessage]:
    await asyncio.sleep(wait)
    out = []
    while not proto.inbox.empty():
        out.append(sipmsg.parse(proto.inbox.get_nowait()))
    return out


def raw_request(method: str, port: int, *, call_id: str | None = None, extra: str = "", body: str = "",
                cseq_method: str | None = None) -> bytes:
    headers = (f"{method} sip:96777@127.0.0.1:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{secrets.token_hex(4)}\r\n"
               "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=abc\r\nTo: <sip:96777@127.0.0.1>\r\n"
               f"Call-ID: {call_id or secrets.token_hex(6)}\r\nCSeq: 1 {cseq_method or method}\r\n{extra}")
    return (headers + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()


async def idle_handler(session: SipMediaSession) -> None:
    await session.answer()
    await session.wait_hangup()


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


async def test_unsupported_codec_gets_488_and_no_call(make_endpoint) -> None:
    calls: list[SipMediaSession] = []

    async def handler(session: SipMediaSession) -> None:
        calls.append(session)

    ep = await make_endpoint(handler)
    caller = SipCaller(("127.0.0.1", ep.port), offer_payload_types=[18], dtmf=True)  # G.729 only
    await caller.open()
    try:
        resp = await caller.call()
        assert resp.status == 488
        assert "no common audio codec" in resp.get("Warning")
        await asyncio.sleep(0.7)
        assert caller._responses.empty()  # our ACK stopped the retransmissions
        assert calls == [] and ep.counters["rejected_488"] == 1
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


async def test_options_unknown_methods_and_malformed_requests(make_endpoint) -> None:
    ep = await make_endpoint(idle_handler)
    sock = await raw_socket()
    target = ("127.0.0.1", ep.port)
    try:
        sock.transport.sendto(raw_request("OPTIONS", ep.port), target)
        (ok,) = await replies(sock)
        assert ok.status == 200 and "INVITE" in ok.get("Allow")
        sock.transport.sendto(raw_request("SUBSCRIBE", ep.port), target)
        sock.transport.sendto(raw_request("FROBNICATE", ep.port), target)
        statuses = sorted(r.status for r in await replies(sock))
        assert statuses == [405, 501]
        # Answerable but malformed: 400 with the reason.
        sock.transport.sendto(raw_request("OPTIONS", ep.port, cseq_method="INVITE"), target)
        sock.transport.sendto(raw_request("OPTIONS", ep.port, extra="Content-Length: abc\r\n"), target)
        sock.transport.sendto(raw_request("INVITE", ep.port, body="v=0\r\n", extra="Content-Length: 999\r\n"),
                              target)
        bad = await replies(sock)
        assert [r.status for r in bad] == [400, 400, 400]
        assert "CSeq" in bad[0].reason
        # Not answerable: dropped silently.
        for junk in (b"\x00\xff" * 50, b"HELLO\r\n\r\n", raw_request("OPTIONS", ep.port).replace(b"Call-ID", b"X-Id"),
                     b"OPTIONS sip:x SIP/2.0\r\n" + b"X: y\r\n" * 100 + b"\r\n", os.urandom(9000)):
            sock.transport.sendto(junk, target)
        assert await replies(sock) == []
        assert ep.counters["dropped"] == 5
        # BYE and INFO outside a dialog.
        sock.transport.sendto(raw_request("BYE", ep.port), target)
        assert [r.status for r in await replies(sock)] == [481]
        # Compact headers are understood.
        compact = raw_request("OPTIONS", ep.port).replace(b"Call-ID:", b"i:").replace(b"Via:", b"v:")
        sock.transport.sendto(compact, target)
        (resp,) = await replies(sock)
        assert resp.status == 200 and resp.call_id
    finally:
        sock.transport.close()


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


async def test_busy_without_overflow_prompt(make_endpoint) -> None:
    ep = await make_endpoint(idle_handler, max_calls=1)
    first, second = SipCaller(("127.0.0.1", ep.port)), SipCaller(("127.0.0.1", ep.port))
    await first.open()
    await second.open()
    try:
        assert (await first.call()).status == 200
        assert (await second.call()).status == 486
        await first.hangup()
        await asyncio.sleep(0.05)
        third = SipCaller(("127.0.0.1", ep.port))
        await third.open()
        try:
            assert (await third.call()).status == 200  # the slot is free again
            await third.hangup()
        finally:
            third.close()
    finally:
        first.close()
        second.close()


async def test_flood_of_invites_and_garbage_crashes_nothing(make_endpoint) -> None:
    ep = await make_endpoint(idle_handler, max_calls=3)
    sock = await raw_socket()
    target = ("127.0.0.1", ep.port)
    sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    try:
        for i in range(300):
            sock.transport.sendto(raw_request("INVITE", ep.port, body=sdp, extra="Content-Type: application/sdp\r\n"),
                                  target)
            sock.transport.sendto(os.urandom(64 + i), target)
            if i % 10 == 0:
                await asyncio.sleep(0.001)
        await asyncio.sleep(0.5)
        # The kernel may drop some datagrams of the burst; every INVITE that arrived got a call or a 486.
        assert ep.counters["invites"] >= 200
        assert ep.counters["accepted"] == 3 and ep.active_calls == 3
        assert ep.counters["busy"] == ep.counters["invites"] - 3
        while not sock.inbox.empty():
            sock.inbox.get_nowait()
        sock.transport.sendto(raw_request("OPTIONS", ep.port), target)
        assert any(r.status == 200 for r in await replies(sock, 0.5))  # still serving
    finally:
        sock.transport.close()


def test_rtp_port_range_is_validated() -> None:
    from gasdesk.telephony.sip.rtp import PortAllocator  # noqa: PLC0415 - only this test needs it

    with pytest.raises(ValueError):
        PortAllocator(80, 90)
    assert PortAllocator(20001, 20010).capacity == 5
    assert socket.AF_INET  # the suite runs on IPv4 loopback only
