"""G.711 tables, RTP packets, RFC 3550 jitter, RFC 4733 DTMF and the paced sender."""

from __future__ import annotations

import asyncio
import warnings

import numpy as np
import pytest

from gasdesk.telephony.sip import g711
from gasdesk.telephony.sip.rtp import DtmfDecoder, ReceiverStats, RtpPacket, RtpStream, bind_stream, parse_rtp

pytestmark = pytest.mark.no_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the stdlib reference (deprecated, removed in 3.13): only to check our tables

ALL_SAMPLES = np.arange(-32768, 32768, dtype="<i2").tobytes()


@pytest.mark.parametrize("codec, enc, dec", [("PCMU", audioop.lin2ulaw, audioop.ulaw2lin),
                                             ("PCMA", audioop.lin2alaw, audioop.alaw2lin)])
def test_g711_is_bit_exact_with_the_reference(codec: str, enc, dec) -> None:  # noqa: ANN001
    assert g711.encode(ALL_SAMPLES, codec) == enc(ALL_SAMPLES, 2)
    codes = bytes(range(256))
    assert g711.decode(codes, codec) == dec(codes, 2)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_round_trip_error_is_small(codec: str) -> None:
    t = np.arange(8000) / 8000
    pcm = (12000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    back = np.frombuffer(g711.decode(g711.encode(pcm.tobytes(), codec), codec), dtype="<i2")
    err = np.abs(back.astype(int) - pcm.astype(int))
    assert err.max() <= 512 and np.sqrt(np.mean(err**2)) < 200  # ~8-bit companding
    codes = bytes(range(256))  # decode∘encode is the identity on codes (except μ-law's two zeros)
    again = g711.encode(g711.decode(codes, codec), codec)
    assert sum(a != b for a, b in zip(again, codes, strict=True)) <= 1
    assert g711.decode(g711.silence(codec, 4), codec) in (b"\x00" * 8, np.full(4, 8, "<i2").tobytes())


def test_rtp_packet_round_trip_and_odd_packets() -> None:
    pkt = RtpPacket(0, 65535, 2**32 - 1, 0xDEADBEEF, b"\xff" * 160, marker=True)
    back = parse_rtp(pkt.build())
    assert back == pkt
    raw = bytearray(pkt.build())
    raw[0] = 0x80 | 0x20 | 0x10 | 0x01  # padding + extension + one CSRC
    with_ext = bytes(raw[:12]) + b"\x00\x00\x00\x01" + b"\xbe\xde\x00\x01" + b"\x01\x02\x03\x04" + b"abc" + b"\x00\x02"
    parsed = parse_rtp(with_ext)
    assert parsed is not None and parsed.payload == b"abc"
    assert parse_rtp(b"\x40" + bytes(11)) is None  # version 1
    assert parse_rtp(bytes([0x80, 200]) + bytes(10)) is None  # RTCP sender report
    assert parse_rtp(b"\x80\x00") is None
    assert parse_rtp(bytes([0xA0, 0]) + bytes(10) + b"\x00") is None  # padding count 0


def test_jitter_follows_rfc3550() -> None:
    steady = ReceiverStats()
    for i in range(100):
        steady.update(RtpPacket(0, i, i * 160, 1, b""), 10.0 + i * 0.020)
    assert steady.jitter_ms < 0.001 and steady.lost == 0 and steady.packets == 100
    wobbly = ReceiverStats()
    for i in range(2000):  # every packet alternately 5 ms late / on time: |D| = 5 ms, J → 5 ms
        wobbly.update(RtpPacket(0, i, i * 160, 1, b""), 10.0 + i * 0.020 + (0.005 if i % 2 else 0))
    assert wobbly.jitter_ms == pytest.approx(5.0, rel=0.01)
    gaps = ReceiverStats()
    for i in [*range(0, 10), *range(15, 20)]:
        gaps.update(RtpPacket(0, (65530 + i) & 0xFFFF, i * 160, 7, b""), i * 0.02)
    assert gaps.expected == 20 and gaps.lost == 5  # across the sequence wrap


def test_rfc4733_end_packets_are_deduplicated() -> None:
    dec = DtmfDecoder()

    def ev(event: int, end: bool, duration: int) -> bytes:
        return bytes([event, (0x80 if end else 0) | 10]) + duration.to_bytes(2, "big")

    digits: list[str] = []
    for ts, event in ((1000, 1), (3000, 11)):
        for dur in (160, 320, 480):
            digits += dec.feed(ev(event, False, dur), ts)
        for _ in range(3):
            digits += dec.feed(ev(event, True, 800), ts)
    assert digits == ["1", "#"]
    # Every end packet of '5' lost: reported when the next event starts.
    assert dec.feed(ev(5, False, 160), 5000) == []
    assert dec.feed(ev(9, False, 160), 7000) == ["5"]
    assert dec.feed(ev(9, True, 800), 7000) == ["9"]
    assert dec.feed(b"\x20\x80\x00\x10", 9000) == []  # event 32 is not a DTMF digit
    assert dec.feed(b"\x01", 9000) == []


@pytest.mark.bench  # real-time pacing: alone after the SQLite pass, not beside three busy workers
async def test_sender_paces_20ms_frames_without_drift() -> None:
    arrivals: list[tuple[float, RtpPacket]] = []
    loop = asyncio.get_running_loop()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            pkt = parse_rtp(data)
            assert pkt is not None
            arrivals.append((loop.time(), pkt))

    sink_transport, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    sink_port = sink_transport.get_extra_info("sockname")[1]
    stream = RtpStream(codec="PCMA", payload_type=8, dtmf_payload_type=None, remote=("127.0.0.1", sink_port),
                       allowed_sources={"127.0.0.1"})
    await bind_stream(stream, "127.0.0.1", 0)
    stream.start()
    await asyncio.sleep(1.0)
    stream.close()
    sink_transport.close()
    assert 45 <= len(arrivals) <= 51
    t0, first = arrivals[0]
    assert first.marker and first.payload == g711.silence("PCMA")
    offsets = []
    for i, (t, pkt) in enumerate(arrivals):
        assert pkt.sequence == (first.sequence + i) & 0xFFFF
        assert pkt.timestamp == (first.timestamp + 160 * i) & 0xFFFFFFFF
        offsets.append(abs((t - t0) - i * 0.020))
    # On the schedule start + n·20 ms: a busy moment may delay a frame now and then, but a late frame does not
    # push the ones after it (a sender sleeping 20 ms after each send would drift by its own overhead every
    # frame, and be ~50 ms behind after a second).
    assert sum(o < 0.015 for o in offsets) >= 0.8 * len(offsets), offsets
    assert sorted(offsets[-10:])[5] < 0.015, offsets  # the median of the last frames: no accumulated drift
    stats = ReceiverStats()
    for t, pkt in arrivals:
        stats.update(pkt, t)
    assert stats.jitter_ms < 10


async def test_symmetric_rtp_latches_only_to_the_callers_host() -> None:
    loop = asyncio.get_running_loop()
    heard: list[bytes] = []
    stream = RtpStream(codec="PCMU", payload_type=0, dtmf_payload_type=None, remote=("127.0.0.1", 9),
                       allowed_sources={"127.0.0.1"})
    stream.on_audio = heard.append
    port = await bind_stream(stream, "127.0.0.1", 0)
    frame = RtpPacket(0, 1, 160, 42, g711.encode(b"\x10\x00" * 160, "PCMU")).build()
    stranger, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.2", 0))
    caller, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    try:
        stranger.sendto(frame, ("127.0.0.1", port))
        await asyncio.sleep(0.05)
        assert stream.remote == ("127.0.0.1", 9) and heard == []  # another host cannot take the stream
        caller.sendto(frame, ("127.0.0.1", port))
        await asyncio.sleep(0.05)
        assert stream.remote == caller.get_extra_info("sockname")  # latched to where the caller sends from
        assert len(heard) == 1 and len(heard[0]) == 320
    finally:
        stream.close()
        stranger.close()
        caller.close()
