"""``SipEndpoint``: an asyncio SIP user agent server on UDP (RFC 3261 subset) that answers calls with G.711.

Per INVITE: ``100 Trying`` → ``180 Ringing`` → the ``on_call(session)`` handler runs; its
``session.answer()`` sends ``200 OK`` with our SDP, retransmitted (T1 doubling to T2) until the ACK, for at
most 64·T1, after which the call is ended with a BYE. Also: BYE from either side, CANCEL (``487`` for the
INVITE), OPTIONS, INFO DTMF (``application/dtmf-relay`` and ``application/dtmf``), re-INVITE (hold via
``a=sendonly``/``inactive`` answered ``recvonly``/``inactive``), ``405`` for methods we know but do not
serve and ``501`` for the rest. Malformed requests get ``400`` when a response is possible, else they are
dropped; nothing a datagram contains can raise out of the socket handler.

Capacity: at most ``max_calls`` calls reach the handler. Beyond that a caller is answered, hears the
``overflow_prompt`` and is hung up (at most ``max_overflow_calls`` of those at once), or gets ``486 Busy
Here`` when no overflow prompt is configured or the overflow slots are full too.

Why our own stack: no established asyncio SIP library fits (``aiosip`` is unmaintained since 2017,
``pyVoIP`` is thread-based, ``pjsua2`` is a C binding driving its own threads and media, ``aiosipua`` is
promising but young); a UAS for one audio stream is small, and owning it lets the hardening, capacity
handling and the MediaSession semantics be exactly what the hotline needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from gasdesk.config import Settings
from gasdesk.telephony.media import CallHungUp, CallInfo, Prompt
from gasdesk.telephony.originate import OriginateResult, Outcome
from gasdesk.telephony.sip import message as sipmsg
from gasdesk.telephony.sip.message import SipMessage, SipParseError, make_response
from gasdesk.telephony.sip.rtp import DTMF_EVENTS, MediaClock, PortAllocator, RtpStream
from gasdesk.telephony.sip.sdp import (
    OFFER_DTMF_PT,
    Negotiated,
    NotAcceptable,
    build_answer,
    build_offer,
    negotiate,
)
from gasdesk.telephony.sip.session import BridgeProvider, SipMediaSession

log = logging.getLogger(__name__)

OnCall = Callable[[SipMediaSession], Awaitable[None]]
SIP_RECEIVE_BUFFER = 4 * 1024 * 1024

T1 = 0.5
T2 = 4.0
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"
KNOWN_UNSERVED = {"REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "UPDATE", "PRACK", "REFER", "PUBLISH"}
MAX_RETRANSMITTERS = 1024
MAX_REMEMBERED_REJECTS = 512


@dataclass
class _Call:
    call_id: str
    invite: SipMessage
    addr: tuple[str, int]
    local_tag: str
    neg: Negotiated
    stream: RtpStream
    overflow: bool
    remote_uri: str
    route_set: list[str]
    session: SipMediaSession | None = None
    state: str = "early"  # early → confirmed → ended
    local_cseq: int = 1
    sdp_version: int = 1
    last_response: bytes = b""
    bye_sent: bool = False
    ack: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    # A call we placed (UAC): our From (with our tag) and their To (with theirs) name the dialog; the ACK
    # we sent for their 200 is repeated if the 200 is.
    outbound: bool = False
    local_from: str = ""
    remote_to: str = ""
    ack_bytes: bytes = b""


class _Leg:
    """The session's handle on its dialog (see ``session.SignalingLeg``)."""

    def __init__(self, endpoint: SipEndpoint, call: _Call) -> None:
        self._ep = endpoint
        self._call = call

    async def send_answer(self) -> None:
        self._ep._answer(self._call)

    def send_bye(self) -> None:
        self._ep._send_bye(self._call)

    def send_reject(self, status: int) -> None:
        self._ep._reject_invite(self._call, status)


class _OutboundLeg(_Leg):
    """A call we placed: it is answered before the session exists; hanging up is a BYE."""

    async def send_answer(self) -> None:
        return None

    def send_reject(self, status: int) -> None:
        self._ep._send_bye(self._call)


class SipEndpoint(asyncio.DatagramProtocol):
    """The embedded SIP UAS. ``await start()``, then calls arrive at ``on_call``; ``await stop()`` ends
    them all."""

    def __init__(self, on_call: OnCall, *, host: str = "127.0.0.1", port: int = 5060,
                 advertised_host: str | None = None, rtp_port_min: int = 20000, rtp_port_max: int = 20999,
                 max_calls: int = 60, overflow_prompt: Prompt | None = None, max_overflow_calls: int = 8,
                 hold_prompt: Prompt | None = None, bridge_provider: BridgeProvider | None = None,
                 ack_timeout_s: float = 64 * T1, callee_name: str = "gasdesk") -> None:
        self.on_call = on_call
        self.host = host
        self.port = port
        self.advertised_host = advertised_host or host
        self.ports = PortAllocator(rtp_port_min, rtp_port_max)
        self.clock = MediaClock()  # one 20 ms schedule for every call's audio
        self.max_calls = max_calls
        self.overflow_prompt = overflow_prompt
        self.max_overflow_calls = max_overflow_calls
        self.hold_prompt = hold_prompt
        self.bridge_provider = bridge_provider
        self.ack_timeout_s = ack_timeout_s
        self.callee_name = callee_name
        self.calls: dict[str, _Call] = {}
        self.counters: dict[str, int] = {"invites": 0, "accepted": 0, "overflow": 0, "busy": 0,
                                         "rejected_488": 0, "bad_requests": 0, "dropped": 0}
        self._transport: asyncio.DatagramTransport | None = None
        self._retransmitters: set[asyncio.Task[None]] = set()
        self._rejects: OrderedDict[tuple[str, str], tuple[bytes, asyncio.Event]] = OrderedDict()
        self._pending: dict[tuple[str, int], asyncio.Event] = {}
        self._invite_responses: dict[str, asyncio.Queue[SipMessage]] = {}  # Call-ID → our INVITE's responses
        self._tasks: set[asyncio.Task[Any]] = set()
        # INVITEs accepted but whose RTP socket is still being bound count against capacity already.
        self._setting_up: dict[bool, int] = {False: 0, True: 0}
        self._binding: set[str] = set()  # Call-IDs of those INVITEs

    # --- lifecycle
    async def start(self) -> None:
        """Bind the SIP socket (``port`` 0 picks a free one; read it back from ``self.port``)."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        assert self._transport is not None
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            # A burst of INVITEs (a flood, or every line ringing at 8 a.m.) waits in the kernel while the loop
            # is busy: the default ~200 KB buffer drops datagrams; the kernel caps this at net.core.rmem_max.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SIP_RECEIVE_BUFFER)
        self.port = int(self._transport.get_extra_info("sockname")[1])

    async def stop(self) -> None:
        """Hang up every call, stop every retransmission and close the socket."""
        for call in list(self.calls.values()):
            if call.session is not None and not call.session.ended:
                await call.session.hangup("SYSTEM_SHUTDOWN")
        for task in [*self._tasks, *self._retransmitters]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._retransmitters, return_exceptions=True)
        for call in self.calls.values():
            call.stream.close()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def active_calls(self) -> int:
        """Calls with the handler (or being set up for it)."""
        return self._setting_up[False] + sum(
            1 for c in self.calls.values() if c.state != "ended" and not c.overflow)

    @property
    def overflow_calls(self) -> int:
        """Callers hearing the overflow prompt (or being set up for it)."""
        return self._setting_up[True] + sum(1 for c in self.calls.values() if c.state != "ended" and c.overflow)

    # --- socket
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        log.debug("sip: socket error %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self._datagram(data, (str(addr[0]), int(addr[1])))
        except Exception:  # a bug must cost one datagram, never the endpoint
            log.exception("sip: datagram handling failed")

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    def _respond(self, req: SipMessage, addr: tuple[str, int], status: int, **kw: Any) -> bytes:
        data = make_response(req, status, **kw).serialize()
        self._send(data, addr)
        return data

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip(b"\r\n") == b"":  # RFC 5626 keep-alive (CRLF ping)
            return
        try:
            msg = sipmsg.parse(data)
        except SipParseError as exc:
            if exc.partial is not None and exc.partial.method != "ACK":
                self.counters["bad_requests"] += 1
                self._respond(exc.partial, addr, 400, reason=f"Bad Request ({exc.reason})"[:80])
            else:
                self.counters["dropped"] += 1
            return
        if not msg.is_request:
            self._response(msg)
            return
        mf = msg.get("Max-Forwards")
        if mf == "0" and msg.method not in ("ACK", "OPTIONS"):
            self._respond(msg, addr, 483)
            return
        handler = {"INVITE": self._invite, "ACK": self._ack, "BYE": self._bye, "CANCEL": self._cancel,
                   "OPTIONS": self._options, "INFO": self._info}.get(msg.method)
        if handler is not None:
            handler(msg, addr)
        elif msg.method in KNOWN_UNSERVED:
            self._respond(msg, addr, 405, headers=[("Allow", ALLOW)])
        else:
            self._respond(msg, addr, 501, headers=[("Allow", ALLOW)])

    # --- requests
    def _invite(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = self.calls.get(req.call_id)
        if req.to_tag:
            dialog = self._dialog(req, addr)
            if dialog is None:
                self._respond(req, addr, 481)
            else:
                self._reinvite(dialog, req, addr)
            return
        if call is not None:  # retransmitted INVITE: repeat our last response
            if call.last_response:
                self._send(call.last_response, addr)
            return
        remembered = self._rejects.get((req.call_id, req.branch))
        if remembered is not None:
            self._send(remembered[0], addr)
            return
        if req.call_id in self._binding:  # retransmitted while its RTP port is being bound
            self._respond(req, addr, 100)
            return
        self.counters["invites"] += 1
        required = [r.strip() for r in req.get("Require").split(",") if r.strip()]
        if required:
            self._reject_new(req, addr, 420, headers=[("Unsupported", ", ".join(required))])
            return
        if req.content_type != "application/sdp" or not req.body:
            self._reject_new(req, addr, 488, reason="Not Acceptable Here (an SDP offer is required)")
            return
        try:
            neg = negotiate(req.body.decode("utf-8", "replace"))
        except NotAcceptable as exc:
            self.counters["rejected_488"] += 1
            self._reject_new(req, addr, 488, headers=[("Warning", f'304 gasdesk "{exc}"')])
            return
        overflow = False
        if self.active_calls >= self.max_calls:
            if self.overflow_prompt is None or self.overflow_calls >= self.max_overflow_calls:
                self.counters["busy"] += 1
                self._reject_new(req, addr, 486, headers=[("Retry-After", "30")])
                return
            overflow = True
        self._respond(req, addr, 100)
        self._setting_up[overflow] += 1
        self._binding.add(req.call_id)
        task = asyncio.get_running_loop().create_task(self._setup_call(req, addr, neg, overflow))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _setup_call(self, req: SipMessage, addr: tuple[str, int], neg: Negotiated, overflow: bool) -> None:
        stream = RtpStream(codec=neg.codec, payload_type=neg.payload_type,
                           dtmf_payload_type=neg.dtmf_payload_type,
                           remote=(neg.remote_address, neg.remote_port),
                           allowed_sources={addr[0], neg.remote_address})
        stream.send_enabled = neg.direction in ("sendrecv", "sendonly")
        try:
            await self.ports.open(self.host, stream)
        except OSError:
            self._reject_new(req, addr, 503, headers=[("Retry-After", "30")])
            return
        finally:
            self._setting_up[overflow] -= 1
            self._binding.discard(req.call_id)
        contact = req.get("Contact")
        call = _Call(call_id=req.call_id, invite=req, addr=addr, local_tag=sipmsg.new_tag(), neg=neg,
                     stream=stream, overflow=overflow,
                     remote_uri=sipmsg.header_uri(contact) if contact else sipmsg.header_uri(req.get("From")),
                     route_set=req.get_all("Record-Route"))
        self.calls[call.call_id] = call
        info = CallInfo(call_ref=call.call_id, caller=sipmsg.uri_user(sipmsg.header_uri(req.get("From"))),
                        callee=sipmsg.uri_user(req.uri), backend="sip", extra={"codec": neg.codec})
        try:
            call.session = SipMediaSession(info, _Leg(self, call), stream, bridge_provider=self.bridge_provider,
                                           hold_prompt=self.hold_prompt, clock=self.clock)
        except Exception:
            log.exception("sip: session setup failed")
            self._reject_invite(call, 500)
            self._finish(call)
            return
        call.last_response = self._respond(req, addr, 180, to_tag=call.local_tag,
                                           headers=[("Contact", self._contact())])
        self.counters["overflow" if overflow else "accepted"] += 1
        call.task = asyncio.current_task()
        await self._run_call(call, call.session)

    async def _run_call(self, call: _Call, session: SipMediaSession) -> None:
        try:
            if call.overflow and self.overflow_prompt is not None:
                await session.answer()
                await session.play(self.overflow_prompt, barge_in=False)
            else:
                await self.on_call(session)
        except CallHungUp:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sip: call handler failed (call %s)", call.call_id)
        finally:
            if not session.ended:
                await session.hangup()
            self._finish(call)

    def _finish(self, call: _Call) -> None:
        call.state = "ended"
        call.stream.close()
        self.ports.release(call.stream.local_port)
        # Keep the dialog a little so retransmitted BYE/ACK still match, then forget it.
        asyncio.get_running_loop().call_later(64 * T1, self._forget, call)

    def _forget(self, call: _Call) -> None:
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]

    def _reject_new(self, req: SipMessage, addr: tuple[str, int], status: int, **kw: Any) -> None:
        """A final error to a new INVITE, remembered (for retransmissions) and repeated until its ACK."""
        data = self._respond(req, addr, status, to_tag=sipmsg.new_tag(), **kw)
        acked = asyncio.Event()
        self._rejects[(req.call_id, req.branch)] = (data, acked)
        while len(self._rejects) > MAX_REMEMBERED_REJECTS:
            self._rejects.popitem(last=False)
        self._retransmit(data, addr, acked)

    def _reject_invite(self, call: _Call, status: int) -> None:
        if call.state != "early":
            return
        call.state = "ended"
        data = self._respond(call.invite, call.addr, status, to_tag=call.local_tag)
        call.last_response = data
        self._retransmit(data, call.addr, call.ack)

    def _answer(self, call: _Call) -> None:
        if call.state != "early":
            raise CallHungUp("caller", "ORIGINATOR_CANCEL")
        call.state = "confirmed"
        sdp = build_answer(self.advertised_host, call.stream.local_port, call.neg, version=call.sdp_version)
        data = self._respond(call.invite, call.addr, 200, to_tag=call.local_tag, body=sdp.encode(),
                             headers=[("Contact", self._contact()), ("Allow", ALLOW),
                                      ("Accept", "application/sdp")])
        call.last_response = data
        self._retransmit(data, call.addr, call.ack)
        task = asyncio.get_running_loop().create_task(self._ack_watch(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ack_watch(self, call: _Call) -> None:
        try:
            await asyncio.wait_for(call.ack.wait(), self.ack_timeout_s)
        except TimeoutError:
            if call.session is not None and not call.session.ended:
                self._send_bye(call)
                call.session.end("system", "ACK_TIMEOUT")

    def _reinvite(self, call: _Call, req: SipMessage, addr: tuple[str, int]) -> None:
        if call.state != "confirmed":
            self._respond(req, addr, 491 if call.state == "early" else 481)
            return
        if req.body:
            try:
                neg = negotiate(req.body.decode("utf-8", "replace"))
            except NotAcceptable:
                self._respond(req, addr, 488, to_tag=call.local_tag)
                return
            stream = call.stream
            stream.codec, stream.payload_type, stream.dtmf_payload_type = (
                neg.codec, neg.payload_type, neg.dtmf_payload_type)
            if (neg.remote_address, neg.remote_port) != (call.neg.remote_address, call.neg.remote_port):
                stream.remote = (neg.remote_address, neg.remote_port)
                stream.allowed_sources.add(neg.remote_address)
            stream.send_enabled = neg.direction in ("sendrecv", "sendonly")
            call.neg = neg
        call.sdp_version += 1
        call.invite = req
        call.ack = asyncio.Event()
        sdp = build_answer(self.advertised_host, call.stream.local_port, call.neg, version=call.sdp_version)
        data = self._respond(req, addr, 200, to_tag=call.local_tag, body=sdp.encode(),
                             headers=[("Contact", self._contact()), ("Allow", ALLOW)])
        call.last_response = data
        self._retransmit(data, addr, call.ack)

    def _ack(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = self.calls.get(req.call_id)
        if call is not None and (not req.to_tag or req.to_tag == call.local_tag):
            call.ack.set()
            return
        remembered = self._rejects.get((req.call_id, req.branch))
        if remembered is not None:
            remembered[1].set()

    def _dialog(self, req: SipMessage, addr: tuple[str, int]) -> _Call | None:
        """The call an in-dialog request belongs to: Call-ID, our tag, and the caller's IP must all match
        (without authentication, knowing the Call-ID and tags must not let a third host end or steer a call)."""
        call = self.calls.get(req.call_id)
        if call is None or req.to_tag != call.local_tag or addr[0] != call.addr[0]:
            return None
        return call

    def _bye(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = self._dialog(req, addr)
        if call is None:
            self._respond(req, addr, 481)
            return
        self._respond(req, addr, 200)
        call.ack.set()  # a BYE proves the caller got our 200
        if call.session is not None:
            call.session.end("caller")

    def _cancel(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = self.calls.get(req.call_id)
        if call is None or call.invite.branch != req.branch or addr[0] != call.addr[0]:
            self._respond(req, addr, 481)
            return
        self._respond(req, addr, 200, to_tag=call.local_tag)
        if call.state == "early":
            self._reject_invite(call, 487)
            if call.session is not None:
                call.session.end("caller", "ORIGINATOR_CANCEL")

    def _options(self, req: SipMessage, addr: tuple[str, int]) -> None:
        self._respond(req, addr, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp"),
                                               ("Contact", self._contact())])

    def _info(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = self._dialog(req, addr)
        if call is None or call.session is None:
            self._respond(req, addr, 481)
            return
        ctype = req.content_type
        if not req.body:
            self._respond(req, addr, 200)
            return
        if ctype not in ("application/dtmf-relay", "application/dtmf"):
            self._respond(req, addr, 415, headers=[("Accept", "application/dtmf-relay, application/dtmf")])
            return
        digit = info_digit(ctype, req.body.decode("utf-8", "replace"))
        if digit is None:
            self._respond(req, addr, 400, reason="Bad Request (no DTMF signal)")
            return
        self._respond(req, addr, 200)
        call.session.push_digit(digit)

    def _response(self, resp: SipMessage) -> None:
        num, method = resp.cseq
        if method == "INVITE":
            queue = self._invite_responses.get(resp.call_id)
            if queue is not None:
                if queue.qsize() < 32:
                    queue.put_nowait(resp)
                return
            call = self.calls.get(resp.call_id)
            if call is not None and call.outbound and resp.status == 200 and call.ack_bytes:
                self._send(call.ack_bytes, call.addr)  # our ACK was lost: the 200 is repeated
            return
        event = self._pending.get((resp.call_id, num))
        if event is not None and resp.status >= 200:
            event.set()
            del self._pending[(resp.call_id, num)]

    # --- requests we send
    def _send_bye(self, call: _Call) -> None:
        if call.bye_sent:
            return
        call.bye_sent = True
        call.state = "ended"
        call.local_cseq += 1
        inv = call.invite
        bye = SipMessage(method="BYE", uri=call.remote_uri or sipmsg.header_uri(inv.get("From")))
        bye.add("Via", f"SIP/2.0/UDP {self.advertised_host}:{self.port};rport;branch={sipmsg.new_branch()}")
        bye.add("Max-Forwards", "70")
        for route in call.route_set:
            bye.add("Route", route)
        if call.outbound:
            bye.add("From", call.local_from)
            bye.add("To", call.remote_to)
        else:
            bye.add("From", f"{inv.get('To')};tag={call.local_tag}" if not inv.to_tag else inv.get("To"))
            bye.add("To", inv.get("From"))
        bye.add("Call-ID", call.call_id)
        bye.add("CSeq", f"{call.local_cseq} BYE")
        data = bye.serialize()
        done = asyncio.Event()
        self._pending[(call.call_id, call.local_cseq)] = done
        self._send(data, call.addr)
        self._retransmit(data, call.addr, done)

    def _retransmit(self, data: bytes, addr: tuple[str, int], stop: asyncio.Event) -> None:
        """Repeat ``data`` at T1, 2·T1, … (capped at T2) until ``stop`` is set, for at most 64·T1."""
        if len(self._retransmitters) >= MAX_RETRANSMITTERS:
            return

        async def run() -> None:
            interval, waited = T1, 0.0
            while waited < 64 * T1:
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                    return
                except TimeoutError:
                    waited += interval
                    interval = min(interval * 2, T2)
                    self._send(data, addr)

        task = asyncio.get_running_loop().create_task(run())
        self._retransmitters.add(task)
        task.add_done_callback(self._retransmitters.discard)

    # --- calls we place (UAC)
    async def originate(self, number: str, target: tuple[str, int], *, caller_id: str | None = None,
                        timeout_s: float = 30.0, domain: str | None = None) -> OriginateResult:
        """Call ``number`` through the SIP gateway at ``target`` (an IP and port): an INVITE offering PCMU,
        PCMA and telephone-event, retransmitted until the gateway answers; 1xx while it rings; a 2xx is ACKed
        and becomes an answered :class:`SipMediaSession` (same RTP, DTMF and BYE handling as an inbound
        call); after ``timeout_s`` of ringing we CANCEL. ``number`` must already be checked digits."""
        if self._transport is None:
            return OriginateResult(Outcome.failed, cause="NOT_STARTED")
        stream = RtpStream(codec="PCMU", payload_type=0, dtmf_payload_type=OFFER_DTMF_PT, remote=(target[0], 9),
                           allowed_sources={target[0]})
        try:
            await self.ports.open(self.host, stream)
        except OSError:
            return OriginateResult(Outcome.failed, cause="NO_RTP_PORT")
        call_id = f"{secrets.token_hex(12)}@gasdesk"
        local_tag, branch = sipmsg.new_tag(), sipmsg.new_branch()
        uri = f"sip:{number}@{domain or target[0]}:{target[1]}"
        invite = SipMessage(method="INVITE", uri=uri)
        invite.add("Via", f"SIP/2.0/UDP {self.advertised_host}:{self.port};rport;branch={branch}")
        invite.add("Max-Forwards", "70")
        local_from = f"<sip:{caller_id or self.callee_name}@{self.advertised_host}>;tag={local_tag}"
        invite.add("From", local_from)
        invite.add("To", f"<{uri}>")
        invite.add("Call-ID", call_id)
        invite.add("CSeq", "1 INVITE")
        invite.add("Contact", self._contact())
        invite.add("Allow", ALLOW)
        invite.add("Content-Type", "application/sdp")
        invite.body = build_offer(self.advertised_host, stream.local_port).encode()
        placeholder = Negotiated(codec="PCMU", payload_type=0, dtmf_payload_type=OFFER_DTMF_PT,
                                 remote_address=target[0], remote_port=9, direction="sendrecv")
        call = _Call(call_id=call_id, invite=invite, addr=target, local_tag=local_tag, neg=placeholder,
                     stream=stream, overflow=False, remote_uri=uri, route_set=[], outbound=True, local_from=local_from)
        self.calls[call_id] = call
        responses: asyncio.Queue[SipMessage] = asyncio.Queue()
        self._invite_responses[call_id] = responses
        answered = False
        try:
            resp = await self._invite_transaction(call, responses, timeout_s)
            if resp is None:
                return OriginateResult(Outcome.failed, cause="NO_RESPONSE")
            if resp.status >= 300 or resp.status < 200:
                return OriginateResult(_outcome_of(resp.status), cause=str(resp.status))
            result = await self._confirm(call, resp)
            answered = result.answered
            return result
        finally:
            self._invite_responses.pop(call_id, None)
            if not answered:
                self._finish(call)

    async def _invite_transaction(self, call: _Call, responses: asyncio.Queue[SipMessage],
                                  timeout_s: float) -> SipMessage | None:
        """Send the INVITE and wait for its final response (ACKing a non-2xx); CANCEL once ``timeout_s``
        of ringing is over. None when the gateway never answered at all."""
        loop = asyncio.get_running_loop()
        data = call.invite.serialize()
        provisional = asyncio.Event()
        self._send(data, call.addr)
        self._retransmit(data, call.addr, provisional)  # timer A until any response
        deadline = loop.time() + timeout_s
        cancelled = False
        try:
            while True:
                # Without even a 100 Trying the gateway is gone: give up after timer B (or the ring time).
                limit = deadline if provisional.is_set() or cancelled else min(deadline, loop.time() + 64 * T1)
                try:
                    resp = await asyncio.wait_for(responses.get(), max(0.0, limit - loop.time()))
                except TimeoutError:
                    if cancelled or not provisional.is_set():
                        return None if not provisional.is_set() else _timeout_response(call.invite)
                    self._send_cancel(call)
                    cancelled, deadline = True, loop.time() + 4.0
                    continue
                provisional.set()
                if resp.status < 200:
                    continue
                if resp.status >= 300:
                    self._ack_non2xx(call, resp)
                if cancelled and resp.status == 200:
                    # Answered just as we cancelled: take the call and end it at once.
                    result = await self._confirm(call, resp)
                    if result.session is not None:
                        await result.session.hangup()
                    return _timeout_response(call.invite)
                return _timeout_response(call.invite) if cancelled and resp.status == 487 else resp
        finally:
            provisional.set()

    def _send_cancel(self, call: _Call) -> None:
        inv = call.invite
        cancel = SipMessage(method="CANCEL", uri=inv.uri)
        for name in ("Via", "Max-Forwards", "From", "To", "Call-ID"):
            cancel.add(name, inv.get(name))
        cancel.add("CSeq", f"{inv.cseq[0]} CANCEL")
        self._send(cancel.serialize(), call.addr)

    def _ack_non2xx(self, call: _Call, resp: SipMessage) -> None:
        """The ACK of a failure response: part of the INVITE transaction (same branch, their To)."""
        inv = call.invite
        ack = SipMessage(method="ACK", uri=inv.uri)
        for name in ("Via", "Max-Forwards", "From"):
            ack.add(name, inv.get(name))
        ack.add("To", resp.get("To"))
        ack.add("Call-ID", call.call_id)
        ack.add("CSeq", f"{inv.cseq[0]} ACK")
        self._send(ack.serialize(), call.addr)

    async def _confirm(self, call: _Call, resp: SipMessage) -> OriginateResult:
        """A 2xx to our INVITE: ACK it (a new transaction, to their Contact), take their SDP answer and hand
        the call over as an answered session. An answer without a usable SDP ends it with a BYE."""
        call.remote_to = resp.get("To")
        contact = resp.get("Contact")
        if contact:
            call.remote_uri = sipmsg.header_uri(contact)
        call.route_set = list(reversed(resp.get_all("Record-Route")))
        ack = SipMessage(method="ACK", uri=call.remote_uri)
        ack.add("Via", f"SIP/2.0/UDP {self.advertised_host}:{self.port};rport;branch={sipmsg.new_branch()}")
        ack.add("Max-Forwards", "70")
        for route in call.route_set:
            ack.add("Route", route)
        ack.add("From", call.local_from)
        ack.add("To", call.remote_to)
        ack.add("Call-ID", call.call_id)
        ack.add("CSeq", f"{call.invite.cseq[0]} ACK")
        call.ack_bytes = ack.serialize()
        self._send(call.ack_bytes, call.addr)
        call.state = "confirmed"
        call.ack.set()
        try:
            neg = negotiate(resp.body.decode("utf-8", "replace")) if resp.body else None
        except NotAcceptable:
            neg = None
        if neg is None:
            self._send_bye(call)
            return OriginateResult(Outcome.failed, cause="488")
        stream = call.stream
        stream.codec, stream.payload_type, stream.dtmf_payload_type = neg.codec, neg.payload_type, neg.dtmf_payload_type
        stream.remote = (neg.remote_address, neg.remote_port)
        stream.allowed_sources.add(neg.remote_address)
        stream.send_enabled = neg.direction in ("sendrecv", "sendonly")
        call.neg = neg
        info = CallInfo(call_ref=call.call_id, caller=sipmsg.uri_user(sipmsg.header_uri(call.local_from)),
                        callee=sipmsg.uri_user(call.invite.uri), backend="sip",
                        extra={"codec": neg.codec, "direction": "outbound"})
        session = SipMediaSession(info, _OutboundLeg(self, call), stream, bridge_provider=self.bridge_provider,
                                  hold_prompt=self.hold_prompt, clock=self.clock)
        call.session = session
        await session.answer()  # starts the media: the call is up
        self.counters["originated"] = self.counters.get("originated", 0) + 1
        task = asyncio.get_running_loop().create_task(self._watch_outbound(call, session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return OriginateResult(Outcome.answered, session=session, cause="200")

    async def _watch_outbound(self, call: _Call, session: SipMediaSession) -> None:
        try:
            await session.wait_hangup()
        finally:
            self._finish(call)

    def _contact(self) -> str:
        return f"<sip:{self.callee_name}@{self.advertised_host}:{self.port}>"


def _outcome_of(status: int) -> Outcome:
    """What a final failure response to our INVITE means for the caller of ``originate``."""
    if status in (486, 600):
        return Outcome.busy
    if status in (408, 480, 487):
        return Outcome.no_answer
    if status == 603:
        return Outcome.rejected
    return Outcome.failed


def _timeout_response(invite: SipMessage) -> SipMessage:
    """A stand-in 408 for a call that rang out (we cancelled it)."""
    return make_response(invite, 408)


class SipDialer:
    """The embedded back-end's :class:`~gasdesk.telephony.originate.Dialer`: calls go to the SIP gateway
    ``sip_outbound_proxy`` (host:port; a name is resolved once per call)."""

    backend = "sip"

    def __init__(self, endpoint: SipEndpoint, proxy: str) -> None:
        host, _, port = proxy.rpartition(":")
        self.endpoint = endpoint
        self.host = host
        self.port = int(port)

    async def originate(self, number: str, *, caller_id: str | None, timeout_s: float) -> OriginateResult:
        """Call ``number`` through the gateway (see :meth:`SipEndpoint.originate`)."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(self.host, self.port, family=socket.AF_INET,
                                                                 type=socket.SOCK_DGRAM)
        except OSError:
            return OriginateResult(Outcome.failed, cause="GATEWAY_UNRESOLVED")
        address = str(infos[0][4][0])
        return await self.endpoint.originate(number, (address, self.port), caller_id=caller_id, timeout_s=timeout_s,
                                             domain=self.host)


def endpoint_from_settings(settings: Settings, on_call: OnCall, **kw: Any) -> SipEndpoint:
    """A SipEndpoint configured by the ``sip_*``/``rtp_*`` settings; ``kw`` adds the overflow/hold prompts
    and the bridge provider."""
    return SipEndpoint(on_call, host=settings.sip_host, port=settings.sip_port,
                       advertised_host=settings.sip_advertised_host, rtp_port_min=settings.rtp_port_min,
                       rtp_port_max=settings.rtp_port_max, max_calls=settings.sip_max_calls,
                       max_overflow_calls=settings.sip_max_overflow_calls, **kw)


def info_digit(content_type: str, body: str) -> str | None:
    """The digit of a SIP INFO DTMF body (``Signal=5`` for dtmf-relay, ``5`` for application/dtmf)."""
    value = body.strip()
    if content_type == "application/dtmf-relay":
        value = ""
        for line in body.splitlines():
            key, _, val = line.partition("=")
            if key.strip().lower() == "signal":
                value = val.strip()
                break
    value = value.upper()
    if value.isdigit() and len(value) == 2 and int(value) < len(DTMF_EVENTS):  # "10" is *, "11" is #
        return DTMF_EVENTS[int(value)]
    if len(value) == 1 and value in DTMF_EVENTS:
        return value
    return None
