"""The one interface between the call logic (IVR engine, call controller) and a media back-end.

Two back-ends implement :class:`MediaSession`: the embedded SIP/RTP user agent (``telephony/sip``), used by
tests and small utilities, and FreeSWITCH driven over the Event Socket (``telephony/freeswitch``) in
production. The controller (``telephony/controller.py``) is written once against this protocol, so the same
IVR script produces the same records whichever back-end carries the audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


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
