"""The one interface between the call logic (IVR engine, call controller) and a media back-end.

Two back-ends implement :class:`MediaSession`: the embedded SIP/RTP user agent (``telephony/sip``), used by
tests and small utilities, and FreeSWITCH driven over the Event Socket (``telephony/freeswitch``) in
production. The controller (``telephony/controller.py``) is written once against this protocol, so the same
IVR script produces the same records whichever back-end carries the audio.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

SPEECH_FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit mono


class CallHungUp(Exception):
    """Raised by any MediaSession operation once the far end has hung up (or the call is otherwise gone)."""

    def __init__(self, by: str = "caller", cause: str = "NORMAL_CLEARING") -> None:
        super().__init__(f"call ended by {by} ({cause})")
        self.by = by
        self.cause = cause


class AgentDidNotAnswer(Exception):
    """Raised by ``MediaSession.bridge`` when the agent's leg is refused or fails before it is answered (the
    agent pressed 拒接, their softphone could not connect): the controller treats it like a ring-out."""


@dataclass(frozen=True)
class Prompt:
    """Something to play: an audio file (8 kHz mono 16-bit PCM WAV, see ``telephony/prompts.py``), made
    from ``text`` by TTS or uploaded by an admin. ``text`` is kept for records and for back-ends that speak
    themselves."""

    path: Path
    text: str = ""


@dataclass(frozen=True)
class RecordingInfo:
    path: Path
    duration_s: float
    bytes: int


@dataclass(frozen=True)
class BridgeTarget:
    """Whom to connect the caller to: an agent's endpoint (embedded: the agent's softphone session id;
    FreeSWITCH: a dial string such as ``user/1001``)."""

    agent_id: int
    endpoint: str


@dataclass
class CallInfo:
    call_ref: str  # SIP Call-ID or FreeSWITCH channel UUID: the back-end's identity of the call
    caller: str  # the calling number as the network gave it (personal data: never log it)
    callee: str  # the number dialled (the hotline)
    backend: str  # "sip" | "freeswitch"
    extra: dict[str, str] = field(default_factory=dict)


class MediaSession(Protocol):
    """One call's media, as the controller sees it. Every method raises :class:`CallHungUp` once the call
    is gone; digits pressed during ``play`` with ``barge_in`` are kept for the next ``collect_digits``."""

    info: CallInfo

    async def answer(self) -> None:
        """Answer (200 OK / ``answer``); media flows from here on."""

    async def play(self, prompt: Prompt, *, barge_in: bool = True) -> str:
        """Play a prompt to the caller. Returns the digit that interrupted it ('' if it played to the end)."""

    async def collect_digits(self, prompt: Prompt | None, *, max_digits: int = 1, timeout_s: float = 5.0,
                             terminators: str = "#", barge_in: bool = True) -> str:
        """Play ``prompt`` (if any) and collect up to ``max_digits`` DTMF digits. Returns '' on timeout;
        the terminator is not included."""

    async def listen(self, prompt: Prompt | None, *, max_s: float = 8.0, silence_s: float = 0.8) -> bytes:
        """Play ``prompt`` (if any), then capture what the caller says as 8 kHz mono 16-bit PCM: from just
        before the speech starts until ``silence_s`` of silence after it, or ``max_s`` after the prompt.
        Returns b'' when the caller said nothing, and when they pressed a key (during the prompt or while
        speaking): the key is their answer and stays buffered for the next ``collect_digits``."""

    async def start_recording(self, path: Path) -> None:
        """Record both directions (mixed, or stereo caller/agent) to a WAV file at ``path``."""

    async def stop_recording(self) -> RecordingInfo | None:
        """Stop a running recording; None if none was running. Also called once the call has ended (the
        controller stores every recording after the hang-up): then it returns the finished file instead of
        raising ``CallHungUp``."""

    async def bridge(self, target: BridgeTarget) -> None:
        """Connect the caller to an agent; returns once the agent's leg is answered (raises CallHungUp if
        the caller hangs up first, AgentDidNotAnswer if the agent refuses). Bridging again while bridged
        replaces the agent (a transfer)."""

    async def hold(self, on: bool) -> None:
        """Put the caller on hold (music/silence) or take them off."""

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """End the call from our side (idempotent)."""

    async def wait_hangup(self) -> str:
        """Wait until the call ends; returns who ended it ("caller", "agent", "system")."""


class SpeechDetector:
    """A simple energy voice-activity detector over 20 ms frames of 8 kHz 16-bit PCM. A frame is loud when its
    RMS is well above the line's noise floor (a running average of the quiet frames) and above an absolute
    minimum; speech starts after ``onset_frames`` loud frames in a row and ends after ``silence_s`` without
    one. The utterance keeps ``preroll_s`` before the onset (so its first syllable is not cut) and loses the
    silent tail beyond ``tail_s``."""

    MIN_RMS = 300.0  # below this nothing is speech, however quiet the line
    FLOOR_RATIO = 3.0  # speech is this many times the noise floor

    def __init__(self, silence_s: float = 0.8, *, onset_frames: int = 3, preroll_s: float = 0.3,
                 tail_s: float = 0.2) -> None:
        self.silence_frames = max(1, round(silence_s / 0.02))
        self.onset_frames = onset_frames
        self.tail_frames = max(0, round(tail_s / 0.02))
        self.floor = 100.0
        self.started = False
        self.ended = False
        self._preroll: deque[bytes] = deque(maxlen=max(onset_frames, round(preroll_s / 0.02)))
        self._loud_run = 0
        self._quiet_run = 0
        self._frames: list[bytes] = []
        self._pending = b""

    @staticmethod
    def rms(frame: bytes) -> float:
        samples = np.frombuffer(frame[: len(frame) // 2 * 2], dtype="<i2").astype(np.float64)
        return float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0

    def feed(self, pcm: bytes) -> bool:
        """Take more audio (any length); True once the utterance has ended."""
        self._pending += pcm
        while len(self._pending) >= SPEECH_FRAME_BYTES and not self.ended:
            frame, self._pending = self._pending[:SPEECH_FRAME_BYTES], self._pending[SPEECH_FRAME_BYTES:]
            self._frame(frame)
        return self.ended

    def _frame(self, frame: bytes) -> None:
        level = self.rms(frame)
        loud = level >= max(self.MIN_RMS, self.floor * self.FLOOR_RATIO)
        if not loud:
            self.floor = 0.95 * self.floor + 0.05 * level
        if not self.started:
            self._preroll.append(frame)
            self._loud_run = self._loud_run + 1 if loud else 0
            if self._loud_run >= self.onset_frames:
                self.started = True
                self._frames = list(self._preroll)
            return
        self._frames.append(frame)
        self._quiet_run = 0 if loud else self._quiet_run + 1
        if self._quiet_run >= self.silence_frames:
            self.ended = True

    def utterance(self) -> bytes:
        """What the caller said so far (b'' if speech never started)."""
        if not self.started:
            return b""
        frames = self._frames
        extra = self._quiet_run - self.tail_frames
        if extra > 0:
            frames = frames[: len(frames) - extra]
        return b"".join(frames)


def speech_in(pcm: bytes, silence_s: float = 0.8) -> bytes:
    """The first utterance in a stretch of recorded audio (b'' if it holds no speech)."""
    detector = SpeechDetector(silence_s)
    detector.feed(pcm)
    return detector.utterance()
