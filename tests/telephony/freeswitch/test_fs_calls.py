"""Calls through the outbound Event Socket: the fake FreeSWITCH dials our listener as the dialplan's
``socket`` application would, plays a scripted caller, and records every ESL command it received."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gasdesk.telephony.freeswitch.fake import CallerScript, FakeFreeswitch, frame_bytes
from gasdesk.telephony.freeswitch.listener import FreeswitchListener
from gasdesk.telephony.freeswitch.session import BridgeFailed, FreeswitchMediaSession
from gasdesk.telephony.media import BridgeTarget, CallHungUp, MediaSession, Prompt

pytestmark = pytest.mark.no_database

Handler = Callable[[MediaSession], Awaitable[None]]


def _wav(path: Path, seconds: float = 0.2) -> Prompt:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x10\x00" * int(8000 * seconds))
    return Prompt(path=path, text=path.stem)


class Harness:
    def __init__(self) -> None:
        self.fake = FakeFreeswitch()
        self.results: dict[str, Any] = {}
        self.handler: Handler | None = None
        self.listener = FreeswitchListener(self._on_call, host="127.0.0.1", port=0, max_calls=5,
                                           command_timeout_s=1.0)

    async def _on_call(self, session: MediaSession) -> None:
        assert self.handler is not None
        self.results["session"] = session
        try:
            await self.handler(session)
        except CallHungUp as exc:
            self.results["hung_up"] = exc
            raise

    async def call(self, handler: Handler, script: CallerScript) -> Any:
        """Place a call and wait until both ends are done with it (the fake's socket closed, our handler
        and the listener's clean-up finished)."""
        self.handler = handler
        call = await self.fake.call("127.0.0.1", self.listener.port, script, wait_s=5)
        for _ in range(200):
            if self.listener.active_calls == 0:
                break
            await asyncio.sleep(0.01)
        return call


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.listener.start()
    yield h
    await h.listener.close()
    await h.fake.close()


async def test_a_scripted_call_answers_plays_collects_records_bridges_and_ends(harness: Harness, tmp_path: Path) -> None:
    welcome, menu = _wav(tmp_path / "welcome.wav"), _wav(tmp_path / "menu.wav")
    recording = tmp_path / "rec" / "call.wav"

    async def ivr(session: MediaSession) -> None:
        await session.answer()
        harness.results["played"] = await session.play(welcome, barge_in=False)
        harness.results["choice"] = await session.collect_digits(menu, max_digits=1, timeout_s=5)
        await session.start_recording(recording)
        await session.bridge(BridgeTarget(agent_id=7, endpoint="user/1001"))
        await session.hold(True)
        await session.hold(False)
        harness.results["recording"] = await session.stop_recording()
        harness.results["ended_by"] = await session.wait_hangup()

    call = await harness.call(ivr, CallerScript(caller="13912345678", press={"play_and_get_digits#1": "1"},
                                                agent_hangup_after_s=0.3))
    session = harness.results["session"]
    assert isinstance(session, FreeswitchMediaSession)
    assert (session.info.call_ref, session.info.caller, session.info.callee, session.info.backend) == (
        call.uuid, "13912345678", "96777", "freeswitch")
    assert harness.results["played"] == "" and harness.results["choice"] == "1"
    assert harness.results["ended_by"] == "agent" and call.hangup_by == "agent"
    info = harness.results["recording"]
    assert info.path == recording and info.bytes > 1000 and info.duration_s == pytest.approx(0.5)
    assert call.commands == [
        "connect",
        "myevents",
        "linger 10",
        "sendmsg execute answer",
        "sendmsg execute set playback_terminators=none",
        f"sendmsg execute playback {welcome.path}",
        f"sendmsg execute play_and_get_digits 1 1 1 5000 # {menu.path} silence_stream://250 gasdesk_digits_1 "
        "^[0-9*#]+$ 5000",
        f"api uuid_getvar {call.uuid} gasdesk_digits_1",
        "sendmsg execute set RECORD_STEREO=true",
        f"sendmsg execute record_session {recording}",
        "sendmsg execute set hangup_after_bridge=true",
        "sendmsg execute bridge user/1001",
        f"api uuid_hold {call.uuid}",
        f"api uuid_hold off {call.uuid}",
        f"api uuid_record {call.uuid} stop {recording}",  # sendmsg would queue behind the running bridge
    ]
    executes = [f for f in call.frames if f.line == "sendmsg"]
    assert executes and all(f.headers["event-lock"] == "true" and f.headers["Event-UUID"] for f in executes)
    assert len({f.headers["Event-UUID"] for f in executes}) == len(executes)
    for name in ("CHANNEL_ANSWER", "DTMF", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_HANGUP"):
        assert name in call.events_sent


async def test_a_key_during_a_prompt_interrupts_it_and_is_kept_for_the_menu(harness: Harness, tmp_path: Path) -> None:
    menu = _wav(tmp_path / "menu.wav")

    async def ivr(session: MediaSession) -> None:
        await session.answer()
        harness.results["interrupted_by"] = await session.play(menu)
        harness.results["choice"] = await session.collect_digits(None, max_digits=1)
        await session.hangup()

    call = await harness.call(ivr, CallerScript(press={"playback#1": "3"}, play_s=2.0))
    assert harness.results["interrupted_by"] == "3" and harness.results["choice"] == "3"
    assert call.commands[3:] == [
        "sendmsg execute answer",
        "sendmsg execute set playback_terminators=0123456789*#",
        f"sendmsg execute playback {menu.path}",
        "sendmsg hangup NORMAL_CLEARING",
    ]
    assert call.hangup_by == "system"


async def test_an_account_number_ends_at_the_terminator_and_silence_gives_nothing(harness: Harness,
                                                                                  tmp_path: Path) -> None:
    ask = _wav(tmp_path / "ask account.wav")  # a space: play_and_get_digits cannot take this path

    async def ivr(session: MediaSession) -> None:
        await session.answer()
        harness.results["account"] = await session.collect_digits(ask, max_digits=10, timeout_s=3)
        harness.results["nothing"] = await session.collect_digits(None, max_digits=1, timeout_s=0.2)
        await session.hangup()

    call = await harness.call(ivr, CallerScript(press={"play_and_get_digits#1": "12345#"}))
    assert harness.results["account"] == "12345" and harness.results["nothing"] == ""
    assert call.commands[4:] == [
        "sendmsg execute set playback_terminators=0123456789*#",
        f"sendmsg execute playback {ask.path}",
        "sendmsg execute play_and_get_digits 1 10 1 3000 # silence_stream://250 silence_stream://250 "
        "gasdesk_digits_1 ^[0-9*#]+$ 3000",
        f"api uuid_getvar {call.uuid} gasdesk_digits_1",
        "sendmsg execute play_and_get_digits 1 1 1 200 # silence_stream://250 silence_stream://250 "
        "gasdesk_digits_2 ^[0-9*#]+$ 200",
        f"api uuid_getvar {call.uuid} gasdesk_digits_2",
        "sendmsg hangup NORMAL_CLEARING",
    ]


async def test_the_caller_hanging_up_mid_prompt_ends_every_operation(harness: Harness, tmp_path: Path) -> None:
    long_prompt = _wav(tmp_path / "notice.wav")

    async def ivr(session: MediaSession) -> None:
        await session.answer()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await session.play(long_prompt)
        finally:
            harness.results["play_s"] = loop.time() - started
        harness.results["after"] = "reached"  # never: play raised

    # The fake caller hangs up halfway through a 3 s prompt: play must end then, well before the prompt would
    # (a 1 s prompt left 0.4 s of margin, which a loaded machine once used up).
    call = await harness.call(ivr, CallerScript(hangup_at="playback#1", play_s=3.0))
    hung_up = harness.results["hung_up"]
    assert (hung_up.by, hung_up.cause) == ("caller", "NORMAL_CLEARING")
    assert harness.results["play_s"] < 2.8 and "after" not in harness.results
    assert call.hangup_by == "caller"
    assert call.commands[-1] == f"sendmsg execute playback {long_prompt.path}"  # no hangup sent after the caller's
    session = harness.results["session"]
    with pytest.raises(CallHungUp):
        await session.collect_digits(None)
    assert await session.wait_hangup() == "caller"


async def test_an_unanswered_bridge_is_reported_and_the_call_goes_on(harness: Harness) -> None:
    async def ivr(session: MediaSession) -> None:
        await session.answer()
        try:
            await session.bridge(BridgeTarget(agent_id=1, endpoint="user/1002"))
        except BridgeFailed as exc:
            harness.results["failed"] = exc.cause
        with pytest.raises(ValueError):
            await session.bridge(BridgeTarget(agent_id=1, endpoint="user/1002\nexecute-app-name: hangup"))
        await session.hangup("USER_BUSY")

    call = await harness.call(ivr, CallerScript(agent_answers=False))
    assert harness.results["failed"] == "NO_ANSWER"
    assert call.commands[-2:] == ["sendmsg execute bridge user/1002", "sendmsg hangup USER_BUSY"]
    assert call.hangup_by == "system" and call.hangup_cause == "USER_BUSY"


async def test_a_failing_handler_hangs_up_and_the_listener_serves_the_next_call(harness: Harness) -> None:
    async def broken(session: MediaSession) -> None:
        await session.answer()
        raise RuntimeError("bug in the IVR")

    first = await harness.call(broken, CallerScript())
    assert first.hangup_by == "system" and first.commands[-1] == "sendmsg hangup NORMAL_CLEARING"

    async def fine(session: MediaSession) -> None:
        await session.answer()
        harness.results["second"] = session.info.caller

    second = await harness.call(fine, CallerScript(caller="10086"))
    assert harness.results["second"] == "10086" and second.hangup_by == "system"
    assert harness.listener.active_calls == 0


async def _peer(port: int, after_connect: bytes, *, wait_s: float = 3.0) -> bytes:
    """A misbehaving 'FreeSWITCH': reads our connect, answers with ``after_connect``; returns what it got."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    first = await reader.readuntil(b"\n\n")
    writer.write(after_connect)
    await writer.drain()
    try:
        rest = await asyncio.wait_for(reader.read(), wait_s)
    finally:
        writer.close()
    return first + rest


@pytest.mark.parametrize("reply", [
    b"Content-Type: command/reply\nReply-Text: +OK\n\n",  # no channel data
    b"garbage without colon\n\n",
    b"Content-Type: command/reply\nContent-Length: 5000000\n\n",
    b"X: " + b"y" * 100_000 + b"\n\n",
])
async def test_malformed_or_oversized_frames_from_freeswitch_drop_only_that_socket(harness: Harness,
                                                                                    reply: bytes) -> None:
    called: list[str] = []

    async def ivr(session: MediaSession) -> None:
        called.append(session.info.call_ref)

    harness.handler = ivr
    got = await asyncio.wait_for(_peer(harness.listener.port, reply), 5)
    assert got.startswith(b"connect\n\n")
    assert called == [] and harness.listener.failed_setups == 1
    ok = await harness.call(ivr, CallerScript())  # the listener still works
    assert called == [ok.uuid]


async def test_a_peer_that_never_answers_connect_is_dropped_in_bounded_time(harness: Harness) -> None:
    harness.listener.command_timeout_s = 0.2
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = await asyncio.wait_for(_peer(harness.listener.port, b""), 5)
    assert got == b"connect\n\n" and loop.time() - started < 2
    assert harness.listener.failed_setups == 1


async def test_calls_over_the_cap_are_refused_without_harm(harness: Harness) -> None:
    harness.listener.max_calls = 1
    release = asyncio.Event()

    async def slow(session: MediaSession) -> None:
        await session.answer()
        await release.wait()

    harness.handler = slow
    first = await harness.fake.call("127.0.0.1", harness.listener.port, CallerScript(), wait_s=None)
    for _ in range(100):
        if first.answered:
            break
        await asyncio.sleep(0.01)
    second = await harness.fake.call("127.0.0.1", harness.listener.port, CallerScript(), wait_s=5)
    assert second.commands == [] and harness.listener.refused_calls == 1
    release.set()
    await first.wait(5)
    assert first.hangup_by == "system"


def test_frame_helper_matches_the_wire_format() -> None:
    assert frame_bytes({"Content-Type": "api/response"}, "+OK") == b"Content-Length: 3\nContent-Type: api/response\n\n+OK"


def _tone_pcm(seconds: float, amplitude: int = 6000) -> bytes:
    import numpy as np  # noqa: PLC0415 - only these tests need it

    t = np.arange(int(8000 * seconds)) / 8000.0
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


@pytest.fixture
def speech_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from gasdesk.config import reset_settings_cache  # noqa: PLC0415

    monkeypatch.setenv("GASDESK_VAR_DIR", str(tmp_path / "var"))
    reset_settings_cache()
    yield tmp_path / "var" / "recordings" / "speech"
    reset_settings_cache()


async def test_listen_records_the_callers_answer_and_keeps_only_the_speech(harness: Harness, tmp_path: Path,
                                                                           speech_dir: Path) -> None:
    ask = _wav(tmp_path / "ask.wav")
    said = b"\x00\x00" * 4000 + _tone_pcm(1.0) + b"\x00\x00" * 8000  # 0.5 s quiet, 1 s speech, 1 s quiet
    answers: list[bytes] = []

    async def ivr(session: MediaSession) -> None:
        await session.answer()
        answers.append(await session.listen(ask, max_s=8, silence_s=0.8))
        answers.append(await session.listen(None, max_s=3))  # says nothing
        await session.hangup()

    call = await harness.call(ivr, CallerScript(speech={"record#1": said}))
    path = speech_dir / f"listen-{call.uuid}-1.wav"
    assert f"sendmsg execute record {path} 8 200 1" in call.commands
    assert f"sendmsg execute record {speech_dir / f'listen-{call.uuid}-2.wav'} 3 200 1" in call.commands
    speech, silence = answers
    assert 1.0 <= len(speech) / 16000 <= 1.6 and _tone_pcm(1.0)[:3200] in speech and silence == b""
    assert not any(speech_dir.iterdir())  # read, then deleted


async def test_a_key_during_listen_ends_it_and_stays_for_collect_digits(harness: Harness, tmp_path: Path,
                                                                        speech_dir: Path) -> None:
    ask = _wav(tmp_path / "ask.wav")
    results: list[object] = []

    async def ivr(session: MediaSession) -> None:
        await session.answer()
        results.append(await session.listen(ask))  # key during the prompt
        results.append(await session.collect_digits(None, max_digits=1, timeout_s=1, terminators=""))
        results.append(await session.listen(None))  # key during the recording
        results.append(await session.collect_digits(None, max_digits=1, timeout_s=1, terminators=""))
        await session.hangup()

    call = await harness.call(ivr, CallerScript(press={"playback#1": "3", "record#1": "0"},
                                                speech={"record#1": _tone_pcm(1.0)}, play_s=0.2))
    assert results == [b"", "3", b"", "0"]
    assert sum(1 for c in call.commands if c.startswith("sendmsg execute record ")) == 1
