"""SDP offer/answer (RFC 3264) for one audio stream: PCMU (0), PCMA (8) and RFC 4733 telephone-event.

The answer takes the first codec of the offer (in the offer's order) that we support, plus telephone-event
at the payload type the offer gave it. An offer with no audio stream we can take raises
:class:`NotAcceptable` (the user agent answers ``488 Not Acceptable Here``).
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

SUPPORTED = {"PCMU": 0, "PCMA": 8}
STATIC_NAMES = {0: "PCMU", 8: "PCMA"}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
                     "inactive": "inactive"}
MAX_SDP_LINES = 128


class NotAcceptable(ValueError):
    """No common audio codec (or no usable audio stream): answer 488."""


@dataclass
class MediaOffer:
    """The audio part of a remote session description."""

    address: str
    port: int
    payload_types: list[int]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    direction: str = "sendrecv"
    ptime: int = 20


@dataclass(frozen=True)
class Negotiated:
    """What both sides agreed: our codec, telephone-event PT (None if not offered), where to send RTP and
    the direction *we* use (the answer's)."""

    codec: str
    payload_type: int
    dtmf_payload_type: int | None
    remote_address: str
    remote_port: int
    direction: str


def parse_offer(text: str) -> MediaOffer:
    """The first audio m-line of an SDP body, with its connection address and attributes."""
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    if len(lines) > MAX_SDP_LINES:
        raise NotAcceptable("SDP too long")
    session_addr = ""
    session_dir = "sendrecv"
    audio: MediaOffer | None = None
    in_audio = False
    for ln in lines:
        kind, eq, value = ln.partition("=")
        if not eq or len(kind) != 1:
            raise NotAcceptable("malformed SDP line")
        if kind == "m":
            if audio is not None:
                in_audio = False  # only the first audio stream counts; later m-lines are ignored
                continue
            parts = value.split()
            if len(parts) >= 4 and parts[0] == "audio" and parts[2] == "RTP/AVP":
                port = _int(parts[1], 0, 65535)
                pts = [_int(p, 0, 127) for p in parts[3:]]
                audio = MediaOffer(address=session_addr, port=port, payload_types=pts, direction=session_dir)
                in_audio = True
            else:
                in_audio = False
        elif kind == "c":
            parts = value.split()
            if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
                raise NotAcceptable("bad connection line")
            addr = parts[2].split("/", 1)[0]
            try:
                ipaddress.ip_address(addr)
            except ValueError as exc:
                raise NotAcceptable("connection address is not an IP") from exc
            if in_audio and audio is not None:
                audio.address = addr
            elif audio is None:
                session_addr = addr
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in DIRECTIONS:
                if in_audio and audio is not None:
                    audio.direction = name
                elif audio is None:
                    session_dir = name
            elif in_audio and audio is not None and name == "rtpmap":
                pt_s, _, enc = arg.partition(" ")
                enc_name, _, rate_s = enc.partition("/")
                pt = _int(pt_s, 0, 127)
                audio.rtpmap[pt] = (enc_name.strip(), _int(rate_s.split("/", 1)[0] or "8000", 1, 192000))
            elif in_audio and audio is not None and name == "ptime":
                audio.ptime = _int(arg, 1, 1000)
    if audio is None or audio.port == 0 or not audio.address:
        raise NotAcceptable("no usable audio stream")
    return audio


def negotiate(offer_text: str) -> Negotiated:
    """Choose codec and telephone-event from an offer; raises :class:`NotAcceptable`."""
    offer = parse_offer(offer_text)
    codec: tuple[str, int] | None = None
    dtmf: int | None = None
    for pt in offer.payload_types:
        name, rate = offer.rtpmap.get(pt, (STATIC_NAMES.get(pt, ""), 8000))
        upper = name.upper()
        if codec is None and upper in SUPPORTED and rate == 8000 and (pt == SUPPORTED[upper] or pt >= 96):
            codec = (upper, pt)
        elif upper == "TELEPHONE-EVENT" and rate == 8000 and dtmf is None:
            dtmf = pt
    if codec is None:
        raise NotAcceptable("no common audio codec")
    return Negotiated(codec=codec[0], payload_type=codec[1], dtmf_payload_type=dtmf,
                      remote_address=offer.address, remote_port=offer.port,
                      direction=_ANSWER_DIRECTION[offer.direction])


def build_answer(local_ip: str, local_port: int, neg: Negotiated, *, session_id: int | None = None,
                 version: int = 1, direction: str | None = None) -> str:
    """Our SDP: one audio stream with the chosen codec (and telephone-event 0-15 if it was offered)."""
    sid = session_id if session_id is not None else secrets.randbelow(2**31)
    fam = "IP6" if ":" in local_ip else "IP4"
    pts = [str(neg.payload_type)]
    attrs = [f"a=rtpmap:{neg.payload_type} {neg.codec}/8000"]
    if neg.dtmf_payload_type is not None:
        pts.append(str(neg.dtmf_payload_type))
        attrs.append(f"a=rtpmap:{neg.dtmf_payload_type} telephone-event/8000")
        attrs.append(f"a=fmtp:{neg.dtmf_payload_type} 0-15")
    attrs += ["a=ptime:20", f"a={direction or neg.direction}"]
    lines = ["v=0", f"o=gasdesk {sid} {version} IN {fam} {local_ip}", "s=gasdesk", f"c=IN {fam} {local_ip}",
             "t=0 0", f"m=audio {local_port} RTP/AVP {' '.join(pts)}", *attrs]
    return "\r\n".join(lines) + "\r\n"


OFFER_DTMF_PT = 101


def build_offer(local_ip: str, local_port: int, *, session_id: int | None = None) -> str:
    """Our offer for a call we place: PCMU, PCMA and telephone-event (0-15 at ``OFFER_DTMF_PT``), sendrecv."""
    sid = session_id if session_id is not None else secrets.randbelow(2**31)
    fam = "IP6" if ":" in local_ip else "IP4"
    lines = ["v=0", f"o=gasdesk {sid} 1 IN {fam} {local_ip}", "s=gasdesk", f"c=IN {fam} {local_ip}", "t=0 0",
             f"m=audio {local_port} RTP/AVP 0 8 {OFFER_DTMF_PT}", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
             f"a=rtpmap:{OFFER_DTMF_PT} telephone-event/8000", f"a=fmtp:{OFFER_DTMF_PT} 0-15", "a=ptime:20",
             "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


def _int(text: str, lo: int, hi: int) -> int:
    text = text.strip()
    if not text.isdigit() or len(text) > 6:
        raise NotAcceptable("bad number in SDP")
    value = int(text)
    if not lo <= value <= hi:
        raise NotAcceptable("number out of range in SDP")
    return value
