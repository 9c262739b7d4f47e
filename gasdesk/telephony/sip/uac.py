"""``SipCaller``: a minimal SIP user agent *client* that places one call with G.711 audio.

Not used in production: it drives the embedded endpoint from tests (raw protocol cases a real phone will
not produce: re-INVITE for hold, SIP INFO DTMF, no ACK) and from ``bench/sip_calls.py`` (50 concurrent
calls). The end-to-end tests use a real SIP client (baresip) as well, so the endpoint is never only tested
against itself.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from gasdesk.telephony.sip import message as sipmsg
from gasdesk.telephony.sip.message import SipMessage, SipParseError
from gasdesk.telephony.sip.rtp import FRAME_BYTES, MediaClock, RtpPacket, RtpStream, bind_stream
from gasdesk.telephony.sip.sdp import negotiate

CODEC_PT = {"PCMU": 0, "PCMA": 8}


def tone_frames(freq: float = 440.0, amplitude: int = 6000) -> Callable[[], bytes]:
    """A frame source producing a continuous sine tone (8 kHz, 16-bit)."""
    n = [0]

    def next_frame() -> bytes:
        t = (np.arange(160) + n[0] * 160) / 8000.0
        n[0] += 1
        return (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()

    return next_frame


def rms(pcm: bytes) -> float:
    """Root mean square of 16-bit little-endian PCM."""
    if not pcm:
        return 0.0
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))


class _SipSocket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.inbox: asyncio.Queue[SipMessage] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self.inbox.put_nowait(sipmsg.parse(data))
        except SipParseError:
            pass


class SipCaller:
    """One outgoing call to ``target`` (host, port)."""

    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1", codecs: tuple[str, ...] = ("PCMU",),
                 offer_payload_types: list[int] | None = None, dtmf: bool = True,
                 source: Callable[[], bytes | None] | None = None, clock: MediaClock | None = None) -> None:
        self.target = target
        self.clock = clock
        self.host = host
        self.codecs = codecs
        self.offer_payload_types = offer_payload_types
        self.dtmf = dtmf
        self.source = source
        self.call_id = secrets.token_hex(10) + "@gasdesk-uac"
        self.from_tag = sipmsg.new_tag()
        self.to_tag = ""
        self.cseq = 1
        self.sip = _SipSocket()
        self.rtp: RtpStream | None = None
        self.rtp_port = 0
        self.received_audio = bytearray()
        self.keep_audio = True
        self.other_requests: asyncio.Queue[SipMessage] = asyncio.Queue()
        self.bye_received = asyncio.Event()
        self._router: asyncio.Task[None] | None = None
        self._responses: asyncio.Queue[SipMessage] = asyncio.Queue()
        self._invite: SipMessage | None = None
        self._dtmf_ts = 0

    @property
    def sip_port(self) -> int:
        assert self.sip.transport is not None
        return int(self.sip.transport.get_extra_info("sockname")[1])

    async def open(self) -> None:
        """Bind the SIP and RTP sockets (ephemeral ports)."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.sip, local_addr=(self.host, 0))
        codec = self.codecs[0] if self.codecs and self.codecs[0] in CODEC_PT else "PCMU"
        self.rtp = RtpStream(codec=codec, payload_type=CODEC_PT[codec], dtmf_payload_type=101,
                             remote=self.target, allowed_sources={self.target[0]})
        self.rtp.stats.keep_samples = True
        self.rtp_port = await bind_stream(self.rtp, self.host, 0)
        self.rtp.on_audio = self._on_audio
        if self.source is not None:
            self.rtp.source = self.source
        self._router = loop.create_task(self._route())

    def _on_audio(self, pcm: bytes) -> None:
        if self.keep_audio:
            self.received_audio += pcm

    async def _route(self) -> None:
        while True:
            msg = await self.sip.inbox.get()
            if msg.is_request:
                if msg.method == "BYE":
                    self._send(sipmsg.make_response(msg, 200).serialize())
                    self.bye_received.set()
                    if self.rtp is not None:
                        self.rtp.close()
                else:
                    await self.other_requests.put(msg)
            else:
                await self._responses.put(msg)

    def _send(self, data: bytes) -> None:
        assert self.sip.transport is not None
        self.sip.transport.sendto(data, self.target)

    def sdp(self, direction: str = "sendrecv") -> str:
        pts = list(self.offer_payload_types or [CODEC_PT[c] for c in self.codecs if c in CODEC_PT])
        lines = ["v=0", f"o=uac 1 1 IN IP4 {self.host}", "s=-", f"c=IN IP4 {self.host}", "t=0 0"]
        m = [str(p) for p in pts]
        attrs = [f"a=rtpmap:{p} {name}/8000" for p in pts for name, q in CODEC_PT.items() if q == p]
        if self.offer_payload_types:
            attrs += [f"a=rtpmap:{p} G729/8000" for p in pts if p == 18]
        if self.dtmf:
            m.append("101")
            attrs += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
        lines += [f"m=audio {self.rtp_port} RTP/AVP {' '.join(m)}", *attrs, "a=ptime:20", f"a={direction}"]
        return "\r\n".join(lines) + "\r\n"

    def request(self, method: str, *, body: str = "", content_type: str = "", cseq: int | None = None,
                branch: str | None = None) -> SipMessage:
        """A request in this call's dialog (or the initial INVITE while there is no To-tag)."""
        uri = f"sip:96777@{self.target[0]}:{self.target[1]}"
        msg = SipMessage(method=method, uri=uri)
        msg.add("Via", f"SIP/2.0/UDP {self.host}:{self.sip_port};rport;branch={branch or sipmsg.new_branch()}")
        msg.add("Max-Forwards", "70")
        msg.add("From", f"<sip:13800000000@{self.host}>;tag={self.from_tag}")
        msg.add("To", f"<{uri}>" + (f";tag={self.to_tag}" if self.to_tag else ""))
        msg.add("Call-ID", self.call_id)
        msg.add("CSeq", f"{cseq if cseq is not None else self.cseq} {method}")
        msg.add("Contact", f"<sip:caller@{self.host}:{self.sip_port}>")
        if body:
            msg.add("Content-Type", content_type or "application/sdp")
            msg.body = body.encode()
        return msg

    async def response(self, timeout: float = 3.0, *, final: bool = False) -> SipMessage:
        """The next response (the next final one if ``final``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            resp = await asyncio.wait_for(self._responses.get(), max(0.0, deadline - loop.time()))
            if not final or resp.status >= 200:
                return resp

    async def call(self, timeout: float = 5.0, *, ack: bool = True) -> SipMessage:
        """Send the INVITE and wait for the final response; ACK it and start audio on 200."""
        invite = self.request("INVITE", body=self.sdp())
        self._invite = invite
        self._send(invite.serialize())
        resp = await self.response(timeout, final=True)
        if resp.to_tag:
            self.to_tag = resp.to_tag
        if resp.status == 200:
            if ack:
                self.ack(resp)
            neg = negotiate(resp.body.decode())
            assert self.rtp is not None
            self.rtp.remote = (neg.remote_address, neg.remote_port)
            self.rtp.codec, self.rtp.payload_type = neg.codec, neg.payload_type
            self.rtp.start(self.clock)
        elif resp.status >= 300:
            self._send(self._non2xx_ack(invite, resp).serialize())
        return resp

    def ack(self, resp: SipMessage) -> None:
        """ACK a 2xx (a new transaction)."""
        ack = self.request("ACK", cseq=resp.cseq[0])
        self._send(ack.serialize())

    def _non2xx_ack(self, invite: SipMessage, resp: SipMessage) -> SipMessage:
        ack = SipMessage(method="ACK", uri=invite.uri)
        ack.add("Via", invite.get("Via"))
        ack.add("Max-Forwards", "70")
        ack.add("From", invite.get("From"))
        ack.add("To", resp.get("To"))
        ack.add("Call-ID", self.call_id)
        ack.add("CSeq", f"{invite.cseq[0]} ACK")
        return ack

    def cancel(self) -> None:
        """CANCEL the pending INVITE (same branch, RFC 3261 §9.1)."""
        assert self._invite is not None
        cancel = SipMessage(method="CANCEL", uri=self._invite.uri)
        for name in ("Via", "Max-Forwards", "From", "To", "Call-ID"):
            cancel.add(name, self._invite.get(name))
        cancel.add("CSeq", f"{self._invite.cseq[0]} CANCEL")
        self._send(cancel.serialize())

    async def in_dialog(self, method: str, *, body: str = "", content_type: str = "",
                        timeout: float = 3.0) -> SipMessage:
        """Send an in-dialog request and return its final response (ACKing a 2xx to INVITE)."""
        self.cseq += 1
        self._send(self.request(method, body=body, content_type=content_type).serialize())
        resp = await self.response(timeout, final=True)
        if method == "INVITE" and resp.status == 200:
            self.ack(resp)
        return resp

    def send_rfc4733(self, digit: str, *, end_repeats: int = 3) -> None:
        """A telephone-event: three start/continue packets, then the end packet repeated."""
        assert self.rtp is not None and self.rtp._transport is not None
        event = "0123456789*#ABCD".index(digit)
        self._dtmf_ts += 8000
        ts, ssrc = self._dtmf_ts, 0x1234
        packets = [(False, 160 * (i + 1)) for i in range(3)] + [(True, 800)] * end_repeats
        for i, (end, duration) in enumerate(packets):
            payload = bytes([event, (0x80 if end else 0) | 10]) + duration.to_bytes(2, "big")
            pkt = RtpPacket(101, 1000 + i, ts, ssrc, payload, marker=(i == 0))
            self.rtp._transport.sendto(pkt.build(), self.rtp.remote)

    async def hangup(self, timeout: float = 3.0) -> SipMessage:
        """Send BYE and wait for its response."""
        resp = await self.in_dialog("BYE", timeout=timeout)
        if self.rtp is not None:
            self.rtp.close()
        return resp

    def close(self) -> None:
        """Close both sockets."""
        if self._router is not None:
            self._router.cancel()
        if self.rtp is not None:
            self.rtp.close()
        if self.sip.transport is not None:
            self.sip.transport.close()

    def heard_rms(self) -> float:
        """Energy of all audio received so far."""
        return rms(bytes(self.received_audio))

    @staticmethod
    def frame_bytes() -> int:
        return FRAME_BYTES
