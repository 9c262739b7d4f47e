"""Test doubles at the edges of the call logic: a caller (a ``MediaSession`` that plays the caller's part from a
script of key presses) and a prompt renderer standing in for the TTS (it writes short silent 8 kHz WAVs).
Neither replaces our own code: the controller, the engine and the domains run for real."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import wave
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from gasdesk import db
from gasdesk.conversations.models import Conversation
from gasdesk.telephony.media import BridgeTarget, CallHungUp, CallInfo, Prompt, RecordingInfo
from gasdesk.telephony.models import Call, CallEvent, IvrNodeVisit

HANGUP = "<hangup>"
_refs = itertools.count(1)


class SilentRenderer:
    """The TTS's test double: a 0.05 s silent 8 kHz mono 16-bit WAV per distinct text."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.texts: list[str] = []
        self.keys: list[str | None] = []

    async def render(self, text: str, *, key: str | None = None) -> Prompt:
        self.texts.append(text)
        self.keys.append(key)
        path = self.folder / (hashlib.sha256(text.encode()).hexdigest()[:16] + ".wav")
        if not path.exists():
            write_silence(path, 0.05)
        return Prompt(path=path, text=text)


def write_silence(path: Path, seconds: float) -> int:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * int(8000 * seconds))
    return path.stat().st_size


@dataclass
class FakeCaller:
    """Plays the caller. ``inputs``: what the caller keys at each ``collect_digits`` in turn ('' = stays
    silent until the timeout, ``HANGUP`` = hangs up there); out of inputs, the caller hangs up.
    ``hang_up_at_op``: hang up at the n-th media operation (1-based), wherever the script is.
    ``hang_up_on``: hang up when a prompt containing this text starts. ``utterances``: what the caller does
    at each ``listen`` in turn: PCM bytes = says that (returned as heard), a string = presses that key
    during the prompt (b'' returned, the key buffered for the next ``collect_digits``); out of utterances,
    the caller says nothing (b''). Once bridged, the agent (or the caller,
    ``talk_ends_by``) ends the call after ``talk_s`` seconds, unless ``end_call`` is set by the test."""

    inputs: list[str] = field(default_factory=list)
    utterances: list[bytes | str] = field(default_factory=list)
    caller: str = "13900000001"
    hang_up_at_op: int | None = None
    hang_up_on: str | None = None
    agent_answers: bool = True
    talk_s: float = 0.05
    talk_ends_by: str = "agent"
    play_s: float = 0.0
    info: CallInfo = field(init=False)
    heard: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    bridged: list[BridgeTarget] = field(default_factory=list)
    recording_path: Path | None = None
    gone: bool = False
    hung_up_by_us: str | None = None
    end_call: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.info = CallInfo(call_ref=f"test-call-{next(_refs)}", caller=self.caller, callee="96777", backend="sip")

    def _op(self, name: str, prompt: Prompt | None = None) -> None:
        if self.gone:
            raise CallHungUp("caller" if self.hung_up_by_us is None else "system")
        self.ops.append(name)
        if prompt is not None:
            self.heard.append(prompt.text)
        if (self.hang_up_at_op is not None and len(self.ops) >= self.hang_up_at_op) or (
                prompt is not None and self.hang_up_on and self.hang_up_on in prompt.text):
            self.gone = True
            raise CallHungUp("caller")

    async def answer(self) -> None:
        self._op("answer")

    async def play(self, prompt: Prompt, *, barge_in: bool = True) -> str:
        self._op("play", prompt)
        if self.play_s:
            await asyncio.sleep(self.play_s)
        return ""

    async def collect_digits(self, prompt: Prompt | None, *, max_digits: int = 1, timeout_s: float = 5.0,
                             terminators: str = "#", barge_in: bool = True) -> str:
        self._op("collect", prompt)
        if not self.inputs or self.inputs[0] == HANGUP:
            self.gone = True
            raise CallHungUp("caller")
        return self.inputs.pop(0)[:max_digits]

    async def listen(self, prompt: Prompt | None, *, max_s: float = 8.0, silence_s: float = 0.8) -> bytes:
        self._op("listen", prompt)
        said = self.utterances.pop(0) if self.utterances else b""
        if isinstance(said, str):
            self.inputs.insert(0, said)
            return b""
        return said

    async def start_recording(self, path: Path) -> None:
        self._op("record")
        self.recording_path = path

    async def stop_recording(self) -> RecordingInfo | None:
        # Works after the hang-up too: the recording is the call's, finished when it ends.
        if self.recording_path is None:
            return None
        size = write_silence(self.recording_path, 0.2)
        path, self.recording_path = self.recording_path, None
        return RecordingInfo(path=path, duration_s=0.2, bytes=size)

    async def bridge(self, target: BridgeTarget) -> None:
        self._op("bridge")
        self.bridged.append(target)
        if not self.agent_answers:
            await asyncio.sleep(3600)

    async def hold(self, on: bool) -> None:
        self._op("hold")

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if not self.gone:
            self.ops.append("hangup")
            self.gone = True
            self.hung_up_by_us = cause

    async def wait_hangup(self) -> str:
        self._op("wait_hangup")
        try:
            await asyncio.wait_for(self.end_call.wait(), timeout=self.talk_s)
        except TimeoutError:
            pass
        self.gone = True
        return self.talk_ends_by


@dataclass
class CallRows:
    call: Call
    events: list[CallEvent]
    visits: list[IvrNodeVisit]
    conversation: Conversation | None

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    @property
    def path(self) -> list[str]:
        return [v.node_id for v in self.visits]


async def call_rows(call_ref: str | None = None) -> CallRows:
    """The stored rows of one call (the latest one when no ``call_ref``), read in a session of their own."""
    async with db.sessionmaker()() as s:
        query = select(Call).order_by(Call.id.desc()).limit(1)
        if call_ref is not None:
            query = select(Call).where(Call.call_ref == call_ref)
        call = await s.scalar(query)
        assert call is not None, call_ref
        events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)))
        visits = list(await s.scalars(select(IvrNodeVisit).where(IvrNodeVisit.call_id == call.id)
                                      .order_by(IvrNodeVisit.id)))
        conversation = await s.get(Conversation, call.conversation_id) if call.conversation_id else None
        return CallRows(call, events, visits, conversation)


def assert_consistent(rows: CallRows) -> None:
    """What every ended call must look like, wherever it ended."""
    call = rows.call
    assert call.state == "ended" and call.ended_at is not None and call.hangup_by in ("caller", "agent", "system")
    assert rows.kinds[0] == "ringing" and rows.kinds[-1] == "hung_up"
    assert all(v.left_at is not None and v.outcome for v in rows.visits), [(v.node_id, v.outcome) for v in rows.visits]
    assert rows.conversation is not None and rows.conversation.state == "closed"
    if call.connected_at is not None:
        assert call.talk_s is not None and call.hold_s is not None
    if call.queued_at is not None:
        assert call.queue_wait_s is not None and call.queue_wait_s >= 0
