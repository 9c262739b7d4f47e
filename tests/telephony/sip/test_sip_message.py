"""SIP message parsing: strict lines, compact forms, Content-Length, caps, and fuzzing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gasdesk.telephony.sip.message import (
    MAX_DATAGRAM,
    SipParseError,
    header_tag,
    header_uri,
    make_response,
    parse,
    uri_user,
)
from gasdesk.telephony.sip.ua import SipEndpoint, info_digit

pytestmark = pytest.mark.no_database

INVITE = (
    "INVITE sip:96777@10.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKabc\r\n"
    "Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKdef\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Resident" <sip:13800000000@10.0.0.2>;tag=f1\r\n'
    "To: <sip:96777@10.0.0.1>\r\n"
    "Call-ID: abc123@10.0.0.2\r\n"
    "CSeq: 1 INVITE\r\n"
    "Subject: a folded\r\n  subject line\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n\r\n"
    "v=0\r\nEXTRA"
)


def test_parses_a_request_and_honours_content_length() -> None:
    msg = parse(INVITE.encode())
    assert (msg.method, msg.uri) == ("INVITE", "sip:96777@10.0.0.1")
    assert msg.body == b"v=0\r"  # Content-Length cuts what follows
    assert msg.get_all("Via") == ["SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKabc",
                                  "SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKdef"]
    assert msg.branch == "z9hG4bKabc" and msg.from_tag == "f1" and msg.to_tag == ""
    assert msg.cseq == (1, "INVITE")
    assert msg.get("Subject") == "a folded subject line"
    assert uri_user(header_uri(msg.get("From"))) == "13800000000"


def test_compact_forms_and_response_copy_headers() -> None:
    raw = (INVITE.replace("Call-ID:", "i:").replace("From:", "f:").replace("To:", "t:").replace("Via:", "v:")
           .replace("Content-Length:", "l:").replace("Content-Type:", "c:"))
    msg = parse(raw.encode())
    assert msg.call_id == "abc123@10.0.0.2" and msg.content_type == "application/sdp"
    resp = make_response(msg, 180, to_tag="t9")
    wire = parse(resp.serialize())
    assert wire.status == 180 and wire.reason == "Ringing"
    assert wire.to_tag == "t9" and len(wire.get_all("Via")) == 2 and wire.get("CSeq") == "1 INVITE"


def test_response_line_and_tags() -> None:
    msg = parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b;tag=x>;tag=real\r\n"
                b"Call-ID: 1\r\nCSeq: 2 BYE\r\n\r\n")
    assert msg.status == 200 and msg.to_tag == "real"
    assert header_tag("<sip:a@b;tag=inside>") == ""


@pytest.mark.parametrize("raw, answerable", [
    (INVITE.replace("SIP/2.0\r\n", "SIP/3.0\r\n", 1), False),  # bad request line
    (INVITE.replace("INVITE sip:", "INVITE  sip:"), False),  # double space
    (INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), True),  # CSeq method mismatch
    (INVITE.replace("Content-Length: 4", "Content-Length: 400"), True),  # body shorter than declared
    (INVITE.replace("Content-Length: 4", "Content-Length: -1"), True),
    (INVITE.replace("Content-Length: 4", "Content-Length: 4\r\nContent-Length: 5"), True),
    (INVITE.replace("Call-ID: abc123@10.0.0.2\r\n", ""), False),  # a response would have no Call-ID
    (INVITE.replace("Max-Forwards: 70", "Max-Forwards: lots"), True),
    (INVITE.replace("sip:96777@10.0.0.1 SIP", "http://x SIP"), True),  # not a SIP URI
    (INVITE.replace("Max-Forwards: 70", "Max Forwards 70"), True),  # a header line without a colon
    (INVITE.replace("\r\n\r\n", "\r\n"), False),  # no end of headers
    (INVITE.replace("Max-Forwards: 70", "Max-Forwards: 70\rX: 1"), False),  # bare CR
    (INVITE.replace("Max-Forwards: 70", "X-Long: " + "a" * 2000), False),
    (INVITE.replace("Max-Forwards: 70", "\r\n".join(f"X-{i}: 1" for i in range(80))), False),
])
def test_malformed_requests(raw: str, answerable: bool) -> None:
    with pytest.raises(SipParseError) as info:
        parse(raw.encode())
    assert info.value.respondable is answerable


def test_size_cap_and_encoding() -> None:
    with pytest.raises(SipParseError, match="too large"):
        parse(INVITE.encode() + b"x" * MAX_DATAGRAM)
    with pytest.raises(SipParseError, match="UTF-8"):
        parse(INVITE.encode().replace(b"Resident", b"\xff\xfe"))


def test_info_dtmf_bodies() -> None:
    assert info_digit("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n") == "5"
    assert info_digit("application/dtmf-relay", "signal= *\r\n") == "*"
    assert info_digit("application/dtmf-relay", "Signal=11\r\n") == "#"
    assert info_digit("application/dtmf", "9") == "9"
    assert info_digit("application/dtmf", "x") is None
    assert info_digit("application/dtmf-relay", "Duration=160") is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_bytes_only_raise_parse_errors(data: bytes) -> None:
    try:
        parse(data)
    except SipParseError:
        pass


_lines = st.lists(st.sampled_from([
    "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@b>;tag=1", "To: <sip:c@d>", "Call-ID: x",
    "CSeq: 1 INVITE", "CSeq: x", "Content-Length: 3", "Content-Length: 99999999", "l: 0", "i: y",
    "Content-Type: application/sdp", "Max-Forwards: 0", " folded", "::", "X:", "Bad Header",
]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["INVITE", "BYE", "ACK", "CANCEL", "OPTIONS", "INFO", "X"]), _lines, st.text(max_size=40))
def test_fuzz_structured_messages_reach_the_endpoint_without_exceptions(method: str, lines: list[str],
                                                                           body: str) -> None:
    raw = (f"{method} sip:96777@127.0.0.1 SIP/2.0\r\n" + "\r\n".join(lines) + "\r\n\r\n" + body).encode()
    sent: list[tuple[bytes, Any]] = []

    class Transport:
        def sendto(self, data: bytes, addr: Any) -> None:
            sent.append((data, addr))

    async def run() -> None:
        async def on_call(session: Any) -> None:
            await session.hangup()

        ep = SipEndpoint(on_call, port=0, rtp_port_min=40000, rtp_port_max=40010)
        ep._transport = Transport()  # type: ignore[assignment]
        ep.datagram_received(raw, ("127.0.0.1", 5099))  # must never raise
        for data, _ in sent:
            assert parse(data).status in (100, 400, 405, 420, 481, 483, 486, 488, 501, 200)
        for task in [*ep._tasks, *ep._retransmitters]:
            task.cancel()
        ep._transport = None

    asyncio.run(run())
