"""A call in FreeSWITCH, driven over its outbound Event Socket, as a :class:`MediaSession`.

Each method is one or two dialplan applications sent with ``sendmsg`` (``event-lock: true``, so they run in
order) and finished by their CHANNEL_EXECUTE_COMPLETE; DTMF, answer, bridge and hangup come as events on
the same socket (``myevents``). Whatever we wait for, the call's end wins: once CHANNEL_HANGUP arrives (or
the socket drops) every pending and later operation raises :class:`CallHungUp`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import wave
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import numpy as np

from gasdesk.config import get_settings
from gasdesk.telephony.freeswitch.esl import EslClosed, EslConnection, EslError, Event
from gasdesk.telephony.media import BridgeTarget, CallHungUp, CallInfo, Prompt, RecordingInfo, speech_in
from gasdesk.telephony.tts import wav_duration

log = logging.getLogger(__name__)

T = TypeVar("T")
DIGITS = "0123456789*#"
MAX_BUFFERED_DIGITS = 32
# A dial string: user/1001, sofia/gateway/gw/1001, {absolute_codec_string=PCMU}user/1001@domain…
_ENDPOINT = re.compile(r"^[A-Za-z0-9_./@:+={},^-]{1,200}$")
_CAUSE = re.compile(r"^[A-Z_]{1,40}$")
_HANGUP_EVENTS = {"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"}
# ``record``'s silence threshold: FreeSWITCH's energy score (voicemail uses 200 too).
RECORD_SILENCE_THRESHOLD = 200
MAX_LISTEN_S = 60


def speech_dir() -> Path:
    """Where ``listen`` has FreeSWITCH write the caller's answer: beside the call recordings, so the folder
    both hosts already share serves (each file is deleted once read)."""
    return get_settings().var_dir / "recordings" / "speech"


def read_speech_wav(path: Path) -> bytes:
    """8 kHz mono 16-bit PCM from a WAV FreeSWITCH wrote (mono or stereo, 8 or 16 kHz); ValueError if not a
    16-bit WAV at one of those rates."""
    with wave.open(str(path), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        if width != 2 or channels not in (1, 2) or rate not in (8000, 16000):
            raise ValueError(f"{path.name}: not 8/16 kHz 16-bit PCM")
        raw = wav.readframes(min(wav.getnframes(), rate * MAX_LISTEN_S))
    samples = np.frombuffer(raw[: len(raw) // (2 * channels) * 2 * channels], dtype="<i2")
    if channels == 2:
        samples = samples[0::2]
    if rate == 16000:  # wideband leg: average sample pairs (a crude low-pass is enough for recognition)
        samples = samples[: len(samples) // 2 * 2]
        samples = ((samples[0::2].astype(np.int32) + samples[1::2]) // 2).astype("<i2")
    return samples.astype("<i2").tobytes()


class BridgeFailed(Exception):
    """The agent's leg could not be reached (busy, no answer, not registered); the caller is still there."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"bridge failed: {cause}")
        self.cause = cause


class FreeswitchMediaSession:
    """One call's socket. Create it with :meth:`accept` on a connection FreeSWITCH opened to us."""

    def __init__(self, conn: EslConnection, info: CallInfo, *, max_app_s: float = 900.0,
                 inbound: bool = False) -> None:
        self.conn = conn
        self.info = info
        self.uuid = info.call_ref
        # On FreeSWITCH's inbound socket (a call we placed, ``freeswitch/originate.py``) sendmsg names the
        # channel; on a call's own outbound socket it must not.
        self._channel = self.uuid if inbound else None
        self.max_app_s = max_app_s
        self.answered = False
        self.digits: list[str] = []
        self._digit_arrived = asyncio.Event()
        self._collecting = False  # play_and_get_digits owns the digits while it runs
        self._terminators: str | None = None
        self._recording: Path | None = None
        self._bridged = False
        self._unbridged = False
        self._bridge_event: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._hangup_after_bridge_set = False
        self._in_bridge = False  # the bridge application is running: other applications would queue behind it
        self._we_hung_up = False
        self._collects = 0
        self._listens = 0
        self._ended: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        conn.on_event = self._on_event

    @classmethod
    async def accept(cls, conn: EslConnection, *, linger_s: int = 10, max_app_s: float = 900.0
                     ) -> FreeswitchMediaSession:
        """Take control of the call: ``connect`` (FreeSWITCH answers with the channel's data), ``myevents``
        (this channel's events, plain), ``linger`` (keep the socket open after hangup so the hangup events
        arrive)."""
        reply = await conn.command("connect")
        data = {name: unquote(value) for name, value in reply.headers.items()}
        call_uuid = data.get("Unique-ID") or data.get("Channel-Unique-ID") or ""
        if not re.fullmatch(r"[A-Za-z0-9-]{8,64}", call_uuid):
            raise EslError("connect reply without a channel Unique-ID")
        info = CallInfo(
            call_ref=call_uuid,
            caller=data.get("Caller-Caller-ID-Number", ""),
            callee=data.get("Caller-Destination-Number", ""),
            backend="freeswitch",
            extra={k: data[k] for k in ("Channel-Name", "Caller-Caller-ID-Name", "variable_sip_call_id")
                   if k in data},
        )
        session = cls(conn, info, max_app_s=max_app_s)
        session.answered = data.get("Answer-State") == "answered"
        await conn.command("myevents")
        await conn.command(f"linger {int(linger_s)}")
        return session

    # -- events ------------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        name = event.name
        other_channel = event.get("Unique-ID") not in ("", self.uuid)
        if name == "ESL_DISCONNECTED":
            self._end("system" if self._we_hung_up else "caller", "ESL_DISCONNECTED")
        elif other_channel:
            return
        elif name == "DTMF":
            digit = event.get("DTMF-Digit")
            if not self._collecting and len(digit) == 1 and digit in DIGITS and len(self.digits) < MAX_BUFFERED_DIGITS:
                self.digits.append(digit)
                self._digit_arrived.set()
        elif name == "CHANNEL_ANSWER":
            self.answered = True
        elif name == "CHANNEL_BRIDGE":
            self._bridged = True
            if not self._bridge_event.done():
                self._bridge_event.set_result(event)
        elif name == "CHANNEL_UNBRIDGE":
            self._unbridged = True
        elif name in _HANGUP_EVENTS:
            # Who ended it: we did (hangup()); the agent did (the bridge ended first, and
            # hangup_after_bridge hung the caller up); else the caller.
            by = "system" if self._we_hung_up else ("agent" if self._bridged and self._unbridged else "caller")
            self._end(by, event.get("Hangup-Cause", "NORMAL_CLEARING"))

    def _end(self, by: str, cause: str) -> None:
        if not self._ended.done():
            self._ended.set_result((by, cause))

    @property
    def ended(self) -> bool:
        return self._ended.done()

    def _hung_up(self) -> CallHungUp:
        by, cause = self._ended.result() if self._ended.done() else ("system", "ESL_DISCONNECTED")
        return CallHungUp(by=by, cause=cause)

    async def _until(self, awaitable: Awaitable[T], timeout_s: float | None = None) -> T:
        """Await ``awaitable`` unless the call ends first (→ CallHungUp)."""
        if self._ended.done():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise self._hung_up()
        task = asyncio.ensure_future(awaitable)
        try:
            waiters: set[asyncio.Future[Any]] = {task, self._ended}
            done, _ = await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if self._ended.done():  # the call ended (an application's completion may come with the hangup)
            task.cancel()
            raise self._hung_up()
        if task in done:
            if task.cancelled():  # the connection closed under it
                self._end("system" if self._we_hung_up else "caller", "ESL_DISCONNECTED")
                raise self._hung_up()
            try:
                return task.result()
            except EslClosed as exc:
                self._end("system" if self._we_hung_up else "caller", "ESL_DISCONNECTED")
                raise self._hung_up() from exc
        task.cancel()
        raise TimeoutError

    async def _command(self, line: str, headers: dict[str, str] | None = None) -> None:
        await self._until(self.conn.command(line, headers))

    async def _api(self, command: str) -> str:
        return await self._until(self.conn.api(command))

    async def _app(self, app: str, arg: str = "", *, timeout_s: float | None = None) -> Event:
        future = await self._until(self.conn.begin_execute(app, arg, uuid_=self._channel))
        try:
            return await self._until(future, timeout_s or self.max_app_s)
        finally:
            future.cancel()

    async def _set(self, name: str, value: str) -> None:
        await self._app("set", f"{name}={value}")

    # -- MediaSession ------------------------------------------------------------------------------

    async def answer(self) -> None:
        """Answer the call (``answer``)."""
        await self._app("answer")
        self.answered = True

    async def _playback_terminators(self, barge_in: bool) -> None:
        wanted = DIGITS if barge_in else "none"
        if self._terminators != wanted:
            await self._set("playback_terminators", wanted)
            self._terminators = wanted

    async def play(self, prompt: Prompt, *, barge_in: bool = True) -> str:
        """``playback`` the prompt; with ``barge_in`` any key stops it (playback_terminators). Returns the
        first key pressed while it played ('' if none); the keys stay buffered for collect_digits."""
        await self._playback_terminators(barge_in)
        before = len(self.digits)
        done = await self._app("playback", str(prompt.path))
        if done.get("Application-Response") == "FILE NOT FOUND":
            log.warning("FreeSWITCH cannot read prompt %s", prompt.path.name)
        return self.digits[before] if barge_in and len(self.digits) > before else ""

    def _take_buffered(self, max_digits: int, terminators: str) -> tuple[str, bool]:
        taken = ""
        while self.digits and len(taken) < max_digits:
            digit = self.digits.pop(0)
            if digit in terminators:
                return taken, True
            taken += digit
        if not self.digits:
            self._digit_arrived.clear()
        return taken, False

    async def collect_digits(self, prompt: Prompt | None, *, max_digits: int = 1, timeout_s: float = 5.0,
                             terminators: str = "#", barge_in: bool = True) -> str:
        """Keys already pressed first; then ``play_and_get_digits`` (prompt with barge-in, inter-digit
        timeout, terminators) for the rest, its result read back with ``uuid_getvar``."""
        max_digits = max(1, min(max_digits, 64))
        terminators = "".join(c for c in terminators if c in DIGITS)
        taken, terminated = self._take_buffered(max_digits, terminators)
        if terminated or len(taken) >= max_digits:
            return taken
        sound = "silence_stream://250"
        if prompt is not None and not taken:
            if barge_in and not re.search(r"\s", str(prompt.path)):
                sound = str(prompt.path)
            else:  # play_and_get_digits splits its arguments on spaces, and always lets keys interrupt
                digit = await self.play(prompt, barge_in=barge_in)
                if digit:
                    return await self.collect_digits(None, max_digits=max_digits, timeout_s=timeout_s,
                                                     terminators=terminators, barge_in=barge_in)
        self._collects += 1
        var = f"gasdesk_digits_{self._collects}"
        timeout_ms = max(100, int(timeout_s * 1000))
        arg = (f"1 {max_digits - len(taken)} 1 {timeout_ms} {terminators or 'none'} {sound} "
               f"silence_stream://250 {var} ^[0-9*#]+$ {timeout_ms}")
        self._collecting = True
        try:
            await self._app("play_and_get_digits", arg, timeout_s=self.max_app_s)
        finally:
            self._collecting = False
        value = (await self._api(f"uuid_getvar {self.uuid} {var}")).strip()
        if value in ("_undef_", "") or not all(c in DIGITS for c in value):
            value = ""
        return taken + value

    async def listen(self, prompt: Prompt | None, *, max_s: float = 8.0, silence_s: float = 0.8) -> bytes:
        """Play ``prompt`` (a key ends it), then the ``record`` application (time limit ``max_s``, silence
        detection: FreeSWITCH counts whole seconds of silence, so ``silence_s`` is rounded up) to a WAV in
        :func:`speech_dir`, ended by any key (playback_terminators); the file is read, run through the
        energy detector (FreeSWITCH's silence detection also fires when the caller never spoke) and
        deleted. b'' when nothing was said or a key was pressed (the key stays buffered)."""
        if prompt is not None and await self.play(prompt, barge_in=True):
            return b""
        if self.digits:
            return b""
        await self._playback_terminators(True)
        self._listens += 1
        folder = speech_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"listen-{self.uuid}-{self._listens}.wav"
        limit = max(1, min(MAX_LISTEN_S, math.ceil(max_s)))
        hits = max(1, math.ceil(silence_s))
        try:
            try:
                await self._app("record", f"{path} {limit} {RECORD_SILENCE_THRESHOLD} {hits}",
                                timeout_s=limit + self.conn.command_timeout_s)
            except TimeoutError:
                await self._api(f"uuid_break {self.uuid}")
                return b""
            if self.digits:
                return b""
            try:
                pcm = read_speech_wav(path)
            except (OSError, EOFError, ValueError, wave.Error) as exc:
                log.warning("cannot read FreeSWITCH's recording of the caller's answer (%s)", exc.__class__.__name__)
                return b""
        finally:
            path.unlink(missing_ok=True)
        return speech_in(pcm[: int(max_s * 8000) * 2], silence_s)

    async def start_recording(self, path: Path) -> None:
        """``record_session`` to ``path`` (a path FreeSWITCH writes: share the folder), stereo: caller left,
        agent right. During a bridge the channel runs ``bridge``, so ``uuid_record start`` instead."""
        if re.search(r"\s", str(path)):
            raise ValueError("recording paths must not contain spaces")
        if self._in_bridge:
            await self._api(f"uuid_record {self.uuid} start {path}")
        else:
            await self._set("RECORD_STEREO", "true")
            await self._app("record_session", str(path))
        self._recording = path

    async def stop_recording(self) -> RecordingInfo | None:
        """``stop_record_session`` (``uuid_record stop`` during a bridge: applications queue behind the
        running ``bridge``); size and length read from the file when this host can see it."""
        if self._recording is None:
            return None
        path, self._recording = self._recording, None
        if self._in_bridge:
            await self._api(f"uuid_record {self.uuid} stop {path}")
        else:
            await self._app("stop_record_session", str(path))
        size = path.stat().st_size if path.is_file() else 0
        return RecordingInfo(path=path, duration_s=wav_duration(path) if size else 0.0, bytes=size)

    async def bridge(self, target: BridgeTarget) -> None:
        """``bridge`` to the agent's dial string; returns on CHANNEL_BRIDGE (the agent answered). Raises
        BridgeFailed if the bridge application ends first, CallHungUp if the caller hangs up."""
        if not _ENDPOINT.match(target.endpoint):
            raise ValueError("not a FreeSWITCH dial string")
        if not self._hangup_after_bridge_set:
            await self._set("hangup_after_bridge", "true")
            self._hangup_after_bridge_set = True
        self._bridge_event = asyncio.get_running_loop().create_future()
        self._bridged = self._unbridged = False
        future = await self._until(self.conn.begin_execute("bridge", target.endpoint, uuid_=self._channel))
        self._in_bridge = True
        future.add_done_callback(self._bridge_over)
        try:
            waiters: set[asyncio.Future[Any]] = {future, self._bridge_event, self._ended}
            done, _ = await asyncio.wait(waiters, timeout=self.max_app_s, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            future.cancel()
            raise
        if self._bridge_event in done and not self._ended.done():
            return
        future.cancel()
        self._in_bridge = False
        if self._ended.done():
            raise self._hung_up()
        if future in done and not future.cancelled():
            complete = future.result()
            raise BridgeFailed(complete.get("variable_originate_disposition")
                               or complete.get("Application-Response") or "UNKNOWN")
        raise BridgeFailed("TIMEOUT")

    def _bridge_over(self, _: object) -> None:
        self._in_bridge = False

    async def hold(self, on: bool) -> None:
        """``uuid_hold`` (music on hold as FreeSWITCH's hold_music) or ``uuid_hold off``."""
        await self._api(f"uuid_hold {self.uuid}" if on else f"uuid_hold off {self.uuid}")

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """``sendmsg`` ``call-command: hangup``; idempotent; waits briefly for the hangup event."""
        if self._ended.done():
            return
        if not _CAUSE.match(cause):
            cause = "NORMAL_CLEARING"
        self._we_hung_up = True
        try:
            await self.conn.sendmsg({"call-command": "hangup", "hangup-cause": cause}, uuid_=self._channel)
            await asyncio.wait_for(asyncio.shield(self._ended), self.conn.command_timeout_s)
        except (EslError, TimeoutError):
            self._end("system", cause)

    async def wait_hangup(self) -> str:
        """Wait for the end of the call; returns who ended it ("caller", "agent", "system")."""
        by, _ = await asyncio.shield(self._ended)
        return by

    @property
    def hangup_cause(self) -> str | None:
        return self._ended.result()[1] if self._ended.done() else None
