"""RTP (RFC 3550) for one G.711 audio stream: packets, a paced sender, a receiver with interarrival jitter,
RFC 4733 telephone-event decoding and symmetric RTP.

:class:`RtpStream` owns one UDP socket. Every 20 ms, on a schedule computed from the loop's monotonic clock
(``start + n * 20 ms``, so lateness never accumulates into drift), it asks its ``source`` for a frame of
160 linear samples (silence when there is none), encodes and sends it. Received audio is decoded and handed
to ``on_audio``; telephone-events become digits for ``on_dtmf``. Symmetric RTP: we send to the address the
caller's packets come from (latched), but only from an IP the call's signalling or SDP named, so a stranger
on the network cannot steer a call's audio to itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from gasdesk.telephony.sip import g711

log = logging.getLogger(__name__)

FRAME_S = 0.020
FRAME_SAMPLES = 160
FRAME_BYTES = FRAME_SAMPLES * 2  # 16-bit linear
CLOCK_RATE = 8000
DTMF_EVENTS = "0123456789*#ABCD"
_HEADER = struct.Struct("!BBHII")


@dataclass
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def build(self) -> bytes:
        """Wire form (version 2, no padding, extension or CSRC)."""
        return _HEADER.pack(0x80, (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                            self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                            self.ssrc & 0xFFFFFFFF) + self.payload


def parse_rtp(data: bytes) -> RtpPacket | None:
    """Parse an RTP packet; None for anything that is not well-formed version-2 RTP (RTCP included)."""
    if len(data) < 12:
        return None
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        return None
    pt = b1 & 0x7F
    if 72 <= pt <= 76:  # RTCP packet types 200-204 share the port under rtcp-mux
        return None
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension
        if len(data) < offset + 4:
            return None
        (ext_words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * ext_words
    end = len(data)
    if b0 & 0x20:  # padding: the last octet counts it
        pad = data[-1]
        if pad == 0 or pad > end - offset:
            return None
        end -= pad
    if offset > end:
        return None
    return RtpPacket(payload_type=pt, sequence=seq, timestamp=ts, ssrc=ssrc, payload=data[offset:end],
                     marker=bool(b1 & 0x80))


@dataclass
class ReceiverStats:
    """RFC 3550 §6.4.1 interarrival jitter (in timestamp units, reported in ms) and packet counts."""

    packets: int = 0
    jitter: float = 0.0
    max_jitter: float = 0.0
    highest_seq: int = -1
    base_seq: int = -1
    _cycles: int = 0
    _last_transit: float | None = None
    _ssrc: int | None = None
    samples: list[float] = field(default_factory=list)
    keep_samples: bool = False

    def update(self, pkt: RtpPacket, arrival_s: float) -> None:
        """Account for one packet arriving at ``arrival_s`` (monotonic seconds)."""
        if pkt.ssrc != self._ssrc:  # a new source restarts the estimate (RFC 3550 §8.2)
            self._ssrc, self._last_transit, self.base_seq, self.highest_seq, self._cycles = (
                pkt.ssrc, None, pkt.sequence, pkt.sequence, 0)
        self.packets += 1
        delta = (pkt.sequence - self.highest_seq) & 0xFFFF
        if 0 < delta < 0x8000:
            if pkt.sequence < self.highest_seq:
                self._cycles += 0x10000
            self.highest_seq = pkt.sequence
        transit = arrival_s * CLOCK_RATE - pkt.timestamp
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self.jitter += (d - self.jitter) / 16.0
            self.max_jitter = max(self.max_jitter, self.jitter)
            if self.keep_samples:
                self.samples.append(self.jitter_ms)
        self._last_transit = transit

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000.0 / CLOCK_RATE

    @property
    def expected(self) -> int:
        return 0 if self.base_seq < 0 else self._cycles + self.highest_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)


class DtmfDecoder:
    """RFC 4733 telephone-events → digits. A digit is reported once, on its end packet (which senders
    repeat three times: the repeats share the event's timestamp and are dropped). If every end packet of an
    event is lost, the digit is reported when the next event begins."""

    def __init__(self) -> None:
        self._active: tuple[int, int] | None = None  # (timestamp, event) of an event without its end yet
        self._done: list[int] = []  # timestamps of recently finished events

    def feed(self, payload: bytes, timestamp: int) -> list[str]:
        """Digits completed by this telephone-event payload (usually none or one)."""
        if len(payload) < 4 or payload[0] >= len(DTMF_EVENTS):
            return []
        event, end = payload[0], bool(payload[1] & 0x80)
        if timestamp in self._done:
            return []
        out: list[str] = []
        if self._active is not None and self._active[0] != timestamp:
            out.append(DTMF_EVENTS[self._active[1]])
            self._finish(self._active[0])
        if end:
            out.append(DTMF_EVENTS[event])
            self._finish(timestamp)
        else:
            self._active = (timestamp, event)
        return out

    def _finish(self, timestamp: int) -> None:
        self._active = None
        self._done = [*self._done[-7:], timestamp]


class RtpStream(asyncio.DatagramProtocol):
    """One call's RTP socket: paced sender, receiver, DTMF, symmetric RTP. Create with :func:`open_stream`."""

    def __init__(self, *, codec: str, payload_type: int, dtmf_payload_type: int | None,
                 remote: tuple[str, int], allowed_sources: set[str]) -> None:
        self.codec = codec
        self.payload_type = payload_type
        self.dtmf_payload_type = dtmf_payload_type
        self.remote = remote
        self.allowed_sources = set(allowed_sources)
        self.send_enabled = True
        self.source: Callable[[], bytes | None] = lambda: None
        self.on_audio: Callable[[bytes], None] = lambda pcm: None
        self.on_dtmf: Callable[[str], None] = lambda digit: None
        self.on_tick: Callable[[bytes], None] = lambda pcm: None  # every frame we play out (for recording)
        self.stats = ReceiverStats()
        self.packets_sent = 0
        self.local_port = 0
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._dtmf = DtmfDecoder()
        self._transport: asyncio.DatagramTransport | None = None
        self._clock: MediaClock | None = None
        self._first = True
        self._silence = b"\x00" * FRAME_BYTES

    # --- asyncio protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self._receive(data, (str(addr[0]), int(addr[1])))
        except Exception:  # never let one odd packet kill the socket
            log.exception("rtp: dropped a packet that failed handling")

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable etc. on UDP: the peer may not be listening yet; keep going.
        log.debug("rtp: socket error %s", exc)

    def _receive(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = parse_rtp(data)
        if pkt is None:
            return
        if addr[0] not in self.allowed_sources:
            return
        if pkt.payload_type == self.payload_type:
            if addr != self.remote:
                self.remote = addr  # symmetric RTP: latch to where the caller really sends from
            self.stats.update(pkt, asyncio.get_running_loop().time())
            if len(pkt.payload) <= 2 * FRAME_SAMPLES * 4:  # up to 80 ms per packet; bigger is not ours
                self.on_audio(g711.decode(pkt.payload, self.codec))
        elif self.dtmf_payload_type is not None and pkt.payload_type == self.dtmf_payload_type:
            for digit in self._dtmf.feed(pkt.payload, pkt.timestamp):
                self.on_dtmf(digit)

    # --- sending
    def start(self, clock: MediaClock | None = None) -> None:
        """Start sending on ``clock`` (an endpoint shares one among its calls; default: a clock of its own)."""
        if self._clock is None:
            self._clock = clock or MediaClock()
            self._clock.add(self)

    def _skip(self, frames: int) -> None:
        """The clock skipped ``frames`` ticks: keep the RTP timestamp in step with real time."""
        self._ts = (self._ts + frames * FRAME_SAMPLES) & 0xFFFFFFFF

    def _tick_now(self) -> None:
        self._send_frame(self._first)
        self._first = False

    def _send_frame(self, marker: bool) -> None:
        pcm = self.source()
        if pcm is None or len(pcm) != FRAME_BYTES:
            pcm = self._silence if pcm is None else (pcm + self._silence)[:FRAME_BYTES]
        self.on_tick(pcm)
        if self.send_enabled and self._transport is not None:
            pkt = RtpPacket(self.payload_type, self._seq, self._ts, self._ssrc, g711.encode(pcm, self.codec),
                            marker=marker)
            self._transport.sendto(pkt.build(), self.remote)
            self.packets_sent += 1
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF

    def close(self) -> None:
        """Stop sending and close the socket (idempotent)."""
        if self._clock is not None:
            self._clock.remove(self)
            self._clock = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class MediaClock:
    """The 20 ms schedule that sends every registered stream's next frame. Ticks fall at ``start + n·20 ms``
    on the loop's monotonic clock, so lateness never accumulates into drift; after a stall of more than
    200 ms the missed ticks are skipped (not burst) and the streams' timestamps jump with real time. One clock
    for all of an endpoint's calls means one timer wake-up per 20 ms instead of one per call."""

    def __init__(self) -> None:
        self._streams: dict[RtpStream, None] = {}  # insertion-ordered: each call keeps its slot in the tick
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.late_max = 0.0  # seconds a tick ran after its due time, worst case
        self.late_sum = 0.0

    def add(self, stream: RtpStream) -> None:
        self._streams[stream] = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rtp-clock")

    def remove(self, stream: RtpStream) -> None:
        self._streams.pop(stream, None)
        if not self._streams and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while self._streams:
            n += 1
            due = start + n * FRAME_S
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.2:
                missed = int(-delay / FRAME_S)
                n += missed
                due += missed * FRAME_S
                for stream in list(self._streams):
                    stream._skip(missed)
            late = loop.time() - due
            self.ticks += 1
            self.late_sum += late
            self.late_max = max(self.late_max, late)
            for stream in list(self._streams):
                try:
                    stream._tick_now()
                except Exception:
                    log.exception("rtp: frame not sent")


async def bind_stream(stream: RtpStream, host: str, port: int) -> int:
    """Bind ``stream`` to ``host``:``port`` (0: any free port); returns the port."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: stream, local_addr=(host, port))
    stream.local_port = int(transport.get_extra_info("sockname")[1])
    return stream.local_port


class PortAllocator:
    """Even RTP ports from ``[low, high]``; a port in use by something else is skipped."""

    def __init__(self, low: int, high: int) -> None:
        if not 1024 <= low <= high <= 65535:
            raise ValueError("RTP port range must lie within 1024-65535")
        self.low, self.high = low + (low % 2), high
        self._used: set[int] = set()
        self._next = self.low

    @property
    def capacity(self) -> int:
        return (self.high - self.low) // 2 + 1

    async def open(self, host: str, stream: RtpStream) -> int:
        """Bind ``stream`` to a free port; raises OSError when the range is exhausted."""
        for _ in range(self.capacity):
            port = self._next
            self._next = self.low if port + 2 > self.high else port + 2
            if port in self._used:
                continue
            try:
                await bind_stream(stream, host, port)
            except OSError:
                continue
            self._used.add(port)
            stream.local_port = port
            return port
        raise OSError("no free RTP port")

    def release(self, port: int) -> None:
        self._used.discard(port)
