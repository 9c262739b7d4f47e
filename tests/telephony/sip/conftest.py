"""Fixtures for the embedded SIP back-end: prompt WAVs, an endpoint on loopback, and a real baresip."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gasdesk.telephony.media import Prompt
from gasdesk.telephony.sip import message as sipmsg
from gasdesk.telephony.sip.session import SipMediaSession
from gasdesk.telephony.sip.ua import SipEndpoint
from tests.servers import free_port, free_udp_and_tcp_port

BARESIP = shutil.which("baresip") or "/usr/bin/baresip"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")


def write_tone(path: Path, *, freq: float = 1000.0, seconds: float = 1.0, amplitude: int = 8000) -> Path:
    """An 8 kHz mono 16-bit WAV with a sine tone."""
    t = np.arange(int(8000 * seconds)) / 8000.0
    pcm = (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    return path


def dominant_hz(pcm: bytes, rate: int = 8000) -> float:
    """The strongest frequency in 16-bit mono PCM."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


def free_rtp_range(size: int = 40) -> tuple[int, int]:
    """A random even port range in 20000-59999 (collisions are skipped by the allocator anyway)."""
    base = 20000 + 2 * secrets.randbelow(20000 - size)
    return base, base + size - 1


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


@pytest.fixture
def prompt(tmp_path: Path) -> Prompt:
    return Prompt(path=write_tone(tmp_path / "prompt.wav", freq=1000.0, seconds=1.0), text="测试提示")


@pytest.fixture
async def make_endpoint() -> AsyncIterator[Callable[..., Awaitable[SipEndpoint]]]:
    """Start SipEndpoints on loopback with free ports; all stopped at the end."""
    started: list[SipEndpoint] = []

    async def make(on_call: Callable[[SipMediaSession], Awaitable[None]], **kw: Any) -> SipEndpoint:
        low, high = free_rtp_range()
        kw.setdefault("rtp_port_min", low)
        kw.setdefault("rtp_port_max", high)
        ep = SipEndpoint(on_call, host="127.0.0.1", port=0, **kw)
        await ep.start()
        started.append(ep)
        return ep

    yield make
    for ep in started:
        await asyncio.wait_for(ep.stop(), 5)


class Baresip:
    """A baresip process on loopback driven over its ctrl_tcp JSON/netstring interface."""

    def __init__(self, home: Path, codec_modules: tuple[str, ...] = ("g711",), user: str = "caller") -> None:
        self.home = home
        self.user = user
        self.codec_modules = codec_modules
        self.sip_port = free_udp_and_tcp_port()
        self.ctrl_port = free_port()
        self.snd_dir = home / "snd"
        self.voice = home / "voice.wav"
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._event_added = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def write_config(self) -> None:
        self.snd_dir.mkdir(parents=True, exist_ok=True)
        # The caller's "voice": a 440 Hz tone, long enough for any test.
        write_tone(self.voice, freq=440.0, seconds=20.0, amplitude=6000)
        low, high = free_rtp_range(20)
        (self.home / "config").write_text("\n".join([
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{self.sip_port}",
            "audio_player aubridge,nowhere",
            "audio_alert aubridge,nowhere",
            f"audio_source aufile,{self.voice}",
            f"module_path {BARESIP_MODULES}",
            *(f"module {m}.so" for m in self.codec_modules), "module aufile.so", "module aubridge.so", "module sndfile.so",
            "module_app account.so", "module_app menu.so", "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            f"snd_path {self.snd_dir}",
            f"rtp_ports {low}-{high}",
            "",
        ]))
        (self.home / "accounts").write_text(f"<sip:{self.user}@127.0.0.1>;regint=0\n")

    async def start(self) -> None:
        self.write_config()
        with (self.home / "stdout.log").open("wb") as out:  # the child keeps its own descriptor
            self.proc = await asyncio.create_subprocess_exec(
                BARESIP, "-f", str(self.home), stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                break
            except OSError:
                if loop.time() > deadline or self.proc.returncode is not None:
                    raise RuntimeError("baresip did not start: " + self.log()) from None
                await asyncio.sleep(0.05)
        self._read_task = loop.create_task(self._read())

    def log(self) -> str:
        path = self.home / "stdout.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            length = await self._reader.readuntil(b":")
            data = await self._reader.readexactly(int(length[:-1]))
            await self._reader.readexactly(1)  # the trailing comma
            msg = json.loads(data)
            if msg.get("event"):
                self.events.append(msg)
                self._event_added.set()
            else:
                await self._responses.put(msg)

    async def command(self, command: str, params: str = "", timeout: float = 3.0) -> dict[str, Any]:
        """Run a baresip command (``dial``, ``sndcode``, ``hangup``) and return its response."""
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": secrets.token_hex(4)}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        return await asyncio.wait_for(self._responses.get(), timeout)

    async def wait_event(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first event of type ``kind`` (e.g. CALL_ESTABLISHED, CALL_CLOSED)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for ev in self.events:
                if ev.get("type") == kind:
                    return ev
            self._event_added.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} from baresip; events: {[e.get('type') for e in self.events]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event_added.wait(), remaining)

    def heard(self) -> bytes:
        """What baresip decoded from our RTP (sndfile's ``*-dec.wav``), as 16-bit mono PCM."""
        files = sorted(self.snd_dir.glob("*dec*.wav"))
        if not files:
            return b""
        with wave.open(str(files[-1]), "rb") as w:
            return w.readframes(w.getnframes())

    async def stop(self) -> None:
        if self._read_task is not None:
            self._read_task.cancel()
        if self._writer is not None:
            self._writer.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 3)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture
async def baresip(tmp_path: Path) -> AsyncIterator[Baresip]:
    if not BARESIP_MODULES.exists():
        pytest.fail("baresip is not installed (scripts/install-test-deps.sh installs it)")
    b = Baresip(tmp_path / "baresip")
    b.home.mkdir()
    await b.start()
    yield b
    await b.stop()
