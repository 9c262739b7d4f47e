"""``SipMediaSession``: the embedded back-end's :class:`~gasdesk.telephony.media.MediaSession`.

One session per accepted call. Audio out is pulled frame by frame by the call's :class:`RtpStream` every
20 ms from whichever source is current: hold audio, the bridged agent, the prompt being played, or
silence. DTMF from RFC 4733 telephone-events and from SIP INFO land in one buffer; digits pressed during a
``play`` stay there for the next ``collect_digits``.

Recordings are **stereo** 8 kHz 16-bit WAV: left channel the caller, right channel what the caller hears
(prompts, the agent, hold audio), one 20 ms frame per channel per tick, so both sides stay time-aligned.

Bridging to an agent goes through a :data:`BridgeProvider` (the WebRTC softphone registers one): given a
:class:`BridgeTarget` it returns a :class:`BridgePeer` that consumes the caller's frames and supplies the
agent's.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gasdesk.telephony.media import (
    AgentDidNotAnswer,
    BridgeTarget,
    CallHungUp,
    CallInfo,
    Prompt,
    RecordingInfo,
    SpeechDetector,
)
from gasdesk.telephony.sip.rtp import FRAME_BYTES, MediaClock, RtpStream

log = logging.getLogger(__name__)

MAX_PROMPT_BYTES = 8000 * 2 * 600  # ten minutes of 8 kHz 16-bit audio
MAX_BUFFERED_DIGITS = 32


class BridgeUnavailable(RuntimeError):
    """No bridge provider is registered, or it could not reach the agent."""


class BridgePeer(Protocol):
    """The agent's side of a bridge, as the embedded back-end sees it. Frames are 20 ms of 8 kHz mono
    16-bit little-endian PCM (320 bytes)."""

    async def wait_answered(self) -> None:
        """Return once the agent's leg is answered."""

    def feed_caller(self, pcm: bytes) -> None:
        """One frame of the caller's audio (called from the event loop; must not block)."""

    def agent_frame(self) -> bytes | None:
        """The next frame of the agent's audio, or None for silence (called every 20 ms)."""

    async def wait_ended(self) -> str:
        """Return when the agent's leg ends; the value says who ended it ("agent" or "system")."""

    async def close(self) -> None:
        """End the agent's leg (idempotent)."""


BridgeProvider = Callable[[BridgeTarget, CallInfo], Awaitable[BridgePeer]]


class SignalingLeg(Protocol):
    """What the session needs from the SIP user agent for its call."""

    async def send_answer(self) -> None:
        """Send 200 OK with our SDP (retransmitted until ACK)."""

    def send_bye(self) -> None:
        """End the confirmed dialog from our side."""

    def send_reject(self, status: int) -> None:
        """Send a final error response to the INVITE that is still unanswered."""


_prompt_cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()


def load_prompt(path: Path) -> bytes:
    """The PCM of an 8 kHz mono 16-bit WAV (cached by path, mtime and size); ValueError otherwise."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    pcm = _prompt_cache.get(key)
    if pcm is not None:
        _prompt_cache.move_to_end(key)
        return pcm
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, 8000):
            raise ValueError(f"prompt {path.name} is not 8 kHz mono 16-bit PCM")
        if w.getnframes() * 2 > MAX_PROMPT_BYTES:
            raise ValueError(f"prompt {path.name} is too long")
        pcm = w.readframes(w.getnframes())
    _prompt_cache[key] = pcm
    if len(_prompt_cache) > 64:
        _prompt_cache.popitem(last=False)
    return pcm


class _Recorder:
    """Stereo WAV: left the caller, right what the caller hears."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115 - closed in close()
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(8000)
        self._rx = bytearray()
        self.frames = 0

    def caller_audio(self, pcm: bytes) -> None:
        self._rx += pcm
        if len(self._rx) > 4 * FRAME_BYTES:  # the caller's clock runs ahead: drop the oldest audio
            del self._rx[: len(self._rx) - 2 * FRAME_BYTES]

    def tick(self, out_pcm: bytes) -> None:
        left = bytes(self._rx[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\x00")
        del self._rx[:FRAME_BYTES]
        stereo = np.empty(FRAME_BYTES, dtype="<i2")
        stereo[0::2] = np.frombuffer(left, dtype="<i2")
        stereo[1::2] = np.frombuffer(out_pcm, dtype="<i2")
        self._wav.writeframesraw(stereo.tobytes())
        self.frames += FRAME_BYTES // 2

    def close(self) -> RecordingInfo:
        self._wav.close()
        return RecordingInfo(path=self.path, duration_s=self.frames / 8000, bytes=self.path.stat().st_size)


class SipMediaSession:
    """One embedded call's media. Created by :class:`~gasdesk.telephony.sip.ua.SipEndpoint`."""

    def __init__(self, info: CallInfo, leg: SignalingLeg, stream: RtpStream, *,
                 bridge_provider: BridgeProvider | None = None, hold_prompt: Prompt | None = None,
                 clock: MediaClock | None = None) -> None:
        self.info = info
        self.stream = stream
        self._clock = clock
        self._leg = leg
        self._bridge_provider = bridge_provider
        self._hold_pcm = load_prompt(hold_prompt.path) if hold_prompt else b""
        self._hold_pos = 0
        self._answered = False
        self._ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._end_cause = ""
        self._digits: deque[str] = deque(maxlen=MAX_BUFFERED_DIGITS)
        self._digit_event = asyncio.Event()
        self._play_pcm = b""
        self._play_pos = 0
        self._play_done: asyncio.Event | None = None
        self._held = False
        self._recorder: _Recorder | None = None
        self._finished_recording: RecordingInfo | None = None  # closed by the end of the call
        self._closing: set[asyncio.Task[None]] = set()
        self._peer: BridgePeer | None = None
        self._peer_task: asyncio.Task[None] | None = None
        self._listener: tuple[SpeechDetector, asyncio.Event] | None = None  # listen() in progress
        stream.source = self._next_frame
        stream.on_audio = self._caller_audio
        stream.on_dtmf = self.push_digit
        stream.on_tick = self._tick

    # --- called by the user agent
    def push_digit(self, digit: str) -> None:
        """A DTMF digit from RFC 4733 or SIP INFO."""
        if self._ended.done():
            return
        self._digits.append(digit)
        self._digit_event.set()

    def end(self, by: str, cause: str = "NORMAL_CLEARING") -> None:
        """The call is over (BYE, CANCEL, timeout or our hangup): release media, wake every waiter."""
        if self._ended.done():
            return
        self._end_cause = cause
        self._ended.set_result(by)
        self.stream.close()
        if self._recorder is not None:
            rec, self._recorder = self._recorder, None
            try:
                self._finished_recording = rec.close()  # stop_recording() still returns it
            except Exception:
                log.exception("sip: recording not closed cleanly")
        if self._peer is not None:
            task = asyncio.get_running_loop().create_task(self._peer.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if self._peer_task is not None:
            self._peer_task.cancel()

    @property
    def ended(self) -> bool:
        return self._ended.done()

    # --- media plumbing (event loop, every 20 ms)
    def _next_frame(self) -> bytes | None:
        if self._held:
            if not self._hold_pcm:
                return None
            frame = self._hold_pcm[self._hold_pos:self._hold_pos + FRAME_BYTES]
            self._hold_pos = (self._hold_pos + FRAME_BYTES) % max(len(self._hold_pcm), 1)
            return frame
        if self._peer is not None:
            return self._peer.agent_frame()
        if self._play_done is not None:
            frame = self._play_pcm[self._play_pos:self._play_pos + FRAME_BYTES]
            self._play_pos += FRAME_BYTES
            if self._play_pos >= len(self._play_pcm):
                self._play_done.set()
                self._play_done = None
            return frame or None
        return None

    def _caller_audio(self, pcm: bytes) -> None:
        if self._recorder is not None:
            self._recorder.caller_audio(pcm)
        if self._peer is not None and not self._held:
            self._peer.feed_caller(pcm)
        if self._listener is not None and self._listener[0].feed(pcm):
            self._listener[1].set()

    def _tick(self, pcm: bytes) -> None:
        if self._recorder is not None:
            self._recorder.tick(pcm)

    # --- helpers
    def _check(self) -> None:
        if self._ended.done():
            raise CallHungUp(self._ended.result(), self._end_cause or "NORMAL_CLEARING")

    async def _until(self, *waits: Awaitable[object], timeout: float | None = None) -> None:
        """Wait for the first of ``waits`` or the end of the call (then raise CallHungUp)."""
        tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait([*tasks, self._ended], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
        self._check()

    def _stop_playback(self) -> None:
        self._play_done = None
        self._play_pcm = b""

    # --- MediaSession
    async def answer(self) -> None:
        """Send 200 OK and start the media."""
        self._check()
        if self._answered:
            return
        await self._leg.send_answer()
        self._answered = True
        self.stream.start(self._clock)

    async def play(self, prompt: Prompt, *, barge_in: bool = True) -> str:
        """Stream ``prompt`` to the caller; a digit ends it early when ``barge_in``."""
        self._check()
        pcm = load_prompt(prompt.path)
        if barge_in and self._digits:
            return self._digits[0]
        done = asyncio.Event()
        self._play_pcm, self._play_pos, self._play_done = pcm, 0, done
        if not pcm:
            return ""
        try:
            while not done.is_set():
                self._digit_event.clear()
                waits: list[Awaitable[object]] = [done.wait()]
                if barge_in:
                    waits.append(self._digit_event.wait())
                await self._until(*waits)
                if barge_in and self._digits:
                    return self._digits[0]
            return ""
        finally:
            if self._play_done is done:
                self._stop_playback()

    async def collect_digits(self, prompt: Prompt | None, *, max_digits: int = 1, timeout_s: float = 5.0,
                             terminators: str = "#", barge_in: bool = True) -> str:
        """Play ``prompt`` then gather up to ``max_digits`` digits; ``timeout_s`` bounds the wait for each
        digit. Returns the digits so far on timeout ('' if none), without the terminator."""
        if prompt is not None:
            await self.play(prompt, barge_in=barge_in)
        self._check()
        got = ""
        loop = asyncio.get_running_loop()
        while len(got) < max_digits:
            if not self._digits:
                self._digit_event.clear()
                deadline = loop.time() + timeout_s
                while not self._digits:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return got
                    await self._until(self._digit_event.wait(), timeout=remaining)
                    self._digit_event.clear()
            digit = self._digits.popleft()
            if digit in terminators:
                return got
            got += digit
        return got

    async def listen(self, prompt: Prompt | None, *, max_s: float = 8.0, silence_s: float = 0.8) -> bytes:
        """Play ``prompt`` (a key ends it), then run the caller's RTP audio through a
        :class:`SpeechDetector` until the utterance ends, ``max_s`` passes or a key is pressed (b'' then,
        the key stays buffered)."""
        if prompt is not None and await self.play(prompt, barge_in=True):
            return b""
        self._check()
        if self._digits:
            return b""
        detector, done = SpeechDetector(silence_s), asyncio.Event()
        self._digit_event.clear()
        self._listener = (detector, done)
        try:
            await self._until(done.wait(), self._digit_event.wait(), timeout=max_s)
        finally:
            self._listener = None
        return b"" if self._digits else detector.utterance()

    async def start_recording(self, path: Path) -> None:
        """Record both directions to a stereo WAV (left caller, right what the caller hears)."""
        self._check()
        if self._recorder is not None:
            self._recorder.close()
        self._finished_recording = None
        self._recorder = _Recorder(path)

    async def stop_recording(self) -> RecordingInfo | None:
        """Close the running recording and describe it (also after the call ended, which closed it)."""
        rec, self._recorder = self._recorder, None
        if rec is not None:
            return rec.close()
        info, self._finished_recording = self._finished_recording, None
        return info

    async def bridge(self, target: BridgeTarget) -> None:
        """Connect the caller to the agent through the registered :data:`BridgeProvider`."""
        self._check()
        if self._bridge_provider is None:
            raise BridgeUnavailable("no bridge provider registered for the embedded back-end")
        make = asyncio.ensure_future(self._bridge_provider(target, self.info))
        try:
            await self._until(make)
        except CallHungUp:
            make.cancel()
            if make.done() and not make.cancelled() and make.exception() is None:
                await make.result().close()
            raise
        peer = make.result()
        answered = asyncio.ensure_future(peer.wait_answered())
        try:
            await self._until(answered)
        except BaseException:  # the caller hung up, or the controller gave up ringing (cancelled)
            answered.cancel()
            await peer.close()
            raise
        if answered.exception() is not None:  # the agent refused, or their leg failed before answering
            await peer.close()
            raise AgentDidNotAnswer(str(answered.exception()))
        self._stop_playback()
        # A transfer: stop watching the old agent's leg before closing it, so its end does not end the call.
        old, old_task = self._peer, self._peer_task
        self._peer, self._peer_task = None, None
        if old_task is not None:
            old_task.cancel()
        if old is not None:
            await old.close()
        self._peer = peer
        self._peer_task = asyncio.get_running_loop().create_task(self._watch_peer(peer))

    async def _watch_peer(self, peer: BridgePeer) -> None:
        by = await peer.wait_ended()
        if self._peer is peer and not self._ended.done():
            self._leg.send_bye()
            self.end(by if by in ("agent", "system") else "agent")

    async def hold(self, on: bool) -> None:
        """Hold: the caller hears the hold audio (or silence); their audio no longer reaches the agent."""
        self._check()
        self._held = on
        self._hold_pos = 0

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """BYE (or an error response if not yet answered); idempotent."""
        if self._ended.done():
            return
        if self._answered:
            self._leg.send_bye()
        else:
            self._leg.send_reject(480)
        self.end("system", cause)

    async def wait_hangup(self) -> str:
        """Wait for the end of the call; returns who ended it."""
        return await asyncio.shield(self._ended)
