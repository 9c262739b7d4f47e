"""The SIP user agent server against bad input: malformed datagrams, unknown methods and codecs (488),
requests from strangers, a full house and a flood."""

from __future__ import annotations

import asyncio
import os

import pytest

from gasdesk.telephony.sip.rtp import PortAllocator
from gasdesk.telephony.sip.session import SipMediaSession
from gasdesk.telephony.sip.uac import SipCaller
from tests.telephony.sip.conftest import RawUdp, idle_handler, raw_request, raw_socket, replies

pytestmark = pytest.mark.no_database


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
        # The kernel may drop datagrams of the burst on a busy machine (how many depends on the load; this
        # many arrive even then): every INVITE that arrived got a call or a 486.
        assert ep.counters["invites"] >= 60
        assert ep.counters["accepted"] == 3 and ep.active_calls == 3
        assert ep.counters["busy"] == ep.counters["invites"] - 3
        while not sock.inbox.empty():
            sock.inbox.get_nowait()
        # Still serving: an OPTIONS is answered. Sent again every 0.5 s for up to 5 s, as a SIP client retransmits
        # over UDP (the endpoint may still be answering the burst's INVITEs on a busy machine).
        answered = False
        for _ in range(10):
            sock.transport.sendto(raw_request("OPTIONS", ep.port), target)
            if any(r.status == 200 and r.get("CSeq").endswith("OPTIONS") for r in await replies(sock, 0.5)):
                answered = True
                break
        assert answered
    finally:
        sock.transport.close()


def test_rtp_port_range_is_validated() -> None:
    with pytest.raises(ValueError):
        PortAllocator(80, 90)
    assert PortAllocator(20001, 20010).capacity == 5


async def test_in_dialog_requests_from_another_host_are_refused(make_endpoint) -> None:
    ep = await make_endpoint(idle_handler)
    caller = SipCaller(("127.0.0.1", ep.port))
    await caller.open()
    stranger = RawUdp()
    await asyncio.get_running_loop().create_datagram_endpoint(lambda: stranger, local_addr=("127.0.0.2", 0))
    try:
        assert (await caller.call()).status == 200
        forged = caller.request("BYE", cseq=9).serialize()  # right Call-ID and tags, wrong host
        stranger.transport.sendto(forged, ("127.0.0.1", ep.port))
        assert [r.status for r in await replies(stranger)] == [481]
        assert ep.active_calls == 1
        assert (await caller.hangup()).status == 200
    finally:
        stranger.transport.close()
        caller.close()


async def test_retransmitted_invite_makes_one_call(make_endpoint) -> None:
    sessions: list[SipMediaSession] = []

    async def handler(session: SipMediaSession) -> None:
        sessions.append(session)
        await idle_handler(session)

    ep = await make_endpoint(handler, max_calls=1)
    caller = SipCaller(("127.0.0.1", ep.port))
    await caller.open()
    try:
        invite = caller.request("INVITE", body=caller.sdp()).serialize()
        for _ in range(3):  # the client's Timer A fired before our 100 Trying arrived
            caller._send(invite)
        final = await caller.response(3, final=True)
        assert final.status == 200
        await asyncio.sleep(0.2)
        assert len(sessions) == 1 and ep.counters["invites"] == 1 and ep.counters["busy"] == 0
        caller.to_tag = final.to_tag
        caller.ack(final)
        assert (await caller.hangup()).status == 200
    finally:
        caller.close()
