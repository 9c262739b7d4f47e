"""SDP offer/answer: codec order, telephone-event, direction, 488 cases."""

from __future__ import annotations

import pytest

from gasdesk.telephony.sip.sdp import NotAcceptable, build_answer, negotiate, parse_offer

pytestmark = pytest.mark.no_database


def offer(m: str, *attrs: str, c: str = "c=IN IP4 192.0.2.10") -> str:
    return "\r\n".join(["v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", c, "t=0 0", m, *attrs]) + "\r\n"


def test_first_supported_codec_in_offer_order_and_dtmf() -> None:
    neg = negotiate(offer("m=audio 4000 RTP/AVP 18 8 0 101", "a=rtpmap:18 G729/8000", "a=rtpmap:8 PCMA/8000",
                          "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15"))
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type) == ("PCMA", 8, 101)
    assert (neg.remote_address, neg.remote_port, neg.direction) == ("192.0.2.10", 4000, "sendrecv")
    answer = build_answer("127.0.0.1", 20000, neg)
    assert "m=audio 20000 RTP/AVP 8 101\r\n" in answer
    assert "a=rtpmap:101 telephone-event/8000" in answer and "c=IN IP4 127.0.0.1" in answer
    again = parse_offer(answer)
    assert again.payload_types == [8, 101] and again.port == 20000


def test_static_types_without_rtpmap_and_dynamic_pcmu() -> None:
    assert negotiate(offer("m=audio 4000 RTP/AVP 0")).codec == "PCMU"
    neg = negotiate(offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 PCMU/8000"))
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type) == ("PCMU", 96, None)


@pytest.mark.parametrize("direction, ours", [("sendonly", "recvonly"), ("inactive", "inactive"),
                                             ("recvonly", "sendonly"), ("sendrecv", "sendrecv")])
def test_direction_is_answered(direction: str, ours: str) -> None:
    assert negotiate(offer("m=audio 4000 RTP/AVP 0", f"a={direction}")).direction == ours


def test_media_level_connection_wins() -> None:
    neg = negotiate(offer("m=audio 4000 RTP/AVP 0", "c=IN IP4 192.0.2.99", c="c=IN IP4 192.0.2.1"))
    assert neg.remote_address == "192.0.2.99"


@pytest.mark.parametrize("sdp", [
    offer("m=audio 4000 RTP/AVP 18 9", "a=rtpmap:18 G729/8000", "a=rtpmap:9 G722/8000"),
    offer("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 opus/48000/2"),
    offer("m=audio 4000 RTP/AVP 0", "a=rtpmap:0 PCMU/16000"),
    offer("m=audio 0 RTP/AVP 0"),  # a rejected stream
    offer("m=video 4000 RTP/AVP 96"),
    offer("m=audio 4000 RTP/SAVP 0"),
    offer("m=audio 4000 RTP/AVP 0", c="c=IN IP4 example.com"),
    offer("m=audio 99999 RTP/AVP 0"),
    offer("m=audio 4000 RTP/AVP 0", c=""),
    "garbage",
])
def test_not_acceptable(sdp: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(sdp)
